#include "haven/noise/handshake_state.h"

#include <algorithm>
#include <cstring>

namespace haven::noise {

TransportState::TransportState(CipherState send, CipherState receive, bool can_send,
                               bool can_receive, Bytes handshake_hash)
    : send_(std::move(send)),
      receive_(std::move(receive)),
      can_send_(can_send),
      can_receive_(can_receive),
      handshake_hash_(std::move(handshake_hash)) {}

Status TransportState::Encrypt(ByteView plaintext, Bytes* out) {
  if (!can_send_) return Status::FailedPrecondition("one-way pattern: this side only receives");
  if (plaintext.size() + kTagLen > kMaxMessageLen) {
    return Status::InvalidArgument("transport plaintext exceeds 65519 bytes");
  }
  return send_.EncryptWithAd({}, plaintext, out);
}

Status TransportState::Decrypt(ByteView ciphertext, Bytes* out) {
  if (!can_receive_) return Status::FailedPrecondition("one-way pattern: this side only sends");
  if (ciphertext.size() > kMaxMessageLen) return Status::InvalidArgument("message exceeds 65535 bytes");
  return receive_.DecryptWithAd({}, ciphertext, out);
}

HandshakeState::HandshakeState(ProtocolName protocol, HandshakeConfig config)
    : protocol_(std::move(protocol)),
      role_(config.role),
      symmetric_(protocol_.hash),
      s_(std::move(config.s)),
      e_(std::move(config.e)),
      rs_(config.rs),
      re_(config.re),
      psks_(std::move(config.psks)),
      fixed_ephemeral_(std::move(config.fixed_ephemeral_for_testing)) {}

Result<HandshakeState> HandshakeState::Create(HandshakeConfig config) {
  HAVEN_RETURN_IF_ERROR(EnsureSodium());
  HAVEN_ASSIGN_OR_RETURN(ProtocolName protocol, ParseProtocolName(config.protocol_name));
  for (const SecureBuffer& psk : config.psks) {
    if (psk.size() != kKeyLen) return Status::InvalidArgument("a Noise PSK is exactly 32 bytes");
  }
  const bool is_initiator = config.role == Role::kInitiator;
  Bytes prologue = std::move(config.prologue);
  HandshakeState hs(std::move(protocol), std::move(config));

  hs.symmetric_.InitializeSymmetric(hs.protocol_.full);
  hs.symmetric_.MixHash(prologue);

  // Pre-messages: the initiator's keys first, then the responder's
  // (specification 5.3, Initialize()).
  auto mix_premessage = [&hs](const std::vector<Token>& tokens, bool local) -> Status {
    for (Token t : tokens) {
      if (t == Token::kS) {
        if (local && !hs.s_) return Status::InvalidArgument("pattern needs the local static key");
        if (!local && !hs.rs_) return Status::InvalidArgument("pattern needs the remote static key");
        hs.symmetric_.MixHash(local ? ByteView(hs.s_->public_key) : ByteView(*hs.rs_));
      } else if (t == Token::kE) {
        if (local && !hs.e_) return Status::InvalidArgument("pattern needs the local ephemeral key");
        if (!local && !hs.re_) return Status::InvalidArgument("pattern needs the remote ephemeral key");
        const ByteView key = local ? ByteView(hs.e_->public_key) : ByteView(*hs.re_);
        hs.symmetric_.MixHash(key);
        if (hs.pattern().has_psk) hs.symmetric_.MixKey(key);
      }
    }
    return Status::Ok();
  };
  HAVEN_RETURN_IF_ERROR(mix_premessage(hs.pattern().initiator_premessage, is_initiator));
  HAVEN_RETURN_IF_ERROR(mix_premessage(hs.pattern().responder_premessage, !is_initiator));
  return hs;
}

bool HandshakeState::IsMyTurn() const {
  if (IsComplete()) return false;
  const bool initiator_turn = next_message_ % 2 == 0;
  return initiator_turn == initiator();
}

void HandshakeState::MixEphemeral(const PublicKey& key) {
  symmetric_.MixHash(key);
  if (pattern().has_psk) symmetric_.MixKey(key);  // specification 9.2
}

Status HandshakeState::NextPsk() {
  if (next_psk_ >= psks_.size()) return Status::InvalidArgument("pattern needs another PSK");
  symmetric_.MixKeyAndHash(psks_[next_psk_].view());
  psks_[next_psk_].Reset();
  ++next_psk_;
  return Status::Ok();
}

Status HandshakeState::MixDh(Token token) {
  // "es": DH(initiator e, responder s); "se": DH(initiator s, responder e).
  const KeyPair* local = nullptr;
  const std::optional<PublicKey>* remote = nullptr;
  switch (token) {
    case Token::kEE: local = e_ ? &*e_ : nullptr; remote = &re_; break;
    case Token::kSS: local = s_ ? &*s_ : nullptr; remote = &rs_; break;
    case Token::kES:
      if (initiator()) { local = e_ ? &*e_ : nullptr; remote = &rs_; }
      else { local = s_ ? &*s_ : nullptr; remote = &re_; }
      break;
    case Token::kSE:
      if (initiator()) { local = s_ ? &*s_ : nullptr; remote = &re_; }
      else { local = e_ ? &*e_ : nullptr; remote = &rs_; }
      break;
    default:
      return Status::Internal("not a DH token");
  }
  if (local == nullptr || !remote->has_value()) {
    return Status::FailedPrecondition("a key needed for DH is missing");
  }
  SecureBuffer shared(kDhLen);
  HAVEN_RETURN_IF_ERROR(Dh(*local, **remote, shared.mutable_view()));
  symmetric_.MixKey(shared.view());
  return Status::Ok();
}

Status HandshakeState::WriteMessage(ByteView payload, Bytes* message) {
  const std::size_t start = message->size();
  Status status = WriteMessageTokens(payload, message);
  if (!status.ok()) message->resize(start);  // never leave half a message behind
  return status;
}

Status HandshakeState::WriteMessageTokens(ByteView payload, Bytes* message) {
  if (failed_) return Status::FailedPrecondition("handshake already failed");
  if (!IsMyTurn()) return Status::FailedPrecondition("not this side's turn to write");
  failed_ = true;  // cleared on success
  if (payload.size() > kMaxMessageLen) {
    return Status::InvalidArgument("handshake message would exceed 65535 bytes");
  }
  const std::size_t start = message->size();
  for (Token t : pattern().messages[next_message_]) {
    switch (t) {
      case Token::kE: {
        if (fixed_ephemeral_) {
          e_ = std::move(fixed_ephemeral_);
          fixed_ephemeral_.reset();
        } else {
          e_ = KeyPair::Generate();
        }
        message->insert(message->end(), e_->public_key.begin(), e_->public_key.end());
        MixEphemeral(e_->public_key);
        break;
      }
      case Token::kS:
        if (!s_) return Status::FailedPrecondition("pattern needs the local static key");
        HAVEN_RETURN_IF_ERROR(symmetric_.EncryptAndHash(s_->public_key, message));
        break;
      case Token::kPsk:
        HAVEN_RETURN_IF_ERROR(NextPsk());
        break;
      default:
        HAVEN_RETURN_IF_ERROR(MixDh(t));
    }
  }
  HAVEN_RETURN_IF_ERROR(symmetric_.EncryptAndHash(payload, message));
  if (message->size() - start > kMaxMessageLen) {
    return Status::InvalidArgument("handshake message would exceed 65535 bytes");
  }
  ++next_message_;
  failed_ = false;
  return Status::Ok();
}

Status HandshakeState::ReadMessage(ByteView message, Bytes* payload) {
  if (failed_) return Status::FailedPrecondition("handshake already failed");
  if (IsComplete() || IsMyTurn()) return Status::FailedPrecondition("not this side's turn to read");
  failed_ = true;  // cleared on success
  if (message.size() > kMaxMessageLen) return Status::InvalidArgument("message exceeds 65535 bytes");
  ByteView rest = message;
  for (Token t : pattern().messages[next_message_]) {
    switch (t) {
      case Token::kE: {
        if (rest.size() < kDhLen) return Status::DataLoss("handshake message too short");
        PublicKey re{};
        std::memcpy(re.data(), rest.data(), kDhLen);
        rest = rest.subspan(kDhLen);
        re_ = re;
        MixEphemeral(re);
        break;
      }
      case Token::kS: {
        const std::size_t len = kDhLen + (symmetric_.HasKey() ? kTagLen : 0);
        if (rest.size() < len) return Status::DataLoss("handshake message too short");
        Bytes rs;
        HAVEN_RETURN_IF_ERROR(symmetric_.DecryptAndHash(rest.first(len), &rs));
        rest = rest.subspan(len);
        PublicKey key{};
        std::memcpy(key.data(), rs.data(), kDhLen);
        rs_ = key;
        break;
      }
      case Token::kPsk:
        HAVEN_RETURN_IF_ERROR(NextPsk());
        break;
      default:
        HAVEN_RETURN_IF_ERROR(MixDh(t));
    }
  }
  if (symmetric_.HasKey() && rest.size() < kTagLen) {
    return Status::DataLoss("handshake message too short");
  }
  HAVEN_RETURN_IF_ERROR(symmetric_.DecryptAndHash(rest, payload));
  ++next_message_;
  failed_ = false;
  return Status::Ok();
}

Result<TransportState> HandshakeState::Split() {
  if (failed_) return Status::FailedPrecondition("handshake failed");
  if (!IsComplete()) return Status::FailedPrecondition("handshake not complete");
  auto [c1, c2] = symmetric_.Split();
  Bytes h(symmetric_.handshake_hash().begin(), symmetric_.handshake_hash().end());
  const bool one_way = pattern().one_way;
  // Keys are no longer needed; drop them now rather than at destruction.
  e_.reset();
  s_.reset();
  if (initiator()) {
    return TransportState(std::move(c1), std::move(c2), true, !one_way, std::move(h));
  }
  return TransportState(std::move(c2), std::move(c1), !one_way, true, std::move(h));
}

}  // namespace haven::noise
