// Writes the seed corpora of tests/fuzz/corpus/ (see README.md):
//
//   cmake --build build/<dir> --target fuzz_gen_corpus
//   build/<dir>/tests/fuzz/fuzz_gen_corpus tests/fuzz/corpus
//
// The seeds follow the input formats documented at the top of
// length_prefix_fuzz.cc and noise_responder_fuzz.cc. The raw-mode noise seed
// records a real handshake with the fixed keys of noise_fuzz_setup.h; the
// generator checks it by driving a responder through exactly the records it
// writes, so a seed that no longer completes is an error here, not a silent
// loss of fuzzing depth. Rerun it whenever those keys, the prologue or the
// protocol change.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "fuzz_check.h"
#include "haven/framing/length_prefix.h"
#include "noise_fuzz_setup.h"

namespace haven::fuzz {
// gen_corpus_more.cc: the seeds of every later target.
void WriteMoreSeeds(const std::filesystem::path& root, const std::filesystem::path& config_dir);
}  // namespace haven::fuzz

namespace {

using haven::ByteView;
using haven::Bytes;
namespace fz = haven::fuzz;

void WriteSeed(const std::filesystem::path& dir, const std::string& name, const Bytes& bytes) {
  std::filesystem::create_directories(dir);
  std::ofstream out(dir / name, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  HAVEN_FUZZ_CHECK(out.good());
  std::printf("%s/%s: %zu bytes\n", dir.c_str(), name.c_str(), bytes.size());
}

Bytes Text(const char* s) {
  const ByteView v = haven::AsBytes(s);
  return Bytes(v.begin(), v.end());
}

Bytes Filled(std::size_t n, std::uint8_t first) {
  Bytes b(n);
  for (std::size_t i = 0; i < n; ++i) b[i] = static_cast<std::uint8_t>(first + i);
  return b;
}

// --------------------------------------------------------- length prefix

// Header of a length_prefix input: the bound, then the chunk sizes.
Bytes LpHeader(std::size_t bound, const std::vector<std::uint8_t>& sizes) {
  HAVEN_FUZZ_CHECK(bound >= 1 && bound <= 65535);
  HAVEN_FUZZ_CHECK(!sizes.empty() && sizes.size() <= 16);
  Bytes out(2);
  haven::StoreBigEndian16(static_cast<std::uint16_t>(bound - 1), out.data());
  out.push_back(static_cast<std::uint8_t>(sizes.size() - 1));
  out.insert(out.end(), sizes.begin(), sizes.end());
  return out;
}

void Frame(const Bytes& message, Bytes* out) {
  HAVEN_FUZZ_CHECK(haven::framing::AppendLengthPrefixed(message, out).ok());
}

void LengthPrefixSeeds(const std::filesystem::path& dir) {
  {
    Bytes s = LpHeader(65535, {1});
    Frame(Text("hello"), &s);
    WriteSeed(dir, "single-bytewise", s);
  }
  {
    Bytes s = LpHeader(1024, {3, 0, 7, 1});
    Frame(Text("a"), &s);
    Frame(Filled(40, 0x40), &s);
    Frame(Text("xyz"), &s);
    Frame({0xff}, &s);
    WriteSeed(dir, "several-mixed-chunks", s);
  }
  {
    Bytes s = LpHeader(100, {5});
    Frame(Text("ok"), &s);
    s.insert(s.end(), {0x00, 0x00, 'j', 'u', 'n', 'k'});
    WriteSeed(dir, "zero-length-frame", s);
  }
  {
    Bytes s = LpHeader(16, {2});
    Frame(Filled(16, 0x10), &s);
    s.insert(s.end(), {0x00, 0x11});
    const Bytes tail = Filled(17, 0x20);
    s.insert(s.end(), tail.begin(), tail.end());
    WriteSeed(dir, "above-bound", s);
  }
  {
    Bytes s = LpHeader(500, {4, 9});
    Frame(Filled(10, 0x30), &s);
    s.insert(s.end(), {0x01, 0x00});
    const Bytes partial = Filled(20, 0x50);
    s.insert(s.end(), partial.begin(), partial.end());
    WriteSeed(dir, "partial-trailing-frame", s);
  }
  {
    Bytes s = LpHeader(200, {7});
    Frame(Filled(200, 0x00), &s);
    WriteSeed(dir, "exactly-at-bound", s);
  }
  {
    Bytes s = LpHeader(1, {255});
    for (std::uint8_t i = 0; i < 5; ++i) Frame({i}, &s);
    s.insert(s.end(), {0x00, 0x02, 0xaa, 0xbb});
    WriteSeed(dir, "bound-one", s);
  }
}

// --------------------------------------------------------- noise responder

// A raw-mode input that completes the handshake and then exercises the
// transport: decrypt, encrypt, rekey on both sides, decrypt again.
Bytes RawValidHandshake() {
  haven::noise::HandshakeState initiator = fz::MakeInitiator();
  haven::noise::HandshakeState responder = fz::MakeResponder();
  Bytes seed = {0x00};  // raw mode
  Bytes scratch;

  Bytes m1;
  HAVEN_FUZZ_CHECK(initiator.WriteMessage(Text("client hello"), &m1).ok());
  fz::AppendFuzzRecord(m1, &seed);
  HAVEN_FUZZ_CHECK(responder.ReadMessage(m1, &scratch).ok());

  const Bytes r_payload = Text("server hello");
  fz::AppendFuzzRecord(r_payload, &seed);
  Bytes m2;
  HAVEN_FUZZ_CHECK(responder.WriteMessage(r_payload, &m2).ok());
  HAVEN_FUZZ_CHECK(initiator.ReadMessage(m2, &scratch).ok());

  Bytes m3;
  HAVEN_FUZZ_CHECK(initiator.WriteMessage(Text("client auth"), &m3).ok());
  fz::AppendFuzzRecord(m3, &seed);
  HAVEN_FUZZ_CHECK(responder.ReadMessage(m3, &scratch).ok());
  HAVEN_FUZZ_CHECK(initiator.IsComplete() && responder.IsComplete());

  auto ti = initiator.Split();
  auto tr = responder.Split();
  HAVEN_FUZZ_CHECK(ti.ok() && tr.ok());

  auto send_to_responder = [&](const Bytes& plaintext) {
    Bytes c;
    HAVEN_FUZZ_CHECK(ti->Encrypt(plaintext, &c).ok());
    seed.push_back(fz::kOpDecrypt);
    fz::AppendFuzzRecord(c, &seed);
    Bytes p;
    HAVEN_FUZZ_CHECK(tr->Decrypt(c, &p).ok());
    HAVEN_FUZZ_CHECK(p == plaintext);
  };
  send_to_responder(Text("first transport message"));
  send_to_responder(Bytes{});
  seed.push_back(fz::kOpEncrypt);
  fz::AppendFuzzRecord(Text("pong"), &seed);
  seed.push_back(fz::kOpRekeyReceive);
  ti->RekeySend();
  tr->RekeyReceive();
  send_to_responder(Text("after rekey"));
  seed.push_back(fz::kOpRekeySend);
  seed.push_back(fz::kOpDecrypt);
  fz::AppendFuzzRecord(Filled(20, 0x77), &seed);  // garbage: must fail, harmlessly
  return seed;
}

// Raw mode: a genuine first message, then a garbage third message.
Bytes RawFirstMessageOnly() {
  haven::noise::HandshakeState initiator = fz::MakeInitiator();
  Bytes seed = {0x00};
  Bytes m1;
  HAVEN_FUZZ_CHECK(initiator.WriteMessage({}, &m1).ok());
  fz::AppendFuzzRecord(m1, &seed);
  fz::AppendFuzzRecord({}, &seed);
  fz::AppendFuzzRecord(Filled(64, 0x90), &seed);
  return seed;
}

void NoiseResponderSeeds(const std::filesystem::path& dir) {
  WriteSeed(dir, "raw-valid-handshake", RawValidHandshake());
  WriteSeed(dir, "raw-first-message-only", RawFirstMessageOnly());
  {
    Bytes s = {0x00};
    fz::AppendFuzzRecord(Filled(10, 0x01), &s);
    WriteSeed(dir, "raw-short-message", s);
  }
  {
    Bytes s = {0x00};
    Bytes m1(haven::noise::kDhLen + haven::noise::kTagLen, 0);  // e = 0: a low-order point
    fz::AppendFuzzRecord(m1, &s);
    WriteSeed(dir, "raw-low-order-ephemeral", s);
  }
  // Valid mode: mode, target message, payload seed, edits (op, position).
  WriteSeed(dir, "valid-untouched", Bytes{0x01, 0x07, 0x10});
  WriteSeed(dir, "valid-flip-first-message", Bytes{0x01, 0x00, 0x05, 0x00, 0x00, 0x05});
  // Bit 7 of the last byte of an X25519 key is ignored by the DH; the change
  // must still be caught because the raw key bytes are hashed.
  WriteSeed(dir, "valid-flip-ephemeral-high-bit", Bytes{0x01, 0x01, 0x00, 0x9c, 0x00, 0x1f});
  WriteSeed(dir, "valid-truncate-third-message", Bytes{0x01, 0x02, 0x20, 0x01, 0x00, 0x30});
  WriteSeed(dir, "valid-insert-transport", Bytes{0x01, 0x04, 0x40, 0xce, 0x00, 0x03});
  WriteSeed(dir, "valid-delete-last-transport", Bytes{0x01, 0x06, 0x07, 0x03, 0x00, 0x00});
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <corpus-root, e.g. tests/fuzz/corpus>\n", argv[0]);
    return 2;
  }
  const std::filesystem::path root = argv[1];
  LengthPrefixSeeds(root / "length_prefix");
  NoiseResponderSeeds(root / "noise_responder");
  // The configuration seeds start from the repository's own files.
  haven::fuzz::WriteMoreSeeds(root, root / ".." / ".." / ".." / "config");
  return 0;
}
