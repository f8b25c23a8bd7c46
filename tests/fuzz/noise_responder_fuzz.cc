// Fuzz target: the Noise_XK responder of haven::noise, as havend runs it
// (Noise_XK_25519_ChaChaPoly_BLAKE2b, prologue "haven/1", a fixed static key;
// see noise_fuzz_setup.h for the keys).
//
// The low bit of the first byte picks the mode.
//
// Raw mode (first byte even): the fuzzer talks to the responder directly.
//   The rest of the input is a sequence of records, each a 2-byte big-endian
//   length then that many bytes (cut short at the end of the input). While
//   the handshake runs, IsMyTurn() decides what a record is: a message for
//   ReadMessage() or the payload for WriteMessage(). Once it completes, the
//   rest is a sequence of steps, each an operation byte (low two bits:
//   0 Decrypt a record, 1 Encrypt a record, 2 RekeyReceive, 3 RekeySend)
//   followed by a record for 0 and 1. Errors end the run; they are fine, but
//   a failed handshake must stay failed. The seed corpus holds a recorded
//   valid handshake in this format (possible because the responder's
//   ephemeral key is fixed).
//
// Valid mode (first byte odd): a real initiator and the responder run the
//   whole handshake, then exchange four transport messages (I->R, R->I,
//   I->R, R->I), and the fuzzer tampers with one of those seven messages on
//   the wire.
//     byte 1   which message: value % 8, 0..6; 7 tampers with none
//     byte 2   picks the payload lengths (ValidModePayload)
//     then     edits, 3 bytes each: op, position (2 bytes, big-endian);
//              op & 3: 0 flip the byte at position: if op has bit 7 set,
//              flip bit (op >> 2) & 7 of it, else XOR it with (op >> 2) + 1;
//              1 truncate to position; 2 insert the byte op >> 2 at
//              position; 3 delete the byte at position (positions are
//              taken modulo the current length)
//   A message that differs from the original must be rejected; an identical
//   one must be accepted and carry the original payload. After a rejected
//   handshake message the receiver must refuse the genuine one (it is
//   poisoned); after a rejected transport message the genuine one must still
//   decrypt (the nonce did not move). At the end a replayed transport message
//   must be rejected.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <utility>

#include "fuzz_check.h"
#include "fuzz_reader.h"
#include "noise_fuzz_setup.h"

namespace {

using haven::ByteView;
using haven::Bytes;
using haven::Status;
using haven::noise::HandshakeState;
using haven::noise::kDhLen;
using haven::noise::kMaxMessageLen;
using haven::noise::kTagLen;
using haven::noise::TransportState;
namespace fz = haven::fuzz;

constexpr std::uint8_t kSentinel = 0xa5;

// ---------------------------------------------------------------- raw mode

void RunRaw(ByteView input) {
  fz::Reader reader(input);
  HandshakeState hs = fz::MakeResponder();
  std::size_t index = 0;  // handshake message number, 0..2
  while (!hs.IsComplete()) {
    if (reader.done()) return;
    const ByteView record = reader.Record();
    if (hs.IsMyTurn()) {
      HAVEN_FUZZ_CHECK(index == 1);
      Bytes message = {kSentinel};
      const Status st = hs.WriteMessage(record, &message);
      if (!st.ok()) {
        // The only way to fail here: e + payload + tag above 65535 bytes.
        HAVEN_FUZZ_CHECK(kDhLen + record.size() + kTagLen > kMaxMessageLen);
        fz::CheckPoisoned(hs, record);
        return;
      }
      HAVEN_FUZZ_CHECK(message.size() == 1 + kDhLen + record.size() + kTagLen);
      HAVEN_FUZZ_CHECK(message[0] == kSentinel);
      // The ephemeral is fixed, so the message starts with its public key.
      HAVEN_FUZZ_CHECK(fz::SameBytes(ByteView(message).subspan(1, kDhLen),
                                 fz::Keys().responder_ephemeral.public_key));
    } else {
      HAVEN_FUZZ_CHECK(index == 0 || index == 2);
      Bytes payload = {kSentinel};
      const Status st = hs.ReadMessage(record, &payload);
      if (!st.ok()) {
        fz::CheckPoisoned(hs, record);
        return;
      }
      // Message 1 is e + payload; message 3 is encrypted s + payload.
      const std::size_t overhead = index == 0 ? kDhLen + kTagLen : kDhLen + 2 * kTagLen;
      HAVEN_FUZZ_CHECK(record.size() >= overhead);
      HAVEN_FUZZ_CHECK(payload.size() == 1 + record.size() - overhead);
      HAVEN_FUZZ_CHECK(payload[0] == kSentinel);
    }
    ++index;
  }
  HAVEN_FUZZ_CHECK(index == fz::kHandshakeMessages);
  HAVEN_FUZZ_CHECK(!hs.IsMyTurn());
  HAVEN_FUZZ_CHECK(hs.remote_static().has_value());
  auto split = hs.Split();
  HAVEN_FUZZ_CHECK(split.ok());
  HAVEN_FUZZ_CHECK(fz::SameBytes(split->handshake_hash(), hs.handshake_hash()));
  Bytes scratch;
  HAVEN_FUZZ_CHECK(!hs.ReadMessage({}, &scratch).ok());
  HAVEN_FUZZ_CHECK(!hs.WriteMessage({}, &scratch).ok());
  fz::RunTransport(split.value(), reader);
}

// -------------------------------------------------------------- valid mode

// Applies the edits in `edits` (3 bytes each) to `wire`.
void Tamper(ByteView edits, Bytes* wire) {
  for (std::size_t i = 0; i + 3 <= edits.size(); i += 3) {
    const std::uint8_t op = edits[i];
    const std::uint8_t value = static_cast<std::uint8_t>(op >> 2);
    const std::size_t position = haven::LoadBigEndian16(edits.data() + i + 1);
    const std::size_t n = wire->size();
    switch (op & 3u) {
      case 0: {
        const auto mask = static_cast<std::uint8_t>((op & 0x80u) != 0 ? 1u << (value & 7u)
                                                                      : value + 1u);
        if (n > 0) (*wire)[position % n] ^= mask;
        break;
      }
      case 1:
        wire->resize(position % (n + 1));
        break;
      case 2:
        wire->insert(wire->begin() + static_cast<std::ptrdiff_t>(position % (n + 1)), value);
        break;
      default:
        if (n > 0) wire->erase(wire->begin() + static_cast<std::ptrdiff_t>(position % n));
        break;
    }
  }
}

void RunValid(ByteView input) {
  const std::size_t target =
      input.size() > 1 ? input[1] % (fz::kValidModeMessages + 1) : fz::kValidModeMessages;
  const std::uint8_t payload_seed = input.size() > 2 ? input[2] : 0;
  const ByteView edits = input.size() > 3 ? input.subspan(3) : ByteView();
  const fz::FixedKeys& keys = fz::Keys();

  HandshakeState initiator = fz::MakeInitiator();
  HandshakeState responder = fz::MakeResponder();
  std::optional<TransportState> initiator_transport;
  std::optional<TransportState> responder_transport;
  Bytes last_to_initiator;  // the last transport message the initiator accepted

  for (std::size_t index = 0; index < fz::kValidModeMessages; ++index) {
    const bool from_initiator = fz::ValidModeFromInitiator(index);
    const bool handshake = index < fz::kHandshakeMessages;
    const Bytes payload = fz::ValidModePayload(index, payload_seed);

    Bytes original;
    if (handshake) {
      HandshakeState& writer = from_initiator ? initiator : responder;
      HandshakeState& reader = from_initiator ? responder : initiator;
      HAVEN_FUZZ_CHECK(writer.IsMyTurn());
      HAVEN_FUZZ_CHECK(!reader.IsMyTurn());
      HAVEN_FUZZ_CHECK(writer.WriteMessage(payload, &original).ok());
    } else {
      TransportState& writer = from_initiator ? *initiator_transport : *responder_transport;
      HAVEN_FUZZ_CHECK(writer.Encrypt(payload, &original).ok());
      HAVEN_FUZZ_CHECK(original.size() == payload.size() + kTagLen);
    }

    Bytes wire = original;
    if (index == target) Tamper(edits, &wire);
    const bool tampered = wire != original;

    Bytes received = {kSentinel};
    if (handshake) {
      HandshakeState& reader = from_initiator ? responder : initiator;
      const Status st = reader.ReadMessage(wire, &received);
      if (tampered) {
        HAVEN_FUZZ_CHECK(!st.ok());  // a forged handshake message got through
        fz::CheckPoisoned(reader, original);
        return;
      }
      HAVEN_FUZZ_CHECK(st.ok());
    } else {
      TransportState& reader = from_initiator ? *responder_transport : *initiator_transport;
      Status st = reader.Decrypt(wire, &received);
      if (tampered) {
        HAVEN_FUZZ_CHECK(!st.ok());  // a forged transport message got through
        HAVEN_FUZZ_CHECK(st.code() == Status::Code::kDataLoss);
        HAVEN_FUZZ_CHECK(received.size() == 1);  // output left as it was
        st = reader.Decrypt(original, &received);
      }
      HAVEN_FUZZ_CHECK(st.ok());
      if (!from_initiator) last_to_initiator = original;
    }
    HAVEN_FUZZ_CHECK(received[0] == kSentinel);
    HAVEN_FUZZ_CHECK(fz::SameBytes(ByteView(received).subspan(1), payload));

    if (index + 1 == fz::kHandshakeMessages) {
      HAVEN_FUZZ_CHECK(initiator.IsComplete() && responder.IsComplete());
      HAVEN_FUZZ_CHECK(haven::ConstantTimeEquals(initiator.handshake_hash(),
                                                 responder.handshake_hash()));
      HAVEN_FUZZ_CHECK(responder.remote_static() == keys.initiator_static.public_key);
      HAVEN_FUZZ_CHECK(initiator.remote_static() == keys.responder_static.public_key);
      auto i_split = initiator.Split();
      auto r_split = responder.Split();
      HAVEN_FUZZ_CHECK(i_split.ok() && r_split.ok());
      HAVEN_FUZZ_CHECK(i_split->handshake_hash() == r_split->handshake_hash());
      initiator_transport.emplace(std::move(i_split).value());
      responder_transport.emplace(std::move(r_split).value());
    }
  }

  // A replayed transport message is refused: the receive nonce moved on.
  Bytes replayed = {kSentinel};
  HAVEN_FUZZ_CHECK(!initiator_transport->Decrypt(last_to_initiator, &replayed).ok());
  HAVEN_FUZZ_CHECK(replayed.size() == 1);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const ByteView input(data, size);
  if ((input[0] & 1u) == 0) {
    RunRaw(input.subspan(1));
  } else {
    RunValid(input);
  }
  return 0;
}
