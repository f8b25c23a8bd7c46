/* Haven client SDK: the C ABI, for apps and foreign-function interfaces
 * (Kotlin/JNI, Swift, Python ctypes). A thin layer over haven/client.h with
 * the same semantics; docs/sdk.md is the guide.
 *
 * Conventions
 *   - Every symbol starts with haven_ / HAVEN_; nothing else is exported.
 *   - Handles are opaque. Outputs come first in parameter lists.
 *   - Functions return a haven_status; HAVEN_OK is 0. The values are stable.
 *     haven_status_string() describes a code; haven_last_error() gives the
 *     detailed message of the last failed call on the calling thread.
 *   - Buffers are BORROWED (valid only during the call or the callback that
 *     received them) unless a comment says OWNED, in which case the named
 *     haven_*_free function releases them.
 *   - No C++ exception ever crosses this interface.
 *
 * Threads: every function is thread-safe and never blocks on the network,
 * except haven_client_free (joins the SDK's threads; never call it from the
 * event callback). The event callback runs on the SDK's event thread, one
 * event at a time, never concurrently. */
#ifndef HAVEN_HAVEN_H_
#define HAVEN_HAVEN_H_

#include <stddef.h>
#include <stdint.h>

#include "haven/version.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define HAVEN_EXPORT __declspec(dllexport)
#else
#define HAVEN_EXPORT __attribute__((visibility("default")))
#endif

typedef enum haven_status {
  HAVEN_OK = 0,
  HAVEN_E_INVALID_ARGUMENT = 1,
  HAVEN_E_EXITED = 2,
  HAVEN_E_WRONG_ROLE = 3,
  HAVEN_E_NOT_FOUND = 4,
  HAVEN_E_WRONG_STATE = 5,
  HAVEN_E_STORAGE = 6,
  HAVEN_E_WRONG_PASSPHRASE = 7,
  HAVEN_E_REFUSED = 8,
  HAVEN_E_UNAVAILABLE = 9,
  HAVEN_E_INTERNAL = 10
} haven_status;

typedef enum haven_role {
  HAVEN_ROLE_SURVIVOR = 1,
  HAVEN_ROLE_COUNSELLOR = 2,
  HAVEN_ROLE_SUPERVISOR = 3 /* a counsellor who also sees the load, is alerted and may join */
} haven_role;

typedef enum haven_connection_state {
  HAVEN_CONNECTION_CONNECTING = 1,
  HAVEN_CONNECTION_ONLINE = 2,
  HAVEN_CONNECTION_OFFLINE = 3,
  HAVEN_CONNECTION_STOPPED = 4
} haven_connection_state;

typedef enum haven_conversation_state {
  HAVEN_CONVERSATION_OPENING = 1,
  HAVEN_CONVERSATION_WAITING = 2,
  HAVEN_CONVERSATION_ACTIVE = 3,
  HAVEN_CONVERSATION_CONNECTION_LOST = 4,
  HAVEN_CONVERSATION_CLOSED_BY_SURVIVOR = 5,
  HAVEN_CONVERSATION_CLOSED_BY_COUNSELLOR = 6,
  HAVEN_CONVERSATION_SURVIVOR_LEFT_QUICKLY = 7,
  HAVEN_CONVERSATION_TRANSFERRED = 8,
  HAVEN_CONVERSATION_LEFT = 9 /* supervisor: left the conversation */
} haven_conversation_state;

typedef enum haven_event_type {
  HAVEN_EVENT_CONNECTION_CHANGED = 1,
  HAVEN_EVENT_CONVERSATION_CHANGED = 2,
  HAVEN_EVENT_MESSAGE_RECEIVED = 3,
  HAVEN_EVENT_MESSAGE_SENT = 4,
  HAVEN_EVENT_QUEUE_CHANGED = 5,
  HAVEN_EVENT_REQUEST_FAILED = 6,
  HAVEN_EVENT_ENROLLED = 7,
  HAVEN_EVENT_SECURE_SESSION_READY = 8,
  HAVEN_EVENT_QUICK_EXIT_COMPLETED = 9,
  /* The counsellor workflow (client.h has the functions; the C ABI carries
   * its events so that a survivor's app can show them). */
  HAVEN_EVENT_HELPLINE_CONFIG_RECEIVED = 10,
  HAVEN_EVENT_COLLEAGUES_CHANGED = 11,
  HAVEN_EVENT_TRANSFER_OFFERED = 12,
  HAVEN_EVENT_TRANSFER_ANSWERED = 13,
  HAVEN_EVENT_SUPERVISOR_ALERT = 14,
  HAVEN_EVENT_LOAD_CHANGED = 15,
  HAVEN_EVENT_COUNSELLOR_CHANGING = 16, /* survivor: "another counsellor is joining" */
  HAVEN_EVENT_RESOURCE_CARD_RECEIVED = 17,
  /* A supervisor joined / left the conversation: show it to the person. */
  HAVEN_EVENT_SUPERVISOR_JOINED = 18,
  HAVEN_EVENT_SUPERVISOR_LEFT = 19
} haven_event_type;

/* A structured referral (HAVEN_EVENT_RESOURCE_CARD_RECEIVED), BORROWED like
 * the event. NUL-terminated UTF-8; untrusted: display as text only. */
typedef struct haven_resource_card {
  const char* service;
  const char* name;
  const char* offers;
  const char* contact;
  const char* region;
} haven_resource_card;

/* One event, BORROWED for the duration of the callback (text is zeroed after
 * it returns). Fields that do not apply to a type are 0 / NULL. */
typedef struct haven_event {
  int type;                /* haven_event_type */
  int connection;          /* haven_connection_state */
  uint64_t conversation;
  int state;               /* haven_conversation_state */
  uint64_t message;
  const uint8_t* text;     /* UTF-8, not NUL-terminated */
  size_t text_len;
  int error;               /* haven_status */
  const char* error_message; /* NUL-terminated */
  /* Added in 0.2 (appended: the layout above is unchanged). */
  const haven_resource_card* card; /* HAVEN_EVENT_RESOURCE_CARD_RECEIVED, else NULL */
  int accepted;            /* HAVEN_EVENT_TRANSFER_ANSWERED */
  int alert;               /* HAVEN_EVENT_SUPERVISOR_ALERT: 1 flagged, 2 flagged survivor left quickly */
  int flagged_high_risk;
  int flagged_minor;
  /* Added in 0.3. MESSAGE_RECEIVED, RESOURCE_CARD_RECEIVED: who wrote it;
   * SECURE_SESSION_READY: with whom. A haven_role (1 survivor, 2 counsellor,
   * 3 supervisor). */
  int sender;
} haven_event;

typedef void (*haven_event_fn)(void* user_data, const haven_event* event);

typedef struct haven_options haven_options;
typedef struct haven_client haven_client;

/* Options: create, set, pass to haven_client_new, free. Setters copy what
 * they are given (secrets into guarded memory, zeroed by haven_options_free). */
HAVEN_EXPORT haven_status haven_options_new(haven_options** out_options, int role);
HAVEN_EXPORT void haven_options_free(haven_options* options);
/* host: a numeric address (no DNS). server_key: 32 bytes, pinned. */
HAVEN_EXPORT haven_status haven_options_set_server(haven_options* options, const char* host,
                                                   uint16_t port, const uint8_t* server_key,
                                                   size_t server_key_len);
HAVEN_EXPORT haven_status haven_options_set_helpline_key(haven_options* options,
                                                         const uint8_t* key, size_t key_len);
HAVEN_EXPORT haven_status haven_options_set_storage_dir(haven_options* options, const char* dir);
/* Enables the encrypted local store, keyed from a passphrase (Argon2id)... */
HAVEN_EXPORT haven_status haven_options_set_store_passphrase(haven_options* options,
                                                             const char* passphrase,
                                                             size_t passphrase_len);
/* ...or from a 32-byte key from the platform keystore. */
HAVEN_EXPORT haven_status haven_options_set_store_key(haven_options* options,
                                                      const uint8_t* key, size_t key_len);
HAVEN_EXPORT haven_status haven_options_set_resumable(haven_options* options, int resumable);
HAVEN_EXPORT haven_status haven_options_set_resumption_secret(haven_options* options,
                                                              const char* secret,
                                                              size_t secret_len);

/* Starts a client (its I/O and event threads). The callback may be NULL. */
HAVEN_EXPORT haven_status haven_client_new(haven_client** out_client,
                                           const haven_options* options,
                                           haven_event_fn on_event, void* user_data);
/* Stops the threads and releases the client; not a quick exit. NULL is a no-op. */
HAVEN_EXPORT void haven_client_free(haven_client* client);

/* Survivor. intake may be NULL when intake_len is 0. */
HAVEN_EXPORT haven_status haven_open_conversation(uint64_t* out_conversation,
                                                  haven_client* client, const char* language,
                                                  uint32_t priority, const uint8_t* intake,
                                                  size_t intake_len);
/* OWNED: *out_secret is NUL-terminated; release with haven_string_free. */
HAVEN_EXPORT haven_status haven_resumption_secret(char** out_secret, haven_client* client);

/* Counsellor. */
HAVEN_EXPORT haven_status haven_redeem_invitation(haven_client* client, const char* code);
HAVEN_EXPORT haven_status haven_claim(haven_client* client, uint64_t conversation);

typedef struct haven_queue_entry {
  uint64_t conversation;
  char language[36];   /* NUL-terminated */
  uint32_t priority;
  int survivor_online;
  uint64_t position;
} haven_queue_entry;
/* OWNED: *out_entries (may be NULL when *out_count is 0); release with haven_queue_free. */
HAVEN_EXPORT haven_status haven_queue(haven_queue_entry** out_entries, size_t* out_count,
                                      haven_client* client);
HAVEN_EXPORT void haven_queue_free(haven_queue_entry* entries);

/* Both. */
HAVEN_EXPORT haven_status haven_send(uint64_t* out_message, haven_client* client,
                                     uint64_t conversation, const uint8_t* text,
                                     size_t text_len);
HAVEN_EXPORT haven_status haven_close_conversation(haven_client* client, uint64_t conversation);
/* OWNED: *out_number is NUL-terminated; release with haven_string_free. */
HAVEN_EXPORT haven_status haven_safety_number(char** out_number, haven_client* client,
                                              uint64_t conversation);
HAVEN_EXPORT int haven_connection_state_of(const haven_client* client);

/* Counsellor workflow (docs/sdk.md section 10). Each returns at once; the
 * server's answer arrives as an event (a refusal as REQUEST_FAILED). Strings
 * are NUL-terminated UTF-8, BORROWED for the call only. Added in 0.3. */
/* presence: 1 available, 2 busy, 3 away; languages filter the queue (none: all). */
HAVEN_EXPORT haven_status haven_set_presence(haven_client* client, int presence,
                                             const char* const* languages,
                                             size_t language_count);
/* language may be NULL or "" (keep the conversation's). */
HAVEN_EXPORT haven_status haven_transfer_to_queue(haven_client* client, uint64_t conversation,
                                                  const char* language);
/* colleague_id: 32 hex characters; handoff_note (warm only) may be NULL. */
HAVEN_EXPORT haven_status haven_transfer_to_colleague(haven_client* client,
                                                      uint64_t conversation,
                                                      const char* colleague_id, int warm,
                                                      const char* handoff_note);
HAVEN_EXPORT haven_status haven_answer_transfer(haven_client* client, uint64_t conversation,
                                                int accept);
/* reason is sealed to the helpline key (haven_options_set_helpline_key). */
HAVEN_EXPORT haven_status haven_block(haven_client* client, uint64_t conversation,
                                      unsigned hours, const char* reason);
HAVEN_EXPORT haven_status haven_flag(haven_client* client, uint64_t conversation, int high_risk,
                                     int minor);
HAVEN_EXPORT haven_status haven_send_resource_card(uint64_t* out_message, haven_client* client,
                                                   uint64_t conversation,
                                                   const char* referral_id);
/* Supervisors (a client created with HAVEN_ROLE_SUPERVISOR). */
HAVEN_EXPORT haven_status haven_refresh_load(haven_client* client);
/* Join a conversation a counsellor holds (its id from SUPERVISOR_ALERT) as a
 * visible participant; leave it again. */
HAVEN_EXPORT haven_status haven_join_conversation(haven_client* client, uint64_t conversation);
HAVEN_EXPORT haven_status haven_leave_conversation(haven_client* client, uint64_t conversation);

/* Quick exit (quick-exit.md): any thread, any time, idempotent, never waits
 * on the network. NULL is a no-op. */
HAVEN_EXPORT void haven_quick_exit(haven_client* client);
HAVEN_EXPORT int haven_exited(const haven_client* client);

HAVEN_EXPORT void haven_string_free(char* s);
/* A static English description of a status code. */
HAVEN_EXPORT const char* haven_status_string(int status);
/* The detailed message of the last failed call on this thread ("" if none);
 * valid until the next haven_ call on this thread. */
HAVEN_EXPORT const char* haven_last_error(void);
/* "0.1.0" */
HAVEN_EXPORT const char* haven_version(void);

#ifdef __cplusplus
}
#endif

#endif /* HAVEN_HAVEN_H_ */
