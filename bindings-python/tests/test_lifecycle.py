"""Context manager, stop semantics, iterators ending, callbacks."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import List

import pytest

import heartbeater
from conftest import udp_addr, wait_until


def test_events_before_start_time_out_without_blocking_forever() -> None:
    c = heartbeater.Client("udp://127.0.0.1:9", service="api")
    t0 = time.monotonic()
    assert c.next_event(timeout=0.2) is None
    assert list(c.events(timeout=0.1)) == []
    assert time.monotonic() - t0 < 2.0


def test_stop_ends_events_and_aevents() -> None:
    c = heartbeater.Client("udp://127.0.0.1:9", service="api")
    c.stop()
    c.stop(timeout=0.5)  # idempotent
    assert list(c.events()) == []
    # The end of the stream is None (not an exception), at once, whatever the timeout.
    assert c.phase == "stopped"
    t0 = time.monotonic()
    assert c.next_event(timeout=0.0) is None
    assert c.next_event(timeout=5.0) is None
    assert c.next_event() is None
    assert time.monotonic() - t0 < 2.0

    async def drain() -> List[heartbeater.Event]:
        return [ev async for ev in c.aevents()]

    assert asyncio.run(asyncio.wait_for(drain(), timeout=5)) == []


def test_aevents_ends_when_stopped_from_another_task_and_never_blocks_the_loop() -> None:
    c = heartbeater.Client("udp://127.0.0.1:9", service="api")

    async def main() -> int:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        async def consume() -> None:
            async for _ in c.aevents():
                pass

        tick_task = asyncio.ensure_future(ticker())
        consumer = asyncio.ensure_future(consume())
        await asyncio.sleep(0.5)
        c.stop()
        await asyncio.wait_for(consumer, timeout=5)
        tick_task.cancel()
        return ticks

    ticks = asyncio.run(main())
    assert ticks >= 20, f"event loop starved: only {ticks} ticks in 0.5 s"


def test_on_event_rejects_non_callables() -> None:
    c = heartbeater.Client("udp://127.0.0.1:9", service="api")
    with pytest.raises(TypeError):
        c.on_event(42)  # type: ignore[type-var]


def test_pulling_while_a_callback_is_set_is_an_invalid_state() -> None:
    c = heartbeater.Client("udp://127.0.0.1:9", service="api")
    c.on_event(lambda ev: None)
    with pytest.raises(heartbeater.InvalidStateError):
        c.next_event(timeout=0.0)
    with pytest.raises(heartbeater.InvalidStateError):
        c.on_event(lambda ev: None)
    c.stop()


def test_context_manager_starts_and_stops(monitor: heartbeater.Monitor) -> None:
    with heartbeater.Client(udp_addr(monitor), service="api", instance_id="ctx", interval=0.1, ttl=1.0) as c:
        wait_until(lambda: c.state == "healthy", 10, "client healthy")
        assert c.remaining() > 0
        c.check()
        lease_id, epoch = c.fencing_token()
        assert lease_id == 0 and epoch >= 0
    assert c.state == "stopped"
    assert c.phase == "stopped"
    with pytest.raises(heartbeater.StoppedError) as info:
        c.check()
    assert str(info.value) == "client is stopped; create a new one"
    with pytest.raises(heartbeater.StoppedError):
        c.fencing_token()
    with pytest.raises(heartbeater.StoppedError):
        c.start()
    assert c.remaining() == 0.0
    assert any(p.id == "ctx" for p in monitor.peers())


def test_the_client_stream_ends_after_its_stopped_event(monitor: heartbeater.Monitor) -> None:
    c = heartbeater.Client(udp_addr(monitor), service="api", instance_id="end", interval=0.1, ttl=1.0)
    c.start()
    first = c.next_event(timeout=10.0)
    assert first is not None and first.to_state == "healthy", first
    c.stop()
    last = c.next_event(timeout=10.0)
    assert last is not None and (last.from_state, last.to_state, last.reason) == ("healthy", "stopped", "stopped")
    assert c.next_event(timeout=0.5) is None and c.phase == "stopped"


def test_peers_after_stop_is_stopped_as_in_every_language() -> None:
    m = heartbeater.Monitor("udp://127.0.0.1:0")
    phases = [m.phase]
    assert m.peers() == []
    m.start()
    phases.append(m.phase)
    assert phases == ["idle", "running"]
    with pytest.raises(heartbeater.InvalidStateError) as started:
        m.start()
    assert str(started.value) == "monitor is already started"
    m.stop()
    m.stop()  # idempotent
    with pytest.raises(heartbeater.StoppedError) as info:
        m.peers()
    assert str(info.value) == "monitor is stopped; create a new one"


def test_stop_without_timeout_uses_the_configured_stop_timeout() -> None:
    # Nothing answers on the discard port, so stop waits for its LEAVE until the timeout.
    c = heartbeater.Client("udp://127.0.0.1:9", service="api", interval=0.1, ttl=1.0, options={"stop_timeout": "300ms"})
    c.start()
    t0 = time.monotonic()
    c.stop()
    assert time.monotonic() - t0 < 1.0, "stop() did not use stop_timeout=300ms"
    assert c.state == "stopped"


def test_raising_callback_is_logged_counted_and_delivery_goes_on(
    monitor: heartbeater.Monitor, caplog: pytest.LogCaptureFixture
) -> None:
    seen: List[heartbeater.Event] = []

    def callback(ev: heartbeater.Event) -> None:
        seen.append(ev)
        if len(seen) == 1:
            raise RuntimeError("boom from a user callback")

    before = heartbeater.callback_errors()
    monitor.on_event(callback)
    addr = udp_addr(monitor)
    with caplog.at_level("ERROR", logger="heartbeater"):
        with heartbeater.Client(addr, service="api", instance_id="cb-1", interval=0.1, ttl=1.0):
            with heartbeater.Client(addr, service="api", instance_id="cb-2", interval=0.1, ttl=1.0):
                wait_until(lambda: {e.peer for e in seen} >= {"cb-1", "cb-2"}, 10, "both peers seen")
        wait_until(lambda: sum(e.to_state == "left" for e in seen) == 2, 10, "both peers left")
    assert monitor.callback_errors == 1
    assert heartbeater.callback_errors() == before + 1
    records = [r for r in caplog.records if r.name == "heartbeater" and r.exc_info]
    assert [str(r.exc_info[1]) for r in records if r.exc_info] == ["boom from a user callback"]
    # Logged with its traceback, down to the line that raised.
    text = logging.Formatter().formatException(records[0].exc_info)  # type: ignore[arg-type]
    assert "Traceback (most recent call last)" in text, text
    assert 'raise RuntimeError("boom from a user callback")' in text, text
    assert "in callback" in text, text
    assert "heartbeater_callback_panics_total" in heartbeater.metrics_text()


def os_threads() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("Threads:"))


def test_a_thousand_clients_with_on_event_share_a_few_threads(monitor: heartbeater.Monitor) -> None:
    # Callbacks run on the engine's shared delivery pool (at most 16 threads), not a
    # thread per handle: 1,000 clients with on_event set stay far below 1,000 threads.
    seen: set[str] = set()
    clients = []
    before = os_threads()
    try:
        for i in range(1000):
            c = heartbeater.Client(udp_addr(monitor), service="many", instance_id=f"many-{i}", interval=1.0)
            c.on_event(lambda ev: seen.add(ev.peer))
            c.start()
            clients.append(c)
        wait_until(lambda: len(seen) == 1000, 30, "an own event from every client's callback")
        added = os_threads() - before
        assert added <= 16, f"{added} OS threads added by 1,000 clients with on_event"
    finally:
        for c in clients:
            c.stop(timeout=0.2)


def test_a_monitor_with_two_listen_threads_hears_its_clients() -> None:
    from conftest import free_port

    with heartbeater.Monitor(f"udp://127.0.0.1:{free_port()}", listen_threads=2) as m:
        clients = [heartbeater.Client(udp_addr(m), service="two", instance_id=f"two-{i}") for i in range(4)]
        try:
            for c in clients:
                c.start()
            wait_until(
                lambda: {p.id for p in m.peers() if p.state == "alive"} >= {f"two-{i}" for i in range(4)},
                30,
                "four clients alive on a monitor with two listener threads",
            )
        finally:
            for c in clients:
                c.stop(timeout=0.2)
