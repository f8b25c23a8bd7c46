// Handshake patterns of the Noise specification (revision 34, section 7 and
// section 9 for the pskN modifiers), held as data. HandshakeState interprets
// them; nothing in the state machine is specific to one pattern.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "haven/common/status.h"
#include "haven/noise/primitives.h"

namespace haven::noise {

enum class Token { kE, kS, kEE, kES, kSE, kSS, kPsk };

struct HandshakePattern {
  std::string name;                          // e.g. "XK", "NNpsk0+psk2"
  std::vector<Token> initiator_premessage;   // "-> ..." before "..."
  std::vector<Token> responder_premessage;   // "<- ..." before "..."
  std::vector<std::vector<Token>> messages;  // [0] initiator->responder, then alternating
  bool one_way = false;                      // N, K, X: transport flows initiator->responder only
  bool has_psk = false;
};

// Looks up a fundamental, deferred or one-way pattern and applies pskN
// modifiers. InvalidArgument for an unknown pattern or a bad modifier.
Result<HandshakePattern> LookupPattern(std::string_view name);

// A parsed "Noise_<pattern>_25519_ChaChaPoly_<hash>" name. Other DH and cipher
// functions are not implemented and are rejected.
struct ProtocolName {
  HandshakePattern pattern;
  HashAlgorithm hash = HashAlgorithm::kBlake2b;
  std::string full;
};
Result<ProtocolName> ParseProtocolName(std::string_view name);

}  // namespace haven::noise
