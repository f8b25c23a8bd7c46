// Fuzz target: Double Ratchet decryption (client-sdk/src/e2e/double_ratchet.*)
// between two parties of one fixed session (ratchet_fuzz_setup.h).
//
// Input: a sequence of steps, each an operation byte (RatchetOp, low three
// bits) and its arguments:
//   0/1  Alice/Bob encrypts the next record; the message waits, undelivered.
//   2/3  a waiting message is delivered to Bob/Alice, in any order: bytes
//        pick which one (mod the number waiting), a position and a XOR mask
//        (0: untouched).
//   4/5  the next record goes to Bob/Alice's Decrypt as it is.
//   6    Bob's state is serialized and restored (what the local store does).
//   7    the next record goes to Deserialize.
// Checked, for every step: a fresh untouched message decrypts to exactly its
// plaintext; a tampered or replayed one fails (nothing decrypts twice); and a
// failed Decrypt leaves the whole state, skipped keys included, as it was.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "fuzz_check.h"
#include "fuzz_reader.h"
#include "ratchet_fuzz_setup.h"

namespace {

using haven::ByteView;
using haven::Bytes;
using haven::e2e::DoubleRatchet;
namespace fz = haven::fuzz;

struct Pending {
  Bytes wire;
  Bytes plaintext;
  bool delivered = false;
};

struct Side {
  DoubleRatchet* ratchet;
  std::vector<Pending>* inbox;  // messages sent to this side
  // Messages that decrypted although this run had not sent them: possible
  // only because the session's keys are fixed (a seed can hold a recorded
  // message). Their later twin from the sender is then a replay.
  std::vector<Bytes>* unsent;
};

bool Contains(const std::vector<Bytes>& list, ByteView wire) {
  for (const Bytes& b : list) {
    if (fz::SameBytes(b, wire)) return true;
  }
  return false;
}

bool SameState(const DoubleRatchet& a, const haven::SecureBuffer& before) {
  return fz::SameBytes(a.Serialize().view(), before.view());
}

void Encrypt(DoubleRatchet& sender, ByteView plaintext, std::vector<Pending>* to) {
  auto wire = sender.Encrypt(plaintext);
  if (!wire.ok()) return;  // Bob has no sending chain before his first message
  HAVEN_FUZZ_CHECK(wire->size() >= haven::e2e::kMessageOverhead + haven::e2e::kPadBucket);
  to->push_back(Pending{std::move(wire).value(), Bytes(plaintext.begin(), plaintext.end()), false});
}

// Decrypts `wire` and checks the outcome against what was sent.
void Receive(Side side, ByteView wire, std::optional<std::size_t> expected) {
  const haven::SecureBuffer before = side.ratchet->Serialize();
  auto plain = side.ratchet->Decrypt(wire);
  if (!plain.ok()) {
    HAVEN_FUZZ_CHECK(SameState(*side.ratchet, before));
    HAVEN_FUZZ_CHECK(!expected.has_value());  // a genuine fresh message was refused
    return;
  }
  // Whatever decrypts must not have been received before (no replay)...
  HAVEN_FUZZ_CHECK(!Contains(*side.unsent, wire));
  Pending* match = nullptr;
  for (Pending& p : *side.inbox) {
    if (fz::SameBytes(p.wire, wire)) match = &p;
  }
  if (match == nullptr) {
    // ...and, if this run sent it, carry what was sent. A genuine message
    // it did not send can only come from a seed (see Side::unsent); a
    // tampered one never gets here (Deliver passes expected = nullopt, and
    // its bytes match nothing sent).
    HAVEN_FUZZ_CHECK(!expected.has_value());
    side.unsent->push_back(Bytes(wire.begin(), wire.end()));
    return;
  }
  HAVEN_FUZZ_CHECK(!match->delivered);
  HAVEN_FUZZ_CHECK(fz::SameBytes(plain->view(), match->plaintext));
  match->delivered = true;
}

void Deliver(Side side, fz::Reader& reader) {
  const std::size_t pick = reader.Byte();
  const std::size_t position = static_cast<std::size_t>(reader.Byte()) << 8 | reader.Byte();
  const std::uint8_t mask = reader.Byte();
  if (side.inbox->empty()) return;
  const std::size_t index = pick % side.inbox->size();
  Bytes wire = (*side.inbox)[index].wire;
  if (mask != 0) wire[position % wire.size()] ^= mask;
  const bool fresh =
      mask == 0 && !(*side.inbox)[index].delivered && !Contains(*side.unsent, wire);
  Receive(side, wire, fresh ? std::optional<std::size_t>(index) : std::nullopt);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fz::Reader reader(ByteView(data, size));
  fz::RatchetPair pair = fz::MakeRatchetPair();
  std::vector<Pending> to_alice, to_bob;
  std::vector<Bytes> unsent_alice, unsent_bob;
  // One key stream for every restored Bob: a stream restarted at each restore
  // would hand him a ratchet key he already used, which random keys never do
  // (and which the ratchet, like Signal's, cannot tell from its current one).
  const DoubleRatchet::KeyGenerator restored_bob_keys = fz::CountingKeys(3);
  const Side alice{&pair.alice, &to_alice, &unsent_alice};
  for (std::size_t step = 0; step < fz::kMaxRatchetSteps && !reader.done(); ++step) {
    const Side bob{&pair.bob, &to_bob, &unsent_bob};  // pair.bob may be replaced by kPersistBob
    switch (reader.Byte() & 7u) {
      case fz::kAliceEncrypt:
        Encrypt(pair.alice, reader.Record(), &to_bob);
        break;
      case fz::kBobEncrypt:
        Encrypt(pair.bob, reader.Record(), &to_alice);
        break;
      case fz::kDeliverToBob:
        Deliver(bob, reader);
        break;
      case fz::kDeliverToAlice:
        Deliver(alice, reader);
        break;
      case fz::kRawToBob:
        Receive(bob, reader.Record(), std::nullopt);
        break;
      case fz::kRawToAlice:
        Receive(alice, reader.Record(), std::nullopt);
        break;
      case fz::kPersistBob: {
        const haven::SecureBuffer saved = pair.bob.Serialize();
        auto restored =
            DoubleRatchet::Deserialize(saved.view(), fz::RatchetFuzzLimits(), restored_bob_keys);
        HAVEN_FUZZ_CHECK(restored.ok());
        HAVEN_FUZZ_CHECK(SameState(*restored, saved));
        pair.bob = std::move(restored).value();
        break;
      }
      default: {
        auto state = DoubleRatchet::Deserialize(reader.Record(), fz::RatchetFuzzLimits(),
                                                fz::CountingKeys(4));
        if (state.ok()) {
          // A restored state must survive its own round trip and a decrypt.
          const haven::SecureBuffer saved = state->Serialize();
          auto again = DoubleRatchet::Deserialize(saved.view(), fz::RatchetFuzzLimits(),
                                                  fz::CountingKeys(4));
          HAVEN_FUZZ_CHECK(again.ok() && SameState(*again, saved));
          if (!to_bob.empty()) (void)state->Decrypt(to_bob.front().wire);
        }
        break;
      }
    }
  }
  return 0;
}
