"""Issue 3 acceptance, against a real etcd (tests/harness/etcd.py).

1-3 and 6 drive the `heartbeater` CLI (beat / watch); 4 and 5 drive the `etcd_clients`
example (hb-core/examples/etcd_clients.rs), which runs many registrations in one process
and reports its fencing checks as JSON lines.
"""

import json
import signal
import time

import etcd as harness
from etcd import wait_until

PREFIX = "/services"


def beat(procs, heartbeater_bin, etcd, ident, ttl="3s", service="svc"):
    return procs([heartbeater_bin, "beat", "--endpoint", etcd.url(PREFIX), "--service", service, "--id", ident, "--ttl", ttl])


def watch(procs, heartbeater_bin, etcd):
    return procs([heartbeater_bin, "watch", etcd.url(PREFIX), "--json"])


def key(ident, service="svc"):
    return f"{PREFIX}/{service}/{ident}"


def values(etcd):
    return {k: json.loads(v) for k, v in etcd.get_prefix(PREFIX + "/").items()}


def now():
    return time.monotonic()


# 1. Register, kill, restart, stop ---------------------------------------------------------
def test_register_kill_restart_stop(etcd, procs, heartbeater_bin):
    b = beat(procs, heartbeater_bin, etcd, "a")
    leases = wait_until(lambda: etcd.keys_with_leases(PREFIX), 10, what="key registered")
    assert list(leases) == [key("a")]
    assert leases[key("a")] != 0, "the key is attached to a lease"
    value = values(etcd)[key("a")]
    assert (value["id"], value["service"], value["state"], value["epoch"]) == ("a", "svc", "up", 1)

    b.signal(signal.SIGKILL)
    killed = now()
    wait_until(lambda: not etcd.get_prefix(PREFIX), 6, what="key gone after SIGKILL")
    assert now() - killed <= 3 + 1, f"key outlived TTL + 1 s: {now() - killed:.2f}s"

    w = watch(procs, heartbeater_bin, etcd)
    b = beat(procs, heartbeater_bin, etcd, "a")
    w.next(10, lambda m: m.get("peer") == "a" and m.get("to") == "joined", "joined")
    b.signal(signal.SIGTERM)
    stopped = now()
    wait_until(lambda: not etcd.get_prefix(PREFIX), 3, what="key gone after SIGTERM")
    assert now() - stopped <= 1.0, f"graceful stop took {now() - stopped:.2f}s"
    ev = w.next(3, lambda m: m.get("peer") == "a" and m.get("to") in ("left", "expired"), "left")
    assert ev["to"] == "left", ev
    assert ev["reason"] == "left"
    b.p.wait(timeout=5)
    time.sleep(0.5)
    assert not [m for m in w.drain() if m.get("peer") == "a" and m.get("to") == "expired"]


# 2. etcd killed and restarted with its data while 20 clients run ---------------------------
def test_etcd_restart_keeps_every_client(etcd, procs, heartbeater_bin):
    clients = [beat(procs, heartbeater_bin, etcd, f"c{i}") for i in range(20)]
    wait_until(lambda: len(etcd.get_prefix(PREFIX)) == 20, 20, what="20 keys")
    etcd.stop(kill=True)
    time.sleep(2)
    etcd.start()
    back = now()
    wait_until(lambda: len(etcd.get_prefix(PREFIX)) == 20, 3 + 1, what="20 keys again within TTL")
    assert now() - back <= 3 + 0.5
    # ...and they stay: kept alive, not left to expire.
    time.sleep(4)
    assert len(etcd.get_prefix(PREFIX)) == 20
    assert all(c.alive() for c in clients), "no client process exited"


# 3. etcd restarted with a wiped data dir ---------------------------------------------------
def test_wiped_etcd_means_reregistration_with_higher_epoch(etcd, procs, heartbeater_bin):
    clients = [beat(procs, heartbeater_bin, etcd, f"w{i}") for i in range(20)]
    wait_until(lambda: len(etcd.get_prefix(PREFIX)) == 20, 20, what="20 keys")
    etcd.restart(wipe=True)
    back = now()

    def all_back():
        v = values(etcd)
        return len(v) == 20 and all(x["epoch"] >= 2 for x in v.values())

    # TTL (3 s) + backoff (at most 1 s, TTL/3).
    wait_until(all_back, 3 + 1 + 1, what="every client re-registered with a higher epoch")
    assert now() - back <= 5
    assert all(c.alive() for c in clients)


# 4. Frozen client: fencing fails right after SIGCONT, passes again only with a new epoch ---
def test_frozen_client_fencing(etcd, procs, clients_bin):
    c = procs([clients_bin, etcd.url(PREFIX), "1", "2s", "--poll-ms", "1"], stdin=True)
    c.next(10, lambda m: m.get("kind") == "ready", "ready")
    c.next(5, lambda m: m.get("kind") == "check" and m["ok"] == 1 and m["max_epoch"] == 1, "check ok")
    time.sleep(1)
    c.drain()
    c.signal(signal.SIGSTOP)
    time.sleep(5)
    resumed = time.clock_gettime(time.CLOCK_BOOTTIME) * 1000
    c.signal(signal.SIGCONT)
    first = c.next(5, lambda m: m.get("kind") == "check" and m["t_ms"] >= resumed, "first check after SIGCONT")
    assert first["ok"] == 0 and first["max_epoch"] == 1, f"check must fail at once after the pause: {first}"
    again = c.next(10, lambda m: m.get("kind") == "check" and m["ok"] == 1, "check passes again")
    assert again["max_epoch"] == 2, f"passes only with a higher epoch: {again}"
    is_rereg = lambda m: m.get("kind") == "event" and m.get("to") == "reregistered"  # noqa: E731
    rereg = next((m for m in c.seen if is_rereg(m)), None) or c.next(5, is_rereg, "reregistered event")
    assert rereg["epoch"] == 2 and rereg["reason"] == "lease_not_found", rereg
    # The failure was seen before the re-registration reached etcd and came back.
    assert first["t_ms"] <= rereg["t_ms"]
    assert json.loads(etcd.get_prefix(PREFIX)[key("c0")])["epoch"] == 2
    c.send("stop")
    c.next(10, lambda m: m.get("kind") == "stopped", "stopped")


# 5. Keepalive load: 1000 clients in one process at TTL 10 s --------------------------------
def test_keepalive_load_1000_clients(etcd, procs, clients_bin):
    c = procs([clients_bin, etcd.url(PREFIX), "1000", "10s"], stdin=True)
    ready = c.next(120, lambda m: m.get("kind") in ("ready", "error"), "1000 clients ready")
    assert ready["kind"] == "ready", ready
    assert len(etcd.get_prefix(PREFIX)) == 1000
    time.sleep(4)  # let the start-up burst pass: one keepalive per lease every TTL/3
    m0, t0 = etcd.metrics(), time.monotonic()
    time.sleep(20)
    m1, t1 = etcd.metrics(), time.monotonic()
    renewed = harness.metric_value(m1, "etcd_debugging_lease_renewed_total") - harness.metric_value(m0, "etcd_debugging_lease_renewed_total")
    rate = renewed / (t1 - t0)
    expected = 1000 / (10 / 3)
    streams = harness.metric_value(m1, "grpc_server_started_total", grpc_method="LeaseKeepAlive")
    print(f"\netcd keepalive load: {rate:.1f}/s for 1000 leases at TTL 10s (bound {expected:.0f}/s), {streams:.0f} keepalive stream(s)")
    assert abs(rate - expected) <= 0.10 * expected, f"{rate:.1f} keepalives/s, expected {expected:.0f} ± 10%"
    assert streams == 1, "one keepalive stream for the whole process"
    c.send("stop")
    c.next(60, lambda m: m.get("kind") == "stopped", "stopped")
    wait_until(lambda: not etcd.get_prefix(PREFIX), 10, what="every key removed by graceful stop")


# 6. Watcher view equals etcd after churn with an etcd restart in the middle ----------------
def test_watcher_view_after_churn_and_restart(etcd, procs, heartbeater_bin, clients_bin):
    w = watch(procs, heartbeater_bin, etcd)
    time.sleep(1)

    def group(prefix, n):
        g = procs([clients_bin, etcd.url(PREFIX), str(n), "2s", "--id-prefix", prefix], stdin=True)
        g.next(60, lambda m: m.get("kind") == "ready", f"group {prefix} ready")
        return g

    leavers = group("l", 50)     # 50 joins, then 50 graceful leaves
    dyers = group("d", 50)       # 50 joins, then 50 expiries (SIGKILL)
    stayers = group("s", 50)     # 50 joins that stay
    leavers.send("stop")
    leavers.next(30, lambda m: m.get("kind") == "stopped", "leavers stopped")
    etcd.restart(wipe=False)     # the restart in the middle
    dyers.kill()
    late = group("n", 50)        # 50 joins after the restart; half leave below
    late.send("stop")
    late.next(30, lambda m: m.get("kind") == "stopped", "late group stopped")
    late2 = group("m", 25)
    assert stayers.alive() and late2.alive()

    def views_agree():
        view = {}
        for m in w.drain():
            pass
        for m in w.seen:
            if "peer" not in m:
                continue
            k = key(m["peer"], m.get("service", "svc"))
            if m["to"] in ("joined", "updated"):
                view[k] = m
            elif m["to"] in ("left", "expired"):
                view.pop(k, None)
        keys = set(etcd.get_prefix(PREFIX + "/"))
        return keys if set(view) == keys and len(keys) == 75 else None

    keys = wait_until(views_agree, 20, interval=0.5, what="watcher view == etcdctl get --prefix")
    assert keys == {key(f"s{i}") for i in range(50)} | {key(f"m{i}") for i in range(25)}
    tos = {}
    for m in w.seen:
        if "peer" in m:
            tos.setdefault(m["peer"], []).append(m["to"])
    assert all(tos[f"l{i}"][-1] == "left" for i in range(50)), "graceful leaves are `left`"
    assert all(tos[f"d{i}"][-1] == "expired" for i in range(50)), "killed clients are `expired`"
    assert all("expired" not in tos[f"l{i}"] for i in range(50))


# Issue 12: a value that is not a registration is reported as such, never as a member ------
def test_watch_reports_a_non_json_value_as_invalid(etcd, procs, heartbeater_bin):
    etcd.etcdctl("put", key("junk"), "not json")
    w = watch(procs, heartbeater_bin, etcd)
    ev = w.next(10, lambda m: m.get("peer") == "junk", "the junk key reported")
    assert (ev["to"], ev["reason"]) == ("invalid", "malformed_value"), ev
    b = beat(procs, heartbeater_bin, etcd, "a")
    w.next(10, lambda m: m.get("peer") == "a" and m.get("to") == "joined", "a real member joins")
    assert not [m for m in w.seen if m.get("peer") == "junk" and m.get("to") == "joined"]
    b.signal(signal.SIGTERM)
    b.p.wait(timeout=5)
