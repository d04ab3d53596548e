// The C++ driver of the conformance suite (tests/conformance/README.md), through the
// C++17 wrapper heartbeater.hpp: runs every scenario file in tests/conformance/scenarios/
// and prints one line per scenario (`ok NAME`, `n/a NAME (reason)`, `skip NAME (reason)`,
// `FAIL NAME: step i: ...`). Exits 1 if any failed. JSON: nlohmann/json (nlohmann-json3-dev).
#include <heartbeater.hpp>

#include <nlohmann/json.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <variant>
#include <vector>

#ifndef HB_DRIVER_SOURCE
#define HB_DRIVER_SOURCE __FILE__
#endif

namespace hb = heartbeater;
namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

namespace {

struct Failure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct Rec {
  std::string peer;
  hb_state from, to;
  hb_reason reason;
};

// One handle of a scenario and what it recorded.
struct Handle {
  std::string name;
  std::variant<std::unique_ptr<hb::Monitor>, std::unique_ptr<hb::Client>, std::unique_ptr<hb::Watcher>,
               std::unique_ptr<hb::Election>>
      h;
  std::mutex mu;  // guards `h` (a callback may free it) and `events`
  std::condition_variable cv;
  std::deque<Rec> events;
  bool has_callback = false;
  std::string then;
  std::atomic<bool> first_done{false};

  hb::Monitor* monitor() { return h.index() == 0 ? std::get<0>(h).get() : nullptr; }
  hb::Client* client() { return h.index() == 1 ? std::get<1>(h).get() : nullptr; }
  hb::Watcher* watcher() { return h.index() == 2 ? std::get<2>(h).get() : nullptr; }
  hb::Election* election() { return h.index() == 3 ? std::get<3>(h).get() : nullptr; }

  void push(const hb::Event& e) {
    std::lock_guard<std::mutex> g(mu);
    events.push_back({e.peer, e.from, e.to, e.reason});
    cv.notify_all();
  }
  template <typename F>
  auto with(F&& f) {  // calls f(handle&) on whichever kind it is
    return std::visit([&](auto& p) {
      if (!p) throw Failure(name + " was freed");
      return f(*p);
    }, h);
  }
  // Frees the handle (its C++ destructor). The object is moved out under `mu` and destroyed
  // after it is released: the destructor waits for the handle's callback, which may be
  // waiting for `mu` in push().
  void free_it() {
    decltype(h) doomed;
    {
      std::lock_guard<std::mutex> g(mu);
      doomed = std::move(h);
      std::visit([](auto& p) { p.reset(); }, h);  // a moved-from unique_ptr is null; say so
    }
  }
};

struct World {
  std::map<std::string, std::shared_ptr<Handle>> handles;
  std::map<std::string, pid_t> procs;
  std::map<std::string, hb::ElectionToken> tokens;  // kept by `token` steps with `save`
  std::string run, etcd;

  std::shared_ptr<Handle> get(const json& step, const char* field = "h") {
    auto name = step.value(field, std::string());
    auto it = handles.find(name);
    if (it == handles.end()) throw Failure("no handle \"" + name + "\"");
    return it->second;
  }

  std::string subst(const std::string& in) {
    std::string out;
    for (size_t i = 0; i < in.size();) {
      if (in.compare(i, 2, "${") == 0) {
        auto end = in.find('}', i);
        std::string ref = in.substr(i + 2, end - i - 2);
        i = end + 1;
        if (ref == "run") {
          out += run;
        } else if (ref == "etcd") {
          out += etcd;
        } else {
          auto dot = ref.find('.');
          auto it = handles.find(ref.substr(0, dot));
          if (dot == std::string::npos || it == handles.end() || !it->second->monitor())
            throw Failure("cannot resolve ${" + ref + "}");
          std::string scheme = ref.substr(dot + 1) + "://";
          std::string found;
          for (auto& a : it->second->monitor()->local_addrs())
            if (found.empty() && a.rfind(scheme, 0) == 0) found = a;
          if (found.empty()) throw Failure("monitor has no " + scheme + " address");
          out += found;
        }
      } else {
        out += in[i++];
      }
    }
    return out;
  }
};

std::string status_name(const std::error_code& ec) { return hb_status_str(static_cast<uint32_t>(ec.value())); }

// Runs `call`; compares its outcome with the step's `expect` (absent: success, or an error).
// Returns whether the call succeeded (so the caller checks a value).
template <typename F>
bool outcome(World& w, const json& step, F&& call) {
  const json* expect = step.contains("expect") && step["expect"].is_object() && step["expect"].contains("error")
                           ? &step["expect"]
                           : nullptr;
  try {
    call();
  } catch (const hb::error& e) {
    std::string got = status_name(e.code()) + " \"" + e.what() + "\"";
    if (!expect) throw Failure("expected success, got " + got);
    std::string kind = (*expect)["error"];
    if (status_name(e.code()) != kind) throw Failure("expected error " + kind + ", got " + got);
    if (expect->contains("message") && e.what() != w.subst((*expect)["message"]))
      throw Failure("expected error " + kind + " \"" + w.subst((*expect)["message"]) + "\", got " + got);
    if (expect->contains("contains") &&
        std::string(e.what()).find(w.subst((*expect)["contains"])) == std::string::npos)
      throw Failure("expected error " + kind + " containing \"" + w.subst((*expect)["contains"]) + "\", got " + got);
    return false;
  }
  if (expect) throw Failure("expected error " + (*expect)["error"].get<std::string>() + ", got ok");
  return true;
}

bool event_matches(World& w, const json& want, const Rec& got) {
  auto field = [&](const char* k) { return want.contains(k) ? want[k].get<std::string>() : std::string(); };
  return (field("from").empty() || field("from") == hb::to_string(got.from)) &&
         (field("to").empty() || field("to") == hb::to_string(got.to)) &&
         (field("reason").empty() || field("reason") == hb::to_string(got.reason)) &&
         (field("peer").empty() || w.subst(field("peer")) == got.peer);
}

std::string show(const Rec& r) {
  return r.peer + " " + hb::to_string(r.from) + "->" + hb::to_string(r.to) + " (" + hb::to_string(r.reason) + ")";
}

size_t count_peer(Handle& h, const std::string& peer) {
  return static_cast<size_t>(std::count_if(h.events.begin(), h.events.end(), [&](const Rec& r) { return r.peer == peer; }));
}

// Waits until `peer` has `n` recorded events or the deadline passes (polling when no callback).
size_t wait_events(Handle& h, const std::string& peer, size_t n, clock_type::time_point deadline) {
  for (;;) {
    std::unique_lock<std::mutex> l(h.mu);
    size_t have = count_peer(h, peer);
    auto now = clock_type::now();
    if (have >= n || now >= deadline) return have;
    auto step = std::min<clock_type::duration>(deadline - now, 100ms);
    bool ended = std::visit([](auto& p) { return !p || p->stopped(); }, h.h);
    if (h.has_callback || ended) {
      h.cv.wait_for(l, step);
      continue;
    }
    l.unlock();
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(step);
    std::optional<hb::Event> ev = h.with([&](auto& x) { return x.next_event(ms); });
    if (ev) h.push(*ev);
  }
}

void step(World& w, const json& s, const fs::path& dir);

void run_steps(World& w, const json& steps, const fs::path& dir, size_t& at) {
  for (at = 0; at < steps.size(); ++at) step(w, steps[at], dir);
}

void check_names(const json& names, const char* list, const char* (*name)(uint32_t)) {
  uint32_t i = 0;
  for (auto& v : names.at(list)) {
    if (v.get<std::string>() != name(i))
      throw Failure(std::string(list) + "[" + std::to_string(i) + "]: expected " + v.get<std::string>() + ", got " + name(i));
    ++i;
  }
  if (std::string(name(i)) != "unknown")
    throw Failure(std::string(list) + "[" + std::to_string(i) + "]: expected none, got " + name(i));
}

const char* state_name(uint32_t i) { return hb::to_string(static_cast<hb_state>(i)); }
const char* reason_name(uint32_t i) { return hb::to_string(static_cast<hb_reason>(i)); }
const char* code_name(uint32_t i) { return hb_status_str(i); }

// One look at a monitor's or watcher's peers, against `expect.ids`.
void peers_once(World& w, const json& s) {
  auto h = w.get(s);
  std::vector<hb::Peer> peers;
  bool ok = outcome(w, s, [&] {
    if (auto* m = h->monitor()) peers = m->peers();
    else if (auto* x = h->watcher()) peers = x->peers();
    else throw Failure(h->name + " has no peers");
  });
  if (ok && s.contains("expect") && s["expect"].contains("ids")) {
    std::vector<std::string> got, want;
    for (auto& p : peers) got.push_back(p.id);
    std::sort(got.begin(), got.end());
    for (auto& id : s["expect"]["ids"]) want.push_back(w.subst(id));
    if (got != want) throw Failure("expected peers " + json(want).dump() + ", got " + json(got).dump());
  }
}

// The handle's HTTP address ("ip:port"), nullopt when it serves none.
std::optional<std::string> http_addr_of(Handle& h) {
  if (auto* m = h.monitor()) return m->http_addr();
  if (auto* x = h.watcher()) return x->http_addr();
  throw Failure(h.name + " has no HTTP API");
}

// A plain HTTP/1.0 GET (the server closes after the answer): the body of a 200 as JSON.
json http_get(const std::string& addr, const std::string& path) {
  auto colon = addr.rfind(':');
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(std::stoi(addr.substr(colon + 1))));
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0 || inet_pton(AF_INET, addr.substr(0, colon).c_str(), &sa.sin_addr) != 1 ||
      connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    std::string why = std::strerror(errno);
    if (fd >= 0) close(fd);
    throw Failure("connect " + addr + ": " + why);
  }
  std::string req = "GET " + path + " HTTP/1.0\r\nHost: " + addr + "\r\n\r\n", text;
  if (write(fd, req.data(), req.size()) != static_cast<ssize_t>(req.size())) {
    close(fd);
    throw Failure("GET " + path + ": write failed");
  }
  char buf[4096];
  for (ssize_t r; (r = read(fd, buf, sizeof buf)) > 0;) text.append(buf, static_cast<size_t>(r));
  close(fd);
  if (text.rfind("HTTP/1.0 200", 0) != 0 && text.rfind("HTTP/1.1 200", 0) != 0)
    throw Failure("GET " + path + ": " + text.substr(0, text.find("\r\n")));
  auto body = text.find("\r\n\r\n");
  if (body == std::string::npos) throw Failure("GET " + path + ": no header end");
  return json::parse(text.substr(body + 4));
}

// The fields every language's peer has.
json peer_fields(const json& id, const json& service, const json& labels, const json& state, const json& incarnation) {
  return {{"id", id}, {"service", service}, {"labels", labels}, {"state", state}, {"incarnation", incarnation}};
}

json sorted_peers(json peers) {
  std::sort(peers.begin(), peers.end(), [](const json& a, const json& b) {
    return std::make_pair(a["service"].get<std::string>(), a["id"].get<std::string>()) <
           std::make_pair(b["service"].get<std::string>(), b["id"].get<std::string>());
  });
  return peers;
}

// GET /v1/peers against expect.ids and against this language's own peers().
void http_peers_once(World& w, const json& s) {
  auto h = w.get(s);
  auto addr = http_addr_of(*h);
  if (!addr) throw Failure(h->name + " serves no HTTP API");
  json api = json::array(), own = json::array();
  json body = http_get(*addr, "/v1/peers");
  for (auto& p : body.at("peers"))
    api.push_back(peer_fields(p["id"], p["service"], p["labels"], p["state"], p["incarnation"]));
  auto* m = h->monitor();
  std::vector<hb::Peer> peers = m ? m->peers() : h->watcher()->peers();
  for (auto& p : peers)
    own.push_back(peer_fields(p.id, p.service, json(p.labels), hb::to_string(p.state), p.incarnation));
  std::vector<std::string> ids, want;
  for (auto& p : api) ids.push_back(p["id"]);
  std::sort(ids.begin(), ids.end());
  for (auto& id : s.at("expect").at("ids")) want.push_back(w.subst(id));
  if (ids != want) throw Failure("GET /v1/peers ids " + json(ids).dump() + ", expected " + json(want).dump());
  if (sorted_peers(api) != sorted_peers(own))
    throw Failure("GET /v1/peers " + api.dump() + ", peers() " + own.dump());
}

void step(World& w, const json& s, const fs::path& dir) {
  std::string d = s.value("do", std::string());
  if (d == "monitor" || d == "client" || d == "watcher") {
    auto h = std::make_shared<Handle>();
    h->name = s.at("as");
    bool made = outcome(w, s, [&] {
      hb::Config cfg;
      for (auto& kv : s.value("options", json::array())) cfg.set(kv.at(0).get<std::string>(), w.subst(kv.at(1)));
      if (d == "monitor") h->h = std::make_unique<hb::Monitor>(cfg);
      else if (d == "client") h->h = std::make_unique<hb::Client>(cfg);
      else h->h = std::make_unique<hb::Watcher>(cfg);
    });
    if (made) w.handles[h->name] = h;
  } else if (d == "election") {
    auto h = std::make_shared<Handle>();
    h->name = s.at("as");
    bool made = outcome(w, s, [&] {
      hb::Config cfg;
      for (auto& kv : s.value("options", json::array())) cfg.set(kv.at(0).get<std::string>(), w.subst(kv.at(1)));
      h->h = std::make_unique<hb::Election>(cfg, w.subst(s.at("name")), w.subst(s.value("value", std::string())));
    });
    if (made) w.handles[h->name] = h;
  } else if (d == "campaign" || d == "resign" || d == "token" || d == "leader") {
    auto h = w.get(s);
    hb::Election* e = h->election();
    if (!e) throw Failure(h->name + " is not an election");
    const json expect = s.value("expect", json::object());
    if (d == "campaign") {
      outcome(w, s, [&] { e->campaign(std::chrono::milliseconds(s.value("timeout_ms", 0))); });
    } else if (d == "resign") {
      outcome(w, s, [&] { e->resign(); });
    } else if (d == "token") {
      hb::ElectionToken t;
      if (!outcome(w, s, [&] { t = e->token(); })) return;
      if (s.contains("save")) w.tokens[s["save"]] = t;
      if (expect.contains("greater_than")) {
        auto it = w.tokens.find(expect["greater_than"]);
        if (it == w.tokens.end()) throw Failure("no saved token " + expect["greater_than"].dump());
        if (t.revision <= it->second.revision)
          throw Failure("token revision " + std::to_string(t.revision) + " not above " +
                        std::to_string(it->second.revision));
      }
    } else {
      // With within_ms, until it matches: the leader is what our watch has seen.
      auto deadline = clock_type::now() + std::chrono::milliseconds(s.value("within_ms", 0));
      for (;;) {
        std::optional<hb::Leader> l;
        if (!outcome(w, s, [&] { l = e->leader(); })) return;
        bool ok = !expect.contains("value") || (expect["value"].is_null() ? !l : l && expect["value"] == l->value);
        if (ok) break;
        if (clock_type::now() > deadline)
          throw Failure("leader " + (l ? json(l->value).dump() : std::string("(nobody)")) + ", expected " +
                        expect["value"].dump());
        std::this_thread::sleep_for(20ms);
      }
    }
  } else if (d == "wait_event") {
    // Until an event of any peer matches `expect`; consumes it and every event before it.
    auto h = w.get(s);
    auto deadline = clock_type::now() + std::chrono::milliseconds(s.value("within_ms", 20000));
    for (size_t seen = 0;;) {
      {
        std::lock_guard<std::mutex> g(h->mu);
        for (; seen < h->events.size(); ++seen) {
          if (event_matches(w, s.at("expect"), h->events[seen])) {
            h->events.erase(h->events.begin(), h->events.begin() + static_cast<long>(seen) + 1);
            return;
          }
        }
      }
      if (clock_type::now() > deadline)
        throw Failure("no event " + s.at("expect").dump() + " within the time (" + std::to_string(seen) + " others)");
      wait_events(*h, "\x01none", SIZE_MAX, clock_type::now() + 50ms);  // polls (or waits for the callback) a while
    }
  } else if (d == "start") {
    auto h = w.get(s);
    outcome(w, s, [&] {
      h->with([](auto& x) {
        if constexpr (std::is_same_v<std::decay_t<decltype(x)>, hb::Election>) throw Failure("an election has no start");
        else x.start();
      });
    });
  } else if (d == "stop") {
    auto h = w.get(s);
    outcome(w, s, [&] { h->with([](auto& x) { x.stop(); }); });
  } else if (d == "free") {
    w.get(s)->free_it();
  } else if (d == "state" || d == "check" || d == "fencing_token" || d == "remaining" || d == "incarnation") {
    auto h = w.get(s);
    hb::Client* c = h->client();
    hb::Election* e = h->election();
    if (!c && !(e && (d == "check" || d == "remaining"))) throw Failure(h->name + " is not a client");
    const json expect = s.value("expect", json::object());
    if (e) {
      long long ms = 0;
      if (d == "check") outcome(w, s, [&] { e->check(); });
      else if (outcome(w, s, [&] { ms = e->remaining().count(); }) &&
               (ms < expect.value("value_min", LLONG_MIN) || ms > expect.value("value_max", LLONG_MAX)))
        throw Failure("expected remaining in [" + std::to_string(expect.value("value_min", LLONG_MIN)) + ", " +
                      std::to_string(expect.value("value_max", LLONG_MAX)) + "], got " + std::to_string(ms));
    } else if (d == "state") {
      hb_state st = HB_STATE_UNKNOWN;
      if (outcome(w, s, [&] { st = c->state(); }) && expect.contains("value") && expect["value"] != hb::to_string(st))
        throw Failure("expected state " + expect["value"].get<std::string>() + ", got " + hb::to_string(st));
    } else if (d == "check") {
      outcome(w, s, [&] { c->check(); });
    } else if (d == "fencing_token") {
      hb::FencingToken t;
      if (outcome(w, s, [&] { t = c->fencing_token(); }) && expect.contains("value") &&
          (expect["value"][0].get<int64_t>() != t.lease_id || expect["value"][1].get<uint64_t>() != t.epoch))
        throw Failure("expected fencing token " + expect["value"].dump() + ", got [" + std::to_string(t.lease_id) + "," +
                      std::to_string(t.epoch) + "]");
    } else if (d == "remaining") {
      long long ms = 0;
      if (outcome(w, s, [&] { ms = c->remaining().count(); }) &&
          (ms < expect.value("value_min", LLONG_MIN) || ms > expect.value("value_max", LLONG_MAX)))
        throw Failure("expected remaining in [" + std::to_string(expect.value("value_min", LLONG_MIN)) + ", " +
                      std::to_string(expect.value("value_max", LLONG_MAX)) + "], got " + std::to_string(ms));
    } else {
      outcome(w, s, [&] { c->incarnation(); });
    }
  } else if (d == "http_addr") {
    auto h = w.get(s);
    std::optional<std::string> addr;
    if (outcome(w, s, [&] { addr = http_addr_of(*h); }) && s.at("expect").contains("value")) {
      std::string got = !addr ? "none" : addr->substr(addr->rfind(':')) == ":0" ? "port 0" : "serving";
      std::string want = s.at("expect").at("value");
      if (got != want) throw Failure("http_addr " + got + " (" + addr.value_or("-") + "), expected " + want);
    }
  } else if (d == "http_peers") {
    // Until the API and peers() agree on what was expected: the two reads are not one snapshot.
    auto deadline = clock_type::now() + std::chrono::milliseconds(s.value("within_ms", 2000));
    for (;;) {
      try {
        http_peers_once(w, s);
        break;
      } catch (const std::exception&) {
        if (clock_type::now() > deadline) throw;
        std::this_thread::sleep_for(20ms);
      }
    }
  } else if (d == "peers") {
    // With within_ms, until the list matches: a watcher's list follows etcd a round trip
    // after the event that announced the change.
    auto deadline = clock_type::now() + std::chrono::milliseconds(s.value("within_ms", 0));
    for (;;) {
      try {
        peers_once(w, s);
        break;
      } catch (const Failure&) {
        if (clock_type::now() > deadline) throw;
        std::this_thread::sleep_for(20ms);
      }
    }
  } else if (d == "next_event") {
    auto h = w.get(s);
    auto timeout = std::chrono::milliseconds(s.value("timeout_ms", 0));
    std::optional<hb::Event> ev;
    bool ended = false;
    if (!outcome(w, s, [&] {
          h->with([&](auto& x) {
            ev = x.next_event(timeout);
            ended = !ev && x.stopped();
          });
        }))
      return;
    const json& expect = s.at("expect");
    std::string got = ev ? "event" : ended ? "end" : "timeout";
    if (expect.is_string()) {
      if (expect.get<std::string>() != got) throw Failure("expected " + expect.get<std::string>() + ", got " + got);
    } else if (!ev) {
      throw Failure("expected an event, got " + got);
    } else {
      Rec r{ev->peer, ev->from, ev->to, ev->reason};
      if (!event_matches(w, expect.at("event"), r)) throw Failure("expected another event, got " + show(r));
    }
  } else if (d == "on_event") {
    auto h = w.get(s);
    h->then = s.at("then");
    if (h->then != "record" && h->then != "stop" && h->then != "free" && h->then != "raise")
      throw Failure("unknown then \"" + h->then + "\"");
    Handle* raw = h.get();  // the World keeps the Handle alive until the scenario's end
    outcome(w, s, [&] {
      raw->with([&](auto& x) {
        x.on_event([raw](const hb::Event& e) {
          raw->push(e);
          if (raw->first_done.exchange(true)) return;
          if (raw->then == "stop") {
            std::error_code ec;
            raw->with([&](auto& y) { y.stop(ec); });
          } else if (raw->then == "free") {
            raw->free_it();  // the destructor, from the handle's own callback (allowed)
          } else if (raw->then == "raise") {
            throw std::runtime_error("raised by the conformance driver");
          }
        });
      });
    });
    h->has_callback = true;
  } else if (d == "events") {
    auto h = w.get(s);
    std::string peer = w.subst(s.at("peer"));
    const json& expect = s.at("expect");
    size_t n = expect.size();
    size_t have = wait_events(*h, peer, n, clock_type::now() + std::chrono::milliseconds(s.value("within_ms", 20000)));
    std::lock_guard<std::mutex> g(h->mu);
    std::string got;
    bool ok = have >= n;
    size_t k = 0;
    for (auto& r : h->events) {
      if (r.peer != peer) continue;
      if (k < n && !event_matches(w, expect[k], r)) ok = false;
      got += (k ? ", " : "") + show(r);
      ++k;
    }
    if (!ok) throw Failure("expected " + expect.dump() + " for " + peer + ", got [" + got + "]");
    size_t taken = 0;
    for (auto it = h->events.begin(); it != h->events.end() && taken < n;) {
      if (it->peer == peer) {
        it = h->events.erase(it);
        ++taken;
      } else {
        ++it;
      }
    }
  } else if (d == "no_events") {
    auto h = w.get(s);
    std::string peer = w.subst(s.at("peer"));
    size_t have = wait_events(*h, peer, SIZE_MAX, clock_type::now() + std::chrono::milliseconds(s.value("for_ms", 500)));
    if (have) throw Failure("expected no events for " + peer + ", got " + std::to_string(have));
  } else if (d == "wait_state") {
    auto h = w.get(s);
    hb::Client* c = h->client();
    if (!c) throw Failure(h->name + " is not a client");
    std::string want = s.at("value");
    auto deadline = clock_type::now() + std::chrono::milliseconds(s.value("within_ms", 20000));
    for (;;) {
      std::string got = hb::to_string(c->state());
      if (got == want) break;
      if (clock_type::now() > deadline) throw Failure("expected state " + want + ", got " + got);
      std::this_thread::sleep_for(20ms);
    }
  } else if (d == "beat") {
    const char* bin = std::getenv("HEARTBEATER_BIN");
    if (!bin || !*bin) throw Failure("HEARTBEATER_BIN is not set (the CLI, e.g. target/debug/heartbeater)");
    std::vector<std::string> args{bin, "beat"};
    for (auto& a : s.at("args")) args.push_back(w.subst(a));
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    std::fflush(nullptr);
    pid_t pid = fork();
    if (pid == 0) {
      execv(bin, argv.data());
      _exit(127);
    }
    if (pid < 0) throw Failure(std::string("fork: ") + std::strerror(errno));
    w.procs[s.at("as")] = pid;
  } else if (d == "kill") {
    auto it = w.procs.find(s.at("p"));
    if (it == w.procs.end()) throw Failure("no process " + s.at("p").get<std::string>());
    std::string sig = s.at("signal");
    if (sig != "KILL" && sig != "TERM") throw Failure("unknown signal " + sig);
    kill(it->second, sig == "KILL" ? SIGKILL : SIGTERM);
    waitpid(it->second, nullptr, 0);
    w.procs.erase(it);
  } else if (d == "fork") {
    std::fflush(nullptr);
    pid_t pid = fork();
    if (pid < 0) throw Failure(std::string("fork: ") + std::strerror(errno));
    if (pid == 0) {
      w.procs.clear();
      size_t at = 0;
      int rc = 0;
      try {
        run_steps(w, s.at("steps"), dir, at);
      } catch (const std::exception& e) {
        std::fprintf(stderr, "fork child: step %zu: %s\n", at, e.what());
        rc = 1;
      }
      std::fflush(nullptr);
      _exit(rc);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
      throw Failure("expected the forked child to exit 0, got status " + std::to_string(status) +
                    " (its failure is on stderr)");
  } else if (d == "names") {
    std::ifstream f(dir / "names.json");
    json names = json::parse(f);
    check_names(names, "states", state_name);
    check_names(names, "reasons", reason_name);
    check_names(names, "status_codes", code_name);
    // Every error kind is an hb_status (the error_code values of hb::error) of that name.
    for (auto& kind : names.at("error_kinds")) {
      bool found = false;
      for (uint32_t i = 0; i < 64 && !found; ++i) found = kind.get<std::string>() == hb::category().message(static_cast<int>(i));
      if (!found) throw Failure("error kind " + kind.get<std::string>() + " has no hb_status");
    }
  } else {
    throw Failure("unknown step \"" + d + "\"");
  }
}

bool mentions_etcd(const json& j) {
  if (j.is_string()) return j.get<std::string>().find("${etcd}") != std::string::npos;
  if (j.is_structured())
    for (auto& c : j)
      if (mentions_etcd(c)) return true;
  return false;
}

fs::path find_dir() {
  if (const char* env = std::getenv("HB_CONFORMANCE_DIR"); env && *env) return env;
  for (fs::path p = fs::path(HB_DRIVER_SOURCE).parent_path(); !p.empty() && p != p.root_path(); p = p.parent_path())
    if (p.filename() == "conformance" && p.parent_path().filename() == "tests") return p;
  return {};
}

}  // namespace

// The scenario as run over `transport` (README, "Transports"): ${transport} replaced, and
// each list element ${tls.monitor}, ${tls.client} (options) or ${tls.beat} (CLI arguments)
// replaced by that side's TLS files, or by nothing over another transport.
json over(const json& v, const std::string& transport, const fs::path& certs) {
  auto files = [&](const std::string& side) {
    return std::vector<std::pair<std::string, std::string>>{{"tls_ca_file", (certs / "ca.pem").string()},
                                                            {"tls_cert_file", (certs / (side + ".pem")).string()},
                                                            {"tls_key_file", (certs / (side + "-key.pem")).string()}};
  };
  if (v.is_string()) {
    std::string s = v;
    for (size_t at; (at = s.find("${transport}")) != std::string::npos;) s.replace(at, 12, transport);
    return s;
  }
  if (v.is_array()) {
    json out = json::array();
    for (auto& e : v) {
      std::string marker = e.is_string() ? e.get<std::string>() : "";
      if (marker != "${tls.monitor}" && marker != "${tls.client}" && marker != "${tls.beat}") {
        out.push_back(over(e, transport, certs));
      } else if (transport == "tls") {
        for (auto& [key, path] : files(marker == "${tls.monitor}" ? "monitor" : "client")) {
          if (marker == "${tls.beat}") {
            std::string flag = "--" + key;
            std::replace(flag.begin(), flag.end(), '_', '-');
            out.push_back(flag);
            out.push_back(path);
          } else {
            out.push_back(json::array({key, path}));
          }
        }
      }
    }
    return out;
  }
  if (v.is_object()) {
    json out = json::object();
    for (auto& [k, e] : v.items()) out[k] = over(e, transport, certs);
    return out;
  }
  return v;
}

int main() {
  fs::path dir = find_dir();
  if (dir.empty()) {
    std::fprintf(stderr, "conformance-cpp: cannot find tests/conformance (set HB_CONFORMANCE_DIR)\n");
    return 2;
  }
  json caps;
  {
    std::ifstream f(dir / "capabilities.json");
    caps = json::parse(f);
  }
  std::vector<fs::path> files;
  for (auto& e : fs::directory_iterator(dir / "scenarios"))
    if (e.path().extension() == ".json") files.push_back(e.path());
  std::sort(files.begin(), files.end());
  const char* etcd = std::getenv("HB_CONFORMANCE_ETCD");
  const char* require_all = std::getenv("HEARTBEATER_REQUIRE_ALL");
  int failures = 0, passed = 0;
  for (auto& file : files) {
    json sc;
    try {
      std::ifstream f(file);
      sc = json::parse(f);
    } catch (const std::exception& e) {
      std::printf("FAIL %s: does not parse: %s\n", file.filename().c_str(), e.what());
      ++failures;
      continue;
    }
    std::string name = sc.value("name", file.stem().string());
    std::string na, undeclared;
    for (auto& req : sc.value("requires", json::array())) {
      const json* v = caps["capabilities"].contains(req) && caps["capabilities"][req].contains("cpp")
                          ? &caps["capabilities"][req]["cpp"]
                          : nullptr;
      if (!v) undeclared = req;
      else if (v->is_string() && na.empty()) na = *v;
    }
    if (!undeclared.empty()) {
      std::printf("FAIL %s: requires \"%s\", which capabilities.json does not declare for cpp\n", name.c_str(),
                  undeclared.c_str());
      ++failures;
    } else if (!na.empty()) {
      std::printf("n/a %s (%s)\n", name.c_str(), na.c_str());
    } else if (mentions_etcd(sc) && !(etcd && *etcd)) {
      if (require_all && std::string(require_all) == "1") {
        std::printf("FAIL %s: needs etcd and HB_CONFORMANCE_ETCD is not set (HEARTBEATER_REQUIRE_ALL=1)\n", name.c_str());
        ++failures;
      } else {
        std::printf("skip %s (HB_CONFORMANCE_ETCD is not set)\n", name.c_str());
      }
    } else {
      // Without "transports", the scenario runs once as written.
      json transports = sc.value("transports", json::array({""}));
      for (auto& t : transports) {
      std::string transport = t.get<std::string>();
      std::string label = transport.empty() ? name : name + " over " + transport;
      World w;
      w.etcd = etcd ? etcd : "";
      w.run = "cpp" + std::to_string(getpid()) + "-" +
              std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now().time_since_epoch()).count() % 100000000);
      size_t at = 0;
      std::string error;
      char tmpl[] = "/tmp/hb-conf-cpp-XXXXXX";
      fs::path certs = transport.empty() ? fs::path() : fs::path(mkdtemp(tmpl));
      json run = transport.empty() ? sc : over(sc, transport, certs);
      try {
        if (transport == "tls") {
          std::string cmd = "'" + (dir / "tls-certs").string() + "' '" + certs.string() + "'";
          for (auto& id : run.value("tls_ids", json::array())) cmd += " '" + w.subst(id.get<std::string>()) + "'";
          if (std::system(cmd.c_str()) != 0) throw Failure("failed: " + cmd);
        }
        run_steps(w, run.at("steps"), dir, at);
      } catch (const std::exception& e) {
        error = e.what();
      }
      if (!certs.empty()) fs::remove_all(certs);
      for (auto& p : w.procs) {
        kill(p.second, SIGKILL);
        waitpid(p.second, nullptr, 0);
      }
      for (auto& kv : w.handles) kv.second->free_it();
      if (error.empty()) {
        std::printf("ok %s\n", label.c_str());
        ++passed;
      } else {
        std::printf("FAIL %s: step %zu: %s\n", label.c_str(), at, error.c_str());
        ++failures;
      }
      }
    }
    std::fflush(stdout);
  }
  std::printf("conformance-cpp: %d passed, %d failed, %zu files\n", passed, failures, files.size());
  return failures ? 1 : 0;
}
