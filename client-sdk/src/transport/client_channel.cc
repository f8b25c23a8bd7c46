#include "transport/client_channel.h"

namespace haven::client {

Result<ClientChannel> ClientChannel::Create(const noise::PublicKey& pinned_server_key,
                                            noise::KeyPair client_key) {
  noise::HandshakeConfig config;
  config.protocol_name = std::string(kHavenNoiseProtocol);
  config.role = noise::Role::kInitiator;
  config.prologue.assign(kHavenPrologue.begin(), kHavenPrologue.end());
  config.s = std::move(client_key);
  config.rs = pinned_server_key;
  HAVEN_ASSIGN_OR_RETURN(noise::HandshakeState hs, noise::HandshakeState::Create(std::move(config)));
  return ClientChannel(std::move(hs));
}

Result<Bytes> ClientChannel::Start() {
  if (!handshake_) return Status::FailedPrecondition("handshake already used");
  Bytes m1;
  HAVEN_RETURN_IF_ERROR(handshake_->WriteMessage({}, &m1));
  return m1;
}

Result<Bytes> ClientChannel::Finish(ByteView message2) {
  if (!handshake_) return Status::FailedPrecondition("handshake already used");
  Bytes payload;
  Status st = handshake_->ReadMessage(message2, &payload);
  if (!st.ok()) {
    handshake_.reset();
    return Status::DataLoss(
        "server failed to authenticate: it does not hold the pinned server key");
  }
  Bytes m3;
  HAVEN_RETURN_IF_ERROR(handshake_->WriteMessage({}, &m3));
  HAVEN_ASSIGN_OR_RETURN(noise::TransportState t, handshake_->Split());
  transport_.emplace(std::move(t));
  handshake_.reset();
  return m3;
}

Result<Bytes> ClientChannel::Seal(const v1::Frame& frame) {
  return SealRawForTesting(AsBytes(frame.SerializeAsString()));
}

Result<Bytes> ClientChannel::SealRawForTesting(ByteView plaintext) {
  if (!transport_) return Status::FailedPrecondition("channel not established");
  Bytes out;
  HAVEN_RETURN_IF_ERROR(transport_->Encrypt(plaintext, &out));
  return out;
}

Result<v1::Frame> ClientChannel::Open(ByteView message) {
  if (!transport_) return Status::FailedPrecondition("channel not established");
  Bytes plaintext;
  HAVEN_RETURN_IF_ERROR(transport_->Decrypt(message, &plaintext));
  v1::Frame frame;
  if (!frame.ParseFromArray(plaintext.data(), static_cast<int>(plaintext.size()))) {
    return Status::InvalidArgument("server sent something that is not a haven.v1.Frame");
  }
  return frame;
}

}  // namespace haven::client
