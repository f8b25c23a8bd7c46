#include "e2e/sealing.h"

#include <gtest/gtest.h>

namespace haven::e2e {
namespace {

TEST(Sealing, IntakeOpensOnlyOnAnEnrolledCounsellorDevice) {
  const DhKeyPair helpline = DhKeyPair::Generate();
  // The survivor's app knows only the public half (from its configuration).
  auto blob = SealToHelpline(helpline.public_key, AsBytes("age band: 16-17; safe to call: no"));
  ASSERT_TRUE(blob.ok());
  // At enrolment the helpline seals its private key to the device.
  const IdentityKey device = IdentityKey::Generate();
  auto sealed_key = SealKeyForDevice(device.public_key(), helpline);
  ASSERT_TRUE(sealed_key.ok());
  auto on_device = OpenKeyOnDevice(device, *sealed_key);
  ASSERT_TRUE(on_device.ok());
  auto opened = OpenHelplineBlob(*on_device, *blob);
  ASSERT_TRUE(opened.ok());
  EXPECT_EQ(std::string(opened->view().begin(), opened->view().end()),
            "age band: 16-17; safe to call: no");
  // Another device cannot take the key, and another key cannot open the blob.
  EXPECT_FALSE(OpenKeyOnDevice(IdentityKey::Generate(), *sealed_key).ok());
  EXPECT_FALSE(OpenHelplineBlob(DhKeyPair::Generate(), *blob).ok());
  Bytes tampered = *blob;
  tampered.back() ^= 1;
  EXPECT_FALSE(OpenHelplineBlob(helpline, tampered).ok());
}

}  // namespace
}  // namespace haven::e2e
