// End to end through a real havend: the counsellor's device publishes
// prekeys, the survivor runs X3DH against them, and ratcheted messages flow
// both ways inside envelopes. Afterwards, nothing havend wrote (database,
// WAL, logs) contains any of the plaintext.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "e2e/envelope.h"
#include "e2e/sealing.h"
#include "support/relay_fixture.h"

namespace haven {
namespace {

using namespace std::chrono_literals;
using testing::RelayClient;
namespace fs = std::filesystem;

constexpr char kMarker[] = "PLAINTEXT-MARKER-7f3a";

std::string Text(const SecureBuffer& b) { return std::string(b.view().begin(), b.view().end()); }

std::string Str(const auto& bytes) { return std::string(bytes.begin(), bytes.end()); }

class E2eTest : public testing::RelayServerTest {};

// The counsellor's device: identity, signed prekey, one-time prekeys.
struct CounsellorDevice {
  e2e::IdentityKey identity = e2e::IdentityKey::Generate();
  e2e::SignedPrekey spk = e2e::SignedPrekey::Make(identity, 1);
  std::map<std::uint32_t, e2e::OneTimePrekey> one_time;

  v1::Request Publish(std::uint32_t first_id, int count) {
    v1::Request r;
    v1::PublishPrekeys* p = r.mutable_publish_prekeys();
    p->set_identity_key(Str(identity.public_key().Encode()));
    p->mutable_signed_prekey()->set_id(spk.id);
    p->mutable_signed_prekey()->set_public_key(Str(spk.key.public_key));
    p->mutable_signed_prekey()->set_signature(Str(spk.signature));
    for (int i = 0; i < count; ++i) {
      const std::uint32_t id = first_id + static_cast<std::uint32_t>(i);
      e2e::OneTimePrekey k{id, e2e::DhKeyPair::Generate()};
      v1::OneTimePrekey* o = p->add_one_time_prekeys();
      o->set_id(id);
      o->set_public_key(Str(k.key.public_key));
      one_time.emplace(id, std::move(k));
    }
    return r;
  }
};

TEST_F(E2eTest, RatchetedConversationThroughHavendLeavesNoPlaintextBehind) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  auto survivor = Survivor();
  auto counsellor = Counsellor();
  CounsellorDevice device;
  auto published = counsellor->Ask(device.Publish(100, 12));
  ASSERT_TRUE(published.ok() && published->has_prekeys_published()) << RelayClient::Describe(published);
  EXPECT_EQ(published->prekeys_published().one_time_prekeys_available(), 12u);

  // The helpline's intake key: the survivor seals triage answers to it.
  const e2e::DhKeyPair helpline = e2e::DhKeyPair::Generate();
  auto intake = e2e::SealToHelpline(helpline.public_key, AsBytes(std::string(kMarker) + "-intake"));
  ASSERT_TRUE(intake.ok());
  auto opened = survivor->Open("en", 2, Str(*intake));
  ASSERT_TRUE(opened.ok() && opened->has_conversation_opened());
  const std::string id = opened->conversation_opened().conversation().conversation_id();
  ASSERT_TRUE(counsellor->Claim(id)->has_conversation_claimed());

  // Survivor: X3DH against the claiming counsellor's bundle.
  v1::Request get;
  get.mutable_get_prekey_bundle()->set_conversation_id(id);
  auto bundle_reply = survivor->Ask(get);
  ASSERT_TRUE(bundle_reply.ok() && bundle_reply->has_prekey_bundle()) << RelayClient::Describe(bundle_reply);
  const v1::PrekeyBundle& wire = bundle_reply->prekey_bundle();
  e2e::PrekeyBundle bundle;
  bundle.identity = *e2e::IdentityPublic::Decode(AsBytes(wire.identity_key()));
  bundle.signed_prekey_id = wire.signed_prekey().id();
  std::memcpy(bundle.signed_prekey.data(), wire.signed_prekey().public_key().data(), 32);
  std::memcpy(bundle.signature.data(), wire.signed_prekey().signature().data(), 64);
  ASSERT_TRUE(wire.has_one_time_prekey());
  crypto::X25519Public opk{};
  std::memcpy(opk.data(), wire.one_time_prekey().public_key().data(), 32);
  bundle.one_time_prekey = std::pair{wire.one_time_prekey().id(), opk};
  const e2e::IdentityKey survivor_identity = e2e::IdentityKey::Generate();
  auto init = e2e::InitiateX3dh(survivor_identity, bundle);
  ASSERT_TRUE(init.ok()) << init.status().ToString();
  auto alice = e2e::DoubleRatchet::InitInitiator(init->secrets.shared_secret.view(),
                                                 bundle.signed_prekey, init->secrets.associated_data);
  ASSERT_TRUE(alice.ok());

  std::optional<e2e::DoubleRatchet> bob;
  constexpr int kRounds = 10;
  for (int i = 0; i < kRounds; ++i) {
    // Survivor -> counsellor.
    const std::string text = std::string(kMarker) + "-survivor-" + std::to_string(i);
    auto ratchet = alice->Encrypt(AsBytes(text));
    ASSERT_TRUE(ratchet.ok());
    const Bytes envelope = i == 0 ? e2e::EncodeSessionStart(init->message, *ratchet)
                                  : e2e::EncodeMessage(*ratchet);
    ASSERT_TRUE(survivor->Send(id, Str(envelope))->has_envelope_accepted());
    auto delivered = counsellor->WaitEnvelope();
    ASSERT_TRUE(delivered.has_value());
    auto decoded = e2e::DecodeEnvelope(AsBytes(delivered->ciphertext()));
    ASSERT_TRUE(decoded.has_value());
    if (decoded->session_start) {
      const auto opk_id = decoded->session_start->one_time_prekey_id;
      ASSERT_TRUE(opk_id.has_value());
      auto k = device.one_time.find(*opk_id);
      ASSERT_NE(k, device.one_time.end());
      auto secrets = e2e::RespondX3dh(device.identity, device.spk, &k->second, *decoded->session_start);
      ASSERT_TRUE(secrets.ok());
      device.one_time.erase(k);  // used once
      bob.emplace(std::move(e2e::DoubleRatchet::InitResponder(secrets->shared_secret.view(),
                                                              device.spk.key.Clone(),
                                                              secrets->associated_data))
                      .value());
      EXPECT_EQ(e2e::SafetyNumber(survivor_identity.public_key(), device.identity.public_key()),
                e2e::SafetyNumber(decoded->session_start->initiator, device.identity.public_key()));
    }
    ASSERT_TRUE(bob.has_value());
    auto plain = bob->Decrypt(decoded->ratchet_message);
    ASSERT_TRUE(plain.ok()) << plain.status().ToString();
    EXPECT_EQ(Text(*plain), text);
    ASSERT_TRUE(counsellor->Ack(id, delivered->seq())->has_done());

    // Counsellor -> survivor.
    const std::string reply = std::string(kMarker) + "-counsellor-" + std::to_string(i);
    auto back = bob->Encrypt(AsBytes(reply));
    ASSERT_TRUE(counsellor->Send(id, Str(e2e::EncodeMessage(*back)))->has_envelope_accepted());
    auto got = survivor->WaitEnvelope();
    ASSERT_TRUE(got.has_value());
    auto d2 = e2e::DecodeEnvelope(AsBytes(got->ciphertext()));
    ASSERT_TRUE(d2.has_value());
    EXPECT_EQ(Text(*alice->Decrypt(d2->ratchet_message)), reply);
    ASSERT_TRUE(survivor->Ack(id, got->seq())->has_done());
  }
  // The counsellor can open the sealed intake with the helpline key.
  EXPECT_EQ(Text(*e2e::OpenHelplineBlob(helpline, *intake)), std::string(kMarker) + "-intake");

  // Leave some ciphertext waiting in the database too, then stop havend and
  // search every byte it wrote.
  counsellor->Disconnect();
  ASSERT_TRUE(survivor->Send(id, Str(e2e::EncodeMessage(*alice->Encrypt(AsBytes(kMarker)))))
                  ->has_envelope_accepted());
  survivor->Disconnect();
  const std::string data_dir = server_->data_dir().string();
  ASSERT_EQ(server_->Terminate(), 0);
  std::string everything = server_->Output();
  std::size_t files = 0;
  for (const auto& entry : fs::directory_iterator(data_dir)) {
    everything += testing::ReadFile(entry.path());
    ++files;
  }
  EXPECT_GE(files, 3u);
  EXPECT_EQ(everything.find(kMarker), std::string::npos) << "plaintext found in what havend wrote";
  // And the database does hold the waiting envelope (so the search was not vacuous).
  auto db = OpenDatabase();
  ASSERT_TRUE(db.ok());
  EXPECT_EQ((*db)->Counts()->envelopes, 1);
}

TEST_F(E2eTest, PrekeysAreCheckedHandedOutOnceAndReportedLow) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  auto counsellor = Counsellor();
  CounsellorDevice device;
  // A forged signature is refused.
  v1::Request forged = device.Publish(1, 1);
  (*forged.mutable_publish_prekeys()->mutable_signed_prekey()->mutable_signature())[0] ^= 1;
  EXPECT_EQ(RelayClient::ErrorOf(counsellor->Ask(forged)), v1::ERROR_CODE_INVALID_ARGUMENT);
  // A survivor cannot publish.
  auto survivor = Survivor();
  EXPECT_EQ(RelayClient::ErrorOf(survivor->Ask(device.Publish(50, 1))),
            v1::ERROR_CODE_PERMISSION_DENIED);

  const std::string id = survivor->OpenId();
  ASSERT_TRUE(counsellor->Claim(id)->has_conversation_claimed());
  v1::Request get;
  get.mutable_get_prekey_bundle()->set_conversation_id(id);
  EXPECT_EQ(RelayClient::ErrorOf(survivor->Ask(get)), v1::ERROR_CODE_PREKEYS_UNAVAILABLE);

  ASSERT_TRUE(counsellor->Ask(device.Publish(200, 11))->has_prekeys_published());
  // Ids already in the pool are refused (the pool and the database stay in step).
  EXPECT_EQ(RelayClient::ErrorOf(counsellor->Ask(device.Publish(205, 1))),
            v1::ERROR_CODE_INVALID_ARGUMENT);
  // Another identity for the same device is refused.
  CounsellorDevice impostor;
  EXPECT_EQ(RelayClient::ErrorOf(counsellor->Ask(impostor.Publish(300, 1))),
            v1::ERROR_CODE_PERMISSION_DENIED);

  std::set<std::uint32_t> handed_out;
  for (int i = 0; i < 13; ++i) {
    auto r = survivor->Ask(get);
    ASSERT_TRUE(r.ok() && r->has_prekey_bundle()) << RelayClient::Describe(r);
    if (r->prekey_bundle().has_one_time_prekey()) {
      EXPECT_TRUE(handed_out.insert(r->prekey_bundle().one_time_prekey().id()).second)
          << "a one-time prekey was handed out twice";
    }
  }
  EXPECT_EQ(handed_out.size(), 11u);  // then bundles come without one
  auto low = counsellor->WaitEvent([](const v1::Event& e) { return e.has_prekeys_low(); });
  ASSERT_TRUE(low.has_value());
  EXPECT_LT(low->prekeys_low().one_time_prekeys_available(), 10u);
  // Rotation: a new signed prekey replaces the old one in every later bundle.
  device.spk = e2e::SignedPrekey::Make(device.identity, 2);
  ASSERT_TRUE(counsellor->Ask(device.Publish(400, 5))->has_prekeys_published());
  auto rotated = survivor->Ask(get);
  ASSERT_TRUE(rotated.ok() && rotated->has_prekey_bundle());
  EXPECT_EQ(rotated->prekey_bundle().signed_prekey().id(), 2u);
  EXPECT_EQ(rotated->prekey_bundle().signed_prekey().public_key(), Str(device.spk.key.public_key));
  // Nobody else's conversation.
  auto outsider = Survivor();
  EXPECT_EQ(RelayClient::ErrorOf(outsider->Ask(get)), v1::ERROR_CODE_NOT_FOUND);
}

}  // namespace
}  // namespace haven
