/* The etcd side of the C ABI, against a real etcd (started by with-etcd.sh, which sets
 * HB_TEST_ETCD_ENDPOINT): two clients register under a prefix; one watcher gets the
 * registrations through a callback, another through polling; a peers snapshot; a graceful
 * stop is seen as `left`; fencing on a live registration; precise errors; everything
 * stopped and freed. */
#include "testutil.h"

#define PREFIX "/ctest-watch"
#define SERVICE "cwatch"
#define WAIT_MS 15000

static char etcd_url[256];

static int both_joined(recorder *r) {
  int n = 0;
  for (int i = 0; i < r->n_peers; i++) n += r->alive[i] > 0;
  return n >= 2;
}

static int first_left(recorder *r) {
  for (int i = 0; i < r->n_peers; i++)
    if (strcmp(r->peer[i], "w-1") == 0) return r->left[i] > 0;
  return 0;
}

static hb_watcher *new_watcher(void) {
  hb_config *cfg = hb_config_new();
  hb_watcher *w = NULL;
  MUST(hb_config_set_endpoint(cfg, etcd_url, &err));
  MUST(hb_watcher_new(cfg, &w, &err));
  hb_config_free(cfg);
  return w;
}

static hb_client *new_client(const char *id, const char *zone) {
  hb_config *cfg = hb_config_new();
  hb_client *c = NULL;
  MUST(hb_config_set_endpoint(cfg, etcd_url, &err));
  MUST(hb_config_set_service(cfg, SERVICE, &err));
  MUST(hb_config_set_instance_id(cfg, id, &err));
  MUST(hb_config_set_label(cfg, "zone", zone, &err));
  MUST(hb_config_set_ttl_ms(cfg, 3000, &err));
  MUST(hb_client_new(cfg, &c, &err));
  hb_config_free(cfg);
  return c;
}

/* Polls `w` until an event with state `to` came for every one of the `n` peers (checking
 * each one's fields; other events are skipped), or the deadline passes. Returns whether
 * all came. */
static int poll_for_all(hb_watcher *w, int n, const char *const *peers, hb_state to, const char *const *zones) {
  int seen[MAX_PEERS] = {0}, missing = n;
  for (long long deadline = now_ms() + WAIT_MS; missing > 0 && now_ms() < deadline;) {
    hb_error *err = NULL;
    hb_event *ev = NULL;
    hb_status s = hb_watcher_next_event(w, 200, &ev, &err);
    if (s == HB_STATUS_TIMEOUT) {
      EXPECT(err == NULL && ev == NULL); /* a timeout writes neither */
      continue;
    }
    if (s != HB_STATUS_OK) {
      fprintf(stderr, "hb_watcher_next_event: %s\n", err ? hb_error_message(err) : "");
      hb_error_free(err);
      return 0;
    }
    for (int i = 0; i < n; i++) {
      if (seen[i] || strcmp(hb_event_peer(ev), peers[i]) != 0 || hb_event_to(ev) != to) continue;
      EXPECT(strcmp(hb_event_service(ev), SERVICE) == 0);
      EXPECT(hb_event_epoch(ev) >= 1);
      EXPECT(hb_event_at_unix_ms(ev) > 0);
      EXPECT(hb_event_label_count(ev) == 1);
      const char *k = NULL, *v = NULL;
      MUST(hb_event_label_at(ev, 0, &k, &v, &err));
      EXPECT(strcmp(k, "zone") == 0 && strcmp(v, zones[i]) == 0);
      seen[i] = 1;
      missing--;
    }
    hb_event_free(ev);
  }
  return missing == 0;
}

static void test_watchers_see_registrations(void) {
  recorder rec;
  recorder_init(&rec);
  hb_watcher *called = new_watcher();
  hb_watcher *polled = new_watcher();
  MUST(hb_watcher_set_callback(called, record_event, &rec, record_drop, &err));
  MUST(hb_watcher_start(called, &err));
  MUST(hb_watcher_start(polled, &err));
  EXPECT_ERR(HB_STATUS_INVALID_STATE, "already", hb_watcher_start(polled, &err));

  hb_client *c1 = new_client("w-1", "a");
  hb_client *c2 = new_client("w-2", "b");
  MUST(hb_client_start(c1, &err));
  MUST(hb_client_start(c2, &err));

  /* Wait for the condition the snapshot below needs: both joined in the polled view (not
   * just w-1: w-2 may come later on a loaded machine). */
  const char *ids[2] = {"w-1", "w-2"}, *zones[2] = {"a", "b"};
  EXPECT(recorder_wait(&rec, both_joined, WAIT_MS));
  EXPECT(poll_for_all(polled, 2, ids, HB_STATE_JOINED, zones));

  /* The registration is live: this process still holds it, with a lease and an epoch. */
  int64_t lease_id = 0;
  uint64_t epoch = 0;
  MUST(hb_client_fencing_token(c1, &lease_id, &epoch, &err));
  EXPECT(lease_id != 0 && epoch >= 1);
  MUST(hb_client_check(c1, &err));

  /* Snapshot, sorted by service then id. */
  hb_peers *peers = NULL;
  MUST(hb_watcher_peers(polled, &peers, &err));
  EXPECT(hb_peers_len(peers) == 2);
  for (size_t i = 0; i < hb_peers_len(peers) && i < 2; i++) {
    const hb_peer *p = hb_peers_get(peers, i);
    EXPECT(strcmp(hb_peer_id(p), ids[i]) == 0);
    EXPECT(strcmp(hb_peer_service(p), SERVICE) == 0);
    EXPECT(hb_peer_state(p) == HB_STATE_ALIVE);
    EXPECT(hb_peer_epoch(p) >= 1);
    const char *k = NULL, *v = NULL;
    MUST(hb_peer_label_at(p, 0, &k, &v, &err));
    EXPECT(strcmp(k, "zone") == 0 && strcmp(v, zones[i]) == 0);
  }
  hb_peers_free(peers);

  /* A graceful stop deregisters at once: both watchers say `left`. */
  MUST(hb_client_stop(c1, 2000, &err));
  EXPECT(recorder_wait(&rec, first_left, WAIT_MS));
  EXPECT(poll_for_all(polled, 1, ids, HB_STATE_LEFT, zones));
  EXPECT(rec.order_errors == 0);
  EXPECT_ERR(HB_STATUS_STOPPED, "stopped", hb_client_check(c1, &err));

  /* Stop: the callback's user data is released exactly once, and a stopped watcher says so. */
  MUST(hb_watcher_stop(called, &err));
  EXPECT(rec.drops == 1);
  MUST(hb_watcher_stop(called, &err)); /* idempotent */
  EXPECT_ERR(HB_STATUS_STOPPED, "stopped", hb_watcher_peers(called, &peers, &err));

  hb_client_free(c1);
  hb_client_free(c2); /* frees a running client: stops it gracefully first */
  hb_watcher_free(called);
  hb_watcher_free(polled);
  recorder_destroy(&rec);
}

static void test_watcher_errors(void) {
  hb_config *cfg = hb_config_new();
  hb_watcher *w = NULL;
  /* A watcher reads etcd: any other endpoint is refused by name. */
  MUST(hb_config_set_endpoint(cfg, "udp://127.0.0.1:9", &err));
  EXPECT_ERR(HB_STATUS_CONFIG, "etcd://", hb_watcher_new(cfg, &w, &err));
  EXPECT(w == NULL);
  EXPECT_ERR(HB_STATUS_NULL_ARGUMENT, "`out` is NULL", hb_watcher_new(cfg, NULL, &err));
  EXPECT_ERR(HB_STATUS_NULL_ARGUMENT, "is NULL", hb_watcher_start(NULL, &err));
  hb_watcher_free(NULL);
  hb_config_free(cfg);
}

int main(void) {
  const char *endpoint = getenv("HB_TEST_ETCD_ENDPOINT");
  if (endpoint == NULL || *endpoint == '\0') {
    fprintf(stderr, "watcher: HB_TEST_ETCD_ENDPOINT is not set (run through tests/c/with-etcd.sh)\n");
    return 1;
  }
  snprintf(etcd_url, sizeof etcd_url, "etcd://%s%s", endpoint, PREFIX);
  test_watcher_errors();
  test_watchers_see_registrations();
  if (hb_test_failures) {
    fprintf(stderr, "watcher: %d check(s) failed\n", hb_test_failures);
    return 1;
  }
  printf("watcher: ok\n");
  return 0;
}
