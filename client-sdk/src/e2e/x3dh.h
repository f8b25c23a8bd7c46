// X3DH (Signal's specification, revision 1) for Haven: how a survivor starts
// an end-to-end session with a counsellor from the counsellor's published
// prekeys, and the safety number both can read aloud. No I/O.
//
//   identity key    = X25519 key (DH) + Ed25519 key (signs prekeys);
//                     encoded as dh public (32) || signing public (32)
//   signed prekey   = X25519 key signed with Ed25519 over
//                     "haven/1 signed prekey" || prekey public
//   DH1 = DH(IK_A, SPK_B), DH2 = DH(EK_A, IK_B), DH3 = DH(EK_A, SPK_B),
//   DH4 = DH(EK_A, OPK_B) when a one-time prekey was handed out
//   SK  = HKDF-SHA256(ikm = 32 x 0xFF || DH1 || DH2 || DH3 [|| DH4],
//                     salt = 32 zeros, info = "haven/1 X3DH", 32)
//   AD  = "haven/1" || Encode(IK_A) || Encode(IK_B)
// The initiator then starts the Double Ratchet with SK and SPK_B as the
// responder's first ratchet key.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "e2e/double_ratchet.h"

namespace haven::e2e {

struct IdentityPublic {
  crypto::X25519Public dh{};
  crypto::Ed25519Public signing{};
  Bytes Encode() const;  // 64 bytes
  static std::optional<IdentityPublic> Decode(ByteView in);
  bool operator==(const IdentityPublic&) const = default;
};

struct IdentityKey {
  DhKeyPair dh;
  crypto::SigningKeyPair signing;
  IdentityPublic public_key() const { return {dh.public_key, signing.public_key}; }
  static IdentityKey Generate();
};

struct SignedPrekey {
  std::uint32_t id = 0;
  DhKeyPair key;
  crypto::Ed25519Signature signature{};
  static SignedPrekey Make(const IdentityKey& identity, std::uint32_t id);
};

struct OneTimePrekey {
  std::uint32_t id = 0;
  DhKeyPair key;
};

// What the server hands a survivor for a counsellor (all public).
struct PrekeyBundle {
  IdentityPublic identity;
  std::uint32_t signed_prekey_id = 0;
  crypto::X25519Public signed_prekey{};
  crypto::Ed25519Signature signature{};
  std::optional<std::pair<std::uint32_t, crypto::X25519Public>> one_time_prekey;
};

// Sent by the initiator beside its first ratchet message.
struct InitialMessage {
  IdentityPublic initiator;
  crypto::X25519Public ephemeral{};
  std::uint32_t signed_prekey_id = 0;
  std::optional<std::uint32_t> one_time_prekey_id;
  Bytes Encode() const;
  static std::optional<InitialMessage> Decode(ByteView in);
};

struct SessionSecrets {
  SecureBuffer shared_secret;  // SK, 32 bytes
  Bytes associated_data;       // AD
};

struct Initiated {
  SessionSecrets secrets;
  InitialMessage message;
};

// DataLoss if the bundle's signature does not verify under its identity key.
Result<Initiated> InitiateX3dh(const IdentityKey& self, const PrekeyBundle& bundle,
                               DoubleRatchet::KeyGenerator generate = DhKeyPair::Generate);

// `one_time` must be the prekey the message names (the caller looks it up
// and deletes it afterwards), or null when none was used.
Result<SessionSecrets> RespondX3dh(const IdentityKey& self, const SignedPrekey& signed_prekey,
                                   const OneTimePrekey* one_time, const InitialMessage& message);

// 60 digits in 12 groups of 5, the same on both sides whatever the order of
// the arguments, different if either identity differs.
std::string SafetyNumber(const IdentityPublic& a, const IdentityPublic& b);

}  // namespace haven::e2e
