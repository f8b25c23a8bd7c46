#include "e2e/sealing.h"

namespace haven::e2e {
namespace {
constexpr std::uint8_t kBlobVersion = 0x01;
}  // namespace

Result<Bytes> SealToHelpline(const crypto::X25519Public& helpline_public, ByteView plaintext) {
  HAVEN_ASSIGN_OR_RETURN(Bytes sealed, crypto::Seal(helpline_public, plaintext));
  Bytes out;
  out.reserve(sealed.size() + 1);
  out.push_back(kBlobVersion);
  out.insert(out.end(), sealed.begin(), sealed.end());
  return out;
}

Result<SecureBuffer> OpenHelplineBlob(const DhKeyPair& helpline_key, ByteView blob) {
  if (blob.empty() || blob[0] != kBlobVersion) return Status::DataLoss("not a sealed helpline blob");
  return crypto::OpenSealed(helpline_key.public_key, helpline_key.private_key.view(),
                            blob.subspan(1));
}

Result<Bytes> SealKeyForDevice(const IdentityPublic& device, const DhKeyPair& helpline_key) {
  return SealToHelpline(device.dh, helpline_key.private_key.view());
}

Result<DhKeyPair> OpenKeyOnDevice(const IdentityKey& device, ByteView sealed_key) {
  HAVEN_ASSIGN_OR_RETURN(SecureBuffer key, OpenHelplineBlob(device.dh, sealed_key));
  if (key.size() != 32) return Status::DataLoss("sealed key has the wrong size");
  return DhKeyPair::FromPrivate(key.view());
}

}  // namespace haven::e2e
