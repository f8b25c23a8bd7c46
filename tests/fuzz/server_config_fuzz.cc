// Fuzz target: havend's configuration parser (server/config/config.*),
// ParseConfig on arbitrary text. Checked: it never crashes or hangs; what it
// accepts passes ValidateConfig (the cross-field rules) and resolves a
// helpline path without throwing; an error message names the origin.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "config/config.h"
#include "fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto parsed = haven::server::ParseConfig(text, "fuzz-havend.toml");
  if (parsed.ok()) {
    HAVEN_FUZZ_CHECK(haven::server::ValidateConfig(parsed.value(), "fuzz-havend.toml").ok());
    (void)haven::server::ResolveHelplinePath(parsed.value(), "/etc/haven/havend.toml");
  } else {
    HAVEN_FUZZ_CHECK(parsed.status().message().find("fuzz-havend.toml") != std::string::npos);
  }
  return 0;
}
