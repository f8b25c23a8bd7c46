// The installed SDK's examples against a real havend (after HavenSdkInstall
// built them against a temporary prefix): each survivor example talks to a
// counsellor example, which claims the conversation, echoes every message
// and exits once the survivor has quick-exited.
//   examples/survivor.cpp (C++ API, libhaven.so)  <->  counsellor.c (CMake, libhaven.so)
//   haven_ctypes.py (Python ctypes)               <->  counsellor.c (CMake, libhaven.a)
//   haven_ctypes.py                               <->  counsellor.c (pkg-config build)
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <string>

#include "c/child_process.h"
#include "haven/common/bytes.h"
#include "support/havend_process.h"

namespace haven::testing {
namespace {

using std::chrono::seconds;

constexpr char kLeftQuickly[] = "the survivor used quick exit";

std::string Example(const std::string& name) {
  return std::string(HAVEN_EXAMPLES_BUILD) + "/" + name;
}

class SdkExamples : public ::testing::Test {
 protected:
  void SetUp() override {
    havend_ = HavendProcess::Start();
    ASSERT_NE(havend_, nullptr);
    invitation_ = havend_->Enrol();
    ASSERT_FALSE(invitation_.empty());
  }

  std::vector<std::string> ServerArgs() const {
    return {"127.0.0.1", std::to_string(havend_->port()), ToHex(havend_->server_key())};
  }

  // Starts a counsellor example and waits until it is enrolled, so that the
  // survivor's request finds someone to claim it.
  std::unique_ptr<ChildProcess> StartCounsellor(const std::string& binary) {
    if (!std::filesystem::exists(binary)) {
      ADD_FAILURE() << binary << " was not built (did HavenSdkInstall pass?)";
      return nullptr;
    }
    std::vector<std::string> argv{binary};
    for (auto& a : ServerArgs()) argv.push_back(a);
    argv.push_back(invitation_);
    auto child = std::make_unique<ChildProcess>(argv, std::map<std::string, std::string>{});
    EXPECT_TRUE(child->started());
    EXPECT_TRUE(child->WaitForOutput("enrolled", seconds(20)))
        << "counsellor output:\n" << child->output();
    return child;
  }

  static void ExpectCounsellorSawQuickExit(ChildProcess& counsellor) {
    EXPECT_EQ(counsellor.Wait(seconds(30)), 0) << "counsellor output:\n" << counsellor.output();
    EXPECT_NE(counsellor.output().find(kLeftQuickly), std::string::npos)
        << "counsellor output:\n" << counsellor.output();
  }

  void RunPythonSurvivorWith(const std::string& counsellor_binary) {
    if (std::string(HAVEN_PYTHON).empty()) GTEST_SKIP() << "python3 not found";
    auto counsellor = StartCounsellor(counsellor_binary);
    ASSERT_NE(counsellor, nullptr);
    std::vector<std::string> argv{HAVEN_PYTHON, HAVEN_PYTHON_EXAMPLE, "--lib", HAVEN_SDK_LIB};
    for (auto& a : ServerArgs()) argv.push_back(a);
    ChildProcess survivor(argv, {{"PYTHONDONTWRITEBYTECODE", "1"}});
    ASSERT_TRUE(survivor.started());
    EXPECT_EQ(survivor.Wait(seconds(60)), 0) << "python output:\n" << survivor.output();
    EXPECT_NE(survivor.output().find("echo: hello from python"), std::string::npos)
        << survivor.output();
    ExpectCounsellorSawQuickExit(*counsellor);
  }

  std::unique_ptr<HavendProcess> havend_;
  std::string invitation_;
};

TEST_F(SdkExamples, CppSurvivorAndCCounsellor) {
  auto counsellor = StartCounsellor(Example("counsellor"));
  ASSERT_NE(counsellor, nullptr);
  std::vector<std::string> argv{Example("survivor")};
  for (auto& a : ServerArgs()) argv.push_back(a);
  ChildProcess survivor(argv, {});
  ASSERT_TRUE(survivor.started());
  ASSERT_TRUE(survivor.WaitForOutput("conversation: active", seconds(30)))
      << "survivor output:\n" << survivor.output() << "\ncounsellor output:\n"
      << counsellor->output();
  ASSERT_TRUE(survivor.Write("hello from C++\n"));
  ASSERT_TRUE(survivor.WaitForOutput("counsellor: echo: hello from C++", seconds(30)))
      << "survivor output:\n" << survivor.output() << "\ncounsellor output:\n"
      << counsellor->output();
  // The quick-exit key: Escape, on its own, no Enter needed.
  ASSERT_TRUE(survivor.Write("\x1b"));
  EXPECT_EQ(survivor.Wait(seconds(20)), 0) << "survivor output:\n" << survivor.output();
  EXPECT_NE(survivor.output().find("quick exit done"), std::string::npos) << survivor.output();
  ExpectCounsellorSawQuickExit(*counsellor);
}

TEST_F(SdkExamples, PythonSurvivorAndStaticCounsellor) {
  RunPythonSurvivorWith(Example("counsellor_static"));
}

TEST_F(SdkExamples, PythonSurvivorAndPkgConfigCounsellor) {
  RunPythonSurvivorWith(Example("counsellor_pkgconfig"));
}

}  // namespace
}  // namespace haven::testing
