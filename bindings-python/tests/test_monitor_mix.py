"""A Python Monitor with Python clients and CLI clients: SIGKILL gives `dead`, SIGTERM
gives `left`, seen through events() and through aevents()."""

from __future__ import annotations

import asyncio
import signal
import time
from typing import Callable, Dict, List, Set, Tuple

import heartbeater
from conftest import Proc, cli_client_args, collect_until, python_client_args, udp_addr

Spawn = Callable[[List[str]], Proc]


def start_peers(spawn: Spawn, addr: str, hb_bin: str, tag: str) -> Dict[str, Proc]:
    """Two Python clients and two CLI clients, each in its own process."""
    return {
        f"py-kill-{tag}": spawn(python_client_args(addr, "mix", f"py-kill-{tag}")),
        f"py-term-{tag}": spawn(python_client_args(addr, "mix", f"py-term-{tag}")),
        f"cli-kill-{tag}": spawn(cli_client_args(hb_bin, addr, "mix", f"cli-kill-{tag}")),
        f"cli-term-{tag}": spawn(cli_client_args(hb_bin, addr, "mix", f"cli-term-{tag}")),
    }


def alive(events: List[heartbeater.Event]) -> Set[str]:
    return {e.peer for e in events if e.to_state == "alive"}


def finals(events: List[heartbeater.Event]) -> Dict[str, Tuple[str, str]]:
    return {e.peer: (e.to_state, e.reason) for e in events if e.to_state in ("dead", "left")}


def signal_all(peers: Dict[str, Proc]) -> None:
    for name, proc in peers.items():
        proc.signal(signal.SIGKILL if "-kill-" in name else signal.SIGTERM)


def check_finals(peers: Dict[str, Proc], events: List[heartbeater.Event]) -> None:
    got = finals(events)
    for name in peers:
        expected = "dead" if "-kill-" in name else "left"
        assert got[name][0] == expected, f"{name}: {got[name]} (events: {events})"
    # A kill is never mistaken for a goodbye, nor a goodbye for a death.
    assert {got[n][1] for n in peers if "-term-" in n} == {"left"}


def test_kill_is_dead_and_term_is_left_via_events(monitor: heartbeater.Monitor, procs: Spawn, hb_bin: str) -> None:
    peers = start_peers(procs, udp_addr(monitor), hb_bin, "sync")
    events = collect_until(monitor, lambda seen: alive(seen) >= set(peers), timeout=20)
    assert {p.id for p in monitor.peers()} >= set(peers)
    signal_all(peers)
    events += collect_until(monitor, lambda seen: set(finals(seen)) >= set(peers), timeout=30)
    check_finals(peers, events)
    states = {p.id: p.state for p in monitor.peers()}
    assert all(states[n] in ("dead", "left") for n in peers), states


def test_kill_is_dead_and_term_is_left_via_aevents(monitor: heartbeater.Monitor, procs: Spawn, hb_bin: str) -> None:
    async def main() -> Tuple[List[heartbeater.Event], int]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        tick_task = asyncio.ensure_future(ticker())
        peers = start_peers(procs, udp_addr(monitor), hb_bin, "async")
        seen: List[heartbeater.Event] = []
        signalled = False
        async for ev in monitor.aevents():
            seen.append(ev)
            if not signalled and alive(seen) >= set(peers):
                signal_all(peers)
                signalled = True
            if set(finals(seen)) >= set(peers):
                break
        tick_task.cancel()
        check_finals(peers, seen)
        return seen, ticks

    t0 = time.monotonic()
    _, ticks = asyncio.run(asyncio.wait_for(main(), timeout=45))
    elapsed = time.monotonic() - t0
    # The loop kept running while aevents() waited: at least a quarter of the 10 ms ticks.
    assert ticks >= elapsed / 0.01 / 4, (ticks, elapsed)


def test_the_http_api_serves_what_peers_returns() -> None:
    """The JSON of /v1/peers has the native peer's keys and values (docs/http.md)."""
    import json
    import urllib.request

    with heartbeater.Monitor("udp://127.0.0.1:0", http_addr="127.0.0.1:0") as m:
        addr = m.http_addr
        assert addr is not None
        udp = m.local_addrs[0]
        with heartbeater.Client(udp, service="py", instance_id="one", interval=0.1, labels={"zone": "eu"}):
            deadline = time.monotonic() + 10
            while not any(p.state == "alive" for p in m.peers()):
                assert time.monotonic() < deadline, "no alive peer"
                time.sleep(0.01)
            with urllib.request.urlopen(f"http://{addr}/v1/peers", timeout=5) as r:
                page = json.loads(r.read())
            native = m._native.peers()
    assert m.http_addr is None
    (got,) = page["peers"]
    (want,) = native
    assert set(got) == set(want)
    for key in want:
        if key not in ("last_seen_unix_ms", "rtt_us"):
            assert got[key] == want[key], key
    assert abs(got["last_seen_unix_ms"] - want["last_seen_unix_ms"]) < 5000


def test_a_client_serves_its_own_healthz() -> None:
    """health_addr: 200 with the fencing token while healthy (docs/http.md)."""
    import json
    import urllib.request

    with heartbeater.Monitor("udp://127.0.0.1:0") as m:
        with heartbeater.Client(m.local_addrs[0], service="py", instance_id="probed", interval=0.1,
                                health_addr="127.0.0.1:0") as c:
            addr = c.health_addr
            assert addr is not None
            deadline = time.monotonic() + 10
            while c.state != "healthy":
                assert time.monotonic() < deadline, "not healthy"
                time.sleep(0.01)
            with urllib.request.urlopen(f"http://{addr}/healthz", timeout=5) as r:
                assert r.status == 200
                body = json.loads(r.read())
        assert c.health_addr is None
    assert body["state"] == "healthy"
    assert body["fencing_token"] == {"lease_id": 0, "epoch": 1}
    assert body["remaining_ms"] > 0
