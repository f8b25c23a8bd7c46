// One client connection as a state machine that does no I/O: the Noise_XK
// responder, then transport decryption and the dispatch of haven.v1 frames.
// The network session feeds it whole Noise messages (already de-framed) and
// writes out whatever it returns.
//
// Thread-safety: none; owned by one connection's strand.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "haven/common/bytes.h"
#include "haven/common/protocol.h"
#include "haven/common/status.h"
#include "haven/noise/handshake_state.h"
#include "haven/v1/frame.pb.h"

namespace haven::server {

inline constexpr std::size_t kMaxPingOpaque = 32;

struct ProtocolOutput {
  std::vector<Bytes> messages;  // Noise messages to send in order (not yet framed)
  std::vector<v1::Frame> requests;  // requests for the relay (everything but Ping)
  bool close = false;           // close once `messages` are sent
  bool established = false;     // the handshake completed with this input
};

class ConnectionProtocol {
 public:
  static Result<ConnectionProtocol> Create(const noise::KeyPair& server_key);

  ConnectionProtocol(ConnectionProtocol&&) noexcept = default;
  ConnectionProtocol& operator=(ConnectionProtocol&&) noexcept = default;

  // Handles one Noise message from the client.
  ProtocolOutput OnMessage(ByteView noise_message);

  bool established() const { return transport_.has_value(); }
  // The client's static key, known once established.
  const std::optional<noise::PublicKey>& peer_static() const { return peer_static_; }

  // Server-originated frames; only valid once established.
  Result<Bytes> Seal(const v1::Frame& frame);
  Result<Bytes> MakePing();
  Result<Bytes> MakeClosing(v1::ErrorCode reason);

 private:
  explicit ConnectionProtocol(noise::HandshakeState handshake)
      : handshake_(std::move(handshake)) {}

  ProtocolOutput OnHandshakeMessage(ByteView message);
  ProtocolOutput OnTransportMessage(ByteView message);
  void Dispatch(const v1::Frame& frame, ProtocolOutput* out);
  Status SealInto(const v1::Frame& frame, ProtocolOutput* out);
  static v1::Frame ErrorFrame(std::uint64_t request_id, v1::ErrorCode code, std::string_view msg);

  std::optional<noise::HandshakeState> handshake_;
  std::optional<noise::TransportState> transport_;
  std::optional<noise::PublicKey> peer_static_;
  std::uint64_t next_request_id_ = 1;  // for server-originated requests
};

}  // namespace haven::server
