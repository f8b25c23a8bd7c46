#include "e2e/envelope.h"

namespace haven::e2e {

Bytes EncodeSessionStart(const InitialMessage& initial, ByteView ratchet_message) {
  Bytes out = {kEnvelopeSessionStart};
  const Bytes init = initial.Encode();
  out.insert(out.end(), init.begin(), init.end());
  out.insert(out.end(), ratchet_message.begin(), ratchet_message.end());
  return out;
}

Bytes EncodeMessage(ByteView ratchet_message) {
  Bytes out = {kEnvelopeMessage};
  out.insert(out.end(), ratchet_message.begin(), ratchet_message.end());
  return out;
}

std::optional<DecodedEnvelope> DecodeEnvelope(ByteView envelope) {
  if (envelope.empty()) return std::nullopt;
  DecodedEnvelope out;
  ByteView rest = envelope.subspan(1);
  if (envelope[0] == kEnvelopeSessionStart) {
    // The initial message's length follows from its flag byte (offset 100).
    if (rest.size() < 101) return std::nullopt;
    const std::size_t len = rest[100] == 1 ? 105 : 101;
    if (rest.size() < len) return std::nullopt;
    out.session_start = InitialMessage::Decode(rest.first(len));
    if (!out.session_start) return std::nullopt;
    rest = rest.subspan(len);
  } else if (envelope[0] != kEnvelopeMessage) {
    return std::nullopt;
  }
  if (rest.size() < kMessageOverhead) return std::nullopt;
  out.ratchet_message = rest;
  return out;
}

}  // namespace haven::e2e
