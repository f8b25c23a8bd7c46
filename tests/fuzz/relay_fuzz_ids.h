// How relay_* fuzz inputs (and their seeds, gen_corpus_more.cc) name the
// database ids of relay_fuzz_world.h, which are 16 random bytes each.
#pragma once

#include <cstdint>
#include <string_view>

namespace haven::fuzz {

// A 16-byte id in a frame that starts with these 15 bytes is replaced by
// known id number (16th byte mod the number of known ids) before parsing.
inline constexpr std::string_view kIdPlaceholder = "\x7fhaven-fuzz-id:";
static_assert(kIdPlaceholder.size() == 15);

// Indices into RelayWorld::ids().
enum KnownId : std::uint8_t {
  kConversationA = 0,  // claimed: survivor <-> counsellor
  kConversationB = 1,  // queued: second survivor
  kCounsellorId = 2,
  kColleagueId = 3,
  kSupervisorId = 4,
};

}  // namespace haven::fuzz
