/* The C driver of the conformance suite (tests/conformance/README.md): runs every scenario
 * file in tests/conformance/scenarios/ through the C ABI and prints one line per scenario
 * (`ok NAME`, `n/a NAME (reason)`, `skip NAME (reason)`, `FAIL NAME: step i: ...`). Exits 1
 * if any scenario failed. JSON is read with cJSON (Debian libcjson-dev). */
#define _GNU_SOURCE
#include <heartbeater.h>

#include <cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef HB_DRIVER_SOURCE
#define HB_DRIVER_SOURCE __FILE__
#endif

#define MAX_HANDLES 32
#define MAX_PROCS 8
#define MSG 1024

/* ---- small helpers ------------------------------------------------------------------ */

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static char *read_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = malloc((size_t)n + 1);
  if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
    free(buf);
    buf = NULL;
  }
  if (buf) buf[n] = 0;
  fclose(f);
  return buf;
}

/* ---- recorded events ---------------------------------------------------------------- */

typedef struct {
  char peer[128];
  hb_state from, to;
  hb_reason reason;
} rec_event;

typedef enum { K_MONITOR, K_CLIENT, K_WATCHER, K_ELECTION } kind;
typedef enum { THEN_NONE, THEN_RECORD, THEN_STOP, THEN_FREE } then_mode;

typedef struct handle {
  char name[64];
  kind kind;
  void *ptr;              /* hb_monitor* / hb_client* / hb_watcher* / hb_election* */
  atomic_int freed;       /* set once by whoever frees ptr (a step, a callback, cleanup) */
  int has_callback;
  then_mode then;
  int first_done;         /* the callback's first event was handled (delivery thread only) */
  int ended;              /* polling saw the end of the stream */
  pthread_mutex_t mu;
  pthread_cond_t cv;
  rec_event *events;
  size_t n_events, cap_events;
} handle;

static void handle_push(handle *h, const hb_event *ev) {
  pthread_mutex_lock(&h->mu);
  if (h->n_events == h->cap_events) {
    h->cap_events = h->cap_events ? 2 * h->cap_events : 16;
    h->events = realloc(h->events, h->cap_events * sizeof *h->events);
  }
  rec_event *r = &h->events[h->n_events++];
  snprintf(r->peer, sizeof r->peer, "%s", hb_event_peer(ev) ? hb_event_peer(ev) : "");
  r->from = hb_event_from(ev);
  r->to = hb_event_to(ev);
  r->reason = hb_event_reason(ev);
  pthread_cond_broadcast(&h->cv);
  pthread_mutex_unlock(&h->mu);
}

static void free_handle(handle *h) {
  if (atomic_exchange(&h->freed, 1)) return;
  switch (h->kind) {
    case K_MONITOR: hb_monitor_free(h->ptr); break;
    case K_CLIENT: hb_client_free(h->ptr); break;
    case K_WATCHER: hb_watcher_free(h->ptr); break;
    case K_ELECTION: hb_election_free(h->ptr); break;
  }
}

static void on_event_cb(void *user_data, const hb_event *ev) {
  handle *h = user_data;
  handle_push(h, ev);
  if (h->first_done) return;
  h->first_done = 1;
  if (h->then == THEN_STOP) {
    switch (h->kind) {
      case K_MONITOR: hb_monitor_stop(h->ptr, NULL); break;
      case K_CLIENT: hb_client_stop(h->ptr, 0, NULL); break;
      case K_WATCHER: hb_watcher_stop(h->ptr, NULL); break;
      case K_ELECTION: hb_election_stop(h->ptr, 0, NULL); break;
    }
  } else if (h->then == THEN_FREE) {
    free_handle(h);
  }
}

static void on_drop(void *user_data) { (void)user_data; }

/* ---- one scenario's world ----------------------------------------------------------- */

typedef struct {
  handle *handles[MAX_HANDLES];
  int n_handles;
  struct {
    char name[64];
    pid_t pid;
  } procs[MAX_PROCS];
  int n_procs;
  char run[64];
  const char *etcd;
  struct {
    char name[32];
    int64_t revision;
  } tokens[8]; /* election tokens kept by `token` steps with `save` */
  int n_tokens;
  char msg[MSG]; /* the failure of the current step */
} world;

static int fail(world *w, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(w->msg, sizeof w->msg, fmt, ap);
  va_end(ap);
  return 0;
}

static handle *find(world *w, const char *name) {
  for (int i = 0; i < w->n_handles; i++)
    if (strcmp(w->handles[i]->name, name) == 0) return w->handles[i];
  return NULL;
}

/* `${m.udp}`, `${m.tcp}`, `${etcd}`, `${run}` substituted; the caller frees. NULL (and
 * w->msg) when a reference cannot be resolved. */
static char *subst(world *w, const char *in) {
  size_t cap = strlen(in) + 256, len = 0;
  char *out = malloc(cap);
  for (const char *p = in; *p;) {
    const char *add = NULL;
    char buf[256];
    if (p[0] == '$' && p[1] == '{') {
      const char *end = strchr(p, '}');
      if (!end) break;
      char ref[128];
      snprintf(ref, sizeof ref, "%.*s", (int)(end - p - 2), p + 2);
      if (strcmp(ref, "run") == 0) {
        add = w->run;
      } else if (strcmp(ref, "etcd") == 0) {
        add = w->etcd ? w->etcd : "";
      } else {
        char *dot = strchr(ref, '.');
        handle *h = NULL;
        if (dot) {
          *dot = 0;
          h = find(w, ref);
        }
        if (!h || h->kind != K_MONITOR || atomic_load(&h->freed)) {
          fail(w, "cannot resolve ${%.*s}", (int)(end - p - 2), p + 2);
          free(out);
          return NULL;
        }
        size_t n = 0;
        hb_monitor_local_addr_count(h->ptr, &n, NULL);
        buf[0] = 0;
        for (size_t i = 0; i < n; i++) {
          char *a = NULL;
          if (hb_monitor_local_addr(h->ptr, i, &a, NULL) == HB_STATUS_OK) {
            if (strncmp(a, dot + 1, strlen(dot + 1)) == 0 && a[strlen(dot + 1)] == ':' && !buf[0])
              snprintf(buf, sizeof buf, "%s", a);
            hb_string_free(a);
          }
        }
        if (!buf[0]) {
          fail(w, "monitor %s has no %s address", ref, dot + 1);
          free(out);
          return NULL;
        }
        add = buf;
      }
      p = end + 1;
    } else {
      buf[0] = *p++;
      buf[1] = 0;
      add = buf;
    }
    size_t n = strlen(add);
    if (len + n + 1 > cap) out = realloc(out, cap = 2 * (len + n + 1));
    memcpy(out + len, add, n);
    len += n;
  }
  out[len] = 0;
  return out;
}

static const char *jstr(const cJSON *o, const char *key) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  return cJSON_IsString(v) ? v->valuestring : NULL;
}

static long long jnum(const cJSON *o, const char *key, long long dflt) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  return cJSON_IsNumber(v) ? (long long)v->valuedouble : dflt;
}

/* Compares a call's outcome with the step's `expect` (absent: success; `{"error": ...}`).
 * Frees `err`. Returns 1 when it matches; the caller checks a value only on success. */
static int outcome(world *w, const cJSON *step, hb_status s, hb_error *err) {
  const cJSON *expect = cJSON_GetObjectItemCaseSensitive(step, "expect");
  const char *want_kind = cJSON_IsObject(expect) ? jstr(expect, "error") : NULL;
  const char *msg = err ? hb_error_message(err) : NULL;
  char got[MSG];
  snprintf(got, sizeof got, "%s%s%s%s", hb_status_str(s), msg ? " \"" : "", msg ? msg : "", msg ? "\"" : "");
  int ok = 1;
  if (!want_kind) {
    if (s != HB_STATUS_OK) ok = fail(w, "expected success, got %s", got);
  } else {
    char *message = jstr(expect, "message") ? subst(w, jstr(expect, "message")) : NULL;
    char *contains = jstr(expect, "contains") ? subst(w, jstr(expect, "contains")) : NULL;
    if (s == HB_STATUS_OK)
      ok = fail(w, "expected error %s, got ok", want_kind);
    else if (strcmp(hb_status_str(s), want_kind) != 0)
      ok = fail(w, "expected error %s, got %s", want_kind, got);
    else if (message && (!msg || strcmp(msg, message) != 0))
      ok = fail(w, "expected error %s \"%s\", got %s", want_kind, message, got);
    else if (contains && (!msg || !strstr(msg, contains)))
      ok = fail(w, "expected error %s containing \"%s\", got %s", want_kind, contains, got);
    free(message);
    free(contains);
  }
  hb_error_free(err);
  return ok;
}

static handle *need(world *w, const cJSON *step, const char *field) {
  const char *name = jstr(step, field);
  handle *h = name ? find(w, name) : NULL;
  if (!h) fail(w, "no handle \"%s\"", name ? name : "(missing)");
  return h;
}

/* ---- steps -------------------------------------------------------------------------- */

static int step_make(world *w, const cJSON *step, kind k) {
  const char *as = jstr(step, "as");
  if (!as) return fail(w, "missing \"as\"");
  hb_config *cfg = hb_config_new();
  const cJSON *opt;
  hb_status s = HB_STATUS_OK;
  hb_error *err = NULL;
  cJSON_ArrayForEach(opt, cJSON_GetObjectItemCaseSensitive(step, "options")) {
    const cJSON *key = cJSON_GetArrayItem(opt, 0), *val = cJSON_GetArrayItem(opt, 1);
    if (!cJSON_IsString(key) || !cJSON_IsString(val)) {
      hb_config_free(cfg);
      return fail(w, "an option is not [key, value]");
    }
    char *v = subst(w, val->valuestring);
    if (!v) {
      hb_config_free(cfg);
      return 0;
    }
    s = hb_config_set(cfg, key->valuestring, v, &err);
    free(v);
    if (s != HB_STATUS_OK) break;
  }
  void *ptr = NULL;
  if (s == HB_STATUS_OK) {
    switch (k) {
      case K_MONITOR: s = hb_monitor_new(cfg, (hb_monitor **)&ptr, &err); break;
      case K_CLIENT: s = hb_client_new(cfg, (hb_client **)&ptr, &err); break;
      case K_WATCHER: s = hb_watcher_new(cfg, (hb_watcher **)&ptr, &err); break;
      case K_ELECTION: {
        char *name = subst(w, jstr(step, "name") ? jstr(step, "name") : "");
        char *value = subst(w, jstr(step, "value") ? jstr(step, "value") : "");
        if (name && value)
          s = hb_election_new(cfg, name, (const uint8_t *)value, strlen(value), (hb_election **)&ptr, &err);
        free(name);
        free(value);
        if (!name || !value) {
          hb_config_free(cfg);
          return 0;
        }
        break;
      }
    }
  }
  hb_config_free(cfg);
  if (!outcome(w, step, s, err)) {
    if (ptr) {
      handle tmp = {.kind = k, .ptr = ptr};
      free_handle(&tmp);
    }
    return 0;
  }
  if (!ptr) return 1;
  if (w->n_handles == MAX_HANDLES) return fail(w, "too many handles");
  handle *h = calloc(1, sizeof *h);
  snprintf(h->name, sizeof h->name, "%s", as);
  h->kind = k;
  h->ptr = ptr;
  pthread_mutex_init(&h->mu, NULL);
  pthread_cond_init(&h->cv, NULL);
  w->handles[w->n_handles++] = h;
  return 1;
}

static int step_start_stop(world *w, const cJSON *step, int start) {
  handle *h = need(w, step, "h");
  if (!h) return 0;
  hb_error *err = NULL;
  hb_status s;
  switch (h->kind) {
    case K_MONITOR: s = start ? hb_monitor_start(h->ptr, &err) : hb_monitor_stop(h->ptr, &err); break;
    case K_CLIENT: s = start ? hb_client_start(h->ptr, &err) : hb_client_stop(h->ptr, 0, &err); break;
    case K_ELECTION:
      if (start) return fail(w, "an election has no start (campaign)");
      s = hb_election_stop(h->ptr, 0, &err);
      break;
    default: s = start ? hb_watcher_start(h->ptr, &err) : hb_watcher_stop(h->ptr, &err); break;
  }
  return outcome(w, step, s, err);
}

static int want_client(world *w, handle *h) {
  if (h->kind != K_CLIENT) return fail(w, "%s is not a client", h->name);
  return 1;
}

static int value_int(world *w, const cJSON *step, long long got, const char *what) {
  const cJSON *expect = cJSON_GetObjectItemCaseSensitive(step, "expect");
  if (!cJSON_IsObject(expect)) return 1;
  long long lo = jnum(expect, "value_min", LLONG_MIN), hi = jnum(expect, "value_max", LLONG_MAX);
  if (got < lo || got > hi) return fail(w, "expected %s in [%lld, %lld], got %lld", what, lo, hi, got);
  return 1;
}

static int step_client_call(world *w, const cJSON *step, const char *what) {
  handle *h = need(w, step, "h");
  hb_error *err = NULL;
  hb_status s;
  if (h && h->kind == K_ELECTION && strcmp(what, "check") == 0) {
    s = hb_election_check(h->ptr, &err);
    return outcome(w, step, s, err);
  }
  if (h && h->kind == K_ELECTION && strcmp(what, "remaining") == 0) {
    uint64_t ms = 0;
    s = hb_election_remaining_ms(h->ptr, &ms, &err);
    if (!outcome(w, step, s, err)) return 0;
    return s != HB_STATUS_OK || value_int(w, step, (long long)ms, "remaining ms");
  }
  if (!h || !want_client(w, h)) return 0;
  const cJSON *expect = cJSON_GetObjectItemCaseSensitive(step, "expect");
  if (strcmp(what, "state") == 0) {
    hb_state st = HB_STATE_UNKNOWN;
    s = hb_client_state(h->ptr, &st, &err);
    if (!outcome(w, step, s, err)) return 0;
    const char *want = cJSON_IsObject(expect) ? jstr(expect, "value") : NULL;
    if (s == HB_STATUS_OK && want && strcmp(want, hb_state_str(st)) != 0)
      return fail(w, "expected state %s, got %s", want, hb_state_str(st));
    return 1;
  }
  if (strcmp(what, "check") == 0) {
    s = hb_client_check(h->ptr, &err); /* before reading err: argument order is unspecified */
    return outcome(w, step, s, err);
  }
  if (strcmp(what, "fencing_token") == 0) {
    int64_t lease = 0;
    uint64_t epoch = 0;
    s = hb_client_fencing_token(h->ptr, &lease, &epoch, &err);
    if (!outcome(w, step, s, err)) return 0;
    const cJSON *v = cJSON_IsObject(expect) ? cJSON_GetObjectItemCaseSensitive(expect, "value") : NULL;
    if (s == HB_STATUS_OK && cJSON_IsArray(v)) {
      long long wl = (long long)cJSON_GetArrayItem(v, 0)->valuedouble;
      long long we = (long long)cJSON_GetArrayItem(v, 1)->valuedouble;
      if (wl != lease || we != (long long)epoch)
        return fail(w, "expected fencing token [%lld, %lld], got [%lld, %llu]", wl, we, (long long)lease,
                    (unsigned long long)epoch);
    }
    return 1;
  }
  if (strcmp(what, "remaining") == 0) {
    uint64_t ms = 0;
    s = hb_client_remaining_ms(h->ptr, &ms, &err);
    if (!outcome(w, step, s, err)) return 0;
    return s != HB_STATUS_OK || value_int(w, step, (long long)ms, "remaining ms");
  }
  uint32_t inc = 0; /* incarnation */
  s = hb_client_incarnation(h->ptr, &inc, &err);
  return outcome(w, step, s, err);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int step_peers(world *w, const cJSON *step) {
  handle *h = need(w, step, "h");
  if (!h) return 0;
  hb_error *err = NULL;
  hb_peers *peers = NULL;
  hb_status s;
  if (h->kind == K_MONITOR) s = hb_monitor_peers(h->ptr, &peers, &err);
  else if (h->kind == K_WATCHER) s = hb_watcher_peers(h->ptr, &peers, &err);
  else return fail(w, "%s has no peers", h->name);
  if (!outcome(w, step, s, err)) {
    hb_peers_free(peers);
    return 0;
  }
  if (s != HB_STATUS_OK) return 1;
  const cJSON *ids = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(step, "expect"), "ids");
  int ok = 1;
  if (cJSON_IsArray(ids)) {
    size_t n = hb_peers_len(peers);
    char **got = calloc(n + 1, sizeof *got);
    for (size_t i = 0; i < n; i++) got[i] = strdup(hb_peer_id(hb_peers_get(peers, i)));
    qsort(got, n, sizeof *got, cmp_str);
    char gots[MSG] = "", wants[MSG] = "";
    for (size_t i = 0; i < n; i++) snprintf(gots + strlen(gots), sizeof gots - strlen(gots), "%s%s", i ? "," : "", got[i]);
    int i = 0;
    const cJSON *id;
    cJSON_ArrayForEach(id, ids) {
      char *v = subst(w, cJSON_IsString(id) ? id->valuestring : "");
      snprintf(wants + strlen(wants), sizeof wants - strlen(wants), "%s%s", i ? "," : "", v ? v : "");
      free(v);
      i++;
    }
    if (strcmp(gots, wants) != 0) ok = fail(w, "expected peers [%s], got [%s]", wants, gots);
    for (size_t j = 0; j < n; j++) free(got[j]);
    free(got);
  }
  hb_peers_free(peers);
  return ok;
}

/* ---- the HTTP API ------------------------------------------------------------------- */

/* The handle's HTTP address ("ip:port", caller frees), NULL when it serves none; 0 on a
   failed call (w->msg set). */
static int http_addr_of(world *w, handle *h, char **out) {
  hb_error *err = NULL;
  hb_status s;
  *out = NULL;
  if (h->kind == K_MONITOR) s = hb_monitor_http_addr(h->ptr, out, &err);
  else if (h->kind == K_WATCHER) s = hb_watcher_http_addr(h->ptr, out, &err);
  else return fail(w, "%s has no HTTP API", h->name);
  if (s != HB_STATUS_OK) {
    fail(w, "http_addr: %s", err ? hb_error_message(err) : hb_status_str(s));
    hb_error_free(err);
    return 0;
  }
  return 1;
}

static int step_http_addr(world *w, const cJSON *step) {
  handle *h = need(w, step, "h");
  if (!h) return 0;
  if (h->kind == K_CLIENT) return fail(w, "%s has no HTTP API", h->name);
  char *addr = NULL;
  hb_error *err = NULL;
  hb_status s = h->kind == K_MONITOR ? hb_monitor_http_addr(h->ptr, &addr, &err) : hb_watcher_http_addr(h->ptr, &addr, &err);
  if (!outcome(w, step, s, err)) return 0;
  if (s != HB_STATUS_OK) return 1;
  const char *got = !addr ? "none" : strcmp(strrchr(addr, ':'), ":0") == 0 ? "port 0" : "serving";
  const char *want = jstr(cJSON_GetObjectItemCaseSensitive(step, "expect"), "value");
  int ok = !want || strcmp(got, want) == 0 ? 1 : fail(w, "http_addr %s (%s), expected %s", got, addr ? addr : "-", want);
  hb_string_free(addr);
  return ok;
}

/* A plain HTTP/1.0 GET on 127.0.0.1-style "ip:port" (the server closes after the answer):
   the body of a 200 parsed as JSON, else NULL with w->msg set. */
static cJSON *http_get(world *w, const char *addr, const char *path) {
  char host[64];
  snprintf(host, sizeof host, "%s", addr);
  char *colon = strrchr(host, ':');
  if (!colon) return fail(w, "bad address %s", addr), NULL;
  *colon = 0;
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(colon + 1))};
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0 || inet_pton(AF_INET, host, &sa.sin_addr) != 1 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
    fail(w, "connect %s: %s", addr, strerror(errno));
    if (fd >= 0) close(fd);
    return NULL;
  }
  char req[256];
  int n = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: %s\r\n\r\n", path, addr);
  if (write(fd, req, (size_t)n) != n) {
    close(fd);
    return fail(w, "GET %s: write failed", path), NULL;
  }
  size_t len = 0, cap = 4096;
  char *buf = malloc(cap);
  for (ssize_t r; (r = read(fd, buf + len, cap - len - 1)) > 0;) {
    len += (size_t)r;
    if (cap - len < 1024) buf = realloc(buf, cap *= 2);
  }
  close(fd);
  buf[len] = 0;
  char *body = strstr(buf, "\r\n\r\n");
  cJSON *json = NULL;
  if (strncmp(buf, "HTTP/1.0 200", 12) != 0 && strncmp(buf, "HTTP/1.1 200", 12) != 0) {
    char *eol = strstr(buf, "\r\n");
    if (eol) *eol = 0;
    fail(w, "GET %s: %s", path, buf);
  } else if (!body || !(json = cJSON_Parse(body + 4))) {
    fail(w, "GET %s: no JSON body", path);
  }
  free(buf);
  return json;
}

/* The fields every language's peer has: {id, service, labels, state, incarnation}. */
static cJSON *peer_fields(const char *id, const char *service, cJSON *labels, const char *state, double incarnation) {
  cJSON *p = cJSON_CreateObject();
  cJSON_AddStringToObject(p, "id", id ? id : "");
  cJSON_AddStringToObject(p, "service", service ? service : "");
  cJSON_AddItemToObject(p, "labels", labels ? labels : cJSON_CreateNull());
  cJSON_AddStringToObject(p, "state", state ? state : "");
  cJSON_AddNumberToObject(p, "incarnation", incarnation);
  return p;
}

static int cmp_peer(const void *a, const void *b) {
  const cJSON *x = *(const cJSON *const *)a, *y = *(const cJSON *const *)b;
  int c = strcmp(jstr(x, "service"), jstr(y, "service"));
  return c ? c : strcmp(jstr(x, "id"), jstr(y, "id"));
}

/* `list` sorted by (service, id), as a new array that owns copies. */
static cJSON *sorted_peers(const cJSON *list) {
  int n = cJSON_GetArraySize(list);
  const cJSON **items = calloc((size_t)n + 1, sizeof *items);
  for (int i = 0; i < n; i++) items[i] = cJSON_GetArrayItem(list, i);
  qsort(items, (size_t)n, sizeof *items, cmp_peer);
  cJSON *out = cJSON_CreateArray();
  for (int i = 0; i < n; i++) cJSON_AddItemToArray(out, cJSON_Duplicate(items[i], 1));
  free(items);
  return out;
}

/* GET /v1/peers against expect.ids and against this language's own peers(). */
static int http_peers_once(world *w, const cJSON *step) {
  handle *h = need(w, step, "h");
  char *addr = NULL;
  if (!h || !http_addr_of(w, h, &addr)) return 0;
  if (!addr) return fail(w, "%s serves no HTTP API", h->name);
  cJSON *body = http_get(w, addr, "/v1/peers");
  hb_string_free(addr);
  if (!body) return 0;
  cJSON *api = cJSON_CreateArray(), *own = cJSON_CreateArray();
  const cJSON *p;
  cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(body, "peers")) {
    const cJSON *inc = cJSON_GetObjectItemCaseSensitive(p, "incarnation");
    cJSON_AddItemToArray(api, peer_fields(jstr(p, "id"), jstr(p, "service"),
                                          cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(p, "labels"), 1),
                                          jstr(p, "state"), cJSON_IsNumber(inc) ? inc->valuedouble : -1));
  }
  cJSON_Delete(body);
  hb_error *err = NULL;
  hb_peers *peers = NULL;
  hb_status s = h->kind == K_MONITOR ? hb_monitor_peers(h->ptr, &peers, &err) : hb_watcher_peers(h->ptr, &peers, &err);
  int ok = 1;
  if (s != HB_STATUS_OK) {
    ok = fail(w, "peers(): %s", err ? hb_error_message(err) : hb_status_str(s));
    hb_error_free(err);
  } else {
    for (size_t i = 0; i < hb_peers_len(peers); i++) {
      const hb_peer *q = hb_peers_get(peers, i);
      cJSON *labels = cJSON_CreateObject();
      for (size_t j = 0; j < hb_peer_label_count(q); j++) {
        const char *k = NULL, *v = NULL;
        if (hb_peer_label_at(q, j, &k, &v, NULL) == HB_STATUS_OK) cJSON_AddStringToObject(labels, k, v);
      }
      cJSON_AddItemToArray(own, peer_fields(hb_peer_id(q), hb_peer_service(q), labels, hb_state_str(hb_peer_state(q)),
                                            hb_peer_incarnation(q)));
    }
    hb_peers_free(peers);
  }
  cJSON *api_sorted = sorted_peers(api), *own_sorted = sorted_peers(own);
  if (ok) {
    /* The ids, sorted, as expected. */
    char gots[MSG] = "", wants[MSG] = "";
    char **ids = calloc((size_t)cJSON_GetArraySize(api) + 1, sizeof *ids);
    int n = 0;
    cJSON_ArrayForEach(p, api) ids[n++] = (char *)jstr(p, "id");
    qsort(ids, (size_t)n, sizeof *ids, cmp_str);
    for (int i = 0; i < n; i++) snprintf(gots + strlen(gots), sizeof gots - strlen(gots), "%s%s", i ? "," : "", ids[i]);
    free(ids);
    int i = 0;
    const cJSON *id;
    cJSON_ArrayForEach(id, cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(step, "expect"), "ids")) {
      char *v = subst(w, cJSON_IsString(id) ? id->valuestring : "");
      snprintf(wants + strlen(wants), sizeof wants - strlen(wants), "%s%s", i++ ? "," : "", v ? v : "");
      free(v);
    }
    if (strcmp(gots, wants) != 0) ok = fail(w, "GET /v1/peers ids [%s], expected [%s]", gots, wants);
  }
  if (ok && !cJSON_Compare(api_sorted, own_sorted, 1)) {
    char *a = cJSON_PrintUnformatted(api_sorted), *o = cJSON_PrintUnformatted(own_sorted);
    ok = fail(w, "GET /v1/peers %s, peers() %s", a, o);
    free(a);
    free(o);
  }
  cJSON_Delete(api);
  cJSON_Delete(own);
  cJSON_Delete(api_sorted);
  cJSON_Delete(own_sorted);
  return ok;
}

static int step_http_peers(world *w, const cJSON *step) {
  /* Until the API and peers() agree on what was expected: the two reads are not one snapshot. */
  long long deadline = now_ms() + jnum(step, "within_ms", 2000);
  while (!http_peers_once(w, step)) {
    if (now_ms() > deadline) return 0;
    sleep_ms(20);
  }
  return 1;
}

/* One poll of `h`: 1 event recorded, 0 timeout, -1 end, -2 error (w->msg set). */
static int poll_once(world *w, handle *h, uint32_t timeout_ms, hb_event **keep, hb_status *status, hb_error **err) {
  hb_event *ev = NULL;
  hb_status s;
  switch (h->kind) {
    case K_MONITOR: s = hb_monitor_next_event(h->ptr, timeout_ms, &ev, err); break;
    case K_CLIENT: s = hb_client_next_event(h->ptr, timeout_ms, &ev, err); break;
    case K_ELECTION: s = hb_election_next_event(h->ptr, timeout_ms, &ev, err); break;
    default: s = hb_watcher_next_event(h->ptr, timeout_ms, &ev, err); break;
  }
  *status = s;
  if (s == HB_STATUS_TIMEOUT) {
    if (*err) return fail(w, "HB_STATUS_TIMEOUT wrote *err (a timeout is not a failure)"), -2;
    return 0;
  }
  if (s == HB_STATUS_STOPPED) {
    h->ended = 1;
    return -1;
  }
  if (s != HB_STATUS_OK) return -2;
  if (keep) *keep = ev;
  else {
    handle_push(h, ev);
    hb_event_free(ev);
  }
  return 1;
}

static int event_matches(world *w, const cJSON *want, const rec_event *got, char *why, size_t n) {
  const char *from = jstr(want, "from"), *to = jstr(want, "to"), *reason = jstr(want, "reason");
  char *peer = jstr(want, "peer") ? subst(w, jstr(want, "peer")) : NULL;
  int ok = (!from || strcmp(from, hb_state_str(got->from)) == 0) && (!to || strcmp(to, hb_state_str(got->to)) == 0) &&
           (!reason || strcmp(reason, hb_reason_str(got->reason)) == 0) && (!peer || strcmp(peer, got->peer) == 0);
  free(peer);
  snprintf(why, n, "%s %s->%s (%s)", got->peer, hb_state_str(got->from), hb_state_str(got->to),
           hb_reason_str(got->reason));
  return ok;
}

static int step_next_event(world *w, const cJSON *step) {
  handle *h = need(w, step, "h");
  if (!h) return 0;
  const cJSON *expect = cJSON_GetObjectItemCaseSensitive(step, "expect");
  hb_error *err = NULL;
  hb_event *ev = NULL;
  hb_status s;
  int r = poll_once(w, h, (uint32_t)jnum(step, "timeout_ms", 0), &ev, &s, &err);
  if (r == -2 && !err && w->msg[0]) return 0;
  const char *word = cJSON_IsString(expect) ? expect->valuestring : NULL;
  static const char *names[] = {"event", "timeout", "end"};
  const char *got = r == 1 ? names[0] : r == 0 ? names[1] : r == -1 ? names[2] : NULL;
  if (cJSON_IsObject(expect) && jstr(expect, "error")) {
    if (r == 1) hb_event_free(ev);
    if (r != -2) {
      hb_error_free(err);
      return fail(w, "expected error %s, got %s", jstr(expect, "error"), got);
    }
    return outcome(w, step, s, err);
  }
  if (r == -2) return outcome(w, step, s, err); /* reports the unexpected error */
  hb_error_free(err);
  if (word) {
    if (r == 1) hb_event_free(ev);
    if (strcmp(word, got) != 0) return fail(w, "expected %s, got %s", word, got);
    return 1;
  }
  const cJSON *want = cJSON_GetObjectItemCaseSensitive(expect, "event");
  if (r != 1) return fail(w, "expected an event, got %s", got);
  rec_event e;
  snprintf(e.peer, sizeof e.peer, "%s", hb_event_peer(ev));
  e.from = hb_event_from(ev);
  e.to = hb_event_to(ev);
  e.reason = hb_event_reason(ev);
  hb_event_free(ev);
  char why[256];
  if (!event_matches(w, want, &e, why, sizeof why)) return fail(w, "expected another event, got %s", why);
  return 1;
}

static int step_on_event(world *w, const cJSON *step) {
  handle *h = need(w, step, "h");
  if (!h) return 0;
  const char *then = jstr(step, "then");
  if (!then) return fail(w, "missing \"then\"");
  if (strcmp(then, "record") == 0) h->then = THEN_RECORD;
  else if (strcmp(then, "stop") == 0) h->then = THEN_STOP;
  else if (strcmp(then, "free") == 0) h->then = THEN_FREE;
  else return fail(w, "unknown then \"%s\" (C cannot raise)", then);
  hb_error *err = NULL;
  hb_status s;
  switch (h->kind) {
    case K_MONITOR: s = hb_monitor_set_callback(h->ptr, on_event_cb, h, on_drop, &err); break;
    case K_CLIENT: s = hb_client_set_callback(h->ptr, on_event_cb, h, on_drop, &err); break;
    case K_ELECTION: s = hb_election_set_callback(h->ptr, on_event_cb, h, on_drop, &err); break;
    default: s = hb_watcher_set_callback(h->ptr, on_event_cb, h, on_drop, &err); break;
  }
  if (s == HB_STATUS_OK) h->has_callback = 1;
  return outcome(w, step, s, err);
}

/* Number of recorded events of `peer` (under h->mu). */
static size_t count_peer(handle *h, const char *peer) {
  size_t n = 0;
  for (size_t i = 0; i < h->n_events; i++) n += strcmp(h->events[i].peer, peer) == 0;
  return n;
}

/* Waits until `peer` has at least `n` recorded events or `deadline` passes, polling when
 * the handle has no callback. Returns how many there are. */
static size_t wait_events(world *w, handle *h, const char *peer, size_t n, long long deadline) {
  for (;;) {
    pthread_mutex_lock(&h->mu);
    size_t have = count_peer(h, peer);
    pthread_mutex_unlock(&h->mu);
    long long left = deadline - now_ms();
    if (have >= n || left <= 0) return have;
    if (h->has_callback || h->ended || atomic_load(&h->freed)) {
      pthread_mutex_lock(&h->mu);
      struct timespec until;
      clock_gettime(CLOCK_REALTIME, &until);
      long long step = left < 100 ? left : 100;
      until.tv_nsec += step * 1000000LL;
      until.tv_sec += until.tv_nsec / 1000000000;
      until.tv_nsec %= 1000000000;
      pthread_cond_timedwait(&h->cv, &h->mu, &until);
      pthread_mutex_unlock(&h->mu);
    } else {
      hb_error *err = NULL;
      hb_status s;
      long long step = left < 100 ? left : 100;
      int r = poll_once(w, h, (uint32_t)step, NULL, &s, &err);
      hb_error_free(err);
      if (r == -2) return have;
    }
  }
}

static int step_events(world *w, const cJSON *step) {
  handle *h = need(w, step, "h");
  if (!h) return 0;
  char *peer = subst(w, jstr(step, "peer") ? jstr(step, "peer") : "");
  if (!peer) return 0;
  const cJSON *expect = cJSON_GetObjectItemCaseSensitive(step, "expect");
  size_t n = (size_t)cJSON_GetArraySize(expect);
  size_t have = wait_events(w, h, peer, n, now_ms() + jnum(step, "within_ms", 20000));
  int ok = 1;
  pthread_mutex_lock(&h->mu);
  char got[MSG] = "";
  for (size_t i = 0, k = 0; i < h->n_events; i++) {
    if (strcmp(h->events[i].peer, peer) != 0) continue;
    char why[256];
    int m = k < n && event_matches(w, cJSON_GetArrayItem(expect, (int)k), &h->events[i], why, sizeof why);
    snprintf(got + strlen(got), sizeof got - strlen(got), "%s%s", k ? ", " : "", why);
    if (k < n && !m) ok = 0;
    k++;
  }
  if (have < n || !ok) {
    char *want = cJSON_PrintUnformatted(expect);
    ok = fail(w, "expected %s for %s, got [%s]", want, peer, got);
    free(want);
  } else {
    /* Consume the first n of this peer. */
    size_t out = 0, taken = 0;
    for (size_t i = 0; i < h->n_events; i++) {
      if (taken < n && strcmp(h->events[i].peer, peer) == 0) {
        taken++;
        continue;
      }
      h->events[out++] = h->events[i];
    }
    h->n_events = out;
  }
  pthread_mutex_unlock(&h->mu);
  free(peer);
  return ok;
}

static int step_no_events(world *w, const cJSON *step) {
  handle *h = need(w, step, "h");
  if (!h) return 0;
  char *peer = subst(w, jstr(step, "peer") ? jstr(step, "peer") : "");
  if (!peer) return 0;
  size_t have = wait_events(w, h, peer, SIZE_MAX, now_ms() + jnum(step, "for_ms", 500));
  int ok = have == 0 ? 1 : fail(w, "expected no events for %s, got %zu", peer, have);
  free(peer);
  return ok;
}

static int step_wait_state(world *w, const cJSON *step) {
  handle *h = need(w, step, "h");
  if (!h || !want_client(w, h)) return 0;
  const char *want = jstr(step, "value");
  if (!want) return fail(w, "missing \"value\"");
  long long deadline = now_ms() + jnum(step, "within_ms", 20000);
  hb_state st = HB_STATE_UNKNOWN;
  for (;;) {
    hb_error *err = NULL;
    hb_status s = hb_client_state(h->ptr, &st, &err);
    if (s != HB_STATUS_OK) {
      fail(w, "state: %s \"%s\"", hb_status_str(s), err ? hb_error_message(err) : "");
      hb_error_free(err);
      return 0;
    }
    if (strcmp(hb_state_str(st), want) == 0) return 1;
    if (now_ms() > deadline) return fail(w, "expected state %s, got %s", want, hb_state_str(st));
    sleep_ms(20);
  }
}

static int step_beat(world *w, const cJSON *step) {
  const char *bin = getenv("HEARTBEATER_BIN");
  if (!bin || !*bin) return fail(w, "HEARTBEATER_BIN is not set (the CLI, e.g. target/debug/heartbeater)");
  const char *as = jstr(step, "as");
  if (!as) return fail(w, "missing \"as\"");
  if (w->n_procs == MAX_PROCS) return fail(w, "too many processes");
  const cJSON *args = cJSON_GetObjectItemCaseSensitive(step, "args");
  int n = cJSON_GetArraySize(args);
  char **argv = calloc((size_t)n + 3, sizeof *argv);
  argv[0] = (char *)bin;
  argv[1] = "beat";
  for (int i = 0; i < n; i++) {
    const cJSON *a = cJSON_GetArrayItem(args, i);
    argv[i + 2] = subst(w, cJSON_IsString(a) ? a->valuestring : "");
    if (!argv[i + 2]) {
      for (int j = 2; j < i + 2; j++) free(argv[j]);
      free(argv);
      return 0;
    }
  }
  fflush(NULL);
  pid_t pid = fork();
  if (pid == 0) {
    execv(bin, argv);
    fprintf(stderr, "exec %s: %s\n", bin, strerror(errno));
    _exit(127);
  }
  for (int i = 2; i < n + 2; i++) free(argv[i]);
  free(argv);
  if (pid < 0) return fail(w, "fork: %s", strerror(errno));
  snprintf(w->procs[w->n_procs].name, sizeof w->procs[0].name, "%s", as);
  w->procs[w->n_procs++].pid = pid;
  return 1;
}

static int step_kill(world *w, const cJSON *step) {
  const char *p = jstr(step, "p"), *sig = jstr(step, "signal");
  int signo = sig && strcmp(sig, "KILL") == 0 ? SIGKILL : sig && strcmp(sig, "TERM") == 0 ? SIGTERM : 0;
  if (!signo) return fail(w, "unknown signal \"%s\"", sig ? sig : "");
  for (int i = 0; i < w->n_procs; i++) {
    if (!p || strcmp(w->procs[i].name, p) != 0 || w->procs[i].pid <= 0) continue;
    kill(w->procs[i].pid, signo);
    waitpid(w->procs[i].pid, NULL, 0);
    w->procs[i].pid = 0;
    return 1;
  }
  return fail(w, "no process \"%s\"", p ? p : "");
}

static int check_names(world *w, const cJSON *names, const char *list, const char *(*name)(uint32_t)) {
  const cJSON *arr = cJSON_GetObjectItemCaseSensitive(names, list);
  if (!cJSON_IsArray(arr)) return fail(w, "names.json has no %s", list);
  uint32_t i = 0;
  const cJSON *v;
  cJSON_ArrayForEach(v, arr) {
    const char *got = name(i);
    if (!cJSON_IsString(v) || strcmp(got, v->valuestring) != 0)
      return fail(w, "%s[%u]: expected %s, got %s", list, i, cJSON_IsString(v) ? v->valuestring : "?", got);
    i++;
  }
  /* No value past the end: the C enum has no name the others lack. */
  if (strcmp(name(i), "unknown") != 0) return fail(w, "%s[%u]: expected none, got %s", list, i, name(i));
  return 1;
}

static const char *state_name(uint32_t i) { return hb_state_str(i); }
static const char *reason_name(uint32_t i) { return hb_reason_str(i); }
static const char *status_name(uint32_t i) { return hb_status_str(i); }

static const char *g_dir; /* tests/conformance */

static int step_names(world *w) {
  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s/names.json", g_dir);
  char *text = read_file(path);
  cJSON *names = text ? cJSON_Parse(text) : NULL;
  free(text);
  if (!names) return fail(w, "cannot read %s", path);
  int ok = check_names(w, names, "states", state_name) && check_names(w, names, "reasons", reason_name) &&
           check_names(w, names, "status_codes", status_name);
  /* Every error kind is a status code of the same name. */
  const cJSON *kind;
  cJSON_ArrayForEach(kind, cJSON_GetObjectItemCaseSensitive(names, "error_kinds")) {
    if (!ok) break;
    int found = 0;
    for (uint32_t i = 0; i < 64 && !found; i++) found = cJSON_IsString(kind) && strcmp(hb_status_str(i), kind->valuestring) == 0;
    if (!found) ok = fail(w, "error kind %s has no hb_status", cJSON_IsString(kind) ? kind->valuestring : "?");
  }
  cJSON_Delete(names);
  return ok;
}

static int run_steps(world *w, const cJSON *steps, int *failed_at, int in_child);

static int step_fork(world *w, const cJSON *step) {
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0) return fail(w, "fork: %s", strerror(errno));
  if (pid == 0) {
    w->n_procs = 0; /* the parent's processes are not the child's to reap */
    int at = -1;
    int ok = run_steps(w, cJSON_GetObjectItemCaseSensitive(step, "steps"), &at, 1);
    if (!ok) fprintf(stderr, "fork child: step %d: %s\n", at, w->msg);
    fflush(NULL);
    _exit(ok ? 0 : 1);
  }
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) return fail(w, "waitpid: %s", strerror(errno));
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    return fail(w, "expected the forked child to exit 0, got status %d (its failure is on stderr)", status);
  return 1;
}

/* ---- elections ---------------------------------------------------------------------- */

static handle *need_election(world *w, const cJSON *step) {
  handle *h = need(w, step, "h");
  if (h && h->kind != K_ELECTION) {
    fail(w, "%s is not an election", h->name);
    return NULL;
  }
  return h;
}

static int step_campaign(world *w, const cJSON *step) {
  handle *h = need_election(w, step);
  if (!h) return 0;
  int64_t revision = 0, lease = 0;
  hb_error *err = NULL;
  hb_status s = hb_election_campaign(h->ptr, (uint32_t)jnum(step, "timeout_ms", 0), &revision, &lease, &err);
  return outcome(w, step, s, err);
}

static int step_resign(world *w, const cJSON *step) {
  handle *h = need_election(w, step);
  if (!h) return 0;
  hb_error *err = NULL;
  hb_status s = hb_election_resign(h->ptr, 0, &err);
  return outcome(w, step, s, err);
}

static int step_token(world *w, const cJSON *step) {
  handle *h = need_election(w, step);
  if (!h) return 0;
  int64_t revision = 0, lease = 0;
  hb_error *err = NULL;
  hb_status s = hb_election_token(h->ptr, &revision, &lease, &err);
  if (!outcome(w, step, s, err)) return 0;
  if (s != HB_STATUS_OK) return 1;
  const char *save = jstr(step, "save");
  if (save) {
    if (w->n_tokens == 8) return fail(w, "too many saved tokens");
    snprintf(w->tokens[w->n_tokens].name, sizeof w->tokens[0].name, "%s", save);
    w->tokens[w->n_tokens++].revision = revision;
  }
  const char *above = jstr(cJSON_GetObjectItemCaseSensitive(step, "expect"), "greater_than");
  if (above) {
    for (int i = 0; i < w->n_tokens; i++)
      if (strcmp(w->tokens[i].name, above) == 0)
        return revision > w->tokens[i].revision ? 1
                                                : fail(w, "token revision %lld not above %s's %lld", (long long)revision,
                                                       above, (long long)w->tokens[i].revision);
    return fail(w, "no saved token \"%s\"", above);
  }
  return 1;
}

/* One look at the leader against expect.value (a string, or null for nobody). */
static int leader_once(world *w, handle *h, const cJSON *step) {
  int64_t revision = 0, lease = 0;
  uint8_t *value = NULL;
  size_t len = 0;
  hb_error *err = NULL;
  hb_status s = hb_election_leader_value(h->ptr, &revision, &lease, &value, &len, &err);
  if (!outcome(w, step, s, err)) return 0;
  if (s != HB_STATUS_OK) return 1;
  const cJSON *want = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(step, "expect"), "value");
  char got[256];
  snprintf(got, sizeof got, "%.*s", (int)len, value ? (const char *)value : "");
  hb_bytes_free(value, len);
  if (cJSON_IsNull(want) && revision != 0) return fail(w, "leader \"%s\", expected nobody", got);
  if (cJSON_IsString(want) && (revision == 0 || strcmp(got, want->valuestring) != 0))
    return fail(w, "leader %s\"%s\", expected \"%s\"", revision ? "" : "(nobody) ", got, want->valuestring);
  return 1;
}

static int step_leader(world *w, const cJSON *step) {
  /* With within_ms, until it matches: the leader is what our watch has seen. */
  handle *h = need_election(w, step);
  if (!h) return 0;
  long long deadline = now_ms() + jnum(step, "within_ms", 0);
  while (!leader_once(w, h, step)) {
    if (now_ms() > deadline) return 0;
    sleep_ms(20);
  }
  return 1;
}

/* Until an event of any peer matches `expect`; consumes it and every event before it. */
static int step_wait_event(world *w, const cJSON *step) {
  handle *h = need(w, step, "h");
  if (!h) return 0;
  const cJSON *want = cJSON_GetObjectItemCaseSensitive(step, "expect");
  long long deadline = now_ms() + jnum(step, "within_ms", 20000);
  for (size_t seen = 0;;) {
    pthread_mutex_lock(&h->mu);
    for (; seen < h->n_events; seen++) {
      char why[256];
      if (event_matches(w, want, &h->events[seen], why, sizeof why)) {
        memmove(h->events, h->events + seen + 1, (h->n_events - seen - 1) * sizeof *h->events);
        h->n_events -= seen + 1;
        pthread_mutex_unlock(&h->mu);
        return 1;
      }
    }
    size_t have = h->n_events;
    pthread_mutex_unlock(&h->mu);
    if (now_ms() > deadline) {
      char *text = cJSON_PrintUnformatted(want);
      fail(w, "no event %s within the time (%zu others recorded)", text, have);
      free(text);
      return 0;
    }
    wait_events(w, h, "", SIZE_MAX, now_ms() + 50); /* polls (or waits for the callback) a while */
  }
}

static int run_step(world *w, const cJSON *step) {
  const char *d = jstr(step, "do");
  if (!d) return fail(w, "step without \"do\"");
  if (strcmp(d, "monitor") == 0) return step_make(w, step, K_MONITOR);
  if (strcmp(d, "client") == 0) return step_make(w, step, K_CLIENT);
  if (strcmp(d, "watcher") == 0) return step_make(w, step, K_WATCHER);
  if (strcmp(d, "election") == 0) return step_make(w, step, K_ELECTION);
  if (strcmp(d, "campaign") == 0) return step_campaign(w, step);
  if (strcmp(d, "resign") == 0) return step_resign(w, step);
  if (strcmp(d, "token") == 0) return step_token(w, step);
  if (strcmp(d, "leader") == 0) return step_leader(w, step);
  if (strcmp(d, "wait_event") == 0) return step_wait_event(w, step);
  if (strcmp(d, "start") == 0) return step_start_stop(w, step, 1);
  if (strcmp(d, "stop") == 0) return step_start_stop(w, step, 0);
  if (strcmp(d, "free") == 0) {
    handle *h = need(w, step, "h");
    if (h) free_handle(h);
    return h != NULL;
  }
  if (strcmp(d, "state") == 0 || strcmp(d, "check") == 0 || strcmp(d, "fencing_token") == 0 ||
      strcmp(d, "remaining") == 0 || strcmp(d, "incarnation") == 0)
    return step_client_call(w, step, d);
  if (strcmp(d, "peers") == 0) {
    /* With within_ms, until the list matches: a watcher's list follows etcd a round trip
       after the event that announced the change. */
    long long deadline = now_ms() + jnum(step, "within_ms", 0);
    while (!step_peers(w, step)) {
      if (now_ms() > deadline) return 0;
      sleep_ms(20);
    }
    return 1;
  }
  if (strcmp(d, "http_addr") == 0) return step_http_addr(w, step);
  if (strcmp(d, "http_peers") == 0) return step_http_peers(w, step);
  if (strcmp(d, "next_event") == 0) return step_next_event(w, step);
  if (strcmp(d, "on_event") == 0) return step_on_event(w, step);
  if (strcmp(d, "events") == 0) return step_events(w, step);
  if (strcmp(d, "no_events") == 0) return step_no_events(w, step);
  if (strcmp(d, "wait_state") == 0) return step_wait_state(w, step);
  if (strcmp(d, "beat") == 0) return step_beat(w, step);
  if (strcmp(d, "kill") == 0) return step_kill(w, step);
  if (strcmp(d, "fork") == 0) return step_fork(w, step);
  if (strcmp(d, "names") == 0) return step_names(w);
  return fail(w, "unknown step \"%s\"", d);
}

static int run_steps(world *w, const cJSON *steps, int *failed_at, int in_child) {
  (void)in_child;
  int i = 0;
  const cJSON *step;
  cJSON_ArrayForEach(step, steps) {
    w->msg[0] = 0;
    if (!run_step(w, step)) {
      *failed_at = i;
      return 0;
    }
    i++;
  }
  return 1;
}

static void cleanup(world *w) {
  for (int i = 0; i < w->n_procs; i++)
    if (w->procs[i].pid > 0) {
      kill(w->procs[i].pid, SIGKILL);
      waitpid(w->procs[i].pid, NULL, 0);
    }
  for (int i = 0; i < w->n_handles; i++) free_handle(w->handles[i]);
  for (int i = 0; i < w->n_handles; i++) {
    handle *h = w->handles[i];
    pthread_mutex_destroy(&h->mu);
    pthread_cond_destroy(&h->cv);
    free(h->events);
    free(h);
  }
  w->n_handles = w->n_procs = 0;
}

/* `n/a` reason for a capability C lacks (from capabilities.json), or NULL. */
static const char *lacks(const cJSON *caps, const char *cap, int *unknown) {
  const cJSON *c = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(caps, "capabilities"), cap);
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(c, "c");
  if (!v) *unknown = 1;
  return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int mentions_etcd(const cJSON *j) {
  if (cJSON_IsString(j)) return strstr(j->valuestring, "${etcd}") != NULL;
  const cJSON *c;
  cJSON_ArrayForEach(c, j) if (mentions_etcd(c)) return 1;
  return 0;
}

static int cmp_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static const char *find_dir(char *buf, size_t n) {
  const char *env = getenv("HB_CONFORMANCE_DIR");
  if (env && *env) return env;
  snprintf(buf, n, "%s", HB_DRIVER_SOURCE);
  for (char *slash; (slash = strrchr(buf, '/'));) {
    *slash = 0;
    size_t len = strlen(buf);
    if (len >= 17 && strcmp(buf + len - 17, "tests/conformance") == 0) return buf;
  }
  return NULL;
}

/* `text` with every `${transport}` replaced; the caller frees. */
static char *with_transport(const char *text, const char *transport) {
  static const char marker[] = "${transport}";
  size_t cap = strlen(text) + 1, len = 0;
  char *out = malloc(cap);
  for (const char *p = text; *p;) {
    const char *add = p;
    size_t n = 1;
    if (strncmp(p, marker, sizeof marker - 1) == 0) {
      add = transport;
      n = strlen(transport);
      p += sizeof marker - 1;
    } else {
      p++;
    }
    if (len + n + 1 > cap) out = realloc(out, cap = 2 * (len + n + 1));
    memcpy(out + len, add, n);
    len += n;
  }
  out[len] = 0;
  return out;
}

/* The scenario as run over `transport` (README, "Transports"): `${transport}` replaced,
 * and each list element `${tls.monitor}`, `${tls.client}` (options) or `${tls.beat}` (CLI
 * arguments) replaced by that side's TLS files in `certs`, or by nothing over another
 * transport. A new tree; the caller deletes it. */
static cJSON *over(const cJSON *v, const char *transport, const char *certs) {
  if (cJSON_IsString(v)) {
    char *s = with_transport(v->valuestring, transport);
    cJSON *out = cJSON_CreateString(s);
    free(s);
    return out;
  }
  if (cJSON_IsObject(v)) {
    cJSON *out = cJSON_CreateObject();
    const cJSON *e;
    cJSON_ArrayForEach(e, v) cJSON_AddItemToObject(out, e->string, over(e, transport, certs));
    return out;
  }
  if (!cJSON_IsArray(v)) return cJSON_Duplicate(v, 1);
  cJSON *out = cJSON_CreateArray();
  const cJSON *e;
  cJSON_ArrayForEach(e, v) {
    const char *m = cJSON_IsString(e) ? e->valuestring : "";
    int monitor = strcmp(m, "${tls.monitor}") == 0, client = strcmp(m, "${tls.client}") == 0;
    int beat = strcmp(m, "${tls.beat}") == 0;
    if (!monitor && !client && !beat) {
      cJSON_AddItemToArray(out, over(e, transport, certs));
      continue;
    }
    if (strcmp(transport, "tls") != 0) continue;
    const char *side = monitor ? "monitor" : "client";
    const char *keys[3] = {"tls_ca_file", "tls_cert_file", "tls_key_file"};
    char files[3][PATH_MAX];
    snprintf(files[0], PATH_MAX, "%s/ca.pem", certs);
    snprintf(files[1], PATH_MAX, "%s/%s.pem", certs, side);
    snprintf(files[2], PATH_MAX, "%s/%s-key.pem", certs, side);
    for (int i = 0; i < 3; i++) {
      if (beat) {
        char flag[32];
        snprintf(flag, sizeof flag, "--%s", keys[i]);
        for (char *c = flag; *c; c++)
          if (*c == '_') *c = '-';
        cJSON_AddItemToArray(out, cJSON_CreateString(flag));
        cJSON_AddItemToArray(out, cJSON_CreateString(files[i]));
      } else {
        cJSON *pair = cJSON_CreateArray();
        cJSON_AddItemToArray(pair, cJSON_CreateString(keys[i]));
        cJSON_AddItemToArray(pair, cJSON_CreateString(files[i]));
        cJSON_AddItemToArray(out, pair);
      }
    }
  }
  return out;
}

/* Runs tests/conformance/tls-certs for the scenario's `tls_ids`; 1 on success. */
static int make_certs(world *w, const cJSON *sc, const char *certs) {
  char cmd[4096];
  int len = snprintf(cmd, sizeof cmd, "'%s/tls-certs' '%s'", g_dir, certs);
  const cJSON *id;
  cJSON_ArrayForEach(id, cJSON_GetObjectItemCaseSensitive(sc, "tls_ids")) {
    char *v = subst(w, cJSON_IsString(id) ? id->valuestring : "");
    if (!v) return 0;
    len += snprintf(cmd + len, sizeof cmd - (size_t)len, " '%s'", v);
    free(v);
  }
  if ((size_t)len >= sizeof cmd || system(cmd) != 0) return fail(w, "failed: %s", cmd);
  return 1;
}

int main(void) {
  static char dirbuf[PATH_MAX];
  g_dir = find_dir(dirbuf, sizeof dirbuf);
  if (!g_dir) {
    fprintf(stderr, "conformance-c: cannot find tests/conformance (set HB_CONFORMANCE_DIR)\n");
    return 2;
  }
  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s/capabilities.json", g_dir);
  char *text = read_file(path);
  cJSON *caps = text ? cJSON_Parse(text) : NULL;
  free(text);
  if (!caps) {
    fprintf(stderr, "conformance-c: cannot read %s\n", path);
    return 2;
  }
  snprintf(path, sizeof path, "%s/scenarios", g_dir);
  DIR *dir = opendir(path);
  if (!dir) {
    fprintf(stderr, "conformance-c: cannot open %s\n", path);
    return 2;
  }
  char *files[256];
  int n_files = 0;
  for (struct dirent *e; (e = readdir(dir)) && n_files < 256;) {
    size_t len = strlen(e->d_name);
    if (len > 5 && strcmp(e->d_name + len - 5, ".json") == 0) files[n_files++] = strdup(e->d_name);
  }
  closedir(dir);
  qsort(files, (size_t)n_files, sizeof *files, cmp_names);

  const char *etcd = getenv("HB_CONFORMANCE_ETCD");
  const char *require_all = getenv("HEARTBEATER_REQUIRE_ALL");
  int failures = 0, passed = 0;
  static world w;
  for (int f = 0; f < n_files; f++) {
    snprintf(path, sizeof path, "%s/scenarios/%s", g_dir, files[f]);
    text = read_file(path);
    cJSON *sc = text ? cJSON_Parse(text) : NULL;
    free(text);
    const char *name = sc ? jstr(sc, "name") : NULL;
    if (!sc || !name) {
      printf("FAIL %s: not a scenario (JSON does not parse or has no name)\n", files[f]);
      failures++;
      cJSON_Delete(sc);
      continue;
    }
    const char *na = NULL;
    int unknown = 0;
    const cJSON *req;
    cJSON_ArrayForEach(req, cJSON_GetObjectItemCaseSensitive(sc, "requires")) {
      if (cJSON_IsString(req) && !na) na = lacks(caps, req->valuestring, &unknown);
      if (unknown) {
        printf("FAIL %s: requires \"%s\", which capabilities.json does not declare for c\n", name,
               cJSON_IsString(req) ? req->valuestring : "?");
        break;
      }
    }
    if (unknown) {
      failures++;
    } else if (na) {
      printf("n/a %s (%s)\n", name, na);
    } else if (mentions_etcd(sc) && !(etcd && *etcd)) {
      if (require_all && strcmp(require_all, "1") == 0) {
        printf("FAIL %s: needs etcd and HB_CONFORMANCE_ETCD is not set (HEARTBEATER_REQUIRE_ALL=1)\n", name);
        failures++;
      } else {
        printf("skip %s (HB_CONFORMANCE_ETCD is not set)\n", name);
      }
    } else {
      /* Without "transports", the scenario runs once as written. */
      const cJSON *transports = cJSON_GetObjectItemCaseSensitive(sc, "transports");
      int n_runs = cJSON_IsArray(transports) ? cJSON_GetArraySize(transports) : 1;
      for (int r = 0; r < n_runs; r++) {
        const cJSON *t = cJSON_IsArray(transports) ? cJSON_GetArrayItem(transports, r) : NULL;
        const char *transport = cJSON_IsString(t) ? t->valuestring : NULL;
        char certs[] = "/tmp/hb-conf-c-XXXXXX";
        cJSON *run = transport && mkdtemp(certs) ? over(sc, transport, certs) : NULL;
        memset(&w, 0, sizeof w);
        w.etcd = etcd;
        snprintf(w.run, sizeof w.run, "c%ld-%lld", (long)getpid(), now_ms() % 100000000);
        int at = -1;
        int ok = transport && !run ? fail(&w, "cannot make a directory for certificates") : 1;
        if (ok && transport && strcmp(transport, "tls") == 0) ok = make_certs(&w, run, certs);
        if (ok) ok = run_steps(&w, cJSON_GetObjectItemCaseSensitive(run ? run : sc, "steps"), &at, 0);
        cleanup(&w);
        if (run) {
          char rm[PATH_MAX + 16];
          snprintf(rm, sizeof rm, "rm -rf '%s'", certs);
          if (system(rm) != 0) fprintf(stderr, "conformance-c: could not remove %s\n", certs);
          cJSON_Delete(run);
        }
        if (ok) {
          printf("ok %s%s%s\n", name, transport ? " over " : "", transport ? transport : "");
          passed++;
        } else {
          printf("FAIL %s%s%s: step %d: %s\n", name, transport ? " over " : "", transport ? transport : "", at, w.msg);
          failures++;
        }
      }
    }
    fflush(stdout);
    cJSON_Delete(sc);
  }
  for (int f = 0; f < n_files; f++) free(files[f]);
  cJSON_Delete(caps);
  printf("conformance-c: %d passed, %d failed, %d files\n", passed, failures, n_files);
  return failures ? 1 : 0;
}
