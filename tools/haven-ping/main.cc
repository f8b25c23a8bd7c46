// haven-ping: connects to havend over haven/1 with the server key pinned and
// measures Ping round trips. The quickest check that a deployment answers.
#include <chrono>
#include <cstdio>
#include <string>

#include <CLI/CLI.hpp>

#include "transport/connection.h"

int main(int argc, char** argv) {
  using namespace haven;
  CLI::App app{"haven-ping: check that havend answers, through the pinned Noise handshake"};
  std::string host = "127.0.0.1";
  int port = 7420;
  std::string key_hex;
  int count = 3;
  app.add_option("--host", host, "Server address (numeric)");
  app.add_option("--port", port, "Server port")->check(CLI::Range(1, 65535));
  app.add_option("--server-key", key_hex, "Server public key, 64 hex characters (havend prints it)")
      ->required();
  app.add_option("--count", count, "Number of pings")->check(CLI::Range(1, 100000));
  CLI11_PARSE(app, argc, argv);

  client::ConnectOptions options;
  options.host = host;
  options.port = static_cast<std::uint16_t>(port);
  if (!DecodeHexInto(key_hex, options.server_key)) {
    std::fprintf(stderr, "haven-ping: --server-key must be 64 hexadecimal characters\n");
    return 2;
  }
  const auto t0 = std::chrono::steady_clock::now();
  auto conn = client::Connection::Connect(options);
  if (!conn.ok()) {
    std::fprintf(stderr, "haven-ping: %s\n", conn.status().message().c_str());
    return 1;
  }
  const auto t1 = std::chrono::steady_clock::now();
  std::printf("connected and authenticated the server in %.2f ms\n",
              std::chrono::duration<double, std::milli>(t1 - t0).count());
  for (int i = 0; i < count; ++i) {
    const auto start = std::chrono::steady_clock::now();
    auto reply = (*conn)->Ping("haven-ping", std::chrono::seconds(5));
    if (!reply.ok()) {
      std::fprintf(stderr, "haven-ping: %s\n", reply.status().message().c_str());
      return 1;
    }
    if (!reply->response().has_pong()) {
      std::fprintf(stderr, "haven-ping: server answered with an error: %s\n",
                   reply->response().error().message().c_str());
      return 1;
    }
    std::printf("pong %d: %.3f ms\n", i + 1,
                std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
                    .count());
  }
  return 0;
}
