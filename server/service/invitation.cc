#include "service/invitation.h"

#include <sodium.h>

#include "haven/common/bytes.h"
#include "haven/common/secure_memory.h"

namespace haven::server {
namespace {

constexpr std::size_t kCodeChars = 32;                            // 160 bits
constexpr std::string_view kDomain = "haven/1 invitation";

}  // namespace

std::string NewInvitationCode() {
  (void)EnsureSodium();
  std::string code;
  for (std::size_t i = 0; i < kCodeChars; ++i) {
    if (i > 0 && i % 4 == 0) code.push_back('-');
    code.push_back(kCrockfordAlphabet[randombytes_uniform(32)]);
  }
  return code;
}

std::optional<InvitationHash> HashInvitationCode(std::string_view code) {
  std::string normal;
  for (char c : code) {
    const int v = CrockfordValue(c);
    if (v == kCrockfordSeparator) continue;
    if (v == kCrockfordInvalid) return std::nullopt;
    normal.push_back(kCrockfordAlphabet[v]);
    if (normal.size() > kCodeChars) return std::nullopt;
  }
  if (normal.size() != kCodeChars) return std::nullopt;
  InvitationHash hash{};
  crypto_generichash(hash.data(), hash.size(), reinterpret_cast<const unsigned char*>(normal.data()),
                     normal.size(), reinterpret_cast<const unsigned char*>(kDomain.data()),
                     kDomain.size());
  return hash;
}

}  // namespace haven::server
