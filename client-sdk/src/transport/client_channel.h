// The client side of the haven/1 transport as a state machine without I/O:
// the Noise_XK initiator with the server key pinned, then sealing and opening
// haven.v1 frames. SDK-internal: protobuf types may appear here, never in a
// public header under include/.
//
// Thread-safety: none; one channel per connection.
#pragma once

#include <optional>

#include "haven/common/protocol.h"
#include "haven/noise/handshake_state.h"
#include "haven/version.h"
#include "haven/v1/frame.pb.h"

namespace haven::client {

// The public C macros must name the same protocol as the implementation.
static_assert(kHavenPrologue == HAVEN_PROTOCOL_PROLOGUE);
static_assert(kHavenNoiseProtocol == HAVEN_NOISE_PROTOCOL);

class ClientChannel {
 public:
  // `client_key` is the transport identity: fresh for an anonymous survivor.
  static Result<ClientChannel> Create(const noise::PublicKey& pinned_server_key,
                                      noise::KeyPair client_key);

  ClientChannel(ClientChannel&&) noexcept = default;
  ClientChannel& operator=(ClientChannel&&) noexcept = default;

  // Handshake message 1 (e, es).
  Result<Bytes> Start();
  // Consumes message 2 (e, ee) and returns message 3 (s, se); afterwards the
  // channel is established. DataLoss when the responder is not the holder of
  // the pinned key.
  Result<Bytes> Finish(ByteView message2);

  bool established() const { return transport_.has_value(); }

  Result<Bytes> Seal(const v1::Frame& frame);
  // Decrypts and parses one transport message. DataLoss on a failed tag
  // (the connection must then be closed), InvalidArgument on a bad frame.
  Result<v1::Frame> Open(ByteView message);
  // Encrypts arbitrary bytes; only for tests that play a misbehaving client.
  Result<Bytes> SealRawForTesting(ByteView plaintext);
  // The transport keys (empty before the handshake), for the memory-scan test.
  std::vector<ByteView> KeysForTesting() const {
    if (!transport_) return {};
    return {transport_->send_cipher_for_testing().key_for_testing(),
            transport_->receive_cipher_for_testing().key_for_testing()};
  }

 private:
  explicit ClientChannel(noise::HandshakeState hs) : handshake_(std::move(hs)) {}

  std::optional<noise::HandshakeState> handshake_;
  std::optional<noise::TransportState> transport_;
};

}  // namespace haven::client
