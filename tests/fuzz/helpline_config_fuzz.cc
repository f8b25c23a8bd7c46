// Fuzz target: the helpline configuration parser (server/config/helpline.*),
// ParseHelplineConfig on arbitrary text. Checked: it never crashes or hangs;
// a configuration it accepts is within every bound it documents
// (HelplineLimits, valid language tags, the numeric ranges); and an error
// message names the origin, so an operator can find the file.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "config/helpline.h"
#include "fuzz_check.h"

namespace {

using haven::server::HelplineConfig;
using haven::server::HelplineLimits;

// Unicode code points in valid UTF-8 (the parser counts characters).
std::size_t Chars(std::string_view s) {
  std::size_t n = 0;
  for (char c : s) n += (static_cast<unsigned char>(c) & 0xc0u) != 0x80u ? 1 : 0;
  return n;
}

void CheckId(const std::string& id) {
  HAVEN_FUZZ_CHECK(!id.empty() && Chars(id) <= HelplineLimits::kMaxIdChars);
  for (char c : id) {
    HAVEN_FUZZ_CHECK((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-');
  }
}

void CheckAccepted(const HelplineConfig& c) {
  HAVEN_FUZZ_CHECK(Chars(c.name) <= HelplineLimits::kMaxLabelChars);
  HAVEN_FUZZ_CHECK(c.max_active_per_counsellor >= 1 && c.max_active_per_counsellor <= 100);
  HAVEN_FUZZ_CHECK(c.max_block_hours >= 1 && c.max_block_hours <= 8760);
  for (const std::string& tag : c.languages) {
    HAVEN_FUZZ_CHECK(haven::server::IsValidLanguageTag(tag));
  }
  HAVEN_FUZZ_CHECK(c.priorities.size() <= HelplineLimits::kMaxEntriesPerList);
  for (const auto& p : c.priorities) {
    HAVEN_FUZZ_CHECK(p.level <= 9);
    HAVEN_FUZZ_CHECK(Chars(p.label) <= HelplineLimits::kMaxLabelChars);
  }
  HAVEN_FUZZ_CHECK(c.categories.size() <= HelplineLimits::kMaxEntriesPerList);
  for (const auto& cat : c.categories) {
    CheckId(cat.id);
    HAVEN_FUZZ_CHECK(Chars(cat.label) <= HelplineLimits::kMaxLabelChars);
  }
  HAVEN_FUZZ_CHECK(c.canned_responses.size() <= HelplineLimits::kMaxEntriesPerList);
  for (const auto& r : c.canned_responses) {
    CheckId(r.id);
    HAVEN_FUZZ_CHECK(Chars(r.text) <= HelplineLimits::kMaxCannedTextChars);
  }
  HAVEN_FUZZ_CHECK(c.referrals.size() <= HelplineLimits::kMaxEntriesPerList);
  for (const auto& r : c.referrals) {
    CheckId(r.id);
    for (const std::string* f : {&r.service, &r.name, &r.offers, &r.contact, &r.region}) {
      HAVEN_FUZZ_CHECK(Chars(*f) <= HelplineLimits::kMaxReferralFieldChars);
    }
    for (const std::string& tag : r.languages) {
      HAVEN_FUZZ_CHECK(haven::server::IsValidLanguageTag(tag));
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto parsed = haven::server::ParseHelplineConfig(text, "fuzz-helpline.toml");
  if (parsed.ok()) {
    CheckAccepted(parsed.value());
  } else {
    HAVEN_FUZZ_CHECK(parsed.status().message().find("fuzz-helpline.toml") != std::string::npos);
  }
  return 0;
}
