// Seeds for the fuzz targets added after the first two (see README.md), called
// by gen_corpus.cc's main. Each follows the input format documented at the
// top of its <name>_fuzz.cc; where a seed holds something recorded (a Noise
// handshake, a ratchet message, a sealed blob), it is checked here against
// the code that will read it, so a seed that stops working fails loudly.
#include <sqlite3.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "client/local_store.h"
#include "client/wipe.h"
#include "e2e/sealing.h"
#include "fuzz_check.h"
#include "fuzz_reader.h"
#include "haven/v1/frame.pb.h"
#include "local_store_fuzz_setup.h"
#include "noise_fuzz_setup.h"
#include "ratchet_fuzz_setup.h"
#include "relay_fuzz_ids.h"
#include "workflow/records.h"

namespace haven::fuzz {
namespace {

namespace fs = std::filesystem;

void Seed(const fs::path& dir, const std::string& name, const Bytes& bytes) {
  fs::create_directories(dir);
  std::ofstream out(dir / name, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  HAVEN_FUZZ_CHECK(out.good());
  std::printf("%s/%s: %zu bytes\n", dir.c_str(), name.c_str(), bytes.size());
}

Bytes Str(std::string_view s) { return Bytes(s.begin(), s.end()); }

Bytes Cat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const Bytes& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

Bytes Rec(const Bytes& b) {
  Bytes out;
  AppendFuzzRecord(b, &out);
  return out;
}

// ------------------------------------------------------------ noise initiator

void NoiseInitiatorSeeds(const fs::path& dir) {
  noise::HandshakeState initiator = MakeInitiator();
  noise::HandshakeState responder = MakeResponder();
  Bytes seed, m1, m2, m3, scratch;
  const Bytes p1 = Str("client hello");
  AppendFuzzRecord(p1, &seed);
  HAVEN_FUZZ_CHECK(initiator.WriteMessage(p1, &m1).ok());
  HAVEN_FUZZ_CHECK(responder.ReadMessage(m1, &scratch).ok());
  HAVEN_FUZZ_CHECK(responder.WriteMessage(Str("server hello"), &m2).ok());
  AppendFuzzRecord(m2, &seed);
  HAVEN_FUZZ_CHECK(initiator.ReadMessage(m2, &scratch).ok());
  Seed(dir, "message-two-only", seed);  // ends after the responder's message
  AppendFuzzRecord({}, &seed);
  HAVEN_FUZZ_CHECK(initiator.WriteMessage({}, &m3).ok());
  HAVEN_FUZZ_CHECK(responder.ReadMessage(m3, &scratch).ok());
  auto tr = responder.Split();
  HAVEN_FUZZ_CHECK(tr.ok());
  Bytes c;
  HAVEN_FUZZ_CHECK(tr->Encrypt(Str("to the client"), &c).ok());
  seed.push_back(kOpDecrypt);
  AppendFuzzRecord(c, &seed);
  seed.push_back(kOpEncrypt);
  AppendFuzzRecord(Str("to the server"), &seed);
  seed.push_back(kOpRekeyReceive);
  seed.push_back(kOpRekeySend);
  seed.push_back(kOpDecrypt);
  AppendFuzzRecord(Bytes(20, 0x77), &seed);
  Seed(dir, "valid-handshake-and-transport", seed);
  Seed(dir, "short-message-two", Cat({Rec({}), Rec(Bytes(40, 0x01))}));
  Seed(dir, "low-order-ephemeral", Cat({Rec({}), Rec(Bytes(noise::kDhLen + noise::kTagLen, 0))}));
}

// ------------------------------------------------------------ double ratchet

Bytes Op(RatchetOp op) { return Bytes{op}; }
Bytes DeliverArgs(std::uint8_t pick, std::uint16_t position, std::uint8_t mask) {
  return Bytes{pick, static_cast<std::uint8_t>(position >> 8), static_cast<std::uint8_t>(position),
               mask};
}

void DoubleRatchetSeeds(const fs::path& dir) {
  Seed(dir, "ping-pong",
       Cat({Op(kAliceEncrypt), Rec(Str("hello")), Op(kDeliverToBob), DeliverArgs(0, 0, 0),
            Op(kBobEncrypt), Rec(Str("hi, I am here")), Op(kDeliverToAlice), DeliverArgs(0, 0, 0),
            Op(kAliceEncrypt), Rec(Str("thanks")), Op(kDeliverToBob), DeliverArgs(1, 0, 0)}));
  Seed(dir, "out-of-order",
       Cat({Op(kAliceEncrypt), Rec(Str("one")), Op(kAliceEncrypt), Rec(Str("two")),
            Op(kAliceEncrypt), Rec(Str("three")), Op(kDeliverToBob), DeliverArgs(2, 0, 0),
            Op(kDeliverToBob), DeliverArgs(0, 0, 0), Op(kDeliverToBob), DeliverArgs(1, 0, 0)}));
  Seed(dir, "tampered-header",
       Cat({Op(kAliceEncrypt), Rec(Str("x")), Op(kDeliverToBob), DeliverArgs(0, 5, 0x01),
            Op(kDeliverToBob), DeliverArgs(0, 0, 0)}));
  Seed(dir, "tampered-tag",
       Cat({Op(kAliceEncrypt), Rec(Str("x")), Op(kDeliverToBob), DeliverArgs(0, 0xffff, 0x80)}));
  Seed(dir, "replayed",
       Cat({Op(kAliceEncrypt), Rec(Str("once")), Op(kDeliverToBob), DeliverArgs(0, 0, 0),
            Op(kDeliverToBob), DeliverArgs(0, 0, 0)}));
  Seed(dir, "persist-and-continue",
       Cat({Op(kAliceEncrypt), Rec(Str("a")), Op(kDeliverToBob), DeliverArgs(0, 0, 0),
            Op(kPersistBob), Op(kBobEncrypt), Rec(Str("b")), Op(kDeliverToAlice),
            DeliverArgs(0, 0, 0), Op(kAliceEncrypt), Rec(Str("c")), Op(kPersistBob),
            Op(kDeliverToBob), DeliverArgs(1, 0, 0)}));
  // Alice's first message, recorded: deterministic keys make it decrypt in
  // the target as a raw message too.
  RatchetPair pair = MakeRatchetPair();
  auto first = pair.alice.Encrypt(Str("recorded"));
  HAVEN_FUZZ_CHECK(first.ok());
  Seed(dir, "raw-first-message", Cat({Op(kRawToBob), Rec(*first)}));
  RatchetPair check = MakeRatchetPair();
  HAVEN_FUZZ_CHECK(check.bob.Decrypt(*first).ok());
  const SecureBuffer state = check.bob.Serialize();
  Seed(dir, "raw-state", Cat({Op(kRawState), Rec(Bytes(state.view().begin(), state.view().end()))}));
}

// ------------------------------------------------------------ sealed blobs

void SealedBlobSeeds(const fs::path& dir) {
  const e2e::DhKeyPair helpline = SealFuzzHelplineKey();
  auto blob = e2e::SealToHelpline(helpline.public_key, Str("triage answers"));
  HAVEN_FUZZ_CHECK(blob.ok());
  HAVEN_FUZZ_CHECK(e2e::OpenHelplineBlob(helpline, *blob).ok());
  Seed(dir, "open-valid-blob", Cat({Bytes{0}, *blob}));
  Seed(dir, "open-wrong-version", Cat({Bytes{0, 0x02}, Bytes(60, 0x11)}));
  Seed(dir, "open-empty", Bytes{0});
  Seed(dir, "round-trip-untouched", Cat({Bytes{1, 0, 0, 0}, Str("case note")}));
  Seed(dir, "round-trip-tampered", Cat({Bytes{1, 0, 7, 0x40}, Str("case note")}));
  const e2e::IdentityKey device = SealFuzzDeviceKey();
  auto sealed_key = e2e::SealKeyForDevice(device.public_key(), helpline);
  HAVEN_FUZZ_CHECK(sealed_key.ok());
  HAVEN_FUZZ_CHECK(e2e::OpenKeyOnDevice(device, *sealed_key).ok());
  Seed(dir, "key-for-device", Cat({Bytes{2}, *sealed_key}));
  Seed(dir, "identity-public", Cat({Bytes{3}, device.public_key().Encode()}));
  e2e::InitialMessage initial;
  initial.initiator = device.public_key();
  initial.ephemeral = helpline.public_key;
  initial.signed_prekey_id = 7;
  initial.one_time_prekey_id = 9;
  Seed(dir, "initial-message", Cat({Bytes{3}, initial.Encode()}));
  initial.one_time_prekey_id.reset();
  Seed(dir, "initial-message-no-one-time", Cat({Bytes{3}, initial.Encode()}));
}

// ------------------------------------------------------------ frames

Bytes FrameBytes(const v1::Frame& f) { return Str(f.SerializeAsString()); }

// A 16-byte placeholder for known id `which` (relay_fuzz_world.h).
std::string IdRef(std::uint8_t which) {
  std::string s(kIdPlaceholder);
  s.push_back(static_cast<char>(which));
  return s;
}

v1::Frame RequestFrame(void (*fill)(v1::Request&)) {
  v1::Frame f;
  f.set_request_id(1);
  fill(*f.mutable_request());
  return f;
}

void ConnectionSeeds(const fs::path& dir) {
  // Raw mode: a genuine first message then garbage; and garbage alone.
  noise::HandshakeState initiator = MakeInitiator();
  Bytes m1;
  HAVEN_FUZZ_CHECK(initiator.WriteMessage({}, &m1).ok());
  Seed(dir, "raw-first-message", Cat({Bytes{0}, Rec(m1), Rec(Bytes(64, 0x90))}));
  Seed(dir, "raw-garbage", Cat({Bytes{0}, Rec(Bytes(48, 0x01)), Rec(Bytes(3, 0x02))}));
  // Session mode.
  v1::Frame ping = RequestFrame([](v1::Request& r) { r.mutable_ping()->set_opaque("abc"); });
  v1::Frame big_ping = RequestFrame([](v1::Request& r) { r.mutable_ping()->set_opaque(std::string(40, 'x')); });
  v1::Frame session = RequestFrame([](v1::Request& r) { r.mutable_get_session(); });
  v1::Frame unset;
  unset.set_request_id(4);
  unset.mutable_request();
  v1::Frame event;
  event.mutable_event()->mutable_closing()->set_reason(v1::ERROR_CODE_MALFORMED_FRAME);
  v1::Frame pong;
  pong.mutable_response()->mutable_pong()->set_opaque("p");
  Seed(dir, "session-ping", Cat({Bytes{1, 0}, Rec(FrameBytes(ping)), Bytes{0}, Rec(FrameBytes(big_ping))}));
  Seed(dir, "session-requests",
       Cat({Bytes{1, 0}, Rec(FrameBytes(session)), Bytes{0}, Rec(FrameBytes(unset)), Bytes{2},
            Bytes{0}, Rec(FrameBytes(event)), Bytes{0}, Rec(FrameBytes(pong))}));
  Seed(dir, "session-not-a-frame", Cat({Bytes{1, 0}, Rec(Bytes{0xff, 0xff, 0xff})}));
  Seed(dir, "session-tampered", Cat({Bytes{1, 3}, Rec(FrameBytes(ping)), Bytes{0, 3, 0x10}}));
  Seed(dir, "session-forged", Cat({Bytes{1, 1}, Rec(Bytes(40, 0x33))}));
}

// Relay seeds: one sequence per kind of request, each from the fuzzed role
// (op 0) and some from the partner (op 1), ids by placeholder.
void RelaySeeds(const fs::path& dir) {
  auto from = [](std::uint8_t op, const v1::Frame& f) { return Cat({Bytes{op}, Rec(FrameBytes(f))}); };
  const std::string a = IdRef(0), b = IdRef(1), colleague = IdRef(3);
  v1::Frame f;
  f = RequestFrame([](v1::Request& r) { r.mutable_get_session(); });
  Seed(dir, "get-session", from(0, f));
  v1::Frame open = RequestFrame([](v1::Request& r) {
    r.mutable_open_conversation()->set_language("en");
  });
  Seed(dir, "open-conversation", Cat({from(0, open), from(0, open), from(0, open)}));
  f = RequestFrame([](v1::Request& r) { r.mutable_list_queue(); });
  Seed(dir, "list-queue", from(0, f));
  v1::Frame claim;
  claim.mutable_request()->mutable_claim_conversation()->set_conversation_id(b);
  Seed(dir, "claim-queued", Cat({from(0, claim), from(0, claim)}));
  v1::Frame send;
  send.mutable_request()->mutable_send_envelope()->set_conversation_id(a);
  send.mutable_request()->mutable_send_envelope()->set_ciphertext("ciphertext");
  v1::Frame ack;
  ack.mutable_request()->mutable_ack_envelopes()->set_conversation_id(a);
  ack.mutable_request()->mutable_ack_envelopes()->set_up_to_seq(~0ull);
  Seed(dir, "send-and-ack",
       Cat({from(0, send), from(1, send), from(1, ack), from(0, ack), Bytes{2}, from(0, send)}));
  v1::Frame ephemeral;
  ephemeral.mutable_request()->mutable_send_ephemeral()->set_conversation_id(a);
  ephemeral.mutable_request()->mutable_send_ephemeral()->set_ciphertext("typing");
  Seed(dir, "ephemeral", Cat({from(0, ephemeral), from(1, ephemeral)}));
  v1::Frame close;
  close.mutable_request()->mutable_close_conversation()->set_conversation_id(a);
  Seed(dir, "close-then-send", Cat({from(0, close), from(0, send), from(1, send)}));
  f = RequestFrame([](v1::Request& r) { r.mutable_quick_exit(); });
  Seed(dir, "quick-exit", Cat({from(0, send), from(0, f), from(0, send), from(1, send)}));
  v1::Frame publish;
  publish.mutable_request()->mutable_publish_prekeys()->set_identity_key(std::string(64, '\x42'));
  Seed(dir, "publish-prekeys", from(0, publish));
  v1::Frame bundle;
  bundle.mutable_request()->mutable_get_prekey_bundle()->set_conversation_id(a);
  Seed(dir, "prekey-bundle", Cat({from(1, publish), from(0, bundle), from(0, bundle)}));
  Seed(dir, "helpline-config", from(0, RequestFrame([](v1::Request& r) { r.mutable_get_helpline_config(); })));
  Seed(dir, "presence-and-list",
       Cat({from(0, RequestFrame([](v1::Request& r) { r.mutable_set_presence(); })),
            from(0, RequestFrame([](v1::Request& r) { r.mutable_list_counsellors(); })),
            from(0, RequestFrame([](v1::Request& r) { r.mutable_get_load(); }))}));
  v1::Frame transfer;
  transfer.mutable_request()->mutable_transfer_conversation()->set_conversation_id(a);
  transfer.mutable_request()->mutable_transfer_conversation()->set_counsellor_id(colleague);
  Seed(dir, "transfer", from(0, transfer));
  v1::Frame block;
  block.mutable_request()->mutable_block_contact()->set_conversation_id(a);
  block.mutable_request()->mutable_block_contact()->set_hours(24);
  Seed(dir, "block", Cat({from(0, block), from(1, block), from(1, send)}));
  v1::Frame flag;
  flag.mutable_request()->mutable_flag_conversation()->set_conversation_id(a);
  flag.mutable_request()->mutable_flag_conversation()->set_high_risk(true);
  Seed(dir, "flag", from(0, flag));
  v1::Frame redeem;
  redeem.mutable_request()->mutable_redeem_invitation()->set_code("7K2M-AAAA-BBBB-CCCC");
  Seed(dir, "redeem-invitation", from(0, redeem));
  Seed(dir, "time-passes", Cat({from(0, send), Bytes{3, 0xff}, Bytes{3, 0xff}, from(0, send)}));
}

// ------------------------------------------------------------ configuration

void CopyFileSeed(const fs::path& from, const fs::path& dir, const std::string& name) {
  std::ifstream in(from, std::ios::binary);
  if (!in) {
    std::printf("(skipped %s: not found)\n", from.c_str());
    return;
  }
  Seed(dir, name, Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()));
}

void ConfigSeeds(const fs::path& root, const fs::path& config_dir) {
  const fs::path helpline = root / "helpline_config", server = root / "server_config";
  CopyFileSeed(config_dir / "helpline.toml", helpline, "repository-helpline.toml");
  Seed(helpline, "empty", {});
  Seed(helpline, "small",
       Str("name = \"Test line\"\nlanguages = [\"en\", \"es-419\"]\nmax_active_per_counsellor = 3\n"
           "[[priorities]]\nlevel = 1\nlabel = \"urgent\"\n"
           "[[categories]]\nid = \"labour\"\nlabel = \"Labour\"\n"
           "[[canned_responses]]\nid = \"hello\"\ntext = \"Hello, you are safe here.\"\n"
           "[[referrals]]\nid = \"shelter-1\"\nservice = \"shelter\"\nname = \"A shelter\"\n"
           "offers = \"beds\"\ncontact = \"call 0\"\nregion = \"north\"\nlanguages = [\"en\"]\n"));
  Seed(helpline, "duplicate-id",
       Str("[[categories]]\nid = \"a\"\nlabel = \"A\"\n[[categories]]\nid = \"a\"\nlabel = \"B\"\n"));
  CopyFileSeed(config_dir / "havend.toml", server, "repository-havend.toml");
  Seed(server, "empty", {});
  Seed(server, "small",
       Str("[server]\nlisten_address = \"127.0.0.1\"\nlisten_port = 7420\nthreads = 2\n"
           "[limits]\nmax_connections = 10\n[relay]\ndelivery_window = 8\n"));
  Seed(server, "unknown-key", Str("[server]\nnope = 1\n"));
}

// ------------------------------------------------------------ workflow records

void WorkflowSeeds(const fs::path& dir) {
  sdk::WrapUp w;
  w.category_id = "labour";
  w.case_note = "referred to shelter";
  w.referrals_given = {"shelter-1", "legal-2"};
  w.consent.follow_up = true;
  w.consent.follow_up_scope = "chat only";
  const Bytes wrapup = client::EncodeWrapUp(w);
  HAVEN_FUZZ_CHECK(!wrapup.empty() && client::DecodeWrapUp(wrapup).has_value());
  Seed(dir, "wrap-up", Cat({Bytes{0}, wrapup}));
  Seed(dir, "wrap-up-empty", Cat({Bytes{0}, client::EncodeWrapUp(sdk::WrapUp{})}));
  sdk::ResourceCard card{"shelter", "A shelter", "beds, food", "call 0", "north"};
  const Bytes encoded = client::EncodeResourceCard(card);
  HAVEN_FUZZ_CHECK(!encoded.empty() && client::DecodeResourceCard(encoded).has_value());
  Seed(dir, "resource-card", Cat({Bytes{1}, encoded}));
  Seed(dir, "resource-card-cut", Cat({Bytes{1}, Bytes(encoded.begin(), encoded.end() - 3)}));
}

// ------------------------------------------------------------ local store

Bytes ReadAll(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void LocalStoreSeeds(const fs::path& dir) {
  const fs::path work = FuzzScratchDir("haven-store-seeds");
  {
    auto store = client::LocalStore::Open(work, LocalStoreFuzzKey());
    HAVEN_FUZZ_CHECK(store.ok());
    HAVEN_FUZZ_CHECK((*store)->Put("identity", Bytes(64, 0x42)).ok());
    HAVEN_FUZZ_CHECK((*store)->PutConversation(1, Bytes(80, 0x17)).ok());
    HAVEN_FUZZ_CHECK((*store)->AppendMessage(1, 1, true, Str("hello")).ok());
    HAVEN_FUZZ_CHECK((*store)->AppendMessage(1, 2, false, Str("hi")).ok());
  }  // closing checkpoints the WAL into the file
  const fs::path encrypted = work / client::kStoreFileName;
  Seed(dir, "encrypted-store", Cat({Bytes{0}, ReadAll(encrypted)}));
  Seed(dir, "encrypted-garbage", Cat({Bytes{0}, Bytes(1024, 0x5a)}));
  // The same store as a plaintext image with small pages (mode 1).
  const fs::path plain = work / "plain.db";
  sqlite3* db = nullptr;
  HAVEN_FUZZ_CHECK(sqlite3_open(encrypted.c_str(), &db) == SQLITE_OK);
  const std::string sql = "PRAGMA key = \"x'" + LocalStoreFuzzKeyHex() +
                          "'\"; PRAGMA cipher_page_size = 4096; ATTACH DATABASE '" + plain.string() +
                          "' AS plaintext KEY ''; PRAGMA plaintext.page_size = 512;"
                          " SELECT sqlcipher_export('plaintext'); PRAGMA plaintext.user_version = 1;";
  HAVEN_FUZZ_CHECK(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(db);
  Seed(dir, "plaintext-image", Cat({Bytes{1}, ReadAll(plain)}));
  std::error_code ec;
  fs::remove_all(work, ec);
}

}  // namespace

void WriteMoreSeeds(const fs::path& root, const fs::path& config_dir) {
  NoiseInitiatorSeeds(root / "noise_initiator");
  DoubleRatchetSeeds(root / "double_ratchet");
  SealedBlobSeeds(root / "sealed_blob");
  ConnectionSeeds(root / "connection");
  for (const char* role : {"relay_survivor", "relay_counsellor", "relay_supervisor"}) {
    RelaySeeds(root / role);
  }
  ConfigSeeds(root, config_dir);
  WorkflowSeeds(root / "workflow_records");
  LocalStoreSeeds(root / "local_store");
}

}  // namespace haven::fuzz
