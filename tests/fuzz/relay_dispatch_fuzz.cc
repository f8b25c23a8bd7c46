// Fuzz target: the relay's request dispatch (server/service/relay.*) for one
// role, chosen at build time: HAVEN_FUZZ_ROLE 1 survivor, 2 counsellor,
// 3 supervisor (targets relay_survivor, relay_counsellor, relay_supervisor).
// The relay, its storage thread and a real SQLCipher database run as in
// relay_fuzz_world.h; the world starts again every kInputsPerWorld inputs.
//
// Input: a sequence of steps, each an operation byte (low two bits):
//   0  the next record is a haven.v1.Frame from the fuzzed role's client
//   1  the next record is a Frame from its partner (the counsellor for a
//      survivor or supervisor, the survivor for a counsellor)
//   2  the fuzzed client's connection ends and a new one comes in
//   3  the next byte * 61 seconds pass; odd: retention sweeps
// A record is parsed after its id placeholders are filled in
// (kIdPlaceholder); what is not a request, and Ping, never reach the relay
// (ConnectionProtocol answers those), so they are skipped here too.
//
// Checked: the relay never crashes, hangs or touches freed memory (ASan);
// every request but a survivor's quick exit is answered exactly once, with
// its own request id, and nothing answers a request that was not asked.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "fuzz_check.h"
#include "fuzz_reader.h"
#include "relay_fuzz_world.h"

#ifndef HAVEN_FUZZ_ROLE
#error "HAVEN_FUZZ_ROLE must be 1 (survivor), 2 (counsellor) or 3 (supervisor)"
#endif

namespace {

using haven::ByteView;
namespace fz = haven::fuzz;
namespace v1 = haven::v1;
using World = fz::RelayWorld;

constexpr int kInputsPerWorld = 200;

// One world per process; deleted at exit so that its database directory in
// /dev/shm goes too (after a crash it stays, named by the process id).
World* g_world = nullptr;
void DeleteWorld() {
  delete g_world;
  g_world = nullptr;
}

constexpr std::size_t FuzzedActor() {
  return HAVEN_FUZZ_ROLE == 1 ? World::kSurvivor
         : HAVEN_FUZZ_ROLE == 2 ? World::kCounsellor
                                : World::kSupervisor;
}
constexpr std::size_t PartnerActor() {
  return HAVEN_FUZZ_ROLE == 2 ? World::kSurvivor : World::kCounsellor;
}

bool ReachesRelay(const v1::Frame& f) {
  return f.has_request() && f.request().kind_case() != v1::Request::kPing &&
         f.request().kind_case() != v1::Request::KIND_NOT_SET;
}

void SendFrom(World& world, std::size_t who, ByteView record, std::uint64_t request_id) {
  std::string bytes(record.begin(), record.end());
  world.ApplyPlaceholders(&bytes);
  v1::Frame frame;
  if (!frame.ParseFromString(bytes) || !ReachesRelay(frame)) return;
  const bool quick_exit = frame.request().has_quick_exit();
  std::size_t answers = 0;
  for (const v1::Frame& f : world.Ask(who, std::move(frame), request_id)) {
    world.Learn(f);
    if (!f.has_response()) continue;  // events: queue changes, envelopes, ...
    HAVEN_FUZZ_CHECK(f.request_id() == request_id);  // an answer nobody asked for
    ++answers;
  }
  // A survivor's quick exit is answered with nothing; anything else once.
  HAVEN_FUZZ_CHECK(answers == 1 || (quick_exit && answers == 0));
  if (world.actor(who).peer->closed()) world.Reconnect(who);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (g_world == nullptr) {
    g_world = new World();
    std::atexit(DeleteWorld);
  }
  World* world = g_world;
  static int inputs = 0;
  if (++inputs % kInputsPerWorld == 0) world->Reset();

  fz::Reader reader(ByteView(data, size));
  std::uint64_t request_id = 100;
  for (int step = 0; step < 64 && !reader.done(); ++step) {
    switch (reader.Byte() & 3u) {
      case 0:
        SendFrom(*world, FuzzedActor(), reader.Record(), ++request_id);
        break;
      case 1:
        SendFrom(*world, PartnerActor(), reader.Record(), ++request_id);
        break;
      case 2:
        world->Reconnect(FuzzedActor());
        break;
      default: {
        const std::uint8_t minutes = reader.Byte();
        world->now() += static_cast<std::int64_t>(minutes) * 61;
        if ((minutes & 1u) != 0) {
          world->relay().Sweep();
          world->Settle();
        }
        break;
      }
    }
  }
  // The partner's inbox is only of interest within a step.
  world->actor(PartnerActor()).peer->Take();
  return 0;
}
