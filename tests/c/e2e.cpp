// The e2e program again, through the C++17 wrapper heartbeater.hpp: owning types,
// exceptions / std::error_code, std::function callbacks.
#include <heartbeater.hpp>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

using namespace std::chrono_literals;
namespace hb = heartbeater;

static int failures = 0;
#define EXPECT(cond)                                                        \
  do {                                                                      \
    if (!(cond)) {                                                          \
      std::fprintf(stderr, "%s:%d: FAILED: %s\n", __FILE__, __LINE__, #cond); \
      ++failures;                                                           \
    }                                                                       \
  } while (0)

// Events seen by a callback; shared with the callback through a shared_ptr so that its
// lifetime does not depend on who finishes first.
struct Seen {
  std::mutex mu;
  std::condition_variable cv;
  std::map<std::string, std::vector<hb_state>> by_peer;
  int events = 0;
  int drops = 0;

  void add(const hb::Event& e) {
    std::lock_guard<std::mutex> g(mu);
    by_peer[e.peer].push_back(e.to);
    ++events;
    cv.notify_all();
  }
  void dropped() {
    std::lock_guard<std::mutex> g(mu);
    ++drops;
    cv.notify_all();
  }
  int count(hb_state s) {
    int n = 0;
    for (auto& kv : by_peer)
      for (auto t : kv.second) n += t == s;
    return n;
  }
  template <typename Pred>
  bool wait(Pred pred, std::chrono::milliseconds timeout = 15s) {
    std::unique_lock<std::mutex> l(mu);
    return cv.wait_for(l, timeout, [&] { return pred(*this); });
  }
};

// Destroyed exactly once by the library (via the std::function it owns).
struct DropFlag {
  explicit DropFlag(std::shared_ptr<Seen> s) : seen(std::move(s)) {}
  DropFlag(const DropFlag&) = delete;
  DropFlag& operator=(const DropFlag&) = delete;
  ~DropFlag() { seen->dropped(); }
  std::shared_ptr<Seen> seen;
};

static hb::Config client_config(const std::string& addr, const std::string& id, int idx) {
  hb::Config c;
  c.endpoint(addr).service("cxxtest").instance_id(id).label("idx", std::to_string(idx)).interval(50ms, 50ms).ttl(3000ms);
  return c;
}

static void test_errors() {
  hb::Config cfg;
  try {
    cfg.endpoint("udp:/127.0.0.1");
    EXPECT(false);
  } catch (const hb::error& e) {
    EXPECT(e.status() == HB_STATUS_CONFIG);
    EXPECT(e.code().category() == hb::category());
    EXPECT(std::strstr(e.what(), "endpoint \"udp:/127.0.0.1\"") != nullptr);
  }
  try {
    cfg.set("colour", "blue");
    EXPECT(false);
  } catch (const std::system_error& e) {
    EXPECT(e.code() == hb::make_error_code(HB_STATUS_CONFIG));
    EXPECT(e.code().message() == "config");
  }
  EXPECT(hb::version() == HB_VERSION);
}

// The engine's message, as the C API reports it, for comparison with what().
static std::string c_message(const char* key, const char* value) {
  hb_config* cfg = hb_config_new();
  hb_error* err = nullptr;
  hb_config_set(cfg, key, value, &err);
  std::string m = err ? hb_error_message(err) : "";
  hb_error_free(err);
  hb_config_free(cfg);
  return m;
}

static void test_wrapper_contract() {
  // Setters chain on a temporary and the result moves into a named Config.
  auto cfg = hb::Config().endpoint("udp://127.0.0.1:9").service("cxxtest").ttl(3000ms).interval(50ms, 50ms);
  auto cfg2 = hb::Config().set("endpoint", "udp://127.0.0.1:9").set("service", "cxxtest");
  hb::Client from_temp(cfg);
  hb::Client from_temp2(cfg2);

  // what() is exactly the engine's message (std::system_error would append ": config").
  try {
    hb::Config().set("colour", "blue");
    EXPECT(false);
  } catch (const hb::error& e) {
    EXPECT(std::string(e.what()) == c_message("colour", "blue"));
    EXPECT(std::string(e.what()).find(": config") == std::string::npos);
  }

  // A negative duration reaches the engine as typed and is rejected there, named.
  try {
    hb::Config().ttl(-1s);
    EXPECT(false);
  } catch (const hb::error& e) {
    EXPECT(e.status() == HB_STATUS_CONFIG);
    EXPECT(std::string(e.what()) == c_message("ttl", "-1000ms"));
    EXPECT(std::strstr(e.what(), "\"-1000ms\"") != nullptr);
    EXPECT(std::strstr(e.what(), "18446744073709550616") == nullptr);
  }
  try {
    hb::Config().interval(-5ms, 100ms);
    EXPECT(false);
  } catch (const hb::error& e) {
    EXPECT(e.status() == HB_STATUS_CONFIG);
  }

  // std::error_code overloads: noexcept, code comparable with hb_status, message kept.
  static_assert(std::is_error_code_enum<hb_status>::value, "hb_status is an error code enum");
  std::error_code ec;
  std::string msg;
  hb::Config c;
  const std::string key = "colour", value = "blue";
  static_assert(noexcept(c.set(key, value, ec, &msg)), "noexcept");
  EXPECT(!c.set("colour", "blue", ec, &msg));
  EXPECT(ec == HB_STATUS_CONFIG);
  EXPECT(ec != HB_STATUS_OK);
  EXPECT(msg == c_message("colour", "blue"));
  EXPECT(c.set("service", "ok", ec, &msg) && !ec && msg.empty());

  hb::Monitor mon(hb::Config().endpoint("udp://127.0.0.1:0"));
  static_assert(noexcept(mon.start(ec)), "noexcept");
  const std::chrono::milliseconds zero{0};
  static_assert(noexcept(mon.next_event(zero, ec)), "noexcept");
  static_assert(noexcept(mon.peers(ec)), "noexcept");
  static_assert(noexcept(from_temp.stop(ec)), "noexcept");
  static_assert(noexcept(from_temp.state(ec)), "noexcept");
  EXPECT(mon.start(ec, &msg) && !ec);
  EXPECT(!mon.start(ec, &msg) && ec == HB_STATUS_INVALID_STATE && msg == "monitor is already started");
  auto peers = mon.peers(ec);
  EXPECT(peers && peers->empty() && !ec);

  // next_event: nullopt on timeout (stopped() false), nullopt at the end (stopped() true).
  EXPECT(!mon.next_event(0ms) && !mon.stopped());
  EXPECT(!mon.next_event(0ms, ec) && !ec && !mon.stopped());
  EXPECT(mon.stop(ec, &msg) && !ec);
  EXPECT(!mon.next_event(10ms) && mon.stopped());
  hb::Monitor moved(std::move(mon));
  EXPECT(moved.stopped());
  peers = moved.peers(ec, &msg);
  EXPECT(!peers && ec == HB_STATUS_STOPPED && msg == "monitor is stopped; create a new one");

  EXPECT(from_temp.stop(ec) && !ec);
  auto st = from_temp.state(ec);
  EXPECT(st && *st == HB_STATE_STOPPED);
  EXPECT(!from_temp.check(ec, &msg) && ec == HB_STATUS_STOPPED && msg == "client is stopped; create a new one");
  auto token = from_temp.fencing_token(ec);
  EXPECT(!token && ec == HB_STATUS_STOPPED);
  EXPECT(!from_temp.start(ec, &msg) && ec == HB_STATUS_STOPPED);
  EXPECT(from_temp.incarnation(ec).has_value() && !ec);
}

static void test_monitor_and_three_clients() {
  auto seen = std::make_shared<Seen>();
  hb::Config mcfg;
  mcfg.endpoint("udp://127.0.0.1:0");
  hb::Monitor mon(mcfg);
  auto flag = std::make_shared<DropFlag>(seen);
  mon.on_event([flag](const hb::Event& e) { flag->seen->add(e); });
  flag.reset();
  mon.start();
  auto addrs = mon.local_addrs();
  EXPECT(addrs.size() == 1 && addrs[0].rfind("udp://127.0.0.1:", 0) == 0);

  std::vector<std::unique_ptr<hb::Client>> clients;
  for (int i = 0; i < 3; ++i) clients.push_back(std::make_unique<hb::Client>(client_config(addrs[0], "x" + std::to_string(i), i)));
  for (auto& c : clients) c->start();
  EXPECT(seen->wait([](Seen& s) { return s.count(HB_STATE_ALIVE) >= 3; }));

  // Poll the first client's own events.
  bool healthy = false;
  for (auto deadline = std::chrono::steady_clock::now() + 15s; !healthy && std::chrono::steady_clock::now() < deadline;) {
    if (auto ev = clients[0]->next_event(200ms)) {
      EXPECT(ev->peer == "x0");
      healthy = ev->to == HB_STATE_HEALTHY;
    }
  }
  EXPECT(healthy);

  // A snapshot with all three alive. Under valgrind on a busy machine a 50 ms peer can be
  // suspect for a moment, so wait for the condition rather than judge the first snapshot.
  std::vector<hb::Peer> peers;
  for (auto deadline = std::chrono::steady_clock::now() + 15s;;) {
    peers = mon.peers();
    bool all_alive = peers.size() == 3;
    for (const auto& p : peers) all_alive = all_alive && p.state == HB_STATE_ALIVE;
    if (all_alive || std::chrono::steady_clock::now() > deadline) break;
    std::this_thread::sleep_for(20ms);
  }
  EXPECT(peers.size() == 3);
  for (size_t i = 0; i < peers.size(); ++i) {
    EXPECT(peers[i].id == "x" + std::to_string(i));
    EXPECT(peers[i].service == "cxxtest");
    EXPECT(peers[i].state == HB_STATE_ALIVE);
    EXPECT(peers[i].labels.at("idx") == std::to_string(i));
    EXPECT(peers[i].interval_ms == 50);
  }

  for (auto& c : clients) c->stop(1000ms);
  EXPECT(seen->wait([](Seen& s) { return s.count(HB_STATE_LEFT) >= 3; }));
  {
    std::lock_guard<std::mutex> g(seen->mu);
    for (auto& kv : seen->by_peer) EXPECT(!kv.second.empty() && kv.second.front() == HB_STATE_ALIVE);
  }
  std::error_code ec;
  EXPECT(!clients[0]->start(ec) && ec == hb::make_error_code(HB_STATUS_STOPPED));

  mon.stop();
  EXPECT(seen->drops == 1);  // the std::function (and DropFlag) released exactly once
  // After stop the stream has ended: nullopt, not an exception, and stopped() says so.
  EXPECT(!mon.stopped());
  EXPECT(!mon.next_event(0ms));
  EXPECT(mon.stopped());
}

static void test_stop_from_callback() {
  hb::Config mcfg;
  mcfg.endpoint("udp://127.0.0.1:0");
  hb::Monitor mon(mcfg);
  auto seen = std::make_shared<Seen>();
  auto flag = std::make_shared<DropFlag>(seen);
  hb_monitor* raw = mon.get();
  mon.on_event([flag, raw](const hb::Event& e) {
    flag->seen->add(e);
    hb_monitor_stop(raw, nullptr);  // from inside its own callback: must not deadlock
  });
  flag.reset();
  mon.start();
  hb::Client c(client_config(mon.local_addrs().at(0), "self", 0));
  c.start();
  EXPECT(seen->wait([](Seen& s) { return s.events >= 1; }));
  // Released once the handle is stopped and the delivery thread has finished.
  EXPECT(seen->wait([](Seen& s) { return s.drops >= 1; }));
  EXPECT(seen->drops == 1);
}

int main() {
  try {
    test_errors();
    test_wrapper_contract();
    test_monitor_and_three_clients();
    test_stop_from_callback();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "unexpected exception: %s\n", e.what());
    return 1;
  }
  EXPECT(hb::callback_exceptions() == 0);
  if (failures) {
    std::fprintf(stderr, "e2e_cpp: %d check(s) failed\n", failures);
    return 1;
  }
  std::printf("e2e_cpp: ok\n");
  return 0;
}
