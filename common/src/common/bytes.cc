#include "haven/common/bytes.h"

#include <sodium.h>

namespace haven {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

void EncodeHexInto(ByteView data, char* out) {
  static constexpr char kDigits[] = "0123456789abcdef";
  for (std::uint8_t b : data) {
    *out++ = kDigits[b >> 4];
    *out++ = kDigits[b & 0x0f];
  }
}

std::string ToHex(ByteView data) {
  std::string out(data.size() * 2, '\0');
  EncodeHexInto(data, out.data());
  return out;
}

bool DecodeHexInto(std::string_view hex, MutableByteView out) {
  if (hex.size() != out.size() * 2) return false;
  for (std::size_t i = 0; i < out.size(); ++i) {
    const int hi = HexValue(hex[2 * i]);
    const int lo = HexValue(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[i] = static_cast<std::uint8_t>((hi << 4) | lo);
  }
  return true;
}

std::optional<Bytes> FromHex(std::string_view hex) {
  if (hex.size() % 2 != 0) return std::nullopt;
  Bytes out(hex.size() / 2);
  if (!DecodeHexInto(hex, out)) return std::nullopt;
  return out;
}

bool ConstantTimeEquals(ByteView a, ByteView b) {
  if (a.size() != b.size()) return false;
  if (a.empty()) return true;
  return sodium_memcmp(a.data(), b.data(), a.size()) == 0;
}

int CrockfordValue(char typed) {
  if (typed == '-' || typed == ' ') return kCrockfordSeparator;
  char c = (typed >= 'a' && typed <= 'z') ? static_cast<char>(typed - 'a' + 'A') : typed;
  if (c == 'O') c = '0';
  if (c == 'I' || c == 'L') c = '1';
  for (int v = 0; v < 32; ++v) {
    if (kCrockfordAlphabet[v] == c) return v;
  }
  return kCrockfordInvalid;
}

}  // namespace haven
