// heartbeater.hpp — optional header-only C++17 wrapper over heartbeater.h.
//
// Owning, move-only types (Config, Client, Monitor, Watcher) free their handle in the
// destructor. Failures throw heartbeater::error (a std::system_error whose code() is in
// heartbeater::category() and whose what() is the library's precise message); every
// throwing call that a caller may want to handle inline also has an overload taking
// std::error_code&. Callbacks are std::function; an exception escaping one is swallowed
// (it must never unwind into the library) and counted in callback_exceptions().
//
// Threading: as heartbeater.h. Callbacks run on the handle's delivery thread.
// Hand-written (not generated); the C header is the contract.
#ifndef HEARTBEATER_HPP
#define HEARTBEATER_HPP

#include <heartbeater.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

namespace heartbeater {

// ---- errors ---------------------------------------------------------------------------

/// The hb_status codes as a std::error_code category ("heartbeater").
class status_category_impl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "heartbeater"; }
  std::string message(int code) const override { return hb_status_str(static_cast<uint32_t>(code)); }
};

inline const std::error_category& category() noexcept {
  static const status_category_impl instance;
  return instance;
}

inline std::error_code make_error_code(hb_status status) noexcept {
  return {static_cast<int>(status), category()};
}

/// Thrown on failure: code() is the hb_status, what() the library's detailed message.
class error : public std::system_error {
 public:
  error(hb_status status, const std::string& message) : std::system_error(make_error_code(status), message) {}
  hb_status status() const noexcept { return static_cast<hb_status>(code().value()); }
};

namespace detail {

/// Owns an hb_error* written by a C call.
struct error_slot {
  hb_error* ptr = nullptr;
  error_slot() = default;
  error_slot(const error_slot&) = delete;
  error_slot& operator=(const error_slot&) = delete;
  ~error_slot() { hb_error_free(ptr); }
  hb_error** out() noexcept { return &ptr; }
  std::string message() const {
    const char* m = ptr ? hb_error_message(ptr) : nullptr;
    return m ? m : "";
  }
};

inline void check(hb_status status, const error_slot& err) {
  if (status != HB_STATUS_OK) throw error(status, err.message());
}

inline bool check(hb_status status, std::error_code& ec) noexcept {
  ec = status == HB_STATUS_OK ? std::error_code() : make_error_code(status);
  return status == HB_STATUS_OK;
}

inline std::string str(const char* s) { return s ? std::string(s) : std::string(); }

template <typename T, void (*Free)(T*)>
struct deleter {
  void operator()(T* p) const noexcept { Free(p); }
};

inline std::atomic<uint64_t>& callback_exception_counter() noexcept {
  static std::atomic<uint64_t> n{0};
  return n;
}

}  // namespace detail

/// Exceptions that escaped a std::function callback (swallowed at the C boundary).
inline uint64_t callback_exceptions() noexcept { return detail::callback_exception_counter().load(); }

// ---- small value types ----------------------------------------------------------------

using labels_t = std::map<std::string, std::string>;

inline const char* to_string(hb_state s) noexcept { return hb_state_str(s); }
inline const char* to_string(hb_reason r) noexcept { return hb_reason_str(r); }

/// An owned copy of an hb_event (safe to keep after the callback returns).
struct Event {
  std::string peer;
  std::string service;
  hb_state from = HB_STATE_UNKNOWN;
  hb_state to = HB_STATE_UNKNOWN;
  hb_reason reason = HB_REASON_REGISTERED;
  uint64_t at_unix_ms = 0;
  uint32_t incarnation = 0;
  uint64_t epoch = 0;
  labels_t labels;
  std::optional<std::string> traceparent;

  static Event copy(const hb_event* ev) {
    Event e;
    e.peer = detail::str(hb_event_peer(ev));
    e.service = detail::str(hb_event_service(ev));
    e.from = hb_event_from(ev);
    e.to = hb_event_to(ev);
    e.reason = hb_event_reason(ev);
    e.at_unix_ms = hb_event_at_unix_ms(ev);
    e.incarnation = hb_event_incarnation(ev);
    e.epoch = hb_event_epoch(ev);
    for (size_t i = 0, n = hb_event_label_count(ev); i < n; ++i) {
      const char *k = nullptr, *v = nullptr;
      if (hb_event_label_at(ev, i, &k, &v, nullptr) == HB_STATUS_OK) e.labels.emplace(k, v);
    }
    if (const char* tp = hb_event_traceparent(ev)) e.traceparent = tp;
    return e;
  }
};

/// An owned copy of one peer from a snapshot.
struct Peer {
  std::string id;
  std::string service;
  std::optional<std::string> addr;
  hb_state state = HB_STATE_UNKNOWN;
  uint64_t last_seen_unix_ms = 0;
  uint32_t incarnation = 0;
  uint64_t epoch = 0;
  uint32_t interval_ms = 0;
  std::optional<std::chrono::microseconds> rtt;
  labels_t labels;
};

namespace detail {

inline std::vector<Peer> copy_peers(hb_peers* raw) {
  std::unique_ptr<hb_peers, deleter<hb_peers, hb_peers_free>> owned(raw);
  std::vector<Peer> out;
  for (size_t i = 0, n = hb_peers_len(raw); i < n; ++i) {
    const hb_peer* p = hb_peers_get(raw, i);
    Peer peer;
    peer.id = str(hb_peer_id(p));
    peer.service = str(hb_peer_service(p));
    if (const char* a = hb_peer_addr(p)) peer.addr = a;
    peer.state = hb_peer_state(p);
    peer.last_seen_unix_ms = hb_peer_last_seen_unix_ms(p);
    peer.incarnation = hb_peer_incarnation(p);
    peer.epoch = hb_peer_epoch(p);
    peer.interval_ms = hb_peer_interval_ms(p);
    int64_t rtt = hb_peer_rtt_us(p);
    if (rtt >= 0) peer.rtt = std::chrono::microseconds(rtt);
    for (size_t j = 0, m = hb_peer_label_count(p); j < m; ++j) {
      const char *k = nullptr, *v = nullptr;
      if (hb_peer_label_at(p, j, &k, &v, nullptr) == HB_STATUS_OK) peer.labels.emplace(k, v);
    }
    out.push_back(std::move(peer));
  }
  return out;
}

using callback_fn = std::function<void(const Event&)>;

extern "C" inline void trampoline(void* user_data, const hb_event* ev) noexcept {
  try {
    (*static_cast<callback_fn*>(user_data))(Event::copy(ev));
  } catch (...) {
    callback_exception_counter().fetch_add(1);
  }
}

extern "C" inline void drop_callback(void* user_data) noexcept { delete static_cast<callback_fn*>(user_data); }

/// Registers `fn` through `set` (one of hb_*_set_callback). The library owns the heap copy
/// and deletes it exactly once (drop_callback), also when registration fails.
template <typename Handle>
void set_callback(hb_status (*set)(const Handle*, hb_event_callback, void*, hb_drop_user_data, hb_error**),
                  const Handle* h, callback_fn fn) {
  error_slot err;
  auto* heap = new callback_fn(std::move(fn));
  check(set(h, &trampoline, heap, &drop_callback, err.out()), err);
}

/// Polls through `next` (one of hb_*_next_event): nullopt on timeout, throws otherwise.
template <typename Handle>
std::optional<Event> next_event(hb_status (*next)(const Handle*, uint32_t, hb_event**, hb_error**), const Handle* h,
                                std::chrono::milliseconds timeout) {
  error_slot err;
  hb_event* ev = nullptr;
  auto ms = timeout.count() < 0 ? 0 : timeout.count();
  uint32_t t = ms >= static_cast<long long>(HB_WAIT_FOREVER) ? HB_WAIT_FOREVER - 1 : static_cast<uint32_t>(ms);
  hb_status s = next(h, t, &ev, err.out());
  if (s == HB_STATUS_TIMEOUT) return std::nullopt;
  check(s, err);
  std::unique_ptr<hb_event, deleter<hb_event, hb_event_free>> owned(ev);
  return Event::copy(ev);
}

}  // namespace detail

// ---- Config ---------------------------------------------------------------------------

/// Options for a Client, Monitor or Watcher (copied when a handle is made). Setters
/// throw heartbeater::error (HB_STATUS_CONFIG with the precise message) and chain.
class Config {
 public:
  Config() : h_(hb_config_new()) {
    if (!h_) throw error(HB_STATUS_INTERNAL, "hb_config_new failed");
  }

  Config& set(const std::string& key, const std::string& value) {
    detail::error_slot err;
    detail::check(hb_config_set(h_.get(), key.c_str(), value.c_str(), err.out()), err);
    return *this;
  }
  Config& endpoint(const std::string& v) { return text(hb_config_set_endpoint, v); }
  Config& service(const std::string& v) { return text(hb_config_set_service, v); }
  Config& instance_id(const std::string& v) { return text(hb_config_set_instance_id, v); }
  Config& detector(const std::string& v) { return text(hb_config_set_detector, v); }
  Config& labels(const std::string& v) { return text(hb_config_set_labels, v); }
  Config& label(const std::string& k, const std::string& v) {
    detail::error_slot err;
    detail::check(hb_config_set_label(h_.get(), k.c_str(), v.c_str(), err.out()), err);
    return *this;
  }
  Config& ttl(std::chrono::milliseconds ttl) {
    detail::error_slot err;
    detail::check(hb_config_set_ttl_ms(h_.get(), static_cast<uint64_t>(ttl.count()), err.out()), err);
    return *this;
  }
  Config& interval(std::chrono::milliseconds min, std::chrono::milliseconds max) {
    detail::error_slot err;
    detail::check(hb_config_set_interval_ms(h_.get(), static_cast<uint64_t>(min.count()),
                                            static_cast<uint64_t>(max.count()), err.out()),
                  err);
    return *this;
  }
  Config& auth_key(const std::string& bytes) {
    detail::error_slot err;
    detail::check(hb_config_set_auth_key(h_.get(), reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(),
                                         err.out()),
                  err);
    return *this;
  }

  const hb_config* get() const noexcept { return h_.get(); }

 private:
  Config& text(hb_status (*f)(hb_config*, const char*, hb_error**), const std::string& v) {
    detail::error_slot err;
    detail::check(f(h_.get(), v.c_str(), err.out()), err);
    return *this;
  }
  std::unique_ptr<hb_config, detail::deleter<hb_config, hb_config_free>> h_;
};

// ---- Client ---------------------------------------------------------------------------

struct FencingToken {
  int64_t lease_id = 0;
  uint64_t epoch = 0;
};

/// A client (see hb_client). The destructor stops it (saying goodbye) and frees it.
class Client {
 public:
  explicit Client(const Config& config) {
    detail::error_slot err;
    hb_client* raw = nullptr;
    detail::check(hb_client_new(config.get(), &raw, err.out()), err);
    h_.reset(raw);
  }

  void start() {
    detail::error_slot err;
    detail::check(hb_client_start(h_.get(), err.out()), err);
  }
  bool start(std::error_code& ec) noexcept { return detail::check(hb_client_start(h_.get(), nullptr), ec); }

  /// 0 ms: the configured stop_timeout.
  void stop(std::chrono::milliseconds timeout = std::chrono::milliseconds(0)) {
    detail::error_slot err;
    detail::check(hb_client_stop(h_.get(), clamp(timeout), err.out()), err);
  }

  hb_state state() const {
    detail::error_slot err;
    hb_state s = HB_STATE_UNKNOWN;
    detail::check(hb_client_state(h_.get(), &s, err.out()), err);
    return s;
  }

  FencingToken fencing_token() const {
    detail::error_slot err;
    FencingToken t;
    detail::check(hb_client_fencing_token(h_.get(), &t.lease_id, &t.epoch, err.out()), err);
    return t;
  }

  /// Throws HB_STATUS_NOT_HOLDER once this process may no longer act as the holder.
  void check() const {
    detail::error_slot err;
    detail::check(hb_client_check(h_.get(), err.out()), err);
  }
  bool check(std::error_code& ec) const noexcept { return detail::check(hb_client_check(h_.get(), nullptr), ec); }

  std::chrono::milliseconds remaining() const {
    detail::error_slot err;
    uint64_t ms = 0;
    detail::check(hb_client_remaining_ms(h_.get(), &ms, err.out()), err);
    return std::chrono::milliseconds(ms);
  }

  /// Own health events, on the client's delivery thread. Once set, next_event is unavailable.
  void on_event(std::function<void(const Event&)> fn) {
    detail::set_callback(hb_client_set_callback, h_.get(), std::move(fn));
  }

  /// nullopt when no event came within `timeout`; throws (HB_STATUS_STOPPED) once stopped.
  std::optional<Event> next_event(std::chrono::milliseconds timeout) {
    return detail::next_event(hb_client_next_event, h_.get(), timeout);
  }

  hb_client* get() const noexcept { return h_.get(); }
  /// Gives up ownership (e.g. to free the handle from its own callback).
  hb_client* release() noexcept { return h_.release(); }

 private:
  static uint32_t clamp(std::chrono::milliseconds t) {
    auto ms = t.count();
    return ms <= 0 ? 0u : ms >= static_cast<long long>(HB_WAIT_FOREVER) ? HB_WAIT_FOREVER - 1 : static_cast<uint32_t>(ms);
  }
  std::unique_ptr<hb_client, detail::deleter<hb_client, hb_client_free>> h_;
};

// ---- Monitor / Watcher ----------------------------------------------------------------

/// A monitor (see hb_monitor). The destructor stops and frees it.
class Monitor {
 public:
  explicit Monitor(const Config& config) {
    detail::error_slot err;
    hb_monitor* raw = nullptr;
    detail::check(hb_monitor_new(config.get(), &raw, err.out()), err);
    h_.reset(raw);
  }

  void start() {
    detail::error_slot err;
    detail::check(hb_monitor_start(h_.get(), err.out()), err);
  }
  void stop() {
    detail::error_slot err;
    detail::check(hb_monitor_stop(h_.get(), err.out()), err);
  }
  bool stop(std::error_code& ec) noexcept { return detail::check(hb_monitor_stop(h_.get(), nullptr), ec); }

  /// The bound addresses (`udp://127.0.0.1:40123`), in listen-list order.
  std::vector<std::string> local_addrs() const {
    detail::error_slot err;
    size_t n = 0;
    detail::check(hb_monitor_local_addr_count(h_.get(), &n, err.out()), err);
    std::vector<std::string> out;
    for (size_t i = 0; i < n; ++i) {
      detail::error_slot e;
      char* s = nullptr;
      detail::check(hb_monitor_local_addr(h_.get(), i, &s, e.out()), e);
      out.emplace_back(s);
      hb_string_free(s);
    }
    return out;
  }

  std::vector<Peer> peers() const {
    detail::error_slot err;
    hb_peers* raw = nullptr;
    detail::check(hb_monitor_peers(h_.get(), &raw, err.out()), err);
    return detail::copy_peers(raw);
  }

  void on_event(std::function<void(const Event&)> fn) {
    detail::set_callback(hb_monitor_set_callback, h_.get(), std::move(fn));
  }
  std::optional<Event> next_event(std::chrono::milliseconds timeout) {
    return detail::next_event(hb_monitor_next_event, h_.get(), timeout);
  }

  hb_monitor* get() const noexcept { return h_.get(); }
  hb_monitor* release() noexcept { return h_.release(); }

 private:
  std::unique_ptr<hb_monitor, detail::deleter<hb_monitor, hb_monitor_free>> h_;
};

/// An etcd watcher (see hb_watcher). The destructor stops and frees it.
class Watcher {
 public:
  explicit Watcher(const Config& config) {
    detail::error_slot err;
    hb_watcher* raw = nullptr;
    detail::check(hb_watcher_new(config.get(), &raw, err.out()), err);
    h_.reset(raw);
  }

  void start() {
    detail::error_slot err;
    detail::check(hb_watcher_start(h_.get(), err.out()), err);
  }
  void stop() {
    detail::error_slot err;
    detail::check(hb_watcher_stop(h_.get(), err.out()), err);
  }
  std::vector<Peer> peers() const {
    detail::error_slot err;
    hb_peers* raw = nullptr;
    detail::check(hb_watcher_peers(h_.get(), &raw, err.out()), err);
    return detail::copy_peers(raw);
  }
  void on_event(std::function<void(const Event&)> fn) {
    detail::set_callback(hb_watcher_set_callback, h_.get(), std::move(fn));
  }
  std::optional<Event> next_event(std::chrono::milliseconds timeout) {
    return detail::next_event(hb_watcher_next_event, h_.get(), timeout);
  }

  hb_watcher* get() const noexcept { return h_.get(); }
  hb_watcher* release() noexcept { return h_.release(); }

 private:
  std::unique_ptr<hb_watcher, detail::deleter<hb_watcher, hb_watcher_free>> h_;
};

// ---- process-wide ---------------------------------------------------------------------

/// The Prometheus text of every heartbeater metric in this process.
inline std::string metrics_text() {
  detail::error_slot err;
  char* s = nullptr;
  detail::check(hb_metrics_text(&s, err.out()), err);
  std::string out(s);
  hb_string_free(s);
  return out;
}

/// The library's version (compare with HB_VERSION when linking dynamically).
inline std::string version() { return hb_version(); }

}  // namespace heartbeater

#endif  // HEARTBEATER_HPP
