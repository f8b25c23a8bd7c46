// The C ABI (haven.h) on top of haven::sdk::Client (client.h): the one file
// where C and C++ meet.
//
// Rules kept by every entry point:
//   - no exception crosses: each body runs inside Guard(), which maps
//     std::bad_alloc and anything else to HAVEN_E_INTERNAL;
//   - failures leave an English message in a thread-local buffer for
//     haven_last_error() (a fixed array: setting it never allocates or throws);
//   - outputs are cleared first, so a caller never reads stale data after a
//     failure;
//   - once a client has quick-exited every call on it returns HAVEN_E_EXITED,
//     checked here before anything else so the promise does not depend on
//     argument order.
// Handles carry a magic number so that a dangling or foreign pointer from an
// FFI is reported (most of the time) instead of being used.
#include "haven/haven.h"

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "haven/client.h"
#include "haven/common/secure_memory.h"

namespace sdk = haven::sdk;

// The C values are documented as equal to the C++ ones; casts below rely on it.
static_assert(static_cast<int>(sdk::Code::kOk) == HAVEN_OK);
static_assert(static_cast<int>(sdk::Role::kSupervisor) == HAVEN_ROLE_SUPERVISOR);
static_assert(static_cast<int>(sdk::ConversationState::kLeft) == HAVEN_CONVERSATION_LEFT);
static_assert(static_cast<int>(sdk::EventType::kSupervisorLeft) == HAVEN_EVENT_SUPERVISOR_LEFT);
static_assert(static_cast<int>(sdk::Code::kInvalidArgument) == HAVEN_E_INVALID_ARGUMENT);
static_assert(static_cast<int>(sdk::Code::kExited) == HAVEN_E_EXITED);
static_assert(static_cast<int>(sdk::Code::kWrongRole) == HAVEN_E_WRONG_ROLE);
static_assert(static_cast<int>(sdk::Code::kNotFound) == HAVEN_E_NOT_FOUND);
static_assert(static_cast<int>(sdk::Code::kWrongState) == HAVEN_E_WRONG_STATE);
static_assert(static_cast<int>(sdk::Code::kStorage) == HAVEN_E_STORAGE);
static_assert(static_cast<int>(sdk::Code::kWrongPassphrase) == HAVEN_E_WRONG_PASSPHRASE);
static_assert(static_cast<int>(sdk::Code::kRefused) == HAVEN_E_REFUSED);
static_assert(static_cast<int>(sdk::Code::kUnavailable) == HAVEN_E_UNAVAILABLE);
static_assert(static_cast<int>(sdk::Code::kInternal) == HAVEN_E_INTERNAL);
static_assert(static_cast<int>(sdk::Role::kSurvivor) == HAVEN_ROLE_SURVIVOR);
static_assert(static_cast<int>(sdk::Role::kCounsellor) == HAVEN_ROLE_COUNSELLOR);
static_assert(static_cast<int>(sdk::ConnectionState::kConnecting) == HAVEN_CONNECTION_CONNECTING);
static_assert(static_cast<int>(sdk::ConnectionState::kStopped) == HAVEN_CONNECTION_STOPPED);
static_assert(static_cast<int>(sdk::ConversationState::kOpening) == HAVEN_CONVERSATION_OPENING);
static_assert(static_cast<int>(sdk::ConversationState::kSurvivorLeftQuickly) ==
              HAVEN_CONVERSATION_SURVIVOR_LEFT_QUICKLY);
static_assert(static_cast<int>(sdk::EventType::kConnectionChanged) ==
              HAVEN_EVENT_CONNECTION_CHANGED);
static_assert(static_cast<int>(sdk::EventType::kSecureSessionReady) ==
              HAVEN_EVENT_SECURE_SESSION_READY);
static_assert(static_cast<int>(sdk::EventType::kQuickExitCompleted) ==
              HAVEN_EVENT_QUICK_EXIT_COMPLETED);

namespace {

constexpr std::uint32_t kOptionsMagic = 0x48764f70;  // "HvOp"
constexpr std::uint32_t kClientMagic = 0x4876436c;   // "HvCl"
constexpr std::size_t kKeySize = 32;

}  // namespace

struct haven_options {
  std::uint32_t magic = kOptionsMagic;
  sdk::Role role = sdk::Role::kSurvivor;
  bool has_server = false;
  std::string host;
  std::uint16_t port = 0;
  sdk::Key32 server_key{};
  std::optional<sdk::Key32> helpline_key;
  std::string storage_dir;
  bool resumable = false;
  // Secrets live in guarded memory; sodium_free zeroes them on release.
  haven::SecureBuffer store_passphrase;
  haven::SecureBuffer store_key;
  haven::SecureBuffer resumption_secret;
};

struct haven_client {
  std::uint32_t magic = kClientMagic;
  std::unique_ptr<sdk::Client> client;
};

namespace {

// A fixed buffer: recording an error must not allocate (it runs in catch
// handlers, including the one for std::bad_alloc).
thread_local char t_last_error[256] = "";

// The client whose callback is running on this thread, to refuse a
// haven_client_free from inside its own callback (it would join itself).
thread_local const haven_client* t_dispatching = nullptr;

haven_status Fail(haven_status status, std::string_view message) noexcept {
  const std::size_t n = message.size() < sizeof t_last_error - 1 ? message.size()
                                                                  : sizeof t_last_error - 1;
  if (n != 0) std::memcpy(t_last_error, message.data(), n);
  t_last_error[n] = '\0';
  return status;
}

haven_status FromSdk(const sdk::Status& status) noexcept {
  if (status.ok()) return HAVEN_OK;
  const int code = static_cast<int>(status.code());
  if (code < HAVEN_E_INVALID_ARGUMENT || code > HAVEN_E_INTERNAL) {
    return Fail(HAVEN_E_INTERNAL, status.message());
  }
  return Fail(static_cast<haven_status>(code), status.message());
}

template <typename Body>
haven_status Guard(Body&& body) noexcept {
  try {
    return std::forward<Body>(body)();
  } catch (const std::bad_alloc&) {
    return Fail(HAVEN_E_INTERNAL, "out of memory");
  } catch (const std::exception& e) {
    return Fail(HAVEN_E_INTERNAL, e.what());
  } catch (...) {
    return Fail(HAVEN_E_INTERNAL, "unexpected exception");
  }
}

bool Valid(const haven_options* options) {
  return options != nullptr && options->magic == kOptionsMagic;
}
bool Valid(const haven_client* client) {
  return client != nullptr && client->magic == kClientMagic && client->client != nullptr;
}

// The C++ client behind a handle, or the status to return: a bad handle is
// an invalid argument, an exited client is HAVEN_E_EXITED for every call.
haven_status Live(haven_client* handle, sdk::Client** out) {
  if (!Valid(handle)) return Fail(HAVEN_E_INVALID_ARGUMENT, "client is NULL or not a client");
  if (handle->client->exited()) return Fail(HAVEN_E_EXITED, "the client has quick-exited");
  *out = handle->client.get();
  return HAVEN_OK;
}

std::string_view AsChars(const std::uint8_t* data, std::size_t len) {
  return {reinterpret_cast<const char*>(data), len};
}

void Wipe(std::string& s) noexcept {
  haven::SecureZero({reinterpret_cast<std::uint8_t*>(s.data()), s.size()});
}

// Hands a sensitive string to C as an OWNED NUL-terminated copy (released by
// haven_string_free, which zeroes it) and zeroes the C++ copy.
haven_status CopyOut(std::string& secret, char** out) {
  char* p = static_cast<char*>(std::malloc(secret.size() + 1));
  if (p == nullptr) {
    Wipe(secret);
    return Fail(HAVEN_E_INTERNAL, "out of memory");
  }
  if (!secret.empty()) std::memcpy(p, secret.data(), secret.size());
  p[secret.size()] = '\0';
  Wipe(secret);
  *out = p;
  return HAVEN_OK;
}

haven_status CopyKey(const std::uint8_t* key, std::size_t len, sdk::Key32* out, const char* what) {
  if (key == nullptr || len != kKeySize) return Fail(HAVEN_E_INVALID_ARGUMENT, what);
  std::memcpy(out->data(), key, kKeySize);
  return HAVEN_OK;
}

// Builds the C view of an event and calls the application. Runs on the SDK's
// event thread; nothing may escape into the SDK from here.
void Dispatch(haven_event_fn fn, void* user_data, const haven_client* self,
              const sdk::Event& event) noexcept {
  if (fn == nullptr) return;
  haven_event c{};
  c.type = static_cast<int>(event.type);
  c.connection = static_cast<int>(event.connection);
  c.conversation = event.conversation;
  c.state = static_cast<int>(event.state);
  c.message = event.message;
  // The text is borrowed, not copied: the SDK zeroes it after the callback,
  // and a copy here would be plaintext outside quick exit's reach.
  c.text = event.text.empty() ? nullptr : reinterpret_cast<const std::uint8_t*>(event.text.data());
  c.text_len = event.text.size();
  c.error = static_cast<int>(event.error);
  // error_message is a view with no terminator; C needs one. It never holds
  // content or keys, so an ordinary string is fine.
  std::string message;
  try {
    message.assign(event.error_message);
  } catch (...) {
    message.clear();
  }
  c.error_message = event.error_message.empty() ? nullptr : message.c_str();
  haven_resource_card card{};
  if (event.card != nullptr) {
    card.service = event.card->service.c_str();
    card.name = event.card->name.c_str();
    card.offers = event.card->offers.c_str();
    card.contact = event.card->contact.c_str();
    card.region = event.card->region.c_str();
    c.card = &card;
  }
  c.accepted = event.accepted ? 1 : 0;
  c.alert = static_cast<int>(event.alert);
  c.flagged_high_risk = event.flagged_high_risk ? 1 : 0;
  c.flagged_minor = event.flagged_minor ? 1 : 0;
  c.sender = static_cast<int>(event.sender);
  const haven_client* previous = t_dispatching;
  t_dispatching = self;
  try {
    fn(user_data, &c);
  } catch (...) {
    // A C++ application's exception thrown through the C callback: stop it
    // here rather than unwind through the SDK's event thread.
  }
  t_dispatching = previous;
}

// --- helpers of the workflow calls ---

// A C string argument that may be NULL only where `optional` says so.
bool CString(const char* s, bool optional, std::string_view* out) {
  if (s == nullptr) {
    *out = {};
    return optional;
  }
  *out = s;
  return true;
}

template <typename Call>
haven_status WithClient(haven_client* client, Call call) {
  return Guard([&] {
    sdk::Client* c = nullptr;
    if (const haven_status s = Live(client, &c); s != HAVEN_OK) return s;
    return call(*c);
  });
}

}  // namespace

extern "C" {

haven_status haven_options_new(haven_options** out_options, int role) {
  return Guard([&] {
    if (out_options == nullptr) return Fail(HAVEN_E_INVALID_ARGUMENT, "out_options is NULL");
    *out_options = nullptr;
    if (role != HAVEN_ROLE_SURVIVOR && role != HAVEN_ROLE_COUNSELLOR &&
        role != HAVEN_ROLE_SUPERVISOR) {
      return Fail(HAVEN_E_INVALID_ARGUMENT,
                  "role must be HAVEN_ROLE_SURVIVOR, _COUNSELLOR or _SUPERVISOR");
    }
    auto options = std::make_unique<haven_options>();
    options->role = static_cast<sdk::Role>(role);
    *out_options = options.release();
    return HAVEN_OK;
  });
}

void haven_options_free(haven_options* options) {
  if (!Valid(options)) return;
  options->magic = 0;
  delete options;  // SecureBuffer members zero and free the secrets
}

haven_status haven_options_set_server(haven_options* options, const char* host, uint16_t port,
                                      const uint8_t* server_key, size_t server_key_len) {
  return Guard([&] {
    if (!Valid(options)) return Fail(HAVEN_E_INVALID_ARGUMENT, "options is NULL or not options");
    if (host == nullptr || host[0] == '\0') return Fail(HAVEN_E_INVALID_ARGUMENT, "host is empty");
    if (port == 0) return Fail(HAVEN_E_INVALID_ARGUMENT, "port is 0");
    sdk::Key32 key{};
    if (const haven_status s =
            CopyKey(server_key, server_key_len, &key, "server_key must be 32 bytes");
        s != HAVEN_OK) {
      return s;
    }
    options->host = host;
    options->port = port;
    options->server_key = key;
    options->has_server = true;
    return HAVEN_OK;
  });
}

haven_status haven_options_set_helpline_key(haven_options* options, const uint8_t* key,
                                            size_t key_len) {
  return Guard([&] {
    if (!Valid(options)) return Fail(HAVEN_E_INVALID_ARGUMENT, "options is NULL or not options");
    sdk::Key32 copy{};
    if (const haven_status s = CopyKey(key, key_len, &copy, "helpline key must be 32 bytes");
        s != HAVEN_OK) {
      return s;
    }
    options->helpline_key = copy;
    return HAVEN_OK;
  });
}

haven_status haven_options_set_storage_dir(haven_options* options, const char* dir) {
  return Guard([&] {
    if (!Valid(options)) return Fail(HAVEN_E_INVALID_ARGUMENT, "options is NULL or not options");
    if (dir == nullptr) return Fail(HAVEN_E_INVALID_ARGUMENT, "dir is NULL (\"\" means none)");
    options->storage_dir = dir;
    return HAVEN_OK;
  });
}

haven_status haven_options_set_store_passphrase(haven_options* options, const char* passphrase,
                                                size_t passphrase_len) {
  return Guard([&] {
    if (!Valid(options)) return Fail(HAVEN_E_INVALID_ARGUMENT, "options is NULL or not options");
    if (passphrase == nullptr || passphrase_len == 0) {
      return Fail(HAVEN_E_INVALID_ARGUMENT, "passphrase is empty");
    }
    options->store_passphrase = haven::SecureBuffer::CopyOf(
        {reinterpret_cast<const std::uint8_t*>(passphrase), passphrase_len});
    return HAVEN_OK;
  });
}

haven_status haven_options_set_store_key(haven_options* options, const uint8_t* key,
                                         size_t key_len) {
  return Guard([&] {
    if (!Valid(options)) return Fail(HAVEN_E_INVALID_ARGUMENT, "options is NULL or not options");
    if (key == nullptr || key_len != kKeySize) {
      return Fail(HAVEN_E_INVALID_ARGUMENT, "store key must be 32 bytes");
    }
    options->store_key = haven::SecureBuffer::CopyOf({key, key_len});
    return HAVEN_OK;
  });
}

haven_status haven_options_set_resumable(haven_options* options, int resumable) {
  return Guard([&] {
    if (!Valid(options)) return Fail(HAVEN_E_INVALID_ARGUMENT, "options is NULL or not options");
    options->resumable = resumable != 0;
    return HAVEN_OK;
  });
}

haven_status haven_options_set_resumption_secret(haven_options* options, const char* secret,
                                                 size_t secret_len) {
  return Guard([&] {
    if (!Valid(options)) return Fail(HAVEN_E_INVALID_ARGUMENT, "options is NULL or not options");
    if (secret == nullptr || secret_len == 0) {
      return Fail(HAVEN_E_INVALID_ARGUMENT, "resumption secret is empty");
    }
    options->resumption_secret = haven::SecureBuffer::CopyOf(
        {reinterpret_cast<const std::uint8_t*>(secret), secret_len});
    return HAVEN_OK;
  });
}

haven_status haven_client_new(haven_client** out_client, const haven_options* options,
                              haven_event_fn on_event, void* user_data) {
  return Guard([&] {
    if (out_client == nullptr) return Fail(HAVEN_E_INVALID_ARGUMENT, "out_client is NULL");
    *out_client = nullptr;
    if (!Valid(options)) return Fail(HAVEN_E_INVALID_ARGUMENT, "options is NULL or not options");
    if (!options->has_server) {
      return Fail(HAVEN_E_INVALID_ARGUMENT, "haven_options_set_server was not called");
    }
    sdk::ClientOptions o;
    o.role = options->role;
    o.host = options->host;
    o.port = options->port;
    o.server_public_key = options->server_key;
    o.helpline_public_key = options->helpline_key;
    o.storage_dir = options->storage_dir;
    o.resumable = options->resumable;
    // The SDK borrows the secrets during Create() only; they stay in the
    // options' guarded memory.
    if (!options->store_passphrase.empty()) {
      o.local_store = true;
      o.store_passphrase = AsChars(options->store_passphrase.data(),
                                   options->store_passphrase.size());
    }
    if (!options->store_key.empty()) {
      o.local_store = true;
      o.store_key.emplace();
      std::memcpy(o.store_key->data(), options->store_key.data(), kKeySize);
    }
    if (!options->resumption_secret.empty()) {
      o.resumption_secret = AsChars(options->resumption_secret.data(),
                                    options->resumption_secret.size());
    }

    auto handle = std::make_unique<haven_client>();
    const haven_client* self = handle.get();
    sdk::EventCallback callback = [on_event, user_data, self](const sdk::Event& event) {
      Dispatch(on_event, user_data, self, event);
    };
    sdk::Status status;
    try {
      status = sdk::Client::Create(o, std::move(callback), &handle->client);
    } catch (...) {
      if (o.store_key) haven::SecureZero(*o.store_key);
      throw;
    }
    // The stack copy of the store key is the one that guarded memory does
    // not cover: zero it now.
    if (o.store_key) haven::SecureZero(*o.store_key);
    if (!status.ok()) return FromSdk(status);
    if (handle->client == nullptr) return Fail(HAVEN_E_INTERNAL, "Create returned no client");
    *out_client = handle.release();
    return HAVEN_OK;
  });
}

void haven_client_free(haven_client* client) {
  if (client == nullptr) return;
  if (client->magic != kClientMagic) {
    Fail(HAVEN_E_INVALID_ARGUMENT, "haven_client_free: not a client (freed twice?)");
    return;
  }
  if (t_dispatching == client) {
    // Joining the event thread from itself would deadlock or abort; leaking
    // the client is the lesser harm, and the message says why.
    Fail(HAVEN_E_WRONG_STATE, "haven_client_free called from the client's own callback");
    return;
  }
  client->magic = 0;
  try {
    delete client;
  } catch (...) {
    // ~Client does not throw; this only keeps the promise if it ever did.
  }
}

haven_status haven_open_conversation(uint64_t* out_conversation, haven_client* client,
                                     const char* language, uint32_t priority,
                                     const uint8_t* intake, size_t intake_len) {
  return Guard([&] {
    if (out_conversation != nullptr) *out_conversation = 0;
    sdk::Client* c = nullptr;
    if (const haven_status s = Live(client, &c); s != HAVEN_OK) return s;
    if (out_conversation == nullptr) {
      return Fail(HAVEN_E_INVALID_ARGUMENT, "out_conversation is NULL");
    }
    if (intake == nullptr && intake_len != 0) {
      return Fail(HAVEN_E_INVALID_ARGUMENT, "intake is NULL but intake_len is not 0");
    }
    sdk::RoutingHints hints;
    if (language != nullptr) hints.language = language;
    hints.priority = priority;
    sdk::ConversationId id = 0;
    const std::string_view answers =
        intake == nullptr ? std::string_view() : AsChars(intake, intake_len);
    const sdk::Status status = c->OpenConversation(hints, answers, &id);
    if (!status.ok()) return FromSdk(status);
    *out_conversation = id;
    return HAVEN_OK;
  });
}

haven_status haven_resumption_secret(char** out_secret, haven_client* client) {
  return Guard([&] {
    if (out_secret != nullptr) *out_secret = nullptr;
    sdk::Client* c = nullptr;
    if (const haven_status s = Live(client, &c); s != HAVEN_OK) return s;
    if (out_secret == nullptr) return Fail(HAVEN_E_INVALID_ARGUMENT, "out_secret is NULL");
    std::string secret;
    const sdk::Status status = c->ResumptionSecret(&secret);
    if (!status.ok()) {
      Wipe(secret);
      return FromSdk(status);
    }
    return CopyOut(secret, out_secret);
  });
}

haven_status haven_redeem_invitation(haven_client* client, const char* code) {
  return Guard([&] {
    sdk::Client* c = nullptr;
    if (const haven_status s = Live(client, &c); s != HAVEN_OK) return s;
    if (code == nullptr) return Fail(HAVEN_E_INVALID_ARGUMENT, "code is NULL");
    return FromSdk(c->RedeemInvitation(code));
  });
}

haven_status haven_claim(haven_client* client, uint64_t conversation) {
  return Guard([&] {
    sdk::Client* c = nullptr;
    if (const haven_status s = Live(client, &c); s != HAVEN_OK) return s;
    return FromSdk(c->Claim(conversation));
  });
}

haven_status haven_queue(haven_queue_entry** out_entries, size_t* out_count,
                         haven_client* client) {
  return Guard([&] {
    if (out_entries != nullptr) *out_entries = nullptr;
    if (out_count != nullptr) *out_count = 0;
    sdk::Client* c = nullptr;
    if (const haven_status s = Live(client, &c); s != HAVEN_OK) return s;
    if (out_entries == nullptr || out_count == nullptr) {
      return Fail(HAVEN_E_INVALID_ARGUMENT, "out_entries or out_count is NULL");
    }
    std::vector<sdk::QueueEntry> queue;
    const sdk::Status status = c->Queue(&queue);
    if (!status.ok()) return FromSdk(status);
    if (queue.empty()) return HAVEN_OK;
    auto* entries =
        static_cast<haven_queue_entry*>(std::calloc(queue.size(), sizeof(haven_queue_entry)));
    if (entries == nullptr) return Fail(HAVEN_E_INTERNAL, "out of memory");
    for (std::size_t i = 0; i < queue.size(); ++i) {
      const sdk::QueueEntry& from = queue[i];
      haven_queue_entry& to = entries[i];
      to.conversation = from.conversation;
      // BCP 47 tags are ASCII; a longer one than fits is cut, still terminated.
      const std::size_t n = from.language.size() < sizeof to.language - 1
                                ? from.language.size()
                                : sizeof to.language - 1;
      std::memcpy(to.language, from.language.data(), n);
      to.language[n] = '\0';
      to.priority = static_cast<std::uint32_t>(from.priority);
      to.survivor_online = from.survivor_online ? 1 : 0;
      to.position = from.position;
    }
    *out_entries = entries;
    *out_count = queue.size();
    return HAVEN_OK;
  });
}

void haven_queue_free(haven_queue_entry* entries) { std::free(entries); }

haven_status haven_send(uint64_t* out_message, haven_client* client, uint64_t conversation,
                        const uint8_t* text, size_t text_len) {
  return Guard([&] {
    if (out_message != nullptr) *out_message = 0;
    sdk::Client* c = nullptr;
    if (const haven_status s = Live(client, &c); s != HAVEN_OK) return s;
    if (out_message == nullptr) return Fail(HAVEN_E_INVALID_ARGUMENT, "out_message is NULL");
    if (text == nullptr && text_len != 0) {
      return Fail(HAVEN_E_INVALID_ARGUMENT, "text is NULL but text_len is not 0");
    }
    sdk::MessageId id = 0;
    const sdk::Status status = c->Send(
        conversation, text == nullptr ? std::string_view() : AsChars(text, text_len), &id);
    if (!status.ok()) return FromSdk(status);
    *out_message = id;
    return HAVEN_OK;
  });
}

haven_status haven_close_conversation(haven_client* client, uint64_t conversation) {
  return Guard([&] {
    sdk::Client* c = nullptr;
    if (const haven_status s = Live(client, &c); s != HAVEN_OK) return s;
    return FromSdk(c->CloseConversation(conversation));
  });
}

// --- counsellor workflow and supervisors: thin calls into sdk::Client ---


haven_status haven_set_presence(haven_client* client, int presence, const char* const* languages,
                                size_t language_count) {
  return WithClient(client, [&](sdk::Client& c) {
    if (languages == nullptr && language_count != 0) {
      return Fail(HAVEN_E_INVALID_ARGUMENT, "languages is NULL but language_count is not 0");
    }
    if (language_count > 20) return Fail(HAVEN_E_INVALID_ARGUMENT, "at most 20 languages");
    std::vector<std::string> tags;
    for (size_t i = 0; i < language_count; ++i) {
      if (languages[i] == nullptr) return Fail(HAVEN_E_INVALID_ARGUMENT, "a language is NULL");
      tags.emplace_back(languages[i]);
    }
    return FromSdk(c.SetPresence(static_cast<sdk::Presence>(presence), std::move(tags)));
  });
}

haven_status haven_transfer_to_queue(haven_client* client, uint64_t conversation,
                                     const char* language) {
  return WithClient(client, [&](sdk::Client& c) {
    std::string_view tag;
    CString(language, /*optional=*/true, &tag);
    return FromSdk(c.TransferToQueue(conversation, tag));
  });
}

haven_status haven_transfer_to_colleague(haven_client* client, uint64_t conversation,
                                         const char* colleague_id, int warm,
                                         const char* handoff_note) {
  return WithClient(client, [&](sdk::Client& c) {
    std::string_view id, note;
    if (!CString(colleague_id, false, &id)) {
      return Fail(HAVEN_E_INVALID_ARGUMENT, "colleague_id is NULL");
    }
    CString(handoff_note, /*optional=*/true, &note);
    return FromSdk(c.TransferToColleague(conversation, id, warm != 0, note));
  });
}

haven_status haven_answer_transfer(haven_client* client, uint64_t conversation, int accept) {
  return WithClient(client, [&](sdk::Client& c) {
    return FromSdk(c.AnswerTransfer(conversation, accept != 0));
  });
}

haven_status haven_block(haven_client* client, uint64_t conversation, unsigned hours,
                         const char* reason) {
  return WithClient(client, [&](sdk::Client& c) {
    std::string_view why;
    if (!CString(reason, false, &why)) return Fail(HAVEN_E_INVALID_ARGUMENT, "reason is NULL");
    return FromSdk(c.Block(conversation, hours, why));
  });
}

haven_status haven_flag(haven_client* client, uint64_t conversation, int high_risk, int minor) {
  return WithClient(client, [&](sdk::Client& c) {
    return FromSdk(c.Flag(conversation, high_risk != 0, minor != 0));
  });
}

haven_status haven_send_resource_card(uint64_t* out_message, haven_client* client,
                                      uint64_t conversation, const char* referral_id) {
  if (out_message != nullptr) *out_message = 0;
  return WithClient(client, [&](sdk::Client& c) {
    std::string_view id;
    if (out_message == nullptr) return Fail(HAVEN_E_INVALID_ARGUMENT, "out_message is NULL");
    if (!CString(referral_id, false, &id)) {
      return Fail(HAVEN_E_INVALID_ARGUMENT, "referral_id is NULL");
    }
    sdk::MessageId m = 0;
    const sdk::Status st = c.SendResourceCard(conversation, id, &m);
    if (st.ok()) *out_message = m;
    return FromSdk(st);
  });
}

haven_status haven_refresh_load(haven_client* client) {
  return WithClient(client, [&](sdk::Client& c) { return FromSdk(c.RefreshLoad()); });
}

haven_status haven_join_conversation(haven_client* client, uint64_t conversation) {
  return WithClient(client,
                    [&](sdk::Client& c) { return FromSdk(c.JoinConversation(conversation)); });
}

haven_status haven_leave_conversation(haven_client* client, uint64_t conversation) {
  return WithClient(client,
                    [&](sdk::Client& c) { return FromSdk(c.LeaveConversation(conversation)); });
}

haven_status haven_safety_number(char** out_number, haven_client* client,
                                 uint64_t conversation) {
  return Guard([&] {
    if (out_number != nullptr) *out_number = nullptr;
    sdk::Client* c = nullptr;
    if (const haven_status s = Live(client, &c); s != HAVEN_OK) return s;
    if (out_number == nullptr) return Fail(HAVEN_E_INVALID_ARGUMENT, "out_number is NULL");
    std::string number;
    const sdk::Status status = c->SafetyNumber(conversation, &number);
    if (!status.ok()) {
      Wipe(number);
      return FromSdk(status);
    }
    return CopyOut(number, out_number);
  });
}

int haven_connection_state_of(const haven_client* client) {
  if (!Valid(client)) {
    Fail(HAVEN_E_INVALID_ARGUMENT, "client is NULL or not a client");
    return 0;
  }
  try {
    return static_cast<int>(client->client->connection_state());
  } catch (...) {
    Fail(HAVEN_E_INTERNAL, "connection_state failed");
    return 0;
  }
}

void haven_quick_exit(haven_client* client) {
  if (!Valid(client)) return;
  client->client->QuickExit();  // noexcept; idempotent
}

int haven_exited(const haven_client* client) {
  if (!Valid(client)) return 0;
  return client->client->exited() ? 1 : 0;
}

void haven_string_free(char* s) {
  if (s == nullptr) return;
  // Safety numbers and resumption secrets pass through here.
  haven::SecureZero({reinterpret_cast<std::uint8_t*>(s), std::strlen(s)});
  std::free(s);
}

const char* haven_status_string(int status) {
  switch (status) {
    case HAVEN_OK: return "ok";
    case HAVEN_E_INVALID_ARGUMENT: return "invalid argument";
    case HAVEN_E_EXITED: return "the client has quick-exited";
    case HAVEN_E_WRONG_ROLE: return "not allowed for this role";
    case HAVEN_E_NOT_FOUND: return "no such conversation";
    case HAVEN_E_WRONG_STATE: return "not possible in the current state";
    case HAVEN_E_STORAGE: return "local storage failed";
    case HAVEN_E_WRONG_PASSPHRASE: return "the local store did not open with this key";
    case HAVEN_E_REFUSED: return "refused by the server";
    case HAVEN_E_UNAVAILABLE: return "the server cannot be reached";
    case HAVEN_E_INTERNAL: return "internal error";
    default: return "unknown status";
  }
}

const char* haven_last_error(void) { return t_last_error; }

#define HAVEN_STR2(x) #x
#define HAVEN_STR(x) HAVEN_STR2(x)
const char* haven_version(void) {
  return HAVEN_STR(HAVEN_VERSION_MAJOR) "." HAVEN_STR(HAVEN_VERSION_MINOR) "." HAVEN_STR(
      HAVEN_VERSION_PATCH);
}

}  // extern "C"
