// havend_fault: havend (HavendMain, the very same program) with the storage
// fault shim of fault_vfs.h under every database it opens, steered from the
// test through a control file. Test-only: it is built in tests/, never
// installed, and havend itself contains none of this.
//
// HAVEN_FAULT_CONTROL=<path> names the control file. Its one line is
//   <sequence number> <command>
// with the command one of
//   clear             the disk is healthy
//   full              every write answers SQLITE_FULL
//   fail-after <n>    the next n I/O operations succeed, every later one fails
//   report            no change: only rewrite the status (so that the counts
//                     the test reads include everything done before it asked)
// The command in the file when havend_fault starts is applied before
// HavendMain runs (a disk already dead at startup); later ones within a few
// milliseconds of being written. After each, and whenever the counts move,
// <path>.status is replaced (write, then rename) with
//   <last sequence applied> <operations counted> <operations failed>
// so the test knows the fault is in place and that it really hit something.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "app/havend_main.h"
#include "support/fault_vfs.h"

namespace {

using haven::testing::FaultVfs;

struct Command {
  long long sequence = -1;
  std::string verb;
  long long argument = 0;
};

// The control file's command; sequence -1 if there is none (yet).
Command ReadCommand(const std::string& path) {
  Command c;
  std::ifstream in(path);
  std::string line;
  if (!std::getline(in, line)) return c;
  std::istringstream fields(line);
  Command parsed;
  if (!(fields >> parsed.sequence >> parsed.verb)) return c;
  if (parsed.verb == "fail-after" && !(fields >> parsed.argument)) return c;
  return parsed;
}

void Apply(FaultVfs& vfs, const Command& c) {
  if (c.verb == "clear") {
    vfs.Clear();
  } else if (c.verb == "full") {
    vfs.Clear();
    vfs.DiskFull(true);
  } else if (c.verb == "fail-after") {
    // Not atomic with an operation already in flight, which may use up one
    // of the n: the sweep only needs the failure point to move.
    vfs.Clear();
    vfs.FailAfter(c.argument);
  } else if (c.verb != "report") {
    std::fprintf(stderr, "havend_fault: unknown command '%s' in the control file\n",
                 c.verb.c_str());
    std::fflush(stderr);
    ::_exit(2);  // not exit(): other threads are running
  }
}

void WriteStatus(const std::string& path, long long applied, const FaultVfs& vfs) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << applied << ' ' << vfs.operations() << ' ' << vfs.injected() << '\n';
  }
  std::rename(tmp.c_str(), path.c_str());
}

// Polls the control file; runs until the process exits.
void Steer(FaultVfs& vfs, std::string control, long long applied) {
  const std::string status = control + ".status";
  std::uint64_t operations = vfs.operations();
  std::uint64_t injected = vfs.injected();
  for (;;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    const Command c = ReadCommand(control);
    bool changed = false;
    if (c.sequence > applied) {
      Apply(vfs, c);
      applied = c.sequence;
      changed = true;
    }
    if (changed || vfs.operations() != operations || vfs.injected() != injected) {
      operations = vfs.operations();
      injected = vfs.injected();
      WriteStatus(status, applied, vfs);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  const char* control = std::getenv("HAVEN_FAULT_CONTROL");
  if (control == nullptr || *control == '\0') {
    std::fprintf(stderr, "havend_fault: set HAVEN_FAULT_CONTROL to the control file's path\n");
    return 2;
  }
  FaultVfs& vfs = FaultVfs::Install();
  const Command initial = ReadCommand(control);
  if (initial.sequence >= 0) Apply(vfs, initial);
  WriteStatus(std::string(control) + ".status", initial.sequence, vfs);
  std::thread(Steer, std::ref(vfs), std::string(control), initial.sequence).detach();
  const int status = haven::server::HavendMain(argc, argv);
  // The steering thread never stops: leave without running static
  // destructors under it.
  std::fflush(stdout);
  std::fflush(stderr);
  ::_exit(status);
}
