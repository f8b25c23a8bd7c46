#include "connection_protocol.h"

namespace haven::server {

Result<ConnectionProtocol> ConnectionProtocol::Create(const noise::KeyPair& server_key) {
  noise::HandshakeConfig config;
  config.protocol_name = std::string(kHavenNoiseProtocol);
  config.role = noise::Role::kResponder;
  config.prologue.assign(kHavenPrologue.begin(), kHavenPrologue.end());
  config.s = server_key.Clone();
  HAVEN_ASSIGN_OR_RETURN(noise::HandshakeState hs, noise::HandshakeState::Create(std::move(config)));
  return ConnectionProtocol(std::move(hs));
}

ProtocolOutput ConnectionProtocol::OnMessage(ByteView noise_message) {
  if (transport_) return OnTransportMessage(noise_message);
  if (handshake_) return OnHandshakeMessage(noise_message);
  ProtocolOutput out;
  out.close = true;
  return out;
}

ProtocolOutput ConnectionProtocol::OnHandshakeMessage(ByteView message) {
  ProtocolOutput out;
  Bytes ignored_payload;  // reserved in haven/1; never interpreted
  if (!handshake_->ReadMessage(message, &ignored_payload).ok()) {
    // Wrong pinned key, garbage, or a replayed message: nothing is sent in
    // reply, so a prober learns nothing but that the connection closed.
    handshake_.reset();
    out.close = true;
    return out;
  }
  if (handshake_->IsMyTurn()) {
    Bytes reply;
    if (!handshake_->WriteMessage({}, &reply).ok()) {
      handshake_.reset();
      out.close = true;
      return out;
    }
    out.messages.push_back(std::move(reply));
  }
  if (handshake_->IsComplete()) {
    peer_static_ = handshake_->remote_static();
    auto transport = handshake_->Split();
    handshake_.reset();
    if (!transport.ok()) {
      out.close = true;
      return out;
    }
    transport_.emplace(std::move(transport).value());
    out.established = true;
  }
  return out;
}

ProtocolOutput ConnectionProtocol::OnTransportMessage(ByteView message) {
  ProtocolOutput out;
  Bytes plaintext;
  if (!transport_->Decrypt(message, &plaintext).ok()) {
    // Tampering or a desynchronised stream: it cannot recover.
    out.close = true;
    return out;
  }
  v1::Frame frame;
  if (!frame.ParseFromArray(plaintext.data(), static_cast<int>(plaintext.size()))) {
    if (!SealInto(ErrorFrame(0, v1::ERROR_CODE_MALFORMED_FRAME, "not a haven.v1.Frame"), &out).ok()) {
      out.close = true;
    }
    return out;
  }
  Dispatch(frame, &out);
  return out;
}

void ConnectionProtocol::Dispatch(const v1::Frame& frame, ProtocolOutput* out) {
  v1::Frame reply;
  switch (frame.kind_case()) {
    case v1::Frame::kRequest: {
      const v1::Request& request = frame.request();
      switch (request.kind_case()) {
        case v1::Request::kPing:
          if (request.ping().opaque().size() > kMaxPingOpaque) {
            reply = ErrorFrame(frame.request_id(), v1::ERROR_CODE_INVALID_ARGUMENT,
                               "ping.opaque is limited to 32 bytes");
          } else {
            reply.set_request_id(frame.request_id());
            reply.mutable_response()->mutable_pong()->set_opaque(request.ping().opaque());
          }
          break;
        case v1::Request::KIND_NOT_SET:
          reply = ErrorFrame(frame.request_id(), v1::ERROR_CODE_UNKNOWN_REQUEST,
                             "unknown request kind");
          break;
        default:
          out->requests.push_back(frame);  // the relay answers
          return;
      }
      break;
    }
    case v1::Frame::kResponse:
      return;  // a Pong (or anything else) only counts as liveness
    case v1::Frame::kEvent:
      reply = ErrorFrame(frame.request_id(), v1::ERROR_CODE_UNEXPECTED_FRAME,
                         "clients send requests and responses, not events");
      break;
    default:
      reply = ErrorFrame(frame.request_id(), v1::ERROR_CODE_UNKNOWN_REQUEST,
                         "frame has no known kind");
  }
  if (!SealInto(reply, out).ok()) out->close = true;
}

Result<Bytes> ConnectionProtocol::Seal(const v1::Frame& frame) {
  if (!transport_) return Status::FailedPrecondition("connection not established");
  const std::string plaintext = frame.SerializeAsString();
  Bytes message;
  HAVEN_RETURN_IF_ERROR(transport_->Encrypt(AsBytes(plaintext), &message));
  return message;
}

Status ConnectionProtocol::SealInto(const v1::Frame& frame, ProtocolOutput* out) {
  HAVEN_ASSIGN_OR_RETURN(Bytes message, Seal(frame));
  out->messages.push_back(std::move(message));
  return Status::Ok();
}

v1::Frame ConnectionProtocol::ErrorFrame(std::uint64_t request_id, v1::ErrorCode code,
                                         std::string_view msg) {
  v1::Frame f;
  f.set_request_id(request_id);
  v1::Error* error = f.mutable_response()->mutable_error();
  error->set_code(code);
  error->set_message(std::string(msg));
  return f;
}

Result<Bytes> ConnectionProtocol::MakePing() {
  v1::Frame f;
  f.set_request_id(next_request_id_++);
  f.mutable_request()->mutable_ping();
  return Seal(f);
}

Result<Bytes> ConnectionProtocol::MakeClosing(v1::ErrorCode reason) {
  v1::Frame f;
  f.mutable_event()->mutable_closing()->set_reason(reason);
  return Seal(f);
}

}  // namespace haven::server
