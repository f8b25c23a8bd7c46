// The fixed Noise configuration shared by noise_responder_fuzz.cc,
// noise_initiator_fuzz.cc and the seed generator (gen_corpus.cc): Haven's XK protocol, prologue and constant
// key pairs, so that a handshake recorded once replays byte for byte.
//
// Both ephemerals are fixed too (fixed_ephemeral_for_testing). For the
// responder that keeps every run deterministic, which libFuzzer needs, and it
// lets a recorded valid handshake in the seed corpus complete in raw mode.
// These keys are test constants and protect nothing.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <utility>

#include "fuzz_check.h"
#include "fuzz_reader.h"
#include "haven/common/protocol.h"
#include "haven/noise/handshake_state.h"

namespace haven::fuzz {

inline constexpr std::string_view kNoiseProtocol = kHavenNoiseProtocol;
inline constexpr std::string_view kNoisePrologue = kHavenPrologue;

// Raw-mode operations after the handshake completed (first byte of each step).
inline constexpr std::uint8_t kOpDecrypt = 0;       // followed by a record
inline constexpr std::uint8_t kOpEncrypt = 1;       // followed by a record
inline constexpr std::uint8_t kOpRekeyReceive = 2;  // no record
inline constexpr std::uint8_t kOpRekeySend = 3;     // no record

// Valid mode: three handshake messages, then four transport messages.
inline constexpr std::size_t kValidModeMessages = 7;
inline constexpr std::size_t kHandshakeMessages = 3;

// Who writes message `index` in valid mode: handshake I, R, I, then
// transport I, R, I, R.
inline bool ValidModeFromInitiator(std::size_t index) {
  return index < kHandshakeMessages ? index % 2 == 0 : index % 2 == 1;
}

// The payload carried by message `index` in valid mode; `seed` (an input
// byte) picks its length, 0..95 bytes.
inline Bytes ValidModePayload(std::size_t index, std::uint8_t seed) {
  const std::size_t length = (static_cast<std::size_t>(seed) + 29 * index) % 96;
  Bytes payload(length);
  for (std::size_t i = 0; i < length; ++i) {
    payload[i] = static_cast<std::uint8_t>(index * 16 + i);
  }
  return payload;
}

inline constexpr std::array<std::uint8_t, noise::kDhLen> PrivateKeyPattern(std::uint8_t start,
                                                                     std::uint8_t step) {
  std::array<std::uint8_t, noise::kDhLen> key{};
  for (std::size_t i = 0; i < key.size(); ++i) {
    key[i] = static_cast<std::uint8_t>(start + step * i);
  }
  return key;
}

struct FixedKeys {
  noise::KeyPair responder_static;
  noise::KeyPair responder_ephemeral;
  noise::KeyPair initiator_static;
  noise::KeyPair initiator_ephemeral;
};

inline noise::KeyPair KeyFromPattern(std::uint8_t start, std::uint8_t step) {
  const std::array<std::uint8_t, noise::kDhLen> key = PrivateKeyPattern(start, step);
  auto pair = noise::KeyPair::FromPrivateKey(key);
  HAVEN_FUZZ_CHECK(pair.ok());
  return std::move(pair).value();
}

// Computed once per process; callers Clone() what they hand to a handshake.
inline const FixedKeys& Keys() {
  static const FixedKeys keys = {
      KeyFromPattern(0x11, 0x07),  // responder static: the server's key
      KeyFromPattern(0x5e, 0x0d),  // responder ephemeral
      KeyFromPattern(0xc3, 0x05),  // initiator static: a client's key
      KeyFromPattern(0x2a, 0x0b),  // initiator ephemeral
  };
  return keys;
}

inline noise::HandshakeState MakeResponder() {
  const FixedKeys& keys = Keys();
  noise::HandshakeConfig config;
  config.protocol_name = std::string(kNoiseProtocol);
  config.role = noise::Role::kResponder;
  config.prologue.assign(kNoisePrologue.begin(), kNoisePrologue.end());
  config.s = keys.responder_static.Clone();
  config.fixed_ephemeral_for_testing = keys.responder_ephemeral.Clone();
  auto state = noise::HandshakeState::Create(std::move(config));
  HAVEN_FUZZ_CHECK(state.ok());
  return std::move(state).value();
}

inline noise::HandshakeState MakeInitiator() {
  const FixedKeys& keys = Keys();
  noise::HandshakeConfig config;
  config.protocol_name = std::string(kNoiseProtocol);
  config.role = noise::Role::kInitiator;
  config.prologue.assign(kNoisePrologue.begin(), kNoisePrologue.end());
  config.s = keys.initiator_static.Clone();
  config.rs = keys.responder_static.public_key;
  config.fixed_ephemeral_for_testing = keys.initiator_ephemeral.Clone();
  auto state = noise::HandshakeState::Create(std::move(config));
  HAVEN_FUZZ_CHECK(state.ok());
  return std::move(state).value();
}

// After an error a handshake is poisoned: nothing may succeed any more.
inline void CheckPoisoned(noise::HandshakeState& hs, ByteView message) {
  Bytes scratch;
  HAVEN_FUZZ_CHECK(!hs.ReadMessage(message, &scratch).ok());
  HAVEN_FUZZ_CHECK(!hs.WriteMessage({}, &scratch).ok());
  HAVEN_FUZZ_CHECK(!hs.Split().ok());
  HAVEN_FUZZ_CHECK(!hs.IsComplete());
}

// Raw mode after the handshake: steps of an operation byte (kOp*, low two
// bits) and, for Decrypt and Encrypt, a record. Checked: sizes follow the
// tag, a failed Decrypt is DATA_LOSS and leaves its output as it was, and
// Encrypt fails exactly when the message would exceed the Noise maximum.
inline void RunTransport(noise::TransportState& transport, Reader& reader) {
  constexpr std::uint8_t kSentinel = 0xa5;
  while (!reader.done()) {
    const std::uint8_t op = reader.Byte() & 3u;
    if (op == kOpRekeyReceive) {
      transport.RekeyReceive();
      continue;
    }
    if (op == kOpRekeySend) {
      transport.RekeySend();
      continue;
    }
    const ByteView record = reader.Record();
    Bytes out = {kSentinel};
    if (op == kOpDecrypt) {
      const Status st = transport.Decrypt(record, &out);
      if (st.ok()) {
        HAVEN_FUZZ_CHECK(record.size() >= noise::kTagLen);
        HAVEN_FUZZ_CHECK(out.size() == 1 + record.size() - noise::kTagLen);
      } else {
        HAVEN_FUZZ_CHECK(st.code() == Status::Code::kDataLoss);
        HAVEN_FUZZ_CHECK(out.size() == 1);  // left as it was
      }
    } else {
      const Status st = transport.Encrypt(record, &out);
      HAVEN_FUZZ_CHECK(st.ok() == (record.size() + noise::kTagLen <= noise::kMaxMessageLen));
      if (st.ok()) HAVEN_FUZZ_CHECK(out.size() == 1 + record.size() + noise::kTagLen);
    }
    HAVEN_FUZZ_CHECK(out[0] == kSentinel);
  }
}

}  // namespace haven::fuzz
