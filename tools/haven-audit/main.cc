// haven-audit: reads havend's sealed audit log with the helpline's audit
// private key. It belongs on the helpline's own machine, never on the
// server: havend and haven-admin can append to the log but hold no code that
// opens a sealed blob (tests/havend_cannot_open_sealed_blobs.sh checks
// that). Run it on a copy of the data directory (or beside a stopped or
// running havend: it only reads).
//
//   haven-audit --data-dir <copy of the data directory> --audit-key audit.key
#include <sodium.h>

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>

#include <CLI/CLI.hpp>

#include "config/config.h"
#include "config/deployment.h"
#include "haven/common/bytes.h"
#include "haven/common/secure_memory.h"
#include "haven/v1/frame.pb.h"
#include "store/server_store.h"

namespace {

using namespace haven;
using namespace haven::server;

int Fail(const Status& st) {
  std::fprintf(stderr, "haven-audit: %s\n", st.message().c_str());
  return 1;
}

// Opens the audit log with the helpline's audit private key, which never
// stays on the server: havend can append to the log but not read it.
int Audit(const Config& config, const std::string& key_path) {
  auto secret = ReadKeyFile(key_path);
  if (!secret.ok()) return Fail(secret.status());
  auto kp = noise::KeyPair::FromPrivateKey(secret->view());
  if (!kp.ok()) return Fail(kp.status());
  DeploymentOptions options;
  options.database_key_hex = std::getenv("HAVEN_DB_KEY");
  auto d = LoadDeployment(config, config.data_dir, options);
  if (!d.ok()) return Fail(d.status());
  auto store = ServerStore::Open(d->database_path, d->database_key.view(), /*start_boot=*/false);
  if (!store.ok()) return Fail(store.status());
  auto rows = (*store)->ReadAudit();
  if (!rows.ok()) return Fail(rows.status());
  const auto short_id = [](const std::string& bytes) {
    return bytes.empty() ? std::string("-") : ToHex(AsBytes(bytes)).substr(0, 8);
  };
  std::size_t unreadable = 0;
  for (const AuditRow& row : *rows) {
    if (row.sealed.size() <= crypto_box_SEALBYTES) {
      ++unreadable;
      continue;
    }
    SecureBuffer plain(row.sealed.size() - crypto_box_SEALBYTES);
    if (crypto_box_seal_open(plain.data(), row.sealed.data(), row.sealed.size(),
                             kp->public_key.data(), kp->private_key.data()) != 0) {
      ++unreadable;
      continue;
    }
    v1::AuditRecord r;
    if (!r.ParseFromArray(plain.data(), static_cast<int>(plain.size()))) {
      ++unreadable;
      continue;
    }
    std::string kind = v1::AuditRecord::Kind_Name(r.kind());
    kind = kind.substr(kind.find('_') + 1);  // KIND_CLAIMED -> CLAIMED
    for (char& ch : kind) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    const std::time_t hour = static_cast<std::time_t>(r.hour() * 3600);
    char when[32];
    std::strftime(when, sizeof when, "%Y-%m-%d %H:00", std::gmtime(&hour));
    std::printf("%s UTC  %-20s conversation %s  counsellor %s", when, kind.c_str(),
                short_id(r.conversation_id()).c_str(), short_id(r.counsellor_id()).c_str());
    if (!r.target_counsellor_id().empty()) {
      std::printf("  to %s", short_id(r.target_counsellor_id()).c_str());
    }
    if (r.kind() == v1::AuditRecord::KIND_TRANSFERRED && r.target_counsellor_id().empty()) {
      std::printf("  to the queue%s%s", r.target_language().empty() ? "" : " in ",
                  r.target_language().c_str());
    }
    if (r.kind() == v1::AuditRecord::KIND_BLOCKED) std::printf("  for %u hours", r.block_hours());
    if (r.kind() == v1::AuditRecord::KIND_FLAGGED) {
      std::printf("  high_risk=%s minor=%s", r.high_risk() ? "yes" : "no", r.minor() ? "yes" : "no");
    }
    std::printf("\n");
  }
  std::printf("%zu audit events", rows->size() - unreadable);
  if (unreadable > 0) std::printf(", %zu not readable with this key", unreadable);
  std::printf("\n");
  return unreadable > 0 && unreadable == rows->size() ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"haven-audit: read a Haven deployment's sealed audit log (on the helpline's machine)"};
  std::string data_dir, config_path, key_path;
  app.add_option("--data-dir", data_dir, "The deployment's data directory (or a copy of it)")
      ->required();
  app.add_option("--config", config_path, "havend.toml, if it renames the database or key files");
  app.add_option("--audit-key", key_path,
                 "The helpline's audit private key (32 bytes; from haven-admin init or havend --init)")
      ->required();
  CLI11_PARSE(app, argc, argv);
  if (sodium_init() < 0) return Fail(Status::Internal("libsodium could not be initialised"));
  Config config;
  if (!config_path.empty()) {
    auto loaded = LoadConfigFile(config_path);
    if (!loaded.ok()) return Fail(loaded.status());
    config = std::move(loaded).value();
  }
  config.data_dir = data_dir;
  return Audit(config, key_path);
}
