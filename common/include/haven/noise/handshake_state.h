// HandshakeState of the Noise specification (revision 34, section 5.3),
// interpreting any HandshakePattern, and the TransportState it splits into.
//
// Sans-I/O: callers feed whole Noise messages in and get whole messages out;
// framing and sockets live elsewhere. After any error the object is poisoned
// and every later call fails (the specification requires abandoning it).
// Thread-safety: none; one object per connection.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "haven/noise/cipher_state.h"
#include "haven/noise/handshake_pattern.h"

namespace haven::noise {

enum class Role { kInitiator, kResponder };

struct HandshakeConfig {
  std::string protocol_name;  // e.g. "Noise_XK_25519_ChaChaPoly_BLAKE2b"
  Role role = Role::kInitiator;
  Bytes prologue;
  std::optional<KeyPair> s;   // local static key pair
  std::optional<KeyPair> e;   // local ephemeral, only for an "e" pre-message
  std::optional<PublicKey> rs;  // remote static, when known in advance
  std::optional<PublicKey> re;  // remote ephemeral, only for an "e" pre-message
  std::vector<SecureBuffer> psks;  // consumed in order by "psk" tokens, 32 bytes each
  // Test vectors fix the ephemeral key; production code leaves this empty so
  // a fresh key pair is generated for the "e" token.
  std::optional<KeyPair> fixed_ephemeral_for_testing;
};

// The two CipherStates after Split(), oriented for one side.
class TransportState {
 public:
  TransportState(CipherState send, CipherState receive, bool can_send, bool can_receive,
                 Bytes handshake_hash);
  TransportState(TransportState&&) noexcept = default;
  TransportState& operator=(TransportState&&) noexcept = default;

  // Appends ciphertext (plaintext + 16-byte tag) to `out`. InvalidArgument if
  // the result would exceed kMaxMessageLen; FailedPrecondition on the
  // receiving side of a one-way pattern.
  Status Encrypt(ByteView plaintext, Bytes* out);
  // Appends plaintext to `out`. DataLoss on authentication failure.
  Status Decrypt(ByteView ciphertext, Bytes* out);
  void RekeySend() { send_.Rekey(); }
  void RekeyReceive() { receive_.Rekey(); }
  // Channel binding value (specification 11.2).
  const Bytes& handshake_hash() const { return handshake_hash_; }

  const CipherState& send_cipher_for_testing() const { return send_; }
  const CipherState& receive_cipher_for_testing() const { return receive_; }

 private:
  CipherState send_;
  CipherState receive_;
  bool can_send_;
  bool can_receive_;
  Bytes handshake_hash_;
};

class HandshakeState {
 public:
  // Parses the protocol name, checks that the keys each pre-message needs are
  // present, and runs Initialize() of the specification.
  static Result<HandshakeState> Create(HandshakeConfig config);

  HandshakeState(HandshakeState&&) noexcept = default;
  HandshakeState& operator=(HandshakeState&&) noexcept = default;

  // True when the next handshake message is ours to write.
  bool IsMyTurn() const;
  bool IsComplete() const { return next_message_ >= pattern().messages.size(); }

  // Appends the next handshake message carrying `payload` to `message`; on
  // failure `message` is left as it was.
  Status WriteMessage(ByteView payload, Bytes* message);
  // Processes the peer's next handshake message, appending its payload to
  // `payload`.
  Status ReadMessage(ByteView message, Bytes* payload);

  // Once complete: the transport ciphers for this side.
  Result<TransportState> Split();

  ByteView handshake_hash() const { return symmetric_.handshake_hash(); }
  // The peer's static key once received (or as configured).
  const std::optional<PublicKey>& remote_static() const { return rs_; }

 private:
  HandshakeState(ProtocolName protocol, HandshakeConfig config);
  Status MixDh(Token token);
  Status WriteMessageTokens(ByteView payload, Bytes* message);
  Status NextPsk();
  void MixEphemeral(const PublicKey& key);
  bool initiator() const { return role_ == Role::kInitiator; }
  const HandshakePattern& pattern() const { return protocol_.pattern; }

  ProtocolName protocol_;
  Role role_;
  SymmetricState symmetric_;
  std::optional<KeyPair> s_;
  std::optional<KeyPair> e_;
  std::optional<PublicKey> rs_;
  std::optional<PublicKey> re_;
  std::vector<SecureBuffer> psks_;
  std::size_t next_psk_ = 0;
  std::optional<KeyPair> fixed_ephemeral_;
  std::size_t next_message_ = 0;
  bool failed_ = false;
};

}  // namespace haven::noise
