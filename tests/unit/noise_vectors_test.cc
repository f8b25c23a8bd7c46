// Runs every cacophony vector whose protocol is 25519 + ChaChaPoly + one of
// SHA256, SHA512, BLAKE2b, for every handshake pattern: each handshake and
// transport ciphertext and the final handshake hash must match byte for byte.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cctype>
#include <map>
#include <set>

#include "haven/noise/handshake_state.h"
#include "support/vectors.h"

namespace haven::noise {
namespace {

using nlohmann::json;

Bytes Hex(const json& v, const char* key) {
  if (!v.contains(key)) return {};
  auto bytes = FromHex(v.at(key).get<std::string>());
  EXPECT_TRUE(bytes.has_value()) << "bad hex in field " << key;
  return bytes.value_or(Bytes{});
}

std::optional<KeyPair> KeyPairField(const json& v, const char* key) {
  if (!v.contains(key)) return std::nullopt;
  auto kp = KeyPair::FromPrivateKey(Hex(v, key));
  EXPECT_TRUE(kp.ok()) << kp.status().ToString();
  return std::move(kp).value();
}

std::optional<PublicKey> PublicKeyField(const json& v, const char* key) {
  if (!v.contains(key)) return std::nullopt;
  Bytes b = Hex(v, key);
  PublicKey pk{};
  EXPECT_EQ(b.size(), pk.size());
  std::copy_n(b.begin(), std::min(b.size(), pk.size()), pk.begin());
  return pk;
}

std::vector<SecureBuffer> Psks(const json& v, const char* key) {
  std::vector<SecureBuffer> out;
  if (!v.contains(key)) return out;
  for (const json& psk : v.at(key)) {
    auto b = FromHex(psk.get<std::string>());
    out.push_back(SecureBuffer::CopyOf(b.value_or(Bytes{})));
  }
  return out;
}

HandshakeConfig Config(const json& v, const std::string& name, Role role) {
  const char* side = role == Role::kInitiator ? "init_" : "resp_";
  auto field = [side](const char* suffix) { return std::string(side) + suffix; };
  HandshakeConfig c;
  c.protocol_name = name;
  c.role = role;
  c.prologue = Hex(v, field("prologue").c_str());
  c.s = KeyPairField(v, field("static").c_str());
  c.rs = PublicKeyField(v, field("remote_static").c_str());
  c.fixed_ephemeral_for_testing = KeyPairField(v, field("ephemeral").c_str());
  c.psks = Psks(v, field("psks").c_str());
  return c;
}

bool Selected(const std::string& name) {
  auto ends_with = [&name](std::string_view s) {
    return name.size() >= s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0;
  };
  return name.find("_25519_ChaChaPoly_") != std::string::npos &&
         (ends_with("_SHA256") || ends_with("_SHA512") || ends_with("_BLAKE2b"));
}

// Plays one vector: both sides, every message, both directions.
void RunVector(const json& v, const std::string& name, std::size_t* messages_checked) {
  auto init = HandshakeState::Create(Config(v, name, Role::kInitiator));
  auto resp = HandshakeState::Create(Config(v, name, Role::kResponder));
  ASSERT_TRUE(init.ok()) << init.status().ToString();
  ASSERT_TRUE(resp.ok()) << resp.status().ToString();
  std::optional<TransportState> init_t, resp_t;
  bool one_way = false;

  const json& messages = v.at("messages");
  for (std::size_t i = 0; i < messages.size(); ++i) {
    SCOPED_TRACE("message " + std::to_string(i));
    const Bytes payload = Hex(messages[i], "payload");
    const Bytes expected = Hex(messages[i], "ciphertext");
    Bytes wire, received;
    if (!init->IsComplete() || !resp->IsComplete()) {
      // Handshake: the writer is whoever's turn it is.
      HandshakeState& writer = init->IsMyTurn() ? *init : *resp;
      HandshakeState& reader = init->IsMyTurn() ? *resp : *init;
      ASSERT_TRUE(writer.WriteMessage(payload, &wire).ok());
      ASSERT_EQ(ToHex(wire), ToHex(expected));
      Status st = reader.ReadMessage(wire, &received);
      ASSERT_TRUE(st.ok()) << st.ToString();
      ASSERT_EQ(received, payload);
      if (init->IsComplete() && resp->IsComplete()) {
        ASSERT_EQ(ToHex(init->handshake_hash()), v.at("handshake_hash").get<std::string>());
        ASSERT_EQ(ToHex(resp->handshake_hash()), v.at("handshake_hash").get<std::string>());
        auto ti = init->Split();
        auto tr = resp->Split();
        ASSERT_TRUE(ti.ok() && tr.ok());
        init_t.emplace(std::move(ti).value());
        resp_t.emplace(std::move(tr).value());
        one_way = ParseProtocolName(name)->pattern.one_way;
      }
    } else {
      // Transport: cacophony keeps alternating after the handshake (the
      // initiator sends at even indices); one-way patterns only ever send
      // initiator -> responder.
      ASSERT_TRUE(init_t && resp_t);
      const bool from_initiator = one_way || i % 2 == 0;
      TransportState& writer = from_initiator ? *init_t : *resp_t;
      TransportState& reader = from_initiator ? *resp_t : *init_t;
      ASSERT_TRUE(writer.Encrypt(payload, &wire).ok());
      ASSERT_EQ(ToHex(wire), ToHex(expected));
      Status st = reader.Decrypt(wire, &received);
      ASSERT_TRUE(st.ok()) << st.ToString();
      ASSERT_EQ(received, payload);
    }
    ++*messages_checked;
  }
  ASSERT_TRUE(init_t.has_value()) << "vector ended before the handshake completed";
}

std::string NameOf(const json& v) {
  // Older files call the field "name".
  return v.contains("protocol_name") ? v.at("protocol_name").get<std::string>()
                                     : v.value("name", "");
}

// The whole file, with a count of what ran: 177 vectors over 59 patterns in
// the file shipped in shared/.
TEST(NoiseVectors, CacophonyAllPatterns25519ChaChaPoly) {
  HAVEN_REQUIRE_VECTOR_FILE(path, "noise/cacophony.json");
  const json doc = json::parse(testing::ReadFile(path));
  std::size_t vectors = 0, messages = 0;
  std::set<std::string> patterns;
  std::map<std::string, int> per_hash;
  for (const json& v : doc.at("vectors")) {
    const std::string name = NameOf(v);
    if (!Selected(name)) continue;
    SCOPED_TRACE(name);
    RunVector(v, name, &messages);
    if (::testing::Test::HasFatalFailure()) return;
    ++vectors;
    const auto first = name.find('_') + 1;
    patterns.insert(name.substr(first, name.find('_', first) - first));
    ++per_hash[name.substr(name.rfind('_') + 1)];
  }
  std::printf("[ noise    ] %zu vectors over %zu patterns, %zu messages checked "
              "(SHA256 %d, SHA512 %d, BLAKE2b %d)\n",
              vectors, patterns.size(), messages, per_hash["SHA256"], per_hash["SHA512"],
              per_hash["BLAKE2b"]);
  RecordProperty("vectors", static_cast<int>(vectors));
  EXPECT_EQ(vectors, 177u);
  EXPECT_EQ(patterns.size(), 59u);
  EXPECT_EQ(messages, 1062u);
}

// The same vectors, one test each, so that every vector appears by name in
// ctest's output. Listed when the test binary starts (ctest discovers them
// after the build); without the file the list is empty and the test above
// reports the skip or, with HAVEN_REQUIRE_VECTORS=1, the failure.
struct VectorCase {
  std::string name;
  json vector;
};

// Names the parameter in test listings instead of dumping its bytes.
void PrintTo(const VectorCase& c, std::ostream* os) { *os << c.name; }

std::vector<VectorCase> SelectedVectors() {
  std::vector<VectorCase> cases;
  const auto path = testing::VectorsDir() / "noise/cacophony.json";
  if (!std::filesystem::exists(path)) return cases;
  const json doc = json::parse(testing::ReadFile(path), nullptr, /*allow_exceptions=*/false);
  if (!doc.is_object() || !doc.contains("vectors")) return cases;
  for (const json& v : doc.at("vectors")) {
    const std::string name = NameOf(v);
    if (Selected(name)) cases.push_back({name, v});
  }
  return cases;
}

class NoiseVector : public ::testing::TestWithParam<VectorCase> {};

TEST_P(NoiseVector, EveryMessageAndTheHandshakeHashMatch) {
  std::size_t messages = 0;
  RunVector(GetParam().vector, GetParam().name, &messages);
  EXPECT_EQ(messages, GetParam().vector.at("messages").size());
}

INSTANTIATE_TEST_SUITE_P(Cacophony, NoiseVector, ::testing::ValuesIn(SelectedVectors()),
                         [](const ::testing::TestParamInfo<VectorCase>& param_info) {
                           std::string id = param_info.param.name;
                           for (char& c : id) {
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           }
                           return id;
                         });
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(NoiseVector);

}  // namespace
}  // namespace haven::noise
