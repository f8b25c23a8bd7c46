// The helpline's own configuration: config/helpline.toml, validated.
//
// Everything that differs from one helpline to the next lives here, not in
// code: the languages served, the priority labels, the contact categories of
// the wrap-up, the canned responses, the referral directory, the
// per-counsellor cap and the longest block. Counsellors and supervisors
// receive it from havend; survivors never do.
//
// An empty file is a valid, neutral configuration (no categories, canned
// responses or referrals; the numeric defaults below). Unknown sections and
// keys, duplicate ids and out-of-range values are errors whose message names
// the file, the key path and the fix:
//   "helpline.toml: referrals[2].contact: must not be empty (line 87)"
// List entries are counted from 0 in file order.
// Thread-safety: a loaded HelplineConfig is an immutable value.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "haven/common/status.h"

namespace haven::server {

struct HelplineConfig {
  std::string name;                             // shown to counsellors only, never to survivors
  std::vector<std::string> languages;           // BCP 47 tags the helpline serves
  std::uint32_t max_active_per_counsellor = 5;  // 1..100
  std::uint32_t max_block_hours = 72;           // 1..8760
  struct Priority {
    std::uint32_t level = 0;  // 0..9, unique
    std::string label;
  };
  std::vector<Priority> priorities;
  struct Category {  // contact categories of the wrap-up
    std::string id;
    std::string label;
  };
  std::vector<Category> categories;
  struct CannedResponse {
    std::string id;
    std::string text;
  };
  std::vector<CannedResponse> canned_responses;
  struct Referral {
    std::string id, service, name, offers, contact, region;
    std::vector<std::string> languages;
  };
  std::vector<Referral> referrals;
};

// Bounds, exposed for tests and for clients that want to pre-check input.
// Lengths count characters (Unicode code points), not bytes.
struct HelplineLimits {
  static constexpr std::size_t kMaxIdChars = 64;          // [a-z0-9-]
  static constexpr std::size_t kMaxLabelChars = 120;      // labels, helpline name
  static constexpr std::size_t kMaxCannedTextChars = 2000;
  static constexpr std::size_t kMaxReferralFieldChars = 500;
  static constexpr std::size_t kMaxLanguageTagChars = 35;
  static constexpr std::size_t kMaxEntriesPerList = 200;
};

// True for a well-formed BCP 47 language tag as used here: subtags of 1..8
// letters or digits separated by '-', the first 2..8 letters, at most 35
// characters ("en", "es-419", "zh-Hant-TW"). Not checked against the registry.
bool IsValidLanguageTag(std::string_view tag);

// Parses and validates; `origin` names the source in messages.
Result<HelplineConfig> ParseHelplineConfig(std::string_view toml_text, std::string_view origin);
// Reads and parses a file; a missing or unreadable file is an error (an empty
// path is not accepted here: the caller uses a default HelplineConfig).
Result<HelplineConfig> LoadHelplineConfigFile(const std::string& path);

}  // namespace haven::server
