// Fuzz target: opening what is sealed to the helpline
// (client-sdk/src/e2e/sealing.*) and the X3DH wire decoders next to it
// (client-sdk/src/e2e/x3dh.*). The helpline and device keys are fixed test
// constants (the seeds hold blobs sealed to them by gen_corpus.cc).
//
// The low two bits of the first byte pick the mode; the rest is the body.
//   0  OpenHelplineBlob(helpline key, body): what a counsellor device does
//      with a triage answer, case note or wrap-up from the server.
//   1  round trip: body = position (2 bytes), XOR mask (1 byte), plaintext.
//      The plaintext is sealed, the blob changed at position by mask (0:
//      untouched), and opened: untouched it must give the plaintext back,
//      changed it must be refused.
//   2  OpenKeyOnDevice(device identity, body): the enrolment path that
//      hands the helpline's private key to a device.
//   3  IdentityPublic::Decode and InitialMessage::Decode of the body; what
//      decodes must encode back to the same bytes.
#include <cstddef>
#include <cstdint>

#include "e2e/sealing.h"
#include "fuzz_check.h"
#include "fuzz_reader.h"
#include "ratchet_fuzz_setup.h"

namespace {

using haven::ByteView;
using haven::Bytes;
using haven::crypto::kSealOverhead;
namespace e2e = haven::e2e;
namespace fz = haven::fuzz;

void OpenBlob(ByteView body) {
  static const e2e::DhKeyPair helpline = fz::SealFuzzHelplineKey();
  auto opened = e2e::OpenHelplineBlob(helpline, body);
  if (opened.ok()) HAVEN_FUZZ_CHECK(opened->size() + 1 + kSealOverhead == body.size());
}

void RoundTrip(ByteView body) {
  static const e2e::DhKeyPair helpline = fz::SealFuzzHelplineKey();
  fz::Reader reader(body);
  const std::size_t position = static_cast<std::size_t>(reader.Byte()) << 8 | reader.Byte();
  const std::uint8_t mask = reader.Byte();
  const ByteView plaintext = reader.rest();
  auto sealed = e2e::SealToHelpline(helpline.public_key, plaintext);
  HAVEN_FUZZ_CHECK(sealed.ok());
  HAVEN_FUZZ_CHECK(sealed->size() == 1 + kSealOverhead + plaintext.size());
  Bytes blob = std::move(sealed).value();
  blob[position % blob.size()] ^= mask;
  auto opened = e2e::OpenHelplineBlob(helpline, blob);
  if (mask == 0) {
    HAVEN_FUZZ_CHECK(opened.ok());
    HAVEN_FUZZ_CHECK(fz::SameBytes(opened->view(), plaintext));
  } else {
    HAVEN_FUZZ_CHECK(!opened.ok());
  }
}

void OpenKey(ByteView body) {
  static const e2e::IdentityKey device = fz::SealFuzzDeviceKey();
  auto key = e2e::OpenKeyOnDevice(device, body);
  if (key.ok()) HAVEN_FUZZ_CHECK(key->private_key.size() == 32);
}

void DecodeX3dh(ByteView body) {
  if (auto identity = e2e::IdentityPublic::Decode(body)) {
    HAVEN_FUZZ_CHECK(fz::SameBytes(identity->Encode(), body));
  }
  if (auto initial = e2e::InitialMessage::Decode(body)) {
    HAVEN_FUZZ_CHECK(fz::SameBytes(initial->Encode(), body));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const ByteView body(data + 1, size - 1);
  switch (data[0] & 3u) {
    case 0: OpenBlob(body); break;
    case 1: RoundTrip(body); break;
    case 2: OpenKey(body); break;
    default: DecodeX3dh(body); break;
  }
  return 0;
}
