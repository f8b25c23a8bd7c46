/* The C ABI end to end, from C, against a real havend on 127.0.0.1.
 *
 * A counsellor redeems an invitation and claims a survivor's conversation;
 * they exchange messages both ways; the survivor quick-exits and the
 * counsellor sees HAVEN_CONVERSATION_SURVIVOR_LEFT_QUICKLY; every call on the
 * exited client returns HAVEN_E_EXITED. Around that: NULL and invalid
 * arguments, haven_status_string and haven_last_error.
 *
 * Run by c_abi_launcher_test, which passes HAVEN_TEST_HOST, HAVEN_TEST_PORT,
 * HAVEN_TEST_SERVER_KEY (64 hex digits) and HAVEN_TEST_INVITATION. Exit code
 * 0 means every check passed. Events reach the test through a mutex and a
 * condition variable fed by the callback; every wait has a deadline and a
 * watchdog alarm ends the process if anything still hangs. */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "haven/haven.h"

#define STEP_TIMEOUT_MS 15000
#define WATCHDOG_SECONDS 120
#define MAX_EVENTS 512
#define MAX_TEXT 512

/* ---- failure reporting ---- */

static void fail_at(const char* file, int line, const char* what) {
  fprintf(stderr, "FAILED %s:%d: %s\n  haven_last_error: \"%s\"\n", file, line, what,
          haven_last_error());
  fflush(stderr);
  exit(1);
}

#define CHECK(cond)                                    \
  do {                                                 \
    if (!(cond)) fail_at(__FILE__, __LINE__, #cond);   \
  } while (0)

#define EXPECT_STATUS(expected, call)                                                       \
  do {                                                                                      \
    const int got_ = (int)(call);                                                           \
    if (got_ != (int)(expected)) {                                                          \
      fprintf(stderr, "%s\n  returned %d (%s), expected %d (%s)\n", #call, got_,           \
              haven_status_string(got_), (int)(expected), haven_status_string(expected)); \
      fail_at(__FILE__, __LINE__, "unexpected status");                                     \
    }                                                                                       \
  } while (0)

#define EXPECT_OK(call) EXPECT_STATUS(HAVEN_OK, call)

/* ---- events, as the callback records them ---- */

typedef struct recorded_event {
  int type;
  int connection;
  uint64_t conversation;
  int state;
  uint64_t message;
  int error;
  int sender;
  size_t text_len;
  char text[MAX_TEXT]; /* a copy: the SDK zeroes the original after the callback */
} recorded_event;

typedef struct event_log {
  const char* name;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  recorded_event events[MAX_EVENTS];
  size_t count;
  int in_callback;   /* events must never be delivered concurrently */
  int overlapped;
} event_log;

static void event_log_init(event_log* log, const char* name) {
  memset(log, 0, sizeof *log);
  log->name = name;
  pthread_condattr_t attr;
  CHECK(pthread_condattr_init(&attr) == 0);
  /* Deadlines on the monotonic clock: a wall-clock jump cannot stretch a wait. */
  CHECK(pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) == 0);
  CHECK(pthread_cond_init(&log->cv, &attr) == 0);
  pthread_condattr_destroy(&attr);
  CHECK(pthread_mutex_init(&log->mu, NULL) == 0);
}

static void event_log_destroy(event_log* log) {
  pthread_cond_destroy(&log->cv);
  pthread_mutex_destroy(&log->mu);
}

static void on_event(void* user_data, const haven_event* e) {
  event_log* log = (event_log*)user_data;
  pthread_mutex_lock(&log->mu);
  if (log->in_callback) log->overlapped = 1;
  log->in_callback = 1;
  if (log->count < MAX_EVENTS) {
    recorded_event* r = &log->events[log->count++];
    r->type = e->type;
    r->connection = e->connection;
    r->conversation = e->conversation;
    r->state = e->state;
    r->message = e->message;
    r->error = e->error;
    r->sender = e->sender;
    r->text_len = e->text_len;
    if (e->text != NULL && e->text_len > 0) {
      const size_t n = e->text_len < MAX_TEXT - 1 ? e->text_len : MAX_TEXT - 1;
      memcpy(r->text, e->text, n);
      r->text[n] = '\0';
    }
  }
  /* Message text is never logged, even here. */
  fprintf(stderr, "[%s] event type=%d connection=%d conversation=%" PRIu64
          " state=%d message=%" PRIu64 " text_len=%zu error=%d%s%s\n",
          log->name, e->type, e->connection, e->conversation, e->state, e->message,
          e->text_len, e->error, e->error_message != NULL ? " " : "",
          e->error_message != NULL ? e->error_message : "");
  log->in_callback = 0;
  pthread_cond_broadcast(&log->cv);
  pthread_mutex_unlock(&log->mu);
}

static struct timespec deadline_after(int timeout_ms) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  t.tv_sec += timeout_ms / 1000;
  t.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
  if (t.tv_nsec >= 1000000000L) {
    t.tv_sec += 1;
    t.tv_nsec -= 1000000000L;
  }
  return t;
}

static int64_t now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* What to wait for: a type, and optionally a state (0: any), a
 * conversation (0: any), a message id (0: any) and a text (NULL: any). */
typedef struct event_match {
  int type;
  int state;
  uint64_t conversation;
  uint64_t message;
  const char* text;
  int sender; /* 0: any */
} event_match;

static int matches(const recorded_event* r, const event_match* m) {
  if (r->type != m->type) return 0;
  if (m->state != 0 && r->state != m->state) return 0;
  if (m->conversation != 0 && r->conversation != m->conversation) return 0;
  if (m->message != 0 && r->message != m->message) return 0;
  if (m->sender != 0 && r->sender != m->sender) return 0;
  if (m->text != NULL &&
      (r->text_len != strlen(m->text) || memcmp(r->text, m->text, r->text_len) != 0)) {
    return 0;
  }
  return 1;
}

/* Waits until an event matching `m` has been recorded (searching from the
 * first event, so an event that came early is found too). Fails the test at
 * the deadline. */
static recorded_event wait_event_at(event_log* log, event_match m, const char* what,
                                    const char* file, int line) {
  const struct timespec deadline = deadline_after(STEP_TIMEOUT_MS);
  recorded_event found;
  memset(&found, 0, sizeof found);
  pthread_mutex_lock(&log->mu);
  for (;;) {
    for (size_t i = 0; i < log->count; ++i) {
      if (matches(&log->events[i], &m)) {
        found = log->events[i];
        pthread_mutex_unlock(&log->mu);
        return found;
      }
    }
    const int rc = pthread_cond_timedwait(&log->cv, &log->mu, &deadline);
    if (rc == ETIMEDOUT) break;
  }
  pthread_mutex_unlock(&log->mu);
  fprintf(stderr, "[%s] timed out waiting for %s\n", log->name, what);
  fail_at(file, line, "event did not arrive in time");
  return found;
}

#define WAIT_EVENT(log, ...) \
  wait_event_at((log), (event_match){__VA_ARGS__}, #__VA_ARGS__, __FILE__, __LINE__)

static size_t event_count(event_log* log) {
  pthread_mutex_lock(&log->mu);
  const size_t n = log->count;
  pthread_mutex_unlock(&log->mu);
  return n;
}

static void sleep_ms(int ms) {
  struct timespec t = {ms / 1000, (long)(ms % 1000) * 1000000L};
  while (nanosleep(&t, &t) != 0 && errno == EINTR) {
  }
}

/* ---- set-up ---- */

static const char* require_env(const char* name) {
  const char* v = getenv(name);
  if (v == NULL || v[0] == '\0') {
    fprintf(stderr, "missing environment variable %s\n", name);
    exit(2);
  }
  return v;
}

static int decode_hex(const char* hex, uint8_t* out, size_t out_len) {
  if (strlen(hex) != 2 * out_len) return 0;
  for (size_t i = 0; i < out_len; ++i) {
    unsigned v = 0;
    if (sscanf(hex + 2 * i, "%2x", &v) != 1) return 0;
    out[i] = (uint8_t)v;
  }
  return 1;
}

typedef struct server_info {
  const char* host;
  uint16_t port;
  uint8_t key[32];
  const char* invitation;
  const char* supervisor_invitation;
} server_info;

static haven_client* new_client(const server_info* server, int role, int resumable,
                                event_log* log) {
  haven_options* options = NULL;
  EXPECT_OK(haven_options_new(&options, role));
  CHECK(options != NULL);
  EXPECT_OK(haven_options_set_server(options, server->host, server->port, server->key,
                                     sizeof server->key));
  EXPECT_OK(haven_options_set_resumable(options, resumable));
  haven_client* client = NULL;
  EXPECT_OK(haven_client_new(&client, options, on_event, log));
  CHECK(client != NULL);
  /* The client keeps what it needs: the options can go at once. */
  haven_options_free(options);
  return client;
}

/* ---- checks that need no server ---- */

static void check_static_functions(void) {
  char expected[32];
  snprintf(expected, sizeof expected, "%d.%d.%d", HAVEN_VERSION_MAJOR, HAVEN_VERSION_MINOR,
           HAVEN_VERSION_PATCH);
  CHECK(strcmp(haven_version(), expected) == 0);
  CHECK(strcmp(haven_version(), "0.1.0") == 0);

  /* Every status has its own description; unknown values still get one. */
  for (int a = HAVEN_OK; a <= HAVEN_E_INTERNAL; ++a) {
    CHECK(haven_status_string(a) != NULL && haven_status_string(a)[0] != '\0');
    for (int b = a + 1; b <= HAVEN_E_INTERNAL; ++b) {
      CHECK(strcmp(haven_status_string(a), haven_status_string(b)) != 0);
    }
  }
  CHECK(haven_status_string(-1) != NULL);
  CHECK(haven_status_string(9999) != NULL);
  CHECK(strcmp(haven_status_string(9999), haven_status_string(HAVEN_OK)) != 0);
  CHECK(haven_last_error() != NULL);

  /* Every release function accepts NULL. */
  haven_options_free(NULL);
  haven_client_free(NULL);
  haven_quick_exit(NULL);
  haven_string_free(NULL);
  haven_queue_free(NULL);
  CHECK(haven_exited(NULL) == 0);
  CHECK(haven_connection_state_of(NULL) == 0);
}

static void check_invalid_arguments(const server_info* server) {
  static const uint8_t key31[31] = {0};
  haven_options* options = (haven_options*)0x1; /* must be cleared on failure */

  EXPECT_STATUS(HAVEN_E_INVALID_ARGUMENT, haven_options_new(NULL, HAVEN_ROLE_SURVIVOR));
  CHECK(haven_last_error()[0] != '\0');
  EXPECT_STATUS(HAVEN_E_INVALID_ARGUMENT, haven_options_new(&options, 0));
  CHECK(options == NULL);
  EXPECT_STATUS(HAVEN_E_INVALID_ARGUMENT, haven_options_new(&options, 4));

  EXPECT_OK(haven_options_new(&options, HAVEN_ROLE_SURVIVOR));
  EXPECT_STATUS(HAVEN_E_INVALID_ARGUMENT,
                haven_options_set_server(NULL, "127.0.0.1", server->port, server->key, 32));
  EXPECT_STATUS(HAVEN_E_INVALID_ARGUMENT,
                haven_options_set_server(options, NULL, server->port, server->key, 32));
  EXPECT_STATUS(HAVEN_E_INVALID_ARGUMENT,
                haven_options_set_server(options, "127.0.0.1", server->port, NULL, 32));
  EXPECT_STATUS(HAVEN_E_INVALID_ARGUMENT,
                haven_options_set_server(options, "127.0.0.1", server->port, key31, 31));
  EXPECT_STATUS(HAVEN_E_INVALID_ARGUMENT,
                haven_options_set_server(options, "127.0.0.1", 0, server->key, 32));
  EXPECT_STATUS(HAVEN_E_INVALID_ARGUMENT, haven_options_set_helpline_key(options, key31, 31));
  EXPECT_STATUS(HAVEN_E_INVALID_ARGUMENT, haven_options_set_helpline_key(options, NULL, 32));
  EXPECT_STATUS(HAVEN_E_INVALID_ARGUMENT, haven_options_set_store_key(options, key31, 31));
  EXPECT_STATUS(HAVEN_E_INVALID_ARGUMENT, haven_options_set_store_passphrase(options, NULL, 4));
  EXPECT_STATUS(HAVEN_E_INVALID_ARGUMENT, haven_options_set_store_passphrase(options, "", 0));
  EXPECT_STATUS(HAVEN_E_INVALID_ARGUMENT, haven_options_set_resumption_secret(options, NULL, 3));
  EXPECT_STATUS(HAVEN_E_INVALID_ARGUMENT, haven_options_set_storage_dir(options, NULL));
  EXPECT_STATUS(HAVEN_E_INVALID_ARGUMENT, haven_options_set_resumable(NULL, 1));

  /* A client needs a server. */
  haven_client* client = (haven_client*)0x1;
  EXPECT_STATUS(HAVEN_E_INVALID_ARGUMENT, haven_client_new(&client, options, NULL, NULL));
  CHECK(client == NULL);
  EXPECT_STATUS(HAVEN_E_INVALID_ARGUMENT, haven_client_new(NULL, options, NULL, NULL));
  EXPECT_STATUS(HAVEN_E_INVALID_ARGUMENT, haven_client_new(&client, NULL, NULL, NULL));

  /* The SDK does no DNS: a host name is refused when the client is made. */
  EXPECT_OK(haven_options_set_server(options, "haven.example.org", server->port, server->key, 32));
  EXPECT_STATUS(HAVEN_E_INVALID_ARGUMENT, haven_client_new(&client, options, NULL, NULL));
  CHECK(client == NULL);
  CHECK(strlen(haven_last_error()) > 0);
  haven_options_free(options);

  /* Calls on a NULL client. */
  uint64_t id = 7;
  char* text = (char*)0x1;
  haven_queue_entry* entries = (haven_queue_entry*)0x1;
  size_t count = 7;
  EXPECT_STATUS(HAVEN_E_INVALID_ARGUMENT, haven_open_conversation(&id, NULL, "en", 0, NULL, 0));
  CHECK(id == 0);
  EXPECT_STATUS(HAVEN_E_INVALID_ARGUMENT, haven_resumption_secret(&text, NULL));
  CHECK(text == NULL);
  EXPECT_STATUS(HAVEN_E_INVALID_ARGUMENT, haven_redeem_invitation(NULL, "x"));
  EXPECT_STATUS(HAVEN_E_INVALID_ARGUMENT, haven_claim(NULL, 1));
  EXPECT_STATUS(HAVEN_E_INVALID_ARGUMENT, haven_queue(&entries, &count, NULL));
  CHECK(entries == NULL && count == 0);
  EXPECT_STATUS(HAVEN_E_INVALID_ARGUMENT, haven_send(&id, NULL, 1, (const uint8_t*)"x", 1));
  EXPECT_STATUS(HAVEN_E_INVALID_ARGUMENT, haven_close_conversation(NULL, 1));
  EXPECT_STATUS(HAVEN_E_INVALID_ARGUMENT, haven_safety_number(&text, NULL, 1));
}

/* ---- the conversation ---- */

static void send_text(haven_client* client, uint64_t conversation, const char* text,
                      uint64_t* out_message) {
  EXPECT_OK(haven_send(out_message, client, conversation, (const uint8_t*)text, strlen(text)));
  CHECK(*out_message != 0);
}

static uint64_t wait_for_queued(haven_client* counsellor, event_log* log) {
  const int64_t deadline = now_ms() + STEP_TIMEOUT_MS;
  while (now_ms() < deadline) {
    haven_queue_entry* entries = NULL;
    size_t count = 0;
    EXPECT_OK(haven_queue(&entries, &count, counsellor));
    if (count > 0) {
      CHECK(entries != NULL);
      CHECK(count == 1);
      CHECK(entries[0].conversation != 0);
      CHECK(strcmp(entries[0].language, "pt-BR") == 0);
      CHECK(entries[0].priority == 3);
      const uint64_t conversation = entries[0].conversation;
      haven_queue_free(entries);
      return conversation;
    }
    CHECK(entries == NULL);
    /* Not there yet: wait for the next queue change (or poll again). */
    pthread_mutex_lock(&log->mu);
    const size_t seen = log->count;
    const struct timespec wake = deadline_after(200);
    while (log->count == seen) {
      if (pthread_cond_timedwait(&log->cv, &log->mu, &wake) == ETIMEDOUT) break;
    }
    pthread_mutex_unlock(&log->mu);
  }
  fail_at(__FILE__, __LINE__, "the conversation never reached the counsellor's queue");
  return 0;
}

static void check_exited_client(haven_client* client) {
  uint64_t id = 7;
  char* text = NULL;
  haven_queue_entry* entries = NULL;
  size_t count = 0;
  EXPECT_STATUS(HAVEN_E_EXITED, haven_open_conversation(&id, client, "en", 0, NULL, 0));
  CHECK(id == 0);
  EXPECT_STATUS(HAVEN_E_EXITED, haven_resumption_secret(&text, client));
  CHECK(text == NULL);
  EXPECT_STATUS(HAVEN_E_EXITED, haven_redeem_invitation(client, "ABCD"));
  EXPECT_STATUS(HAVEN_E_EXITED, haven_claim(client, 1));
  EXPECT_STATUS(HAVEN_E_EXITED, haven_queue(&entries, &count, client));
  EXPECT_STATUS(HAVEN_E_EXITED, haven_send(&id, client, 1, (const uint8_t*)"x", 1));
  EXPECT_STATUS(HAVEN_E_EXITED, haven_close_conversation(client, 1));
  EXPECT_STATUS(HAVEN_E_EXITED, haven_safety_number(&text, client, 1));
  CHECK(text == NULL);
  /* Even a malformed call: "exited" is the one answer. */
  EXPECT_STATUS(HAVEN_E_EXITED, haven_send(NULL, client, 1, NULL, 5));
  CHECK(haven_last_error()[0] != '\0');
  CHECK(haven_exited(client) == 1);
  CHECK(haven_connection_state_of(client) == HAVEN_CONNECTION_STOPPED);
}

int main(void) {
  /* Never hang: if a wait somehow does not return, SIGALRM ends the process. */
  alarm(WATCHDOG_SECONDS);
  setvbuf(stdout, NULL, _IOLBF, 0);

  server_info server;
  server.host = getenv("HAVEN_TEST_HOST") != NULL ? getenv("HAVEN_TEST_HOST") : "127.0.0.1";
  server.port = (uint16_t)strtoul(require_env("HAVEN_TEST_PORT"), NULL, 10);
  CHECK(decode_hex(require_env("HAVEN_TEST_SERVER_KEY"), server.key, sizeof server.key));
  server.invitation = require_env("HAVEN_TEST_INVITATION");
  server.supervisor_invitation = require_env("HAVEN_TEST_SUPERVISOR_INVITATION");

  check_static_functions();
  check_invalid_arguments(&server);

  static event_log counsellor_log;
  static event_log survivor_log;
  event_log_init(&counsellor_log, "counsellor");
  event_log_init(&survivor_log, "survivor");

  /* Counsellor: enrol with the invitation. */
  haven_client* counsellor = new_client(&server, HAVEN_ROLE_COUNSELLOR, 0, &counsellor_log);
  const int state = haven_connection_state_of(counsellor);
  CHECK(state == HAVEN_CONNECTION_CONNECTING || state == HAVEN_CONNECTION_ONLINE);
  EXPECT_STATUS(HAVEN_E_INVALID_ARGUMENT, haven_redeem_invitation(counsellor, NULL));
  uint64_t id = 0;
  EXPECT_STATUS(HAVEN_E_WRONG_ROLE, haven_open_conversation(&id, counsellor, "en", 0, NULL, 0));
  EXPECT_OK(haven_redeem_invitation(counsellor, server.invitation));
  WAIT_EVENT(&counsellor_log, .type = HAVEN_EVENT_ENROLLED);

  /* Survivor: a resumable session, a conversation request. */
  haven_client* survivor = new_client(&server, HAVEN_ROLE_SURVIVOR, 1, &survivor_log);
  EXPECT_STATUS(HAVEN_E_WRONG_ROLE, haven_claim(survivor, 1));
  char* secret = NULL;
  EXPECT_OK(haven_resumption_secret(&secret, survivor));
  CHECK(secret != NULL && strlen(secret) > 0);
  haven_string_free(secret);

  uint64_t survivor_conversation = 0;
  EXPECT_STATUS(HAVEN_E_INVALID_ARGUMENT,
                haven_open_conversation(&survivor_conversation, survivor, "en", 0, NULL, 4));
  EXPECT_STATUS(HAVEN_E_INVALID_ARGUMENT,
                haven_open_conversation(NULL, survivor, "en", 0, NULL, 0));
  EXPECT_OK(haven_open_conversation(&survivor_conversation, survivor, "pt-BR", 3, NULL, 0));
  CHECK(survivor_conversation != 0);
  char* number = NULL;
  EXPECT_STATUS(HAVEN_E_WRONG_STATE, haven_safety_number(&number, survivor, survivor_conversation));
  CHECK(number == NULL);
  EXPECT_STATUS(HAVEN_E_NOT_FOUND, haven_safety_number(&number, survivor, 999999));
  EXPECT_STATUS(HAVEN_E_INVALID_ARGUMENT,
                haven_send(NULL, survivor, survivor_conversation, (const uint8_t*)"x", 1));
  EXPECT_STATUS(HAVEN_E_INVALID_ARGUMENT,
                haven_send(&id, survivor, survivor_conversation, NULL, 1));

  /* Counsellor: the request reaches the queue; claim it. */
  WAIT_EVENT(&counsellor_log, .type = HAVEN_EVENT_QUEUE_CHANGED);
  const uint64_t counsellor_conversation = wait_for_queued(counsellor, &counsellor_log);
  EXPECT_OK(haven_claim(counsellor, counsellor_conversation));
  WAIT_EVENT(&counsellor_log, .type = HAVEN_EVENT_CONVERSATION_CHANGED,
             .state = HAVEN_CONVERSATION_ACTIVE, .conversation = counsellor_conversation);
  WAIT_EVENT(&survivor_log, .type = HAVEN_EVENT_CONVERSATION_CHANGED,
             .state = HAVEN_CONVERSATION_ACTIVE, .conversation = survivor_conversation);

  /* Both directions, ASCII and beyond (UTF-8 is bytes to the SDK). */
  static const char kFromCounsellor[] = "Hello. You are safe to talk here; take your time.";
  static const char kFromSurvivor[] = "Ol\xc3\xa1, I need help \xe2\x80\x94 they took my passport.";
  static const char kSecondFromCounsellor[] = "Thank you for telling me. We can help with that.";
  uint64_t message = 0;
  send_text(counsellor, counsellor_conversation, kFromCounsellor, &message);
  WAIT_EVENT(&counsellor_log, .type = HAVEN_EVENT_MESSAGE_SENT,
             .conversation = counsellor_conversation, .message = message);
  WAIT_EVENT(&survivor_log, .type = HAVEN_EVENT_MESSAGE_RECEIVED,
             .conversation = survivor_conversation, .text = kFromCounsellor);

  send_text(survivor, survivor_conversation, kFromSurvivor, &message);
  WAIT_EVENT(&survivor_log, .type = HAVEN_EVENT_MESSAGE_SENT,
             .conversation = survivor_conversation, .message = message);
  WAIT_EVENT(&counsellor_log, .type = HAVEN_EVENT_MESSAGE_RECEIVED,
             .conversation = counsellor_conversation, .text = kFromSurvivor);

  send_text(counsellor, counsellor_conversation, kSecondFromCounsellor, &message);
  WAIT_EVENT(&survivor_log, .type = HAVEN_EVENT_MESSAGE_RECEIVED,
             .conversation = survivor_conversation, .text = kSecondFromCounsellor);

  /* End-to-end keys: both sides compute the same safety number. */
  WAIT_EVENT(&survivor_log, .type = HAVEN_EVENT_SECURE_SESSION_READY,
             .conversation = survivor_conversation);
  WAIT_EVENT(&counsellor_log, .type = HAVEN_EVENT_SECURE_SESSION_READY,
             .conversation = counsellor_conversation);
  char* survivor_number = NULL;
  char* counsellor_number = NULL;
  EXPECT_OK(haven_safety_number(&survivor_number, survivor, survivor_conversation));
  EXPECT_OK(haven_safety_number(&counsellor_number, counsellor, counsellor_conversation));
  CHECK(survivor_number != NULL && counsellor_number != NULL);
  CHECK(strlen(survivor_number) >= 60);
  CHECK(strcmp(survivor_number, counsellor_number) == 0);
  haven_string_free(survivor_number);
  haven_string_free(counsellor_number);

  /* The workflow calls: bad arguments are refused before anything is sent. */
  EXPECT_STATUS(HAVEN_E_INVALID_ARGUMENT, haven_set_presence(counsellor, 1, NULL, 2));
  EXPECT_STATUS(HAVEN_E_INVALID_ARGUMENT, haven_block(counsellor, counsellor_conversation, 1, NULL));
  EXPECT_STATUS(HAVEN_E_INVALID_ARGUMENT,
                haven_transfer_to_colleague(counsellor, counsellor_conversation, NULL, 0, NULL));
  EXPECT_STATUS(HAVEN_E_INVALID_ARGUMENT,
                haven_send_resource_card(NULL, counsellor, counsellor_conversation, "x"));
  EXPECT_STATUS(HAVEN_E_WRONG_ROLE, haven_flag(survivor, survivor_conversation, 1, 0));
  EXPECT_STATUS(HAVEN_E_WRONG_ROLE, haven_join_conversation(counsellor, counsellor_conversation));
  const char* const languages[] = {"en", "pt"};
  EXPECT_OK(haven_set_presence(counsellor, 1, languages, 2));

  /* A supervisor: alerted by a flag, it joins as a visible participant. */
  static event_log supervisor_log;
  event_log_init(&supervisor_log, "supervisor");
  haven_client* supervisor = new_client(&server, HAVEN_ROLE_SUPERVISOR, 0, &supervisor_log);
  EXPECT_OK(haven_redeem_invitation(supervisor, server.supervisor_invitation));
  WAIT_EVENT(&supervisor_log, .type = HAVEN_EVENT_ENROLLED);
  EXPECT_OK(haven_refresh_load(supervisor));
  WAIT_EVENT(&supervisor_log, .type = HAVEN_EVENT_LOAD_CHANGED);
  EXPECT_OK(haven_flag(counsellor, counsellor_conversation, 1, 0));
  const recorded_event alert = WAIT_EVENT(&supervisor_log, .type = HAVEN_EVENT_SUPERVISOR_ALERT);
  EXPECT_OK(haven_join_conversation(supervisor, alert.conversation));
  WAIT_EVENT(&survivor_log, .type = HAVEN_EVENT_SUPERVISOR_JOINED,
             .conversation = survivor_conversation);
  WAIT_EVENT(&counsellor_log, .type = HAVEN_EVENT_SUPERVISOR_JOINED,
             .conversation = counsellor_conversation);
  WAIT_EVENT(&supervisor_log, .type = HAVEN_EVENT_CONVERSATION_CHANGED,
             .state = HAVEN_CONVERSATION_ACTIVE, .conversation = alert.conversation);
  static const char kFromSupervisor[] = "I am a supervisor; I am here to help as well.";
  /* Sent once the survivor's session with it exists, so both copies go out now. */
  WAIT_EVENT(&supervisor_log, .type = HAVEN_EVENT_SECURE_SESSION_READY,
             .conversation = alert.conversation, .sender = HAVEN_ROLE_SURVIVOR);
  send_text(supervisor, alert.conversation, kFromSupervisor, &message);
  const recorded_event heard = WAIT_EVENT(&survivor_log, .type = HAVEN_EVENT_MESSAGE_RECEIVED,
                                          .conversation = survivor_conversation,
                                          .text = kFromSupervisor);
  CHECK(heard.sender == HAVEN_ROLE_SUPERVISOR);
  EXPECT_OK(haven_leave_conversation(supervisor, alert.conversation));
  WAIT_EVENT(&supervisor_log, .type = HAVEN_EVENT_CONVERSATION_CHANGED,
             .state = HAVEN_CONVERSATION_LEFT, .conversation = alert.conversation);
  WAIT_EVENT(&survivor_log, .type = HAVEN_EVENT_SUPERVISOR_LEFT,
             .conversation = survivor_conversation);
  haven_client_free(supervisor);
  event_log_destroy(&supervisor_log);

  /* Quick exit: immediate, final, idempotent. */
  const int64_t exit_start = now_ms();
  haven_quick_exit(survivor);
  const int64_t exit_ms = now_ms() - exit_start;
  printf("haven_quick_exit returned after %" PRId64 " ms\n", exit_ms);
  CHECK(exit_ms < 2000); /* it never waits on the network */
  CHECK(haven_exited(survivor) == 1);
  haven_quick_exit(survivor);
  WAIT_EVENT(&survivor_log, .type = HAVEN_EVENT_QUICK_EXIT_COMPLETED);
  check_exited_client(survivor);

  /* The counsellor is told, distinctly, that the survivor left quickly. */
  WAIT_EVENT(&counsellor_log, .type = HAVEN_EVENT_CONVERSATION_CHANGED,
             .state = HAVEN_CONVERSATION_SURVIVOR_LEFT_QUICKLY,
             .conversation = counsellor_conversation);
  printf("counsellor saw SURVIVOR_LEFT_QUICKLY %" PRId64 " ms after quick exit\n",
         now_ms() - exit_start);
  EXPECT_STATUS(HAVEN_E_WRONG_STATE,
                haven_send(&message, counsellor, counsellor_conversation,
                           (const uint8_t*)"are you there?", 14));

  /* QUICK_EXIT_COMPLETED was the survivor's last event. */
  const size_t after_exit = event_count(&survivor_log);
  sleep_ms(300);
  pthread_mutex_lock(&survivor_log.mu);
  const int last_type = survivor_log.events[survivor_log.count - 1].type;
  const size_t final_count = survivor_log.count;
  pthread_mutex_unlock(&survivor_log.mu);
  CHECK(final_count == after_exit);
  CHECK(last_type == HAVEN_EVENT_QUICK_EXIT_COMPLETED);

  CHECK(!survivor_log.overlapped && !counsellor_log.overlapped);
  haven_client_free(survivor);
  haven_client_free(counsellor);
  event_log_destroy(&survivor_log);
  event_log_destroy(&counsellor_log);
  printf("haven_c_test: all checks passed\n");
  return 0;
}
