// What the SDK puts inside a haven.v1 envelope (the server sees only this,
// and it is opaque): a type byte, then
//   0x01 session start: X3DH initial message (101 or 105 bytes) || ratchet message
//   0x02 message:       ratchet message
#pragma once

#include <optional>

#include "e2e/x3dh.h"

namespace haven::e2e {

inline constexpr std::uint8_t kEnvelopeSessionStart = 0x01;
inline constexpr std::uint8_t kEnvelopeMessage = 0x02;

Bytes EncodeSessionStart(const InitialMessage& initial, ByteView ratchet_message);
Bytes EncodeMessage(ByteView ratchet_message);

struct DecodedEnvelope {
  std::optional<InitialMessage> session_start;
  ByteView ratchet_message;  // points into the decoded bytes
};
std::optional<DecodedEnvelope> DecodeEnvelope(ByteView envelope);

}  // namespace haven::e2e
