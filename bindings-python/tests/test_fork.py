"""Fork: a parent's handle raises ForkedError in the child; a Client made in the child works."""

from __future__ import annotations

import multiprocessing
from typing import Any, Callable, List, Optional, Tuple

import pytest

import heartbeater
from conftest import collect_until, udp_addr


def child_uses_parents_client(client: heartbeater.Client, results: Any) -> None:
    outcomes = []
    calls: List[Tuple[str, Callable[[], object]]] = [
        ("state", lambda: client.state),
        ("start", client.start),
        ("stop", client.stop),
        ("next_event", lambda: client.next_event(0.0)),
        ("check", client.check),
        ("remaining", client.remaining),
    ]
    for name, call in calls:
        try:
            call()
            outcomes.append((name, "no error"))
        except heartbeater.ForkedError as e:
            outcomes.append((name, "ForkedError" if "forked child" in str(e) else str(e)))
        except Exception as e:  # noqa: BLE001 - reported to the parent
            outcomes.append((name, repr(e)))
    results.put(outcomes)


def child_makes_its_own_client(addr: Optional[str], results: Any) -> None:
    try:
        c = heartbeater.Client(addr or "udp://127.0.0.1:9", service="forked", instance_id="child")
        if addr is None:
            results.put(("made", c.state))
            return
        with c:
            deadline_ok = c.next_event(timeout=10.0) is not None
            results.put(("beat", c.state, deadline_ok))
    except Exception as e:  # noqa: BLE001 - reported to the parent
        results.put(("error", repr(e)))


fork_warning = pytest.mark.filterwarnings("ignore:.*fork.*:DeprecationWarning")


@fork_warning
def test_parents_handle_raises_forked_error_in_the_child() -> None:
    ctx = multiprocessing.get_context("fork")
    client = heartbeater.Client("udp://127.0.0.1:9", service="api")
    results = ctx.Queue()
    p = ctx.Process(target=child_uses_parents_client, args=(client, results))
    p.start()
    outcomes = results.get(timeout=20)
    p.join(timeout=20)
    assert p.exitcode == 0
    assert outcomes == [(name, "ForkedError") for name, _ in outcomes], outcomes
    # The parent's handle is untouched.
    assert client.state == "unknown"


@fork_warning
def test_client_made_in_the_child_works_offline() -> None:
    ctx = multiprocessing.get_context("fork")
    heartbeater.Client("udp://127.0.0.1:9", service="api")  # the parent has used the library
    results = ctx.Queue()
    p = ctx.Process(target=child_makes_its_own_client, args=(None, results))
    p.start()
    assert results.get(timeout=20) == ("made", "unknown")
    p.join(timeout=20)
    assert p.exitcode == 0


@fork_warning
def test_client_made_in_the_child_beats(monitor: heartbeater.Monitor) -> None:
    ctx = multiprocessing.get_context("fork")
    addr = udp_addr(monitor)
    parent_client = heartbeater.Client(addr, service="api", instance_id="parent", interval=0.1, ttl=1.0)
    parent_client.start()  # the parent's runtime threads exist before the fork
    results = ctx.Queue()
    p = ctx.Process(target=child_makes_its_own_client, args=(addr, results))
    p.start()
    outcome = results.get(timeout=30)
    p.join(timeout=30)
    assert outcome[0] == "beat", outcome
    events = collect_until(monitor, lambda seen: any(e.peer == "child" and e.to_state == "left" for e in seen), 20)
    assert any(e.peer == "child" and e.to_state == "alive" for e in events)
    parent_client.stop()
