// havend's whole program: parse the command line, load the configuration and
// keys, open the database and serve until SIGINT or SIGTERM. Returns the
// process exit status (0 after a clean stop, 1 with a message on stderr
// when something must be fixed first).
//
// server/main.cc is nothing but a call to it. The one other caller is the
// test-only havend_fault (tests/support/havend_fault_main.cc), which puts a
// storage fault shim under SQLite first, so that the fault tests run exactly
// havend's code. Call it once per process, from main().
#pragma once

namespace haven::server {

int HavendMain(int argc, char** argv);

}  // namespace haven::server
