/* A counsellor on the Haven C ABI (haven.h): enrols this device with an
 * invitation code, claims the first conversation in the queue, answers each
 * message with an echo, and exits when the conversation ends.
 *
 *   counsellor HOST PORT SERVER_KEY_HEX INVITATION_CODE
 *
 * HOST is a numeric address; SERVER_KEY_HEX is the helpline's 32-byte server
 * key (64 hex digits) from its configuration; INVITATION_CODE comes from
 * `haven-admin enrol --role counsellor`. A real console shows the messages to
 * a person; the echo stands in for them.
 *
 * The SDK calls on_event on its own event thread, one event at a time. SDK
 * calls are allowed from inside the callback (only haven_client_free is
 * not), so this program reacts there and the main thread just waits. */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <haven/haven.h>

#define TIMEOUT_SECONDS 120

typedef struct app {
  haven_client* client; /* guarded by mu: set by main after haven_client_new */
  pthread_mutex_t mu;
  pthread_cond_t cv;
  uint64_t conversation; /* the one claimed, 0 until then */
  int done;              /* 1: the conversation ended */
  int exit_code;
} app;

static void finish(app* a, int exit_code) {
  pthread_mutex_lock(&a->mu);
  a->done = 1;
  a->exit_code = exit_code;
  pthread_cond_signal(&a->cv);
  pthread_mutex_unlock(&a->mu);
}

static void claim_first_waiting(app* a) {
  haven_queue_entry* entries = NULL;
  size_t count = 0;
  if (haven_queue(&entries, &count, a->client) != HAVEN_OK) {
    fprintf(stderr, "queue: %s\n", haven_last_error());
    return;
  }
  if (count > 0) {
    const uint64_t conversation = entries[0].conversation;
    printf("claiming conversation %" PRIu64 " (language \"%s\", priority %u)\n", conversation,
           entries[0].language, (unsigned)entries[0].priority);
    if (haven_claim(a->client, conversation) == HAVEN_OK) {
      pthread_mutex_lock(&a->mu);
      a->conversation = conversation;
      pthread_mutex_unlock(&a->mu);
    } else {
      fprintf(stderr, "claim: %s\n", haven_last_error());
    }
  }
  haven_queue_free(entries);
}

static void reply(app* a, uint64_t conversation, const uint8_t* text, size_t len) {
  /* Copy the text now: it is borrowed and zeroed when the callback returns. */
  static const char prefix[] = "echo: ";
  char buf[1024];
  const size_t n = len < sizeof buf - sizeof prefix ? len : sizeof buf - sizeof prefix;
  memcpy(buf, prefix, sizeof prefix - 1);
  memcpy(buf + sizeof prefix - 1, text, n);
  uint64_t message = 0;
  if (haven_send(&message, a->client, conversation, (const uint8_t*)buf,
                 sizeof prefix - 1 + n) != HAVEN_OK) {
    fprintf(stderr, "send: %s\n", haven_last_error());
  }
  memset(buf, 0, sizeof buf); /* our copy of their words goes too */
}

static void on_event(void* user_data, const haven_event* e) {
  app* a = (app*)user_data;
  pthread_mutex_lock(&a->mu);
  const uint64_t mine = a->conversation;
  const int ready = a->client != NULL;
  pthread_mutex_unlock(&a->mu);
  if (!ready && e->type != HAVEN_EVENT_CONNECTION_CHANGED) return;
  switch (e->type) {
    case HAVEN_EVENT_CONNECTION_CHANGED:
      printf("connection: %s\n",
             e->connection == HAVEN_CONNECTION_ONLINE ? "online" : "not online");
      break;
    case HAVEN_EVENT_ENROLLED:
      printf("enrolled\n");
      claim_first_waiting(a);
      break;
    case HAVEN_EVENT_QUEUE_CHANGED:
      if (mine == 0) claim_first_waiting(a);
      break;
    case HAVEN_EVENT_SECURE_SESSION_READY:
      printf("end-to-end encryption ready (compare safety numbers by voice if in doubt)\n");
      break;
    case HAVEN_EVENT_MESSAGE_RECEIVED:
      printf("survivor: %.*s\n", (int)e->text_len, (const char*)e->text);
      reply(a, e->conversation, e->text, e->text_len);
      break;
    case HAVEN_EVENT_MESSAGE_SENT:
      printf("delivered to the server (message %" PRIu64 ")\n", e->message);
      break;
    case HAVEN_EVENT_REQUEST_FAILED:
      fprintf(stderr, "request failed: %s: %s\n", haven_status_string(e->error),
              e->error_message != NULL ? e->error_message : "");
      /* Someone else claimed it first: look at the queue again. */
      if (e->conversation != 0 && e->conversation == mine) {
        pthread_mutex_lock(&a->mu);
        a->conversation = 0;
        pthread_mutex_unlock(&a->mu);
        claim_first_waiting(a);
      } else if (e->conversation == 0 && mine == 0) {
        finish(a, 1); /* e.g. the invitation was refused */
      }
      break;
    case HAVEN_EVENT_CONVERSATION_CHANGED:
      if (e->conversation != mine) break;
      switch (e->state) {
        case HAVEN_CONVERSATION_ACTIVE:
          printf("conversation: active\n");
          break;
        case HAVEN_CONVERSATION_CONNECTION_LOST:
          printf("conversation: the survivor's connection dropped (they may come back)\n");
          break;
        case HAVEN_CONVERSATION_SURVIVOR_LEFT_QUICKLY:
          /* Not a goodbye: say so plainly, and never re-contact by default. */
          printf("the survivor used quick exit: they may not be safe right now. Do not try to "
                 "re-contact unless a safe way was agreed.\n");
          finish(a, 0);
          break;
        case HAVEN_CONVERSATION_CLOSED_BY_SURVIVOR:
          printf("the survivor closed the conversation\n");
          finish(a, 0);
          break;
        case HAVEN_CONVERSATION_CLOSED_BY_COUNSELLOR:
          finish(a, 0);
          break;
        default:
          break;
      }
      break;
    default:
      break;
  }
  fflush(stdout);
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

static int fail(const char* what) {
  fprintf(stderr, "%s: %s\n", what, haven_last_error());
  return 1;
}

int main(int argc, char** argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: %s HOST PORT SERVER_KEY_HEX INVITATION_CODE\n", argv[0]);
    return 2;
  }
  uint8_t server_key[32];
  const unsigned long port = strtoul(argv[2], NULL, 10);
  if (port == 0 || port > 65535 || !decode_hex(argv[3], server_key, sizeof server_key)) {
    fprintf(stderr, "bad port or server key\n");
    return 2;
  }
  printf("Haven SDK %s\n", haven_version());

  app a;
  memset(&a, 0, sizeof a);
  pthread_mutex_init(&a.mu, NULL);
  pthread_cond_init(&a.cv, NULL);
  a.exit_code = 1;

  haven_options* options = NULL;
  if (haven_options_new(&options, HAVEN_ROLE_COUNSELLOR) != HAVEN_OK) return fail("options");
  if (haven_options_set_server(options, argv[1], (uint16_t)port, server_key,
                               sizeof server_key) != HAVEN_OK) {
    haven_options_free(options);
    return fail("server");
  }
  haven_client* client = NULL;
  const haven_status s = haven_client_new(&client, options, on_event, &a);
  haven_options_free(options); /* the client keeps its own copy */
  if (s != HAVEN_OK) return fail("client");
  /* The callback may already be running on the SDK's thread: publish the
   * handle under the lock it reads it with. Nothing needs it before the
   * invitation is redeemed. */
  pthread_mutex_lock(&a.mu);
  a.client = client;
  pthread_mutex_unlock(&a.mu);

  if (haven_redeem_invitation(client, argv[4]) != HAVEN_OK) {
    haven_client_free(client);
    return fail("invitation");
  }

  struct timespec deadline;
  clock_gettime(CLOCK_REALTIME, &deadline);
  deadline.tv_sec += TIMEOUT_SECONDS;
  pthread_mutex_lock(&a.mu);
  while (!a.done) {
    if (pthread_cond_timedwait(&a.cv, &a.mu, &deadline) == ETIMEDOUT) {
      fprintf(stderr, "timed out after %d s\n", TIMEOUT_SECONDS);
      a.exit_code = 3;
      break;
    }
  }
  const int exit_code = a.exit_code;
  pthread_mutex_unlock(&a.mu);

  /* From the main thread, never from on_event: it joins the SDK's threads. */
  haven_client_free(client);
  pthread_cond_destroy(&a.cv);
  pthread_mutex_destroy(&a.mu);
  return exit_code;
}
