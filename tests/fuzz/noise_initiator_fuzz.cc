// Fuzz target: the Noise_XK initiator of haven::noise, as the SDK runs it
// against havend (the server's static key pinned; keys of noise_fuzz_setup.h,
// both ephemerals fixed so that runs are deterministic).
//
// Input: a sequence of records (fuzz_reader.h). While the handshake runs,
// IsMyTurn() decides what a record is: the payload for WriteMessage()
// (messages 1 and 3) or the responder's message 2 for ReadMessage(). Once the
// handshake completes, the rest is a sequence of steps, each an operation
// byte (low two bits: 0 Decrypt a record, 1 Encrypt a record, 2 RekeyReceive,
// 3 RekeySend) followed by a record for 0 and 1.
//
// Checked: message sizes follow the pattern (e + payload + tag; s + tag +
// payload + tag), a failed handshake stays failed (every later call fails),
// a failed Decrypt leaves its output as it was, and the transport can only
// exist after three messages with the responder's static key as pinned.
// The seed corpus holds a recorded valid handshake (gen_corpus.cc).
#include <cstddef>
#include <cstdint>

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
namespace fz = haven::fuzz;

constexpr std::uint8_t kSentinel = 0x5a;

// Size of handshake message `index` (0..2) carrying `payload` bytes.
std::size_t MessageSize(std::size_t index, std::size_t payload) {
  return index == 2 ? kDhLen + kTagLen + payload + kTagLen : kDhLen + payload + kTagLen;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fz::Reader reader(ByteView(data, size));
  HandshakeState hs = fz::MakeInitiator();
  std::size_t index = 0;  // handshake message number, 0..2
  while (!hs.IsComplete()) {
    if (reader.done()) return 0;
    const ByteView record = reader.Record();
    if (hs.IsMyTurn()) {
      HAVEN_FUZZ_CHECK(index == 0 || index == 2);
      Bytes message = {kSentinel};
      const Status st = hs.WriteMessage(record, &message);
      if (!st.ok()) {
        HAVEN_FUZZ_CHECK(MessageSize(index, record.size()) > kMaxMessageLen);
        fz::CheckPoisoned(hs, record);
        return 0;
      }
      HAVEN_FUZZ_CHECK(message[0] == kSentinel);
      HAVEN_FUZZ_CHECK(message.size() == 1 + MessageSize(index, record.size()));
      if (index == 0) {  // the fixed ephemeral goes out in clear
        HAVEN_FUZZ_CHECK(fz::SameBytes(ByteView(message).subspan(1, kDhLen),
                                       fz::Keys().initiator_ephemeral.public_key));
      }
    } else {
      HAVEN_FUZZ_CHECK(index == 1);
      Bytes payload = {kSentinel};
      const Status st = hs.ReadMessage(record, &payload);
      if (!st.ok()) {
        HAVEN_FUZZ_CHECK(payload.size() == 1 || payload[0] == kSentinel);
        fz::CheckPoisoned(hs, record);
        return 0;
      }
      HAVEN_FUZZ_CHECK(record.size() >= kDhLen + kTagLen);
      HAVEN_FUZZ_CHECK(payload.size() == 1 + record.size() - kDhLen - kTagLen);
      HAVEN_FUZZ_CHECK(payload[0] == kSentinel);
    }
    ++index;
  }
  HAVEN_FUZZ_CHECK(index == fz::kHandshakeMessages);
  HAVEN_FUZZ_CHECK(hs.remote_static() == fz::Keys().responder_static.public_key);
  auto split = hs.Split();
  HAVEN_FUZZ_CHECK(split.ok());
  fz::RunTransport(split.value(), reader);
  return 0;
}
