// haven-admin: one command per operator task on a havend deployment.
//   init           create a deployment (keys, database, config)
//   enrol          a one-time, expiring invitation code for a counsellor device
//   rotate-db-key  re-encrypt the database under a new key
//   purge          apply retention now
//   stats          counts only, never content
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <string>

#include <CLI/CLI.hpp>

#include "config/config.h"
#include "config/deployment.h"
#include "haven/common/bytes.h"
#include "service/invitation.h"
#include "store/server_store.h"

namespace {

using namespace haven;
using namespace haven::server;
namespace fs = std::filesystem;

int Fail(const Status& status) {
  std::fprintf(stderr, "haven-admin: %s\n", status.message().c_str());
  return 1;
}

int Fail(const std::string& message) {
  std::fprintf(stderr, "haven-admin: %s\n", message.c_str());
  return 1;
}

std::int64_t Now() { return static_cast<std::int64_t>(std::time(nullptr)); }

struct Common {
  std::string data_dir;  // empty: server.data_dir of --config, else ".haven"
  std::string config_path;
};

Result<Config> LoadConfig(const Common& common) {
  Config config;
  if (!common.config_path.empty()) {
    HAVEN_ASSIGN_OR_RETURN(config, LoadConfigFile(common.config_path));
  }
  if (!common.data_dir.empty()) config.data_dir = common.data_dir;
  return config;
}

// Opens the deployment's database (never advancing the boot epoch).
Result<std::unique_ptr<ServerStore>> OpenStore(const Config& config, bool create) {
  DeploymentOptions options;
  options.create_if_missing = create;
  options.database_key_hex = std::getenv("HAVEN_DB_KEY");
  HAVEN_ASSIGN_OR_RETURN(Deployment d, LoadDeployment(config, config.data_dir, options));
  return ServerStore::Open(d.database_path, d.database_key.view(), /*start_boot=*/false);
}

// True if `inner` is `outer` or lies below it, after resolving symbolic links,
// "..", and trailing slashes (for the parts that exist).
bool IsWithin(const fs::path& inner, const fs::path& outer) {
  std::error_code ec;
  const fs::path a = fs::weakly_canonical(fs::absolute(inner), ec);
  const fs::path b = fs::weakly_canonical(fs::absolute(outer), ec);
  auto ai = a.begin();
  for (auto bi = b.begin(); bi != b.end(); ++bi, ++ai) {
    if (bi->empty()) continue;  // a trailing separator
    if (ai == a.end() || *ai != *bi) return false;
  }
  return true;
}

// Resolves a file of the deployment the way havend does (absolute names
// stand alone, relative ones live in the data directory).
fs::path InData(const fs::path& data, const std::string& file) {
  return fs::path(file).is_absolute() ? fs::path(file) : data / file;
}

int Init(const Common& common, const std::string& helpline_keys_out) {
  auto config = LoadConfig(common);
  if (!config.ok()) return Fail(config.status());
  config->data_dir = fs::absolute(config->data_dir).string();
  const fs::path data = config->data_dir;
  const fs::path out = fs::absolute(helpline_keys_out);
  if (IsWithin(out, data)) {
    return Fail("--helpline-keys-out must be outside the data directory: the helpline's private "
                "keys must never stay on the server");
  }
  for (const fs::path& existing :
       {InData(data, config->server_key_file), InData(data, config->database_key_file),
        InData(data, config->database_file), data / "intake.pub", data / "audit.pub"}) {
    if (fs::exists(existing)) {
      return Fail(data.string() + " already holds a deployment (" + existing.string() +
                  " exists); init never overwrites keys or data");
    }
  }
  for (const char* name : {"intake.key", "audit.key"}) {
    if (fs::exists(out / name)) {
      return Fail((out / name).string() +
                  " exists; init never overwrites helpline keys: choose an empty directory");
    }
  }
  std::error_code ec;
  if (!fs::exists(out)) {
    fs::create_directories(out, ec);
    if (ec) return Fail("cannot create " + out.string() + ": " + ec.message());
    ::chmod(out.c_str(), 0700);  // only a directory we created
  }
  auto store = OpenStore(*config, /*create=*/true);
  if (!store.ok()) return Fail(store.status());

  // The helpline's intake and audit key pairs: the server keeps only the
  // public halves; the private halves go to the helpline, to be sealed to
  // counsellor devices at enrolment, and deleted from here.
  for (const char* name : {"intake", "audit"}) {
    noise::KeyPair kp = noise::KeyPair::Generate();
    const std::string priv = (out / (std::string(name) + ".key")).string();
    Status st = WriteKeyFile(priv, kp.private_key.view());
    if (!st.ok()) return Fail(st);
    st = WritePublicKeyFile((data / (std::string(name) + ".pub")).string(), kp.public_key);
    if (!st.ok()) return Fail(st);
  }
  const std::string config_file = (data / "havend.toml").string();
  {
    std::ofstream cfg(config_file);
    cfg << "# Written by haven-admin init. Every setting and its default is documented in\n"
           "# config/havend.toml of the Haven source; only what differs is needed here.\n"
           "[server]\ndata_dir = \""
        << data.string() << "\"\n\n[files]\nserver_key = \"" << config->server_key_file
        << "\"\ndatabase_key = \"" << config->database_key_file << "\"\ndatabase = \""
        << config->database_file << "\"\n";
  }
  ::chmod(config_file.c_str(), 0600);
  auto key = ReadKeyFile(InData(data, config->server_key_file).string());
  if (!key.ok()) return Fail(key.status());
  auto kp = noise::KeyPair::FromPrivateKey(key->view());
  std::printf("deployment created in %s\n", data.c_str());
  std::printf("server public key %s\n", ToHex(kp->public_key).c_str());
  std::printf("start it with: havend --config %s\n", config_file.c_str());
  std::printf("helpline private keys written to %s: move them off this machine now\n",
              out.c_str());
  return 0;
}

// rotate-db-key and purge take the lock file inside the directory: say
// plainly when the directory itself is missing.
Status RequireDataDir(const Config& config) {
  if (!fs::is_directory(config.data_dir)) {
    return Status::NotFound("data directory " + config.data_dir +
                            " does not exist; check --data-dir and --config");
  }
  return Status::Ok();
}

int Enrol(const Common& common, const std::string& role_name, int valid_hours) {
  int role = 0;
  if (role_name == "counsellor") {
    role = 2;  // haven.v1.ROLE_COUNSELLOR
  } else if (role_name == "supervisor") {
    role = 3;  // haven.v1.ROLE_SUPERVISOR
  } else {
    return Fail("--role must be counsellor or supervisor");
  }
  auto config = LoadConfig(common);
  if (!config.ok()) return Fail(config.status());
  auto store = OpenStore(*config, false);
  if (!store.ok()) return Fail(store.status());
  const std::string code = NewInvitationCode();
  const auto hash = HashInvitationCode(code);
  const std::int64_t expires = Now() + static_cast<std::int64_t>(valid_hours) * 3600;
  Status st = (*store)->CreateInvitation(*hash, role, expires);
  if (!st.ok()) return Fail(st);
  char when[64];
  const std::time_t t = static_cast<std::time_t>(expires);
  std::strftime(when, sizeof when, "%Y-%m-%d %H:%M UTC", std::gmtime(&t));
  std::printf("invitation for a %s device, valid once, until %s:\n%s\n", role_name.c_str(), when,
              code.c_str());
  std::printf("give it to the counsellor through a channel you trust; it is not stored here\n");
  return 0;
}

// rename() then fsync of the directory: the replacement survives a crash.
Status ReplaceKeyFile(const std::string& from, const std::string& to) {
  if (::rename(from.c_str(), to.c_str()) != 0) {
    return Status::Unavailable("cannot replace " + to + ": " + std::strerror(errno));
  }
  const std::string dir = fs::path(to).parent_path().string();
  const int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
  return Status::Ok();
}

int RotateDbKey(const Common& common) {
  if (std::getenv("HAVEN_DB_KEY") != nullptr) {
    return Fail("rotate-db-key works on the key file; unset HAVEN_DB_KEY and use db.key");
  }
  auto config = LoadConfig(common);
  if (!config.ok()) return Fail(config.status());
  if (Status st = RequireDataDir(*config); !st.ok()) return Fail(st);
  auto lock = DataDirLock::Acquire(config->data_dir, "rotate-db-key");
  if (!lock.ok()) return Fail(lock.status());
  const fs::path data = config->data_dir;
  const std::string key_path = (data / config->database_key_file).string();
  const std::string new_path = key_path + ".new";
  const std::string db_path = (data / config->database_file).string();

  if (!fs::exists(db_path)) {
    return Fail("no database at " + db_path + "; check --data-dir and --config");
  }
  // A rotation interrupted after the re-key left the new key beside the old
  // one: finish it.
  if (fs::exists(new_path)) {
    auto pending = ReadKeyFile(new_path);
    if (pending.ok() && ServerStore::Open(db_path, pending->view(), false).ok()) {
      Status st = ReplaceKeyFile(new_path, key_path);
      if (!st.ok()) return Fail(st);
      std::printf("finished an interrupted rotation: %s now holds the key in use\n",
                  key_path.c_str());
      return 0;
    }
    fs::remove(new_path);
  }
  auto old_key = ReadKeyFile(key_path);
  if (!old_key.ok()) return Fail(old_key.status());
  SecureBuffer new_key = SecureBuffer::Random(32);
  {
    auto store = ServerStore::Open(db_path, old_key->view(), false);
    if (!store.ok()) return Fail(store.status());
    // The new key is on disk before the database depends on it.
    Status st = WriteKeyFile(new_path, new_key.view());
    if (!st.ok()) return Fail(st);
    st = (*store)->db().Rekey(new_key.view());
    if (!st.ok()) {
      fs::remove(new_path);
      return Fail(st);
    }
  }
  auto check = ServerStore::Open(db_path, new_key.view(), false);
  if (!check.ok()) return Fail(check.status().WithContext("re-keyed database did not reopen"));
  Status st = ReplaceKeyFile(new_path, key_path);
  if (!st.ok()) return Fail(st);
  std::printf("database re-encrypted under a new key; %s replaced\n", key_path.c_str());
  std::printf("update your backup of the key file now\n");
  return 0;
}

int Purge(const Common& common) {
  auto config = LoadConfig(common);
  if (!config.ok()) return Fail(config.status());
  if (Status st = RequireDataDir(*config); !st.ok()) return Fail(st);
  auto lock = DataDirLock::Acquire(config->data_dir, "purge");
  if (!lock.ok()) {
    return Fail(lock.status().message() +
                " (a running havend applies retention itself every retention.sweep_interval_s)");
  }
  auto store = OpenStore(*config, false);
  if (!store.ok()) return Fail(store.status());
  RetentionPolicy policy{static_cast<std::int64_t>(config->retention.closed_conversation_days)};
  auto r = (*store)->ApplyRetention(Now(), policy);
  if (!r.ok()) return Fail(r.status());
  std::printf("purged %lld closed conversations, %lld expired envelopes, %lld expired invitations\n",
              static_cast<long long>(r->conversations_purged),
              static_cast<long long>(r->envelopes_expired),
              static_cast<long long>(r->invitations_expired));
  return 0;
}

int Stats(const Common& common) {
  auto config = LoadConfig(common);
  if (!config.ok()) return Fail(config.status());
  auto store = OpenStore(*config, false);
  if (!store.ok()) return Fail(store.status());
  auto c = (*store)->Counts();
  if (!c.ok()) return Fail(c.status());
  std::printf("counsellors %lld\ninvitations %lld\nconversations_open %lld\n"
              "conversations_closed %lld\nenvelopes_waiting %lld\n",
              static_cast<long long>(c->counsellors), static_cast<long long>(c->invitations),
              static_cast<long long>(c->conversations_open),
              static_cast<long long>(c->conversations_closed),
              static_cast<long long>(c->envelopes));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"haven-admin: operate a Haven deployment"};
  app.require_subcommand(1);
  Common common;
  auto add_common = [&common](CLI::App* cmd) {
    cmd->add_option("--data-dir", common.data_dir,
                    "Deployment data directory (default: server.data_dir of --config, else .haven)");
    cmd->add_option("--config", common.config_path,
                    "havend.toml of the deployment (data directory, file names, retention)");
  };

  std::string keys_out;
  auto* init = app.add_subcommand("init", "Create a deployment: keys, database, config");
  add_common(init);
  init->add_option("--helpline-keys-out", keys_out,
                   "Directory for the helpline's private intake and audit keys (off the server)")
      ->required();

  std::string role = "counsellor";
  int valid_hours = 72;
  auto* enrol = app.add_subcommand("enrol", "Print a one-time invitation code for a counsellor");
  add_common(enrol);
  enrol->add_option("--role", role, "counsellor or supervisor")->capture_default_str();
  enrol->add_option("--valid-hours", valid_hours, "Hours until the code expires")
      ->check(CLI::Range(1, 24 * 30))
      ->capture_default_str();

  auto* rotate = app.add_subcommand("rotate-db-key", "Re-encrypt the database under a new key");
  add_common(rotate);
  auto* purge = app.add_subcommand("purge", "Apply retention now (havend must be stopped)");
  add_common(purge);
  auto* stats = app.add_subcommand("stats", "Print counts of what is stored (never content)");
  add_common(stats);

  CLI11_PARSE(app, argc, argv);
  if (init->parsed()) return Init(common, keys_out);
  if (enrol->parsed()) return Enrol(common, role, valid_hours);
  if (rotate->parsed()) return RotateDbKey(common);
  if (purge->parsed()) return Purge(common);
  if (stats->parsed()) return Stats(common);
  return 2;
}
