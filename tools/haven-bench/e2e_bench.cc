// Google Benchmark of the end-to-end layer on one core: ratcheted messages
// through encrypt + decrypt, against the raw AEAD on the same padded size as
// a baseline measured in the same run, plus X3DH and the safety number.
//
//   build/default/tools/haven-e2e-bench --benchmark_repetitions=5
//       --benchmark_report_aggregates_only=true   (one line)
#include <benchmark/benchmark.h>

#include "e2e/x3dh.h"

namespace {

using namespace haven;

// One survivor -> counsellor message of `size` bytes: encrypt and decrypt.
void BM_RatchetEncryptDecrypt(benchmark::State& state) {
  const SecureBuffer sk = SecureBuffer::Random(32);
  e2e::DhKeyPair spk = e2e::DhKeyPair::Generate();
  const auto pub = spk.public_key;
  auto alice = e2e::DoubleRatchet::InitInitiator(sk.view(), pub, Bytes{1});
  auto bob = e2e::DoubleRatchet::InitResponder(sk.view(), std::move(spk), Bytes{1});
  const Bytes msg(static_cast<std::size_t>(state.range(0)), 'x');
  for (auto _ : state) {
    auto wire = alice->Encrypt(msg);
    auto plain = bob->Decrypt(*wire);
    benchmark::DoNotOptimize(plain);
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_RatchetEncryptDecrypt)->Arg(64)->Arg(256)->Arg(4096);

// Alternating senders: every message is a DH ratchet step (the worst case).
void BM_RatchetPingPong(benchmark::State& state) {
  const SecureBuffer sk = SecureBuffer::Random(32);
  e2e::DhKeyPair spk = e2e::DhKeyPair::Generate();
  const auto pub = spk.public_key;
  auto alice = e2e::DoubleRatchet::InitInitiator(sk.view(), pub, Bytes{1});
  auto bob = e2e::DoubleRatchet::InitResponder(sk.view(), std::move(spk), Bytes{1});
  const Bytes msg(64, 'x');
  (void)bob->Decrypt(*alice->Encrypt(msg));
  for (auto _ : state) {
    auto a = bob->Decrypt(*alice->Encrypt(msg));
    auto b = alice->Decrypt(*bob->Encrypt(msg));
    benchmark::DoNotOptimize(a);
    benchmark::DoNotOptimize(b);
  }
  state.SetItemsProcessed(state.iterations() * 2);
}
BENCHMARK(BM_RatchetPingPong);

// Baseline: XChaCha20-Poly1305 seal + open of the same padded size, no KDFs.
void BM_AeadBaseline(benchmark::State& state) {
  const SecureBuffer key = SecureBuffer::Random(32);
  const Bytes nonce(24, 7);
  const std::size_t padded = (static_cast<std::size_t>(state.range(0)) + 4 + 255) / 256 * 256;
  const Bytes msg(padded, 'x');
  for (auto _ : state) {
    Bytes sealed, opened;
    (void)crypto::AeadSeal(key.view(), nonce, {}, msg, &sealed);
    (void)crypto::AeadOpen(key.view(), nonce, {}, sealed, &opened);
    benchmark::DoNotOptimize(opened);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_AeadBaseline)->Arg(64)->Arg(256)->Arg(4096);

void BM_X3dhBothSides(benchmark::State& state) {
  const e2e::IdentityKey counsellor = e2e::IdentityKey::Generate();
  const e2e::SignedPrekey spk = e2e::SignedPrekey::Make(counsellor, 1);
  e2e::PrekeyBundle bundle;
  bundle.identity = counsellor.public_key();
  bundle.signed_prekey_id = 1;
  bundle.signed_prekey = spk.key.public_key;
  bundle.signature = spk.signature;
  const e2e::IdentityKey survivor = e2e::IdentityKey::Generate();
  for (auto _ : state) {
    auto init = e2e::InitiateX3dh(survivor, bundle);
    auto resp = e2e::RespondX3dh(counsellor, spk, nullptr, init->message);
    benchmark::DoNotOptimize(resp);
  }
}
BENCHMARK(BM_X3dhBothSides);

void BM_SafetyNumber(benchmark::State& state) {
  const auto a = e2e::IdentityKey::Generate().public_key();
  const auto b = e2e::IdentityKey::Generate().public_key();
  for (auto _ : state) benchmark::DoNotOptimize(e2e::SafetyNumber(a, b));
}
BENCHMARK(BM_SafetyNumber);

}  // namespace

BENCHMARK_MAIN();
