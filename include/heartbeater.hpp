// heartbeater.hpp — optional header-only C++17 wrapper over heartbeater.h.
//
// Owning, move-only types (Config, Client, Monitor, Watcher) free their handle in the
// destructor. Failures throw heartbeater::error (a std::system_error whose code() is the
// hb_status in heartbeater::category() and whose what() is exactly the engine's message).
// Every call that throws also has a noexcept overload taking `std::error_code& ec` (and
// optionally `std::string* message`, which receives the engine's message on failure);
// `ec == HB_STATUS_CONFIG` compiles (std::is_error_code_enum<hb_status>). Callbacks are
// std::function; an exception escaping one is swallowed (it must never unwind into the
// library) and counted in callback_exceptions().
//
// Config setters chain on lvalues and on temporaries: `auto cfg = Config().endpoint(...)`.
// next_event returns std::nullopt on timeout and at the end of the stream (after stop);
// stopped() tells the two apart.
//
// Threading: as heartbeater.h. Callbacks run on the shared delivery pool, one at a time per handle.
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
#include <new>
#include <optional>
#include <string>
#include <system_error>
#include <type_traits>
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

}  // namespace heartbeater

/// Found by argument-dependent lookup (hb_status lives in the global namespace), so that
/// `std::error_code ec = HB_STATUS_CONFIG;` and `ec == HB_STATUS_CONFIG` work.
inline std::error_code make_error_code(hb_status status) noexcept {
  return {static_cast<int>(status), heartbeater::category()};
}

namespace std {
template <>
struct is_error_code_enum<hb_status> : true_type {};
}  // namespace std

namespace heartbeater {

using ::make_error_code;

/// Thrown on failure: code() is the hb_status, what() exactly the engine's message.
class error : public std::system_error {
 public:
  error(hb_status status, const std::string& message)
      : std::system_error(make_error_code(status)), message_(message) {}
  hb_status status() const noexcept { return static_cast<hb_status>(code().value()); }
  /// The engine's message, unchanged (std::system_error would append ": " + the code's name).
  const char* what() const noexcept override { return message_.c_str(); }

 private:
  std::string message_;
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

/// The noexcept form: sets `ec` (cleared on success) and, when asked, `*message`.
inline bool check(hb_status status, const error_slot& err, std::error_code& ec, std::string* message) noexcept {
  ec = status == HB_STATUS_OK ? std::error_code() : make_error_code(status);
  if (message) {
    message->clear();
    if (status != HB_STATUS_OK) {
      const char* m = err.ptr ? hb_error_message(err.ptr) : nullptr;
      try {
        message->assign(m ? m : "");
      } catch (...) {  // out of memory: the code is still right
      }
    }
  }
  return status == HB_STATUS_OK;
}

/// Runs `f` (which may throw heartbeater::error or std::bad_alloc) for a noexcept overload.
template <typename F>
auto guarded(std::error_code& ec, std::string* message, F&& f) noexcept -> std::optional<decltype(f())> {
  try {
    ec.clear();
    if (message) message->clear();
    return f();
  } catch (const error& e) {
    ec = e.code();
    if (message) {
      try {
        message->assign(e.what());
      } catch (...) {
      }
    }
  } catch (...) {
    ec = std::make_error_code(std::errc::not_enough_memory);
  }
  return std::nullopt;
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

/// A duration as engine text ("-1000ms" stays negative, so the engine rejects and names it).
inline std::string ms_text(std::chrono::milliseconds d) { return std::to_string(d.count()) + "ms"; }

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

template <typename Handle>
using set_callback_fn = hb_status (*)(const Handle*, hb_event_callback, void*, hb_drop_user_data, hb_error**);
template <typename Handle>
using next_event_fn = hb_status (*)(const Handle*, uint32_t, hb_event**, hb_error**);

/// Registers `fn` through `set` (one of hb_*_set_callback). The library owns the heap copy
/// and deletes it exactly once (drop_callback), also when registration fails.
template <typename Handle>
void set_callback(set_callback_fn<Handle> set, const Handle* h, callback_fn fn) {
  error_slot err;
  auto* heap = new callback_fn(std::move(fn));
  check(set(h, &trampoline, heap, &drop_callback, err.out()), err);
}

inline uint32_t wait_ms(std::chrono::milliseconds timeout) noexcept {
  auto ms = timeout.count() < 0 ? 0 : timeout.count();
  return ms >= static_cast<long long>(HB_WAIT_FOREVER) ? HB_WAIT_FOREVER - 1 : static_cast<uint32_t>(ms);
}

/// What every handle type shares: the owned C handle and whether its event stream ended.
template <typename T, void (*Free)(T*)>
class handle_base {
 public:
  handle_base(const handle_base&) = delete;
  handle_base& operator=(const handle_base&) = delete;
  handle_base(handle_base&& o) noexcept : h_(std::move(o.h_)), ended_(o.ended_.load()) {}
  handle_base& operator=(handle_base&& o) noexcept {
    h_ = std::move(o.h_);
    ended_ = o.ended_.load();
    return *this;
  }

  T* get() const noexcept { return h_.get(); }
  /// Gives up ownership (e.g. to free the handle from its own callback with hb_*_free).
  T* release() noexcept { return h_.release(); }

  /// True once next_event has reached the end of the stream (the handle was stopped and
  /// every event taken): a std::nullopt from next_event is then the end, not a timeout.
  bool stopped() const noexcept { return ended_.load(); }

 protected:
  handle_base() = default;
  ~handle_base() = default;
  void reset(T* raw) noexcept { h_.reset(raw); }

  /// One poll: an event; std::nullopt on timeout or at the end (then stopped() is true);
  /// throws on failure (e.g. HB_STATUS_FORKED, HB_STATUS_INVALID_STATE).
  std::optional<Event> poll(next_event_fn<T> next, std::chrono::milliseconds timeout) {
    error_slot err;
    hb_event* ev = nullptr;
    hb_status s = next(h_.get(), wait_ms(timeout), &ev, err.out());
    if (s == HB_STATUS_TIMEOUT) return std::nullopt;
    if (s == HB_STATUS_STOPPED) {
      ended_ = true;
      return std::nullopt;
    }
    check(s, err);
    std::unique_ptr<hb_event, deleter<hb_event, hb_event_free>> owned(ev);
    return Event::copy(ev);
  }
  std::optional<Event> poll(next_event_fn<T> next, std::chrono::milliseconds timeout, std::error_code& ec,
                            std::string* message) noexcept {
    auto r = guarded(ec, message, [&] { return poll(next, timeout); });
    return r ? std::move(*r) : std::nullopt;
  }

  /// An address the C ABI hands out as an owned string, or NULL for none.
  std::optional<std::string> address(hb_status (*fn)(const T*, char**, hb_error**)) const {
    error_slot err;
    char* s = nullptr;
    check(fn(h_.get(), &s, err.out()), err);
    if (!s) return std::nullopt;
    std::unique_ptr<char, deleter<char, hb_string_free>> owned(s);
    return std::string(s);
  }

 private:
  std::unique_ptr<T, deleter<T, Free>> h_;
  std::atomic<bool> ended_{false};
};

}  // namespace detail

// ---- Config ---------------------------------------------------------------------------

/// Options for a Client, Monitor or Watcher (copied when a handle is made). Setters
/// throw heartbeater::error (HB_STATUS_CONFIG with the engine's message) and chain, on an
/// lvalue (returning Config&) and on a temporary (returning Config&&, so that
/// `auto cfg = Config().endpoint(...).service(...)` moves the result into `cfg`).
class Config {
 public:
  Config() : h_(hb_config_new()) {
    if (!h_) throw error(HB_STATUS_INTERNAL, "hb_config_new failed");
  }

  /// The generic text setter shared by every language (see hb_config_set for the keys).
  Config& set(const std::string& key, const std::string& value) & {
    detail::error_slot err;
    detail::check(hb_config_set(h_.get(), key.c_str(), value.c_str(), err.out()), err);
    return *this;
  }
  Config&& set(const std::string& key, const std::string& value) && { return std::move(set(key, value)); }
  bool set(const std::string& key, const std::string& value, std::error_code& ec,
           std::string* message = nullptr) noexcept {
    detail::error_slot err;
    return detail::check(hb_config_set(h_.get(), key.c_str(), value.c_str(), err.out()), err, ec, message);
  }

  Config& endpoint(const std::string& v) & { return set("endpoint", v); }
  Config&& endpoint(const std::string& v) && { return std::move(endpoint(v)); }
  Config& service(const std::string& v) & { return set("service", v); }
  Config&& service(const std::string& v) && { return std::move(service(v)); }
  Config& instance_id(const std::string& v) & { return set("instance_id", v); }
  Config&& instance_id(const std::string& v) && { return std::move(instance_id(v)); }
  Config& detector(const std::string& v) & { return set("detector", v); }
  Config&& detector(const std::string& v) && { return std::move(detector(v)); }
  /// Replaces all labels from `k=v,k=v` text.
  Config& labels(const std::string& v) & { return set("labels", v); }
  Config&& labels(const std::string& v) && { return std::move(labels(v)); }
  /// Adds one label; unlike the `label` text key, `v` may contain `,` and `=`.
  Config& label(const std::string& k, const std::string& v) & {
    detail::error_slot err;
    detail::check(hb_config_set_label(h_.get(), k.c_str(), v.c_str(), err.out()), err);
    return *this;
  }
  Config&& label(const std::string& k, const std::string& v) && { return std::move(label(k, v)); }
  /// Negative or out-of-range durations are rejected by the engine, which names them.
  Config& ttl(std::chrono::milliseconds ttl) & { return set("ttl", detail::ms_text(ttl)); }
  Config&& ttl(std::chrono::milliseconds ttl) && { return std::move(this->ttl(ttl)); }
  Config& interval(std::chrono::milliseconds min, std::chrono::milliseconds max) & {
    return set("interval", detail::ms_text(min) + ".." + detail::ms_text(max));
  }
  Config&& interval(std::chrono::milliseconds min, std::chrono::milliseconds max) && {
    return std::move(interval(min, max));
  }
  Config& auth_key(const std::string& bytes) & {
    detail::error_slot err;
    detail::check(hb_config_set_auth_key(h_.get(), reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(),
                                         err.out()),
                  err);
    return *this;
  }
  Config&& auth_key(const std::string& bytes) && { return std::move(auth_key(bytes)); }

  const hb_config* get() const noexcept { return h_.get(); }

 private:
  std::unique_ptr<hb_config, detail::deleter<hb_config, hb_config_free>> h_;
};

// ---- Client ---------------------------------------------------------------------------

struct FencingToken {
  int64_t lease_id = 0;
  uint64_t epoch = 0;
};

/// A client (see hb_client). The destructor stops it (saying goodbye) and frees it.
class Client : public detail::handle_base<hb_client, hb_client_free> {
 public:
  explicit Client(const Config& config) {
    detail::error_slot err;
    hb_client* raw = nullptr;
    detail::check(hb_client_new(config.get(), &raw, err.out()), err);
    reset(raw);
  }

  void start() {
    detail::error_slot err;
    detail::check(hb_client_start(get(), err.out()), err);
  }
  bool start(std::error_code& ec, std::string* message = nullptr) noexcept {
    detail::error_slot err;
    return detail::check(hb_client_start(get(), err.out()), err, ec, message);
  }

  /// 0 ms: the configured stop_timeout.
  void stop(std::chrono::milliseconds timeout = std::chrono::milliseconds(0)) {
    detail::error_slot err;
    detail::check(hb_client_stop(get(), clamp(timeout), err.out()), err);
  }
  bool stop(std::error_code& ec, std::string* message = nullptr) noexcept {
    return stop(std::chrono::milliseconds(0), ec, message);
  }
  bool stop(std::chrono::milliseconds timeout, std::error_code& ec, std::string* message = nullptr) noexcept {
    detail::error_slot err;
    return detail::check(hb_client_stop(get(), clamp(timeout), err.out()), err, ec, message);
  }

  hb_state state() const {
    detail::error_slot err;
    hb_state s = HB_STATE_UNKNOWN;
    detail::check(hb_client_state(get(), &s, err.out()), err);
    return s;
  }
  std::optional<hb_state> state(std::error_code& ec, std::string* message = nullptr) const noexcept {
    return detail::guarded(ec, message, [&] { return state(); });
  }

  FencingToken fencing_token() const {
    detail::error_slot err;
    FencingToken t;
    detail::check(hb_client_fencing_token(get(), &t.lease_id, &t.epoch, err.out()), err);
    return t;
  }
  std::optional<FencingToken> fencing_token(std::error_code& ec, std::string* message = nullptr) const noexcept {
    return detail::guarded(ec, message, [&] { return fencing_token(); });
  }

  /// Throws HB_STATUS_NOT_HOLDER once this process may no longer act as the holder.
  void check() const {
    detail::error_slot err;
    detail::check(hb_client_check(get(), err.out()), err);
  }
  bool check(std::error_code& ec, std::string* message = nullptr) const noexcept {
    detail::error_slot err;
    return detail::check(hb_client_check(get(), err.out()), err, ec, message);
  }

  std::chrono::milliseconds remaining() const {
    detail::error_slot err;
    uint64_t ms = 0;
    detail::check(hb_client_remaining_ms(get(), &ms, err.out()), err);
    return std::chrono::milliseconds(ms);
  }
  std::optional<std::chrono::milliseconds> remaining(std::error_code& ec,
                                                     std::string* message = nullptr) const noexcept {
    return detail::guarded(ec, message, [&] { return remaining(); });
  }

  uint32_t incarnation() const {
    detail::error_slot err;
    uint32_t n = 0;
    detail::check(hb_client_incarnation(get(), &n, err.out()), err);
    return n;
  }
  std::optional<uint32_t> incarnation(std::error_code& ec, std::string* message = nullptr) const noexcept {
    return detail::guarded(ec, message, [&] { return incarnation(); });
  }

  /// Own health events, on the client's delivery thread. Once set, next_event is unavailable.
  void on_event(std::function<void(const Event&)> fn) {
    detail::set_callback(hb_client_set_callback, get(), std::move(fn));
  }
  bool on_event(std::function<void(const Event&)> fn, std::error_code& ec, std::string* message = nullptr) noexcept {
    return detail::guarded(ec, message, [&] { return on_event(std::move(fn)), true; }).has_value();
  }

  /// The next own event; std::nullopt when none came within `timeout`, or at the end of
  /// the stream after stop (then stopped() is true). Throws on failure (e.g. forked).
  std::optional<Event> next_event(std::chrono::milliseconds timeout) { return poll(hb_client_next_event, timeout); }
  std::optional<Event> next_event(std::chrono::milliseconds timeout, std::error_code& ec,
                                  std::string* message = nullptr) noexcept {
    return poll(hb_client_next_event, timeout, ec, message);
  }

 private:
  static uint32_t clamp(std::chrono::milliseconds t) noexcept {
    return t.count() <= 0 ? 0u : detail::wait_ms(t);
  }
};

// ---- Monitor / Watcher ----------------------------------------------------------------

/// A monitor (see hb_monitor). The destructor stops and frees it.
class Monitor : public detail::handle_base<hb_monitor, hb_monitor_free> {
 public:
  explicit Monitor(const Config& config) {
    detail::error_slot err;
    hb_monitor* raw = nullptr;
    detail::check(hb_monitor_new(config.get(), &raw, err.out()), err);
    reset(raw);
  }

  void start() {
    detail::error_slot err;
    detail::check(hb_monitor_start(get(), err.out()), err);
  }
  bool start(std::error_code& ec, std::string* message = nullptr) noexcept {
    detail::error_slot err;
    return detail::check(hb_monitor_start(get(), err.out()), err, ec, message);
  }
  void stop() {
    detail::error_slot err;
    detail::check(hb_monitor_stop(get(), err.out()), err);
  }
  bool stop(std::error_code& ec, std::string* message = nullptr) noexcept {
    detail::error_slot err;
    return detail::check(hb_monitor_stop(get(), err.out()), err, ec, message);
  }

  /// The bound addresses (`udp://127.0.0.1:40123`), in listen-list order.
  std::vector<std::string> local_addrs() const {
    detail::error_slot err;
    size_t n = 0;
    detail::check(hb_monitor_local_addr_count(get(), &n, err.out()), err);
    std::vector<std::string> out;
    for (size_t i = 0; i < n; ++i) {
      detail::error_slot e;
      char* s = nullptr;
      detail::check(hb_monitor_local_addr(get(), i, &s, e.out()), e);
      std::unique_ptr<char, detail::deleter<char, hb_string_free>> owned(s);
      out.emplace_back(s);
    }
    return out;
  }
  std::optional<std::vector<std::string>> local_addrs(std::error_code& ec,
                                                      std::string* message = nullptr) const noexcept {
    return detail::guarded(ec, message, [&] { return local_addrs(); });
  }

  /// Where the HTTP API listens (`http_addr`) as `ip:port`; nullopt when not serving.
  std::optional<std::string> http_addr() const { return address(hb_monitor_http_addr); }

  std::vector<Peer> peers() const {
    detail::error_slot err;
    hb_peers* raw = nullptr;
    detail::check(hb_monitor_peers(get(), &raw, err.out()), err);
    return detail::copy_peers(raw);
  }
  std::optional<std::vector<Peer>> peers(std::error_code& ec, std::string* message = nullptr) const noexcept {
    return detail::guarded(ec, message, [&] { return peers(); });
  }

  void on_event(std::function<void(const Event&)> fn) {
    detail::set_callback(hb_monitor_set_callback, get(), std::move(fn));
  }
  bool on_event(std::function<void(const Event&)> fn, std::error_code& ec, std::string* message = nullptr) noexcept {
    return detail::guarded(ec, message, [&] { return on_event(std::move(fn)), true; }).has_value();
  }

  /// As Client::next_event.
  std::optional<Event> next_event(std::chrono::milliseconds timeout) { return poll(hb_monitor_next_event, timeout); }
  std::optional<Event> next_event(std::chrono::milliseconds timeout, std::error_code& ec,
                                  std::string* message = nullptr) noexcept {
    return poll(hb_monitor_next_event, timeout, ec, message);
  }
};

/// An etcd watcher (see hb_watcher). The destructor stops and frees it.
class Watcher : public detail::handle_base<hb_watcher, hb_watcher_free> {
 public:
  explicit Watcher(const Config& config) {
    detail::error_slot err;
    hb_watcher* raw = nullptr;
    detail::check(hb_watcher_new(config.get(), &raw, err.out()), err);
    reset(raw);
  }

  void start() {
    detail::error_slot err;
    detail::check(hb_watcher_start(get(), err.out()), err);
  }
  bool start(std::error_code& ec, std::string* message = nullptr) noexcept {
    detail::error_slot err;
    return detail::check(hb_watcher_start(get(), err.out()), err, ec, message);
  }
  void stop() {
    detail::error_slot err;
    detail::check(hb_watcher_stop(get(), err.out()), err);
  }
  bool stop(std::error_code& ec, std::string* message = nullptr) noexcept {
    detail::error_slot err;
    return detail::check(hb_watcher_stop(get(), err.out()), err, ec, message);
  }

  /// Where the HTTP API listens (`http_addr`) as `ip:port`; nullopt when not serving.
  std::optional<std::string> http_addr() const { return address(hb_watcher_http_addr); }

  std::vector<Peer> peers() const {
    detail::error_slot err;
    hb_peers* raw = nullptr;
    detail::check(hb_watcher_peers(get(), &raw, err.out()), err);
    return detail::copy_peers(raw);
  }
  std::optional<std::vector<Peer>> peers(std::error_code& ec, std::string* message = nullptr) const noexcept {
    return detail::guarded(ec, message, [&] { return peers(); });
  }

  void on_event(std::function<void(const Event&)> fn) {
    detail::set_callback(hb_watcher_set_callback, get(), std::move(fn));
  }
  bool on_event(std::function<void(const Event&)> fn, std::error_code& ec, std::string* message = nullptr) noexcept {
    return detail::guarded(ec, message, [&] { return on_event(std::move(fn)), true; }).has_value();
  }

  /// As Client::next_event.
  std::optional<Event> next_event(std::chrono::milliseconds timeout) { return poll(hb_watcher_next_event, timeout); }
  std::optional<Event> next_event(std::chrono::milliseconds timeout, std::error_code& ec,
                                  std::string* message = nullptr) noexcept {
    return poll(hb_watcher_next_event, timeout, ec, message);
  }
};

// ---- Election -------------------------------------------------------------------------

/// A term's fencing token: `revision` grows from term to term (compare it downstream).
struct ElectionToken {
  int64_t revision = 0;
  int64_t lease_id = 0;
};

/// The leader as a candidate observed it.
struct Leader {
  ElectionToken token;
  std::string value;
};

/// A candidate in an etcd election (see hb_election; docs/election.md). The destructor
/// resigns, stops and frees it.
class Election : public detail::handle_base<hb_election, hb_election_free> {
 public:
  Election(const Config& config, const std::string& name, const std::string& value = std::string()) {
    detail::error_slot err;
    hb_election* raw = nullptr;
    detail::check(hb_election_new(config.get(), name.c_str(), reinterpret_cast<const uint8_t*>(value.data()),
                                  value.size(), &raw, err.out()),
                  err);
    reset(raw);
  }

  /// Waits up to `timeout` to lead; throws HB_STATUS_TIMEOUT (still a candidate) after it.
  ElectionToken campaign(std::chrono::milliseconds timeout) {
    detail::error_slot err;
    ElectionToken t;
    detail::check(hb_election_campaign(get(), detail::wait_ms(timeout), &t.revision, &t.lease_id, err.out()), err);
    return t;
  }
  std::optional<ElectionToken> campaign(std::chrono::milliseconds timeout, std::error_code& ec,
                                        std::string* message = nullptr) noexcept {
    return detail::guarded(ec, message, [&] { return campaign(timeout); });
  }

  /// 0 ms: the configured stop_timeout.
  void resign(std::chrono::milliseconds timeout = std::chrono::milliseconds(0)) {
    detail::error_slot err;
    detail::check(hb_election_resign(get(), detail::wait_ms(timeout), err.out()), err);
  }
  void stop(std::chrono::milliseconds timeout = std::chrono::milliseconds(0)) {
    detail::error_slot err;
    detail::check(hb_election_stop(get(), detail::wait_ms(timeout), err.out()), err);
  }
  bool stop(std::error_code& ec, std::string* message = nullptr) noexcept {
    detail::error_slot err;
    return detail::check(hb_election_stop(get(), 0, err.out()), err, ec, message);
  }
  void set_recampaign(bool on) {
    detail::error_slot err;
    detail::check(hb_election_set_recampaign(get(), on ? 1 : 0, err.out()), err);
  }

  /// Throws HB_STATUS_NOT_HOLDER unless we lead on a lease that is still valid.
  void check() const {
    detail::error_slot err;
    detail::check(hb_election_check(get(), err.out()), err);
  }
  bool check(std::error_code& ec, std::string* message = nullptr) const noexcept {
    detail::error_slot err;
    return detail::check(hb_election_check(get(), err.out()), err, ec, message);
  }

  std::chrono::milliseconds remaining() const {
    detail::error_slot err;
    uint64_t ms = 0;
    detail::check(hb_election_remaining_ms(get(), &ms, err.out()), err);
    return std::chrono::milliseconds(ms);
  }

  ElectionToken token() const {
    detail::error_slot err;
    ElectionToken t;
    detail::check(hb_election_token(get(), &t.revision, &t.lease_id, err.out()), err);
    return t;
  }

  /// The leader as our watch saw it while campaigning; nullopt when nobody leads.
  std::optional<Leader> leader() const {
    detail::error_slot err;
    Leader l;
    uint8_t* value = nullptr;
    size_t len = 0;
    detail::check(hb_election_leader_value(get(), &l.token.revision, &l.token.lease_id, &value, &len, err.out()), err);
    if (value) l.value.assign(reinterpret_cast<const char*>(value), len);
    hb_bytes_free(value, len);
    if (l.token.revision == 0) return std::nullopt;
    return l;
  }

  /// `elected`, `lost`, `leader_changed`, on the election's delivery thread.
  void on_event(std::function<void(const Event&)> fn) {
    detail::set_callback(hb_election_set_callback, get(), std::move(fn));
  }
  std::optional<Event> next_event(std::chrono::milliseconds timeout) { return poll(hb_election_next_event, timeout); }
  std::optional<Event> next_event(std::chrono::milliseconds timeout, std::error_code& ec,
                                  std::string* message = nullptr) noexcept {
    return poll(hb_election_next_event, timeout, ec, message);
  }
};

// ---- process-wide ---------------------------------------------------------------------

/// The Prometheus text of every heartbeater metric in this process.
inline std::string metrics_text() {
  detail::error_slot err;
  char* s = nullptr;
  detail::check(hb_metrics_text(&s, err.out()), err);
  std::unique_ptr<char, detail::deleter<char, hb_string_free>> owned(s);
  return std::string(s);
}
inline std::optional<std::string> metrics_text(std::error_code& ec, std::string* message = nullptr) noexcept {
  return detail::guarded(ec, message, [] { return metrics_text(); });
}

/// The library's version (compare with HB_VERSION when linking dynamically).
inline std::string version() { return hb_version(); }

}  // namespace heartbeater

#endif  // HEARTBEATER_HPP
