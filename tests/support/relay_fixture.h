// A fixture for tests against a real havend: start it, make survivors and
// enrolled counsellors, a claimed conversation, and open its database.
#pragma once

#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <memory>
#include <string>

#include "store/server_store.h"
#include "support/files.h"
#include "support/havend_process.h"
#include "support/relay_client.h"

namespace haven::testing {

// The server's database, opened with its key beside the running server
// (never advancing the boot epoch).
inline Result<std::unique_ptr<server::ServerStore>> OpenServerDatabase(const HavendProcess& s) {
  const std::string key = ReadFile(s.DatabaseKeyPath());
  return server::ServerStore::Open(s.DatabasePath(), AsBytes(key), /*start_boot=*/false);
}

class RelayServerTest : public ::testing::Test {
 protected:
  void StartServer(const std::string& toml = "") {
    server_ = HavendProcess::Start(toml);
    ASSERT_NE(server_, nullptr);
  }

  std::unique_ptr<RelayClient> Survivor() {
    auto c = std::make_unique<RelayClient>(*server_);
    EXPECT_TRUE(c->Connect()) << c->last_error().ToString();
    return c;
  }

  std::unique_ptr<RelayClient> Counsellor(const std::string& role = "counsellor") {
    auto c = std::make_unique<RelayClient>(*server_);
    EXPECT_TRUE(c->Connect()) << c->last_error().ToString();
    auto r = c->Redeem(server_->Enrol(role));
    EXPECT_TRUE(r.ok() && r->has_invitation_redeemed()) << RelayClient::Describe(r);
    return c;
  }

  // A survivor's conversation claimed by a counsellor.
  struct Pair {
    std::unique_ptr<RelayClient> survivor;
    std::unique_ptr<RelayClient> counsellor;
    std::string id;
  };
  Pair Claimed() {
    Pair p{Survivor(), Counsellor(), ""};
    p.id = p.survivor->OpenId();
    auto claim = p.counsellor->Claim(p.id);
    EXPECT_TRUE(claim.ok() && claim->has_conversation_claimed()) << RelayClient::Describe(claim);
    return p;
  }

  Result<std::unique_ptr<server::ServerStore>> OpenDatabase() {
    return OpenServerDatabase(*server_);
  }

  std::unique_ptr<HavendProcess> server_;
};

}  // namespace haven::testing
