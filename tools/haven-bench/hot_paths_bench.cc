// Google Benchmark of the pure functions on havend's and the client's hot
// path for one relayed message, one core, no I/O (issue 7, item 5): Noise
// transport encrypt/decrypt, frame decode (length prefix, then protobuf),
// the server's whole per-message step (ConnectionProtocol::OnMessage:
// decrypt, parse, dispatch), the end-to-end envelope encode/decode, and the
// ratchet encrypt and decrypt separately (haven-e2e-bench has the pair).
// Sizes are those of haven-bench: a 256-byte padded message in its envelope.
//
//   build/default/tools/haven-hot-paths-bench --benchmark_repetitions=5
//       --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include "e2e/double_ratchet.h"
#include "e2e/envelope.h"
#include "haven/framing/length_prefix.h"
#include "haven/noise/cipher_state.h"
#include "net/connection_protocol.h"
#include "transport/client_channel.h"

namespace {

using namespace haven;

Bytes RatchetMessage(e2e::DoubleRatchet& sender) {
  const Bytes text(200, 'x');  // pads to one 256-byte bucket
  return *sender.Encrypt(text);
}

struct RatchetPair {
  std::optional<e2e::DoubleRatchet> alice, bob;
  RatchetPair() {
    const SecureBuffer sk = SecureBuffer::Random(32);
    e2e::DhKeyPair spk = e2e::DhKeyPair::Generate();
    const auto pub = spk.public_key;
    alice.emplace(std::move(e2e::DoubleRatchet::InitInitiator(sk.view(), pub, Bytes{1})).value());
    bob.emplace(
        std::move(e2e::DoubleRatchet::InitResponder(sk.view(), std::move(spk), Bytes{1})).value());
  }
};

// A SendEnvelope frame as a client sends it, with a real-sized envelope.
v1::Frame SendEnvelopeFrame() {
  RatchetPair p;
  const Bytes envelope = e2e::EncodeMessage(RatchetMessage(*p.alice));
  v1::Frame f;
  f.set_request_id(42);
  f.mutable_request()->mutable_send_envelope()->set_conversation_id(std::string(16, 'c'));
  f.mutable_request()->mutable_send_envelope()->set_ciphertext(envelope.data(), envelope.size());
  return f;
}

void BM_NoiseTransportEncrypt(benchmark::State& state) {
  const SecureBuffer key = SecureBuffer::Random(32);
  noise::CipherState cs;
  cs.InitializeKey(key.view());
  const std::string plain = SendEnvelopeFrame().SerializeAsString();
  Bytes out;
  for (auto _ : state) {
    out.clear();
    (void)cs.EncryptWithAd({}, AsBytes(plain), &out);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations());
  state.SetLabel(std::to_string(plain.size()) + " bytes");
}
BENCHMARK(BM_NoiseTransportEncrypt);

void BM_NoiseTransportEncryptDecrypt(benchmark::State& state) {
  const SecureBuffer key = SecureBuffer::Random(32);
  noise::CipherState sender, receiver;
  sender.InitializeKey(key.view());
  receiver.InitializeKey(key.view());
  const std::string plain = SendEnvelopeFrame().SerializeAsString();
  Bytes sealed, opened;
  for (auto _ : state) {
    sealed.clear();
    opened.clear();
    (void)sender.EncryptWithAd({}, AsBytes(plain), &sealed);
    if (!receiver.DecryptWithAd({}, sealed, &opened).ok()) state.SkipWithError("decrypt failed");
    benchmark::DoNotOptimize(opened.data());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_NoiseTransportEncryptDecrypt);

// Length-prefix decoding of a stream of framed messages, then the protobuf
// parse of the frame (the two halves of "frame decode").
void BM_LengthPrefixDecode(benchmark::State& state) {
  const std::string msg = SendEnvelopeFrame().SerializeAsString();
  Bytes stream;
  for (int i = 0; i < 64; ++i) (void)framing::AppendLengthPrefixed(AsBytes(msg), &stream);
  framing::LengthPrefixDecoder decoder(framing::kMaxFrameLen);
  for (auto _ : state) {
    ByteView rest(stream);
    while (!rest.empty()) {
      auto used = decoder.Feed(rest);
      rest = rest.subspan(*used);
      if (decoder.HasMessage()) {
        benchmark::DoNotOptimize(decoder.message().data());
        decoder.Pop();
      }
    }
  }
  state.SetItemsProcessed(state.iterations() * 64);
}
BENCHMARK(BM_LengthPrefixDecode);

void BM_FrameParse(benchmark::State& state) {
  const std::string msg = SendEnvelopeFrame().SerializeAsString();
  for (auto _ : state) {
    v1::Frame f;
    benchmark::DoNotOptimize(f.ParseFromString(msg));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_FrameParse);

void BM_FrameSerialize(benchmark::State& state) {
  const v1::Frame f = SendEnvelopeFrame();
  std::string out;
  for (auto _ : state) {
    out.clear();
    f.SerializeToString(&out);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_FrameSerialize);

// havend's whole step for one client message once established: Noise
// decrypt, Frame parse, dispatch to the relay's request list. The client's
// seal is done outside the timing.
void BM_ServerOnMessage(benchmark::State& state) {
  const noise::KeyPair server_key = noise::KeyPair::Generate();
  auto server = server::ConnectionProtocol::Create(server_key);
  auto client = client::ClientChannel::Create(server_key.public_key, noise::KeyPair::Generate());
  auto m1 = client->Start();
  auto out2 = server->OnMessage(*m1);
  auto m3 = client->Finish(out2.messages.at(0));
  (void)server->OnMessage(*m3);
  const v1::Frame frame = SendEnvelopeFrame();
  for (auto _ : state) {
    state.PauseTiming();
    auto sealed = client->Seal(frame);
    state.ResumeTiming();
    auto out = server->OnMessage(*sealed);
    benchmark::DoNotOptimize(out.requests.data());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ServerOnMessage);

// The full Noise_XK handshake, both sides (what S5 measures over sockets).
void BM_NoiseHandshakeBothSides(benchmark::State& state) {
  const noise::KeyPair server_key = noise::KeyPair::Generate();
  const noise::KeyPair client_key = noise::KeyPair::Generate();
  for (auto _ : state) {
    auto server = server::ConnectionProtocol::Create(server_key);
    auto client = client::ClientChannel::Create(server_key.public_key, client_key.Clone());
    auto m1 = client->Start();
    auto out2 = server->OnMessage(*m1);
    auto m3 = client->Finish(out2.messages.at(0));
    auto out3 = server->OnMessage(*m3);
    benchmark::DoNotOptimize(out3.established);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_NoiseHandshakeBothSides)->Unit(benchmark::kMicrosecond);

// The server side of the handshake alone (message 1 in, message 2 out,
// message 3 in), the client's work outside the timing.
void BM_NoiseHandshakeServerSide(benchmark::State& state) {
  const noise::KeyPair server_key = noise::KeyPair::Generate();
  const noise::KeyPair client_key = noise::KeyPair::Generate();
  for (auto _ : state) {
    state.PauseTiming();
    auto client = client::ClientChannel::Create(server_key.public_key, client_key.Clone());
    auto m1 = client->Start();
    state.ResumeTiming();
    auto server = server::ConnectionProtocol::Create(server_key);
    auto out2 = server->OnMessage(*m1);
    state.PauseTiming();
    auto m3 = client->Finish(out2.messages.at(0));
    state.ResumeTiming();
    auto out3 = server->OnMessage(*m3);
    benchmark::DoNotOptimize(out3.established);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_NoiseHandshakeServerSide)->Unit(benchmark::kMicrosecond);

void BM_RatchetEncrypt(benchmark::State& state) {
  RatchetPair p;
  const Bytes text(200, 'x');
  for (auto _ : state) {
    auto wire = p.alice->Encrypt(text);
    benchmark::DoNotOptimize(wire);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RatchetEncrypt);

// Decrypt of messages encrypted (untimed) in the same chain, in order.
void BM_RatchetDecrypt(benchmark::State& state) {
  RatchetPair p;
  for (auto _ : state) {
    state.PauseTiming();
    const Bytes wire = RatchetMessage(*p.alice);
    state.ResumeTiming();
    auto plain = p.bob->Decrypt(wire);
    benchmark::DoNotOptimize(plain);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RatchetDecrypt);

void BM_EnvelopeEncode(benchmark::State& state) {
  RatchetPair p;
  const Bytes ratchet = RatchetMessage(*p.alice);
  for (auto _ : state) {
    Bytes env = e2e::EncodeMessage(ratchet);
    benchmark::DoNotOptimize(env.data());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_EnvelopeEncode);

void BM_EnvelopeDecode(benchmark::State& state) {
  RatchetPair p;
  const Bytes env = e2e::EncodeMessage(RatchetMessage(*p.alice));
  for (auto _ : state) {
    auto decoded = e2e::DecodeEnvelope(env);
    benchmark::DoNotOptimize(decoded);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_EnvelopeDecode);

}  // namespace

BENCHMARK_MAIN();
