/* Leader election through the C ABI, against a real etcd (with-etcd.sh sets
 * HB_TEST_ETCD_ENDPOINT): one of two candidates leads, the other times out and observes it,
 * resign hands over at once with a larger token, the leader's value, stop before free,
 * events, precise errors, everything freed. */
#include "testutil.h"

static char etcd_url[256];

static hb_election *candidate(const char *value) {
  hb_config *cfg = hb_config_new();
  hb_election *e = NULL;
  MUST(hb_config_set_endpoint(cfg, etcd_url, &err));
  MUST(hb_config_set_ttl_ms(cfg, 10000, &err));
  MUST(hb_election_new(cfg, "db", (const uint8_t *)value, strlen(value), &e, &err));
  hb_config_free(cfg);
  return e;
}

/* Waits for an event with state `to`; returns its epoch (the token's revision), 0 if none. */
static uint64_t wait_event(hb_election *e, hb_state to) {
  for (long long deadline = now_ms() + 10000; now_ms() < deadline;) {
    hb_event *ev = NULL;
    if (hb_election_next_event(e, 200, &ev, NULL) != HB_STATUS_OK) continue;
    int hit = hb_event_to(ev) == to;
    uint64_t epoch = hb_event_epoch(ev);
    hb_event_free(ev);
    if (hit) return epoch;
  }
  return 0;
}

int main(void) {
  (void)record_event; /* testutil's recorder is for peers; elections are polled here */
  (void)record_drop;
  const char *endpoint = getenv("HB_TEST_ETCD_ENDPOINT");
  if (endpoint == NULL || *endpoint == '\0') {
    fprintf(stderr, "election: HB_TEST_ETCD_ENDPOINT is not set (run through tests/c/with-etcd.sh)\n");
    return 1;
  }
  snprintf(etcd_url, sizeof etcd_url, "etcd://%s/celect", endpoint);

  hb_config *bad = hb_config_new();
  hb_election *none = NULL;
  MUST(hb_config_set_endpoint(bad, etcd_url, &err));
  EXPECT_ERR(HB_STATUS_CONFIG, "a/b", hb_election_new(bad, "a/b", NULL, 0, &none, &err));
  EXPECT_ERR(HB_STATUS_NULL_ARGUMENT, "value", hb_election_new(bad, "db", NULL, 3, &none, &err));
  EXPECT(none == NULL);
  hb_config_free(bad);

  hb_election *a = candidate("a"), *b = candidate("b");
  int64_t rev_a = 0, lease_a = 0, rev_b = 0, lease_b = 0, seen_rev = 0, seen_lease = 0;
  MUST(hb_election_campaign(a, 10000, &rev_a, &lease_a, &err));
  MUST(hb_election_check(a, &err));
  uint64_t left = 0;
  MUST(hb_election_remaining_ms(a, &left, &err));
  EXPECT(left > 0 && left <= 10000);
  EXPECT(wait_event(a, HB_STATE_ELECTED) == (uint64_t)rev_a);

  EXPECT_ERR(HB_STATUS_TIMEOUT, "campaign", hb_election_campaign(b, 300, &rev_b, &lease_b, &err));
  EXPECT_ERR(HB_STATUS_NOT_HOLDER, "not the leader", hb_election_check(b, &err));
  EXPECT_ERR(HB_STATUS_NOT_HOLDER, "not the leader", hb_election_token(b, &rev_b, &lease_b, &err));
  /* b's watch observes a (its listing may still be on the way). */
  for (long long deadline = now_ms() + 10000; seen_rev == 0 && now_ms() < deadline;) {
    MUST(hb_election_leader(b, &seen_rev, &seen_lease, &err));
    struct timespec pause = {0, 10 * 1000 * 1000};
    nanosleep(&pause, NULL);
  }
  EXPECT(seen_rev == rev_a && seen_lease == lease_a);
  /* ... with its value, from the same observation; the bytes are ours to free. */
  uint8_t *value = NULL;
  size_t value_len = 0;
  MUST(hb_election_leader_value(b, &seen_rev, &seen_lease, &value, &value_len, &err));
  EXPECT(seen_rev == rev_a && value_len == 1 && value != NULL && value[0] == 'a');
  hb_bytes_free(value, value_len);
  hb_bytes_free(NULL, 0);

  long long t0 = now_ms();
  MUST(hb_election_resign(a, 0, &err));
  EXPECT_ERR(HB_STATUS_NOT_HOLDER, "not the leader", hb_election_check(a, &err));
  MUST(hb_election_campaign(b, 10000, &rev_b, &lease_b, &err));
  EXPECT(now_ms() - t0 < 5000); /* handed over, not after the 10 s TTL */
  EXPECT(rev_b > rev_a);
  MUST(hb_election_check(b, &err));
  EXPECT(wait_event(a, HB_STATE_LOST) == (uint64_t)rev_a);

  /* stop without free: the documented answers afterwards, then free. */
  MUST(hb_election_stop(a, 0, &err));
  EXPECT_ERR(HB_STATUS_STOPPED, "election is stopped", hb_election_campaign(a, 100, &rev_a, &lease_a, &err));
  EXPECT_ERR(HB_STATUS_STOPPED, "election is stopped",
             hb_election_leader_value(a, &seen_rev, &seen_lease, &value, &value_len, &err));
  EXPECT_ERR(HB_STATUS_STOPPED, "election is stopped", hb_election_check(a, &err));
  MUST(hb_election_stop(a, 0, &err));
  hb_election_free(a);
  hb_election_free(b);
  hb_election_free(NULL);
  if (hb_test_failures) {
    fprintf(stderr, "election: %d check(s) failed\n", hb_test_failures);
    return 1;
  }
  printf("election: ok\n");
  return 0;
}
