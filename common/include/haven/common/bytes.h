// Byte views, owning byte strings, hex and big-endian helpers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace haven {

using ByteView = std::span<const std::uint8_t>;
using MutableByteView = std::span<std::uint8_t>;
using Bytes = std::vector<std::uint8_t>;

inline ByteView AsBytes(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

// Lower-case hex of `data`. Not for secrets (the result is an ordinary string).
std::string ToHex(ByteView data);

// Decodes hex (either case, no separators). nullopt on odd length or a non-hex
// character.
std::optional<Bytes> FromHex(std::string_view hex);

// Decodes exactly out.size() bytes of hex into `out` without an intermediate
// heap copy, so it is suitable for secrets. False on any malformed input.
bool DecodeHexInto(std::string_view hex, MutableByteView out);

// Writes the 2 * data.size() lower-case hex digits of `data` to `out` (no
// terminator, no heap copy): the counterpart of DecodeHexInto, for secrets.
void EncodeHexInto(ByteView data, char* out);

// Constant-time equality (sodium_memcmp). False when sizes differ.
bool ConstantTimeEquals(ByteView a, ByteView b);

// Crockford's base32, for codes people write down and type back (invitation
// codes, resumption secrets), printed in groups of four joined by '-'.
inline constexpr char kCrockfordAlphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
inline constexpr int kCrockfordSeparator = -1;
inline constexpr int kCrockfordInvalid = -2;
// The value (0..31) of one typed character, forgiving what people mistype:
// lower case, O for 0, I and L for 1. kCrockfordSeparator for '-' and ' ',
// kCrockfordInvalid for anything else.
int CrockfordValue(char typed);

inline void StoreBigEndian16(std::uint16_t v, std::uint8_t* out) {
  out[0] = static_cast<std::uint8_t>(v >> 8);
  out[1] = static_cast<std::uint8_t>(v & 0xff);
}
inline std::uint16_t LoadBigEndian16(const std::uint8_t* in) {
  return static_cast<std::uint16_t>((in[0] << 8) | in[1]);
}
inline void StoreBigEndian32(std::uint32_t v, std::uint8_t* out) {
  for (int i = 0; i < 4; ++i) out[i] = static_cast<std::uint8_t>(v >> (24 - 8 * i));
}
inline std::uint32_t LoadBigEndian32(const std::uint8_t* in) {
  return (static_cast<std::uint32_t>(in[0]) << 24) | (static_cast<std::uint32_t>(in[1]) << 16) |
         (static_cast<std::uint32_t>(in[2]) << 8) | in[3];
}
inline void AppendBigEndian32(std::uint32_t v, Bytes* out) {
  std::uint8_t b[4];
  StoreBigEndian32(v, b);
  out->insert(out->end(), b, b + 4);
}

}  // namespace haven
