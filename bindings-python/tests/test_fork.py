"""Fork: a parent's handle raises ForkedError in the child; a Client made in the child works."""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
import textwrap
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


def run_script(source: str) -> "subprocess.CompletedProcess[str]":
    return subprocess.run(
        [sys.executable, "-W", "ignore::DeprecationWarning", "-c", textwrap.dedent(source)],
        capture_output=True,
        text=True,
        timeout=30,
    )


@pytest.mark.parametrize("handle", ["heartbeater.Monitor('udp://127.0.0.1:0')", "heartbeater.Client('udp://127.0.0.1:9', service='api', interval=0.1, ttl=1.0)"])
def test_a_child_leaving_the_parents_with_block_exits_cleanly(handle: str) -> None:
    # sys.exit(0) in the child runs the parent's __exit__ and then the at-exit hook there:
    # both meet ForkedError from the engine and must leave the parent's handle alone.
    out = run_script(
        f"""
        import os, sys
        import heartbeater
        with {handle} as h:
            pid = os.fork()
            if pid == 0:
                sys.exit(0)
            _, status = os.waitpid(pid, 0)
            print("child", os.waitstatus_to_exitcode(status), flush=True)
            print("parent", h.phase, flush=True)
        print("after", h.phase, flush=True)
        """
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:3] == ["child 0", "parent running", "after stopped"], out.stdout
    assert out.stderr == "", out.stderr


def test_a_child_dropping_the_parents_handles_neither_stops_nor_hangs() -> None:
    out = run_script(
        """
        import gc, os, sys, time
        import heartbeater
        m = heartbeater.Monitor("udp://127.0.0.1:0")
        m.start()
        c = heartbeater.Client(m.local_addrs[0], service="api", instance_id="p", interval=0.1, ttl=1.0)
        c.on_event(lambda ev: None)
        c.start()
        time.sleep(0.3)
        pid = os.fork()
        if pid == 0:
            assert c.phase == "forked" and m.phase == "forked"
            del c, m
            gc.collect()
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        print("child", os.waitstatus_to_exitcode(status), flush=True)
        c.check()
        print("parent", c.state, m.phase, flush=True)
        c.stop()
        m.stop()
        """
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:2] == ["child 0", "parent healthy running"], out.stdout + out.stderr
