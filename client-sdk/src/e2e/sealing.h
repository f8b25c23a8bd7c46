// Sealing to the helpline: triage answers, case notes, handoff notes and
// audit details are sealed boxes (X25519 + XSalsa20-Poly1305, libsodium's
// crypto_box_seal) to the helpline's intake (or audit) public key. The
// server stores the blobs and holds no private key that opens them.
//
// The intake private key reaches counsellor devices only, sealed to each
// device's identity DH key at enrolment (SealKeyForDevice).
#pragma once

#include "e2e/x3dh.h"

namespace haven::e2e {

// A blob sealed to the helpline: 1 version byte, then the sealed box.
Result<Bytes> SealToHelpline(const crypto::X25519Public& helpline_public, ByteView plaintext);
Result<SecureBuffer> OpenHelplineBlob(const DhKeyPair& helpline_key, ByteView blob);

// The helpline's private key, sealed to a counsellor device's identity.
Result<Bytes> SealKeyForDevice(const IdentityPublic& device, const DhKeyPair& helpline_key);
Result<DhKeyPair> OpenKeyOnDevice(const IdentityKey& device, ByteView sealed_key);

}  // namespace haven::e2e
