// Constants of the haven/1 transport (docs/protocol.md), shared by both ends.
#pragma once

#include <string_view>

namespace haven {

// The Noise prologue: binds the handshake to protocol version 1.
inline constexpr std::string_view kHavenPrologue = "haven/1";
inline constexpr std::string_view kHavenNoiseProtocol = "Noise_XK_25519_ChaChaPoly_BLAKE2b";

}  // namespace haven
