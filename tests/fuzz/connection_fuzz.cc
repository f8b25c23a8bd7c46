// Fuzz target: what an unauthenticated client reaches in havend, the
// per-connection state machine server/net/connection_protocol.* (Noise_XK
// responder, transport decryption, Frame parsing and the dispatch of what
// the connection answers itself: Ping, unknown kinds, events, garbage).
//
// The low bit of the first byte picks the mode.
// Raw mode (even): every record (fuzz_reader.h) goes to OnMessage() as a
//   Noise message from a client that knows no keys.
// Session mode (odd): a real initiator (the client keys of
//   noise_fuzz_setup.h) completes the handshake, then steps follow, each an
//   operation byte (low two bits) and a record:
//     0  the record is a Frame's bytes, sent encrypted
//     1  the record is sent as a transport message as it is
//     2  the server makes a Ping (no record)
//     3  the record is a Frame's bytes, encrypted, then one byte of the
//        ciphertext (next two bytes: position, mask) changed
// Checked: nothing reaches the relay before the handshake completes; after
// a close, nothing more is accepted; every reply decrypts in order at the
// client and is a Frame; what reaches the relay is exactly the requests
// other than Ping and unset kinds; a Ping is answered with its opaque bytes
// (or refused past 32), bytes that are not a Frame get MALFORMED_FRAME, and
// a changed ciphertext closes the connection.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "fuzz_check.h"
#include "fuzz_reader.h"
#include "net/connection_protocol.h"
#include "noise_fuzz_setup.h"

namespace {

using haven::ByteView;
using haven::Bytes;
using haven::server::ConnectionProtocol;
using haven::server::ProtocolOutput;
namespace fz = haven::fuzz;
namespace v1 = haven::v1;

ConnectionProtocol MakeServer() {
  auto protocol = ConnectionProtocol::Create(fz::Keys().responder_static);
  HAVEN_FUZZ_CHECK(protocol.ok());
  return std::move(protocol).value();
}

void RunRaw(fz::Reader& reader) {
  ConnectionProtocol server = MakeServer();
  bool closed = false;
  for (int step = 0; step < 64 && !reader.done(); ++step) {
    const ProtocolOutput out = server.OnMessage(reader.Record());
    HAVEN_FUZZ_CHECK(out.requests.empty() || server.established());
    if (closed) HAVEN_FUZZ_CHECK(out.close && out.messages.empty() && out.requests.empty());
    closed = closed || out.close;
  }
}

// What the client sees of the server's replies.
std::vector<v1::Frame> OpenReplies(haven::noise::TransportState& client, const ProtocolOutput& out) {
  std::vector<v1::Frame> frames;
  for (const Bytes& message : out.messages) {
    Bytes plain;
    HAVEN_FUZZ_CHECK(client.Decrypt(message, &plain).ok());
    v1::Frame f;
    HAVEN_FUZZ_CHECK(f.ParseFromArray(plain.data(), static_cast<int>(plain.size())));
    frames.push_back(std::move(f));
  }
  return frames;
}

void CheckDispatch(ByteView frame_bytes, const ProtocolOutput& out,
                   const std::vector<v1::Frame>& replies) {
  HAVEN_FUZZ_CHECK(!out.close);
  v1::Frame sent;
  if (!sent.ParseFromArray(frame_bytes.data(), static_cast<int>(frame_bytes.size()))) {
    HAVEN_FUZZ_CHECK(out.requests.empty() && replies.size() == 1);
    HAVEN_FUZZ_CHECK(replies[0].response().error().code() == v1::ERROR_CODE_MALFORMED_FRAME);
    return;
  }
  const bool to_relay = sent.has_request() && sent.request().kind_case() != v1::Request::kPing &&
                        sent.request().kind_case() != v1::Request::KIND_NOT_SET;
  HAVEN_FUZZ_CHECK(out.requests.size() == (to_relay ? 1u : 0u));
  if (to_relay) {
    HAVEN_FUZZ_CHECK(replies.empty());
    HAVEN_FUZZ_CHECK(out.requests[0].SerializeAsString() == sent.SerializeAsString());
  } else if (sent.has_response()) {
    HAVEN_FUZZ_CHECK(replies.empty());  // liveness only
  } else {
    HAVEN_FUZZ_CHECK(replies.size() == 1);
    HAVEN_FUZZ_CHECK(replies[0].request_id() == sent.request_id());
    if (sent.has_request() && sent.request().has_ping()) {
      const std::string& opaque = sent.request().ping().opaque();
      if (opaque.size() <= haven::server::kMaxPingOpaque) {
        HAVEN_FUZZ_CHECK(replies[0].response().pong().opaque() == opaque);
      } else {
        HAVEN_FUZZ_CHECK(replies[0].response().error().code() == v1::ERROR_CODE_INVALID_ARGUMENT);
      }
    } else {
      HAVEN_FUZZ_CHECK(replies[0].response().has_error());
    }
  }
}

void RunSession(fz::Reader& reader) {
  ConnectionProtocol server = MakeServer();
  haven::noise::HandshakeState initiator = fz::MakeInitiator();
  Bytes m1, m3, scratch;
  HAVEN_FUZZ_CHECK(initiator.WriteMessage({}, &m1).ok());
  ProtocolOutput out = server.OnMessage(m1);
  HAVEN_FUZZ_CHECK(!out.close && out.messages.size() == 1 && !server.established());
  HAVEN_FUZZ_CHECK(initiator.ReadMessage(out.messages[0], &scratch).ok());
  HAVEN_FUZZ_CHECK(initiator.WriteMessage({}, &m3).ok());
  out = server.OnMessage(m3);
  HAVEN_FUZZ_CHECK(out.established && !out.close && server.established());
  HAVEN_FUZZ_CHECK(server.peer_static() == fz::Keys().initiator_static.public_key);
  auto client = initiator.Split();
  HAVEN_FUZZ_CHECK(client.ok());

  for (int step = 0; step < 64 && !reader.done(); ++step) {
    const std::uint8_t op = reader.Byte() & 3u;
    if (op == 2) {
      auto ping = server.MakePing();
      HAVEN_FUZZ_CHECK(ping.ok());
      Bytes plain;
      HAVEN_FUZZ_CHECK(client->Decrypt(*ping, &plain).ok());
      continue;
    }
    const ByteView record = reader.Record();
    if (op == 1) {
      out = server.OnMessage(record);
      if (out.close) return;  // the stream is desynchronised: it ends here
      // It decrypted: only possible for a genuine message, which the fuzzer
      // cannot make without the client's keys.
      fz::CheckFailed("a forged transport message was accepted", __FILE__, __LINE__);
    }
    Bytes message;
    if (!client->Encrypt(record, &message).ok()) continue;  // too long to send
    if (op == 3) {
      const std::size_t position = static_cast<std::size_t>(reader.Byte()) << 8 | reader.Byte();
      const std::uint8_t mask = reader.Byte() | 1u;
      message[position % message.size()] ^= mask;
      out = server.OnMessage(message);
      HAVEN_FUZZ_CHECK(out.close && out.messages.empty() && out.requests.empty());
      return;
    }
    out = server.OnMessage(message);
    CheckDispatch(record, out, OpenReplies(*client, out));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  fz::Reader reader(ByteView(data + 1, size - 1));
  if ((data[0] & 1u) == 0) {
    RunRaw(reader);
  } else {
    RunSession(reader);
  }
  return 0;
}
