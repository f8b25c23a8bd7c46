// Runs tests/c/haven_c_test.c (pure C, linked against libhaven.so) against a
// real havend: this launcher only starts the server, enrols a counsellor and
// hands the C program the port, the server key and the invitation code.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>

#include "c/child_process.h"
#include "haven/common/bytes.h"
#include "support/havend_process.h"

namespace haven::testing {
namespace {

TEST(CAbi, EndToEndFromC) {
  auto havend = HavendProcess::Start();
  ASSERT_NE(havend, nullptr);
  const std::string invitation = havend->Enrol();
  ASSERT_FALSE(invitation.empty());
  const std::string supervisor_invitation = havend->Enrol("supervisor");
  ASSERT_FALSE(supervisor_invitation.empty());

  ChildProcess child({HAVEN_C_TEST_PATH},
                     {{"HAVEN_TEST_HOST", "127.0.0.1"},
                      {"HAVEN_TEST_PORT", std::to_string(havend->port())},
                      {"HAVEN_TEST_SERVER_KEY", ToHex(havend->server_key())},
                      {"HAVEN_TEST_INVITATION", invitation},
                      {"HAVEN_TEST_SUPERVISOR_INVITATION", supervisor_invitation}});
  ASSERT_TRUE(child.started());
  // The C program has its own per-step timeouts and a watchdog alarm; this
  // deadline only guards against the watchdog failing too.
  const int code = child.Wait(std::chrono::seconds(150));
  EXPECT_EQ(code, 0) << "haven_c_test output:\n" << child.output();
  if (code == 0) std::printf("%s", child.output().c_str());  // timings, event trace
}

}  // namespace
}  // namespace haven::testing
