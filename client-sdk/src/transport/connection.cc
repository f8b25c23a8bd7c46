#include "transport/connection.h"

#include <array>
#include <boost/asio.hpp>

#include "haven/framing/length_prefix.h"

namespace haven::client {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using boost::system::error_code;

}  // namespace

struct Connection::Impl {
  asio::io_context io;
  tcp::socket socket{io};
  framing::LengthPrefixDecoder decoder{framing::kMaxFrameLen};
  std::array<std::uint8_t, 16 * 1024> buffer{};
  ByteView unread;  // received bytes not yet fed to the decoder
  std::optional<ClientChannel> channel;
  bool closed_by_peer = false;

  // Runs one asynchronous operation to completion or until `deadline`.
  template <typename Initiate>
  error_code RunUntil(Clock::time_point deadline, Initiate initiate, std::size_t* n = nullptr) {
    std::optional<error_code> result;
    std::size_t transferred = 0;
    initiate([&](error_code ec, std::size_t count = 0) {
      result = ec;
      transferred = count;
    });
    io.restart();
    io.run_until(deadline);
    if (!result) {
      error_code ignored;
      socket.cancel(ignored);
      io.restart();
      io.run();
      return asio::error::timed_out;
    }
    if (n != nullptr) *n = transferred;
    return *result;
  }

  Status Write(ByteView noise_message, Clock::time_point deadline) {
    Bytes framed;
    HAVEN_RETURN_IF_ERROR(framing::AppendLengthPrefixed(noise_message, &framed));
    return WriteRaw(framed, deadline);
  }

  Status WriteRaw(ByteView bytes, Clock::time_point deadline) {
    const error_code ec = RunUntil(deadline, [&](auto handler) {
      asio::async_write(socket, asio::buffer(bytes.data(), bytes.size()),
                        [handler](error_code e, std::size_t n) mutable { handler(e, n); });
    });
    if (ec == asio::error::timed_out) return Status::DeadlineExceeded("write timed out");
    if (ec) return Status::Unavailable("connection lost: " + ec.message());
    return Status::Ok();
  }

  // The next whole Noise message from the server.
  Result<Bytes> ReadMessage(Clock::time_point deadline) {
    while (true) {
      if (!unread.empty()) {
        auto used = decoder.Feed(unread);
        if (!used.ok()) return Status::DataLoss("server sent a malformed frame length");
        unread = unread.subspan(*used);
      }
      if (decoder.HasMessage()) {
        Bytes m(decoder.message().begin(), decoder.message().end());
        decoder.Pop();
        return m;
      }
      if (closed_by_peer) return Status::Unavailable("server closed the connection");
      std::size_t n = 0;
      const error_code ec = RunUntil(
          deadline,
          [&](auto handler) {
            socket.async_read_some(asio::buffer(buffer),
                                   [handler](error_code e, std::size_t c) mutable { handler(e, c); });
          },
          &n);
      if (ec == asio::error::timed_out) return Status::DeadlineExceeded("no answer from server");
      if (ec) {
        closed_by_peer = true;
        return Status::Unavailable(ec == asio::error::eof ? "server closed the connection"
                                                          : "connection lost: " + ec.message());
      }
      unread = ByteView(buffer.data(), n);
    }
  }
};

Connection::Connection(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Connection::~Connection() { Close(); }

Result<std::unique_ptr<Connection>> Connection::Connect(const ConnectOptions& options) {
  const auto deadline = Clock::now() + options.timeout;
  auto impl = std::make_unique<Impl>();
  error_code ec;
  const auto address = asio::ip::make_address(options.host, ec);
  if (ec) return Status::InvalidArgument("host must be a numeric IP address");
  const tcp::endpoint endpoint(address, options.port);
  ec = impl->RunUntil(deadline, [&](auto handler) {
    impl->socket.async_connect(endpoint, [handler](error_code e) mutable { handler(e); });
  });
  if (ec == asio::error::timed_out) return Status::DeadlineExceeded("connect timed out");
  if (ec) return Status::Unavailable("cannot connect to the server: " + ec.message());
  impl->socket.set_option(tcp::no_delay(true), ec);

  noise::KeyPair key = options.client_key ? options.client_key->Clone() : noise::KeyPair::Generate();
  HAVEN_ASSIGN_OR_RETURN(ClientChannel channel, ClientChannel::Create(options.server_key, std::move(key)));
  HAVEN_ASSIGN_OR_RETURN(Bytes m1, channel.Start());
  HAVEN_RETURN_IF_ERROR(impl->Write(m1, deadline));
  auto m2 = impl->ReadMessage(deadline);
  if (!m2.ok()) {
    if (m2.status().code() == Status::Code::kUnavailable) {
      return Status::Unavailable(
          "server closed the connection during the handshake: it does not hold the pinned "
          "server key, or it is not a Haven server");
    }
    return m2.status();
  }
  HAVEN_ASSIGN_OR_RETURN(Bytes m3, channel.Finish(*m2));
  HAVEN_RETURN_IF_ERROR(impl->Write(m3, deadline));
  impl->channel.emplace(std::move(channel));
  return std::unique_ptr<Connection>(new Connection(std::move(impl)));
}

Status Connection::Send(const v1::Frame& frame) {
  HAVEN_ASSIGN_OR_RETURN(Bytes message, impl_->channel->Seal(frame));
  return impl_->Write(message, Clock::now() + std::chrono::seconds(5));
}

Status Connection::SendRawBytes(ByteView bytes) {
  return impl_->WriteRaw(bytes, Clock::now() + std::chrono::seconds(5));
}

Status Connection::SendRawPlaintext(ByteView plaintext) {
  HAVEN_ASSIGN_OR_RETURN(Bytes message, impl_->channel->SealRawForTesting(plaintext));
  return impl_->Write(message, Clock::now() + std::chrono::seconds(5));
}

Result<v1::Frame> Connection::ReadFrame(Clock::time_point deadline) {
  while (true) {
    HAVEN_ASSIGN_OR_RETURN(Bytes message, impl_->ReadMessage(deadline));
    HAVEN_ASSIGN_OR_RETURN(v1::Frame frame, impl_->channel->Open(message));
    if (auto_pong_ && frame.has_request() && frame.request().has_ping()) {
      v1::Frame pong;
      pong.set_request_id(frame.request_id());
      pong.mutable_response()->mutable_pong()->set_opaque(frame.request().ping().opaque());
      HAVEN_RETURN_IF_ERROR(Send(pong));
      continue;
    }
    return frame;
  }
}

Result<v1::Frame> Connection::Receive(std::chrono::milliseconds timeout) {
  if (!inbox_.empty()) {
    v1::Frame f = std::move(inbox_.front());
    inbox_.pop_front();
    return f;
  }
  return ReadFrame(Clock::now() + timeout);
}

Result<v1::Frame> Connection::Call(v1::Frame request, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  const std::uint64_t id = next_request_id_++;
  request.set_request_id(id);
  HAVEN_RETURN_IF_ERROR(Send(request));
  while (true) {
    HAVEN_ASSIGN_OR_RETURN(v1::Frame frame, ReadFrame(deadline));
    if (frame.has_response() && frame.request_id() == id) return frame;
    inbox_.push_back(std::move(frame));
  }
}

Result<v1::Frame> Connection::Ping(std::string opaque, std::chrono::milliseconds timeout) {
  v1::Frame request;
  request.mutable_request()->mutable_ping()->set_opaque(std::move(opaque));
  return Call(std::move(request), timeout);
}

Result<std::vector<v1::Frame>> Connection::WaitForClose(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  std::vector<v1::Frame> frames(std::make_move_iterator(inbox_.begin()),
                                std::make_move_iterator(inbox_.end()));
  inbox_.clear();
  while (true) {
    auto frame = ReadFrame(deadline);
    if (frame.ok()) {
      frames.push_back(std::move(frame).value());
      continue;
    }
    if (frame.status().code() == Status::Code::kUnavailable) return frames;
    return frame.status();
  }
}

void Connection::Close() {
  if (!impl_) return;
  error_code ignored;
  impl_->socket.shutdown(tcp::socket::shutdown_both, ignored);
  impl_->socket.close(ignored);
}

}  // namespace haven::client
