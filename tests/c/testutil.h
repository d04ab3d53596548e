/* Small helpers shared by the C tests: checks that report the library's message, and a
 * thread-safe event recorder with deadline-bounded waits (no fixed sleeps). */
#ifndef HB_TESTUTIL_H
#define HB_TESTUTIL_H

#define _POSIX_C_SOURCE 200809L
#include <heartbeater.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int hb_test_failures = 0;

#define EXPECT(cond)                                                              \
  do {                                                                            \
    if (!(cond)) {                                                                \
      fprintf(stderr, "%s:%d: FAILED: %s\n", __FILE__, __LINE__, #cond);          \
      hb_test_failures++;                                                         \
    }                                                                             \
  } while (0)

/* Calls `call` (whose last argument must be `&err`) and aborts the test with the library's
 * message if it does not return HB_STATUS_OK. */
#define MUST(call)                                                                \
  do {                                                                            \
    hb_error *err = NULL;                                                         \
    hb_status must_status_ = (call);                                              \
    if (must_status_ != HB_STATUS_OK) {                                           \
      fprintf(stderr, "%s:%d: %s -> %s: %s\n", __FILE__, __LINE__, #call,         \
              hb_status_str(must_status_), err ? hb_error_message(err) : "");     \
      hb_error_free(err);                                                         \
      exit(1);                                                                    \
    }                                                                             \
  } while (0)

/* Expects `call` to fail with `want` and a message containing `needle`. */
#define EXPECT_ERR(want, needle, call)                                            \
  do {                                                                            \
    hb_error *err = NULL;                                                         \
    hb_status got_ = (call);                                                      \
    const char *msg_ = err ? hb_error_message(err) : "";                          \
    if (got_ != (want) || !err || hb_error_status(err) != (want) ||               \
        strstr(msg_, (needle)) == NULL) {                                         \
      fprintf(stderr, "%s:%d: FAILED: %s -> %s \"%s\", want %s containing \"%s\"\n", \
              __FILE__, __LINE__, #call, hb_status_str(got_), msg_,               \
              hb_status_str(want), (needle));                                     \
      hb_test_failures++;                                                         \
    }                                                                             \
    hb_error_free(err);                                                           \
  } while (0)

static inline long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#define MAX_PEERS 8

/* What a callback saw, per peer. Guarded by `mu`; `cv` signals every change. */
typedef struct {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int events;
  int drops;               /* drop_user_data calls: must end at exactly 1 */
  int order_errors;        /* `left` seen before `alive` for a peer */
  int n_peers;
  char peer[MAX_PEERS][72];
  int alive[MAX_PEERS];    /* alive, or joined for a watcher */
  int left[MAX_PEERS];
} recorder;

static inline void recorder_init(recorder *r) {
  memset(r, 0, sizeof *r);
  pthread_mutex_init(&r->mu, NULL);
  pthread_cond_init(&r->cv, NULL);
}

static inline void recorder_destroy(recorder *r) {
  pthread_mutex_destroy(&r->mu);
  pthread_cond_destroy(&r->cv);
}

static inline int recorder_slot(recorder *r, const char *peer) {
  for (int i = 0; i < r->n_peers; i++)
    if (strcmp(r->peer[i], peer) == 0) return i;
  if (r->n_peers == MAX_PEERS) return -1;
  snprintf(r->peer[r->n_peers], sizeof r->peer[0], "%s", peer);
  return r->n_peers++;
}

/* hb_event_callback: records alive/left per peer (a watcher's `joined` counts as alive). */
static void record_event(void *user_data, const hb_event *ev) {
  recorder *r = (recorder *)user_data;
  pthread_mutex_lock(&r->mu);
  r->events++;
  int i = recorder_slot(r, hb_event_peer(ev));
  if (i >= 0) {
    if (hb_event_to(ev) == HB_STATE_ALIVE || hb_event_to(ev) == HB_STATE_JOINED) r->alive[i]++;
    if (hb_event_to(ev) == HB_STATE_LEFT) {
      if (r->alive[i] == 0) r->order_errors++;
      r->left[i]++;
    }
  }
  pthread_cond_broadcast(&r->cv);
  pthread_mutex_unlock(&r->mu);
}

/* hb_drop_user_data: counts; the recorder itself is owned by the test. */
static void record_drop(void *user_data) {
  recorder *r = (recorder *)user_data;
  pthread_mutex_lock(&r->mu);
  r->drops++;
  pthread_cond_broadcast(&r->cv);
  pthread_mutex_unlock(&r->mu);
}

/* Waits until pred(r) holds or `timeout_ms` passes; returns whether it holds. */
static inline int recorder_wait(recorder *r, int (*pred)(recorder *), long long timeout_ms) {
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += timeout_ms / 1000;
  until.tv_nsec += (timeout_ms % 1000) * 1000000;
  if (until.tv_nsec >= 1000000000) {
    until.tv_sec++;
    until.tv_nsec -= 1000000000;
  }
  pthread_mutex_lock(&r->mu);
  int ok;
  while (!(ok = pred(r))) {
    if (pthread_cond_timedwait(&r->cv, &r->mu, &until) == ETIMEDOUT) {
      ok = pred(r);
      break;
    }
  }
  pthread_mutex_unlock(&r->mu);
  return ok;
}

#endif
