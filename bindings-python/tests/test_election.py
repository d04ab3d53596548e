"""heartbeater.Election against a real etcd. The rules are hb-core's
(hb-core/tests/etcd_election.rs); these check that Python converts them, errors included."""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Iterator, List

import pytest

import heartbeater

WAIT = 15.0


@pytest.fixture
def candidates(etcd: Any, request: pytest.FixtureRequest) -> Iterator[Callable[[str], heartbeater.Election]]:
    made: List[heartbeater.Election] = []
    # One election per test: the module shares its etcd.
    name = request.node.name.replace("test_", "").replace("_", "-")[:60]

    def make(value: str) -> heartbeater.Election:
        e = heartbeater.Election(f"etcd://{etcd.endpoint}/pyelect", name, value, ttl=10.0)
        made.append(e)
        return e

    yield make
    for e in made:
        e.stop()


def wait_event(e: heartbeater.Election, to: str, epoch: int) -> heartbeater.Event:
    seen: List[heartbeater.Event] = []
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        ev = e.next_event(timeout=max(deadline - time.monotonic(), 0.0))
        if ev is None:
            break
        if ev.to_state == to and ev.epoch == epoch:
            return ev
        seen.append(ev)
    raise AssertionError(f"no {to} event with epoch {epoch} within {WAIT}s; saw {seen}")


def test_one_leads_and_resign_hands_over(candidates: Callable[[str], heartbeater.Election]) -> None:
    a, b = candidates("a"), candidates("b")
    ta = a.campaign(timeout=WAIT)
    assert isinstance(ta, heartbeater.Token) and ta.revision > 0 and ta.lease_id != 0
    a.check()
    assert a.token() == ta
    assert 0.0 < a.remaining() <= 10.0
    ev = wait_event(a, "elected", ta.revision)
    assert ev.service == a.name and ev.peer == f"{ta.lease_id:x}"

    # b times out as a candidate, and stays one.
    with pytest.raises(heartbeater.HeartbeaterTimeoutError, match="still a candidate"):
        b.campaign(timeout=0.3)
    with pytest.raises(TimeoutError):  # the builtin too
        b.campaign(timeout=0.05)
    with pytest.raises(heartbeater.NotHolderError, match="not the leader of election"):
        b.check()
    with pytest.raises(heartbeater.NotHolderError):
        b.token()
    assert b.remaining() == 0.0
    wait_event(b, "leader_changed", ta.revision)
    leader = b.leader()
    assert leader is not None and leader.token == ta and leader.value == b"a"
    assert leader.key.startswith("/pyelect/election/") and leader.key.endswith(f"{ta.lease_id:x}")

    a.resign()
    with pytest.raises(heartbeater.NotHolderError):
        a.check()
    assert wait_event(a, "lost", ta.revision).reason == "resigned"
    tb = b.campaign(timeout=WAIT)
    assert tb.revision > ta.revision
    b.check()
    wait_event(b, "elected", tb.revision)
    a.resign()  # idempotent


def test_stop_of_the_leader_hands_over_and_ends_the_handle(candidates: Callable[[str], heartbeater.Election]) -> None:
    a, b = candidates("a"), candidates("")
    ta = a.campaign(timeout=WAIT)
    # b waits without a timeout in a thread (the GIL is released meanwhile).
    won: List[heartbeater.Token] = []
    waiter = threading.Thread(target=lambda: won.append(b.campaign()))
    waiter.start()
    wait_event(b, "leader_changed", ta.revision)
    with a:
        pass  # the with block's exit stops a
    waiter.join(WAIT)
    assert won and won[0].revision > ta.revision
    leader = b.leader()
    assert leader is not None and leader.token == won[0] and leader.value == b""

    assert wait_event(a, "lost", ta.revision).reason == "stopped"
    with pytest.raises(heartbeater.StoppedError):  # the engine's end of the stream
        a._native.next_event(0.0)
    assert a.next_event() is None
    with pytest.raises(heartbeater.StoppedError, match="election is stopped"):
        a.campaign(timeout=1.0)
    with pytest.raises(heartbeater.StoppedError):
        a.token()
    with pytest.raises(heartbeater.StoppedError):
        a.leader()
    with pytest.raises(heartbeater.StoppedError, match="election is stopped"):
        a.check()
    assert a.remaining() == 0.0
    a.resign()
    a.stop()  # idempotent


def test_a_loss_without_recampaign_ends_the_campaign(candidates: Callable[[str], heartbeater.Election]) -> None:
    a = candidates("a")
    a.set_recampaign(False)
    ta = a.campaign(timeout=WAIT)
    a.resign()
    assert wait_event(a, "lost", ta.revision).reason == "resigned"
    # A new campaign is a new candidacy with a new term.
    assert a.campaign(timeout=WAIT).revision > ta.revision


def test_events_reach_a_callback(candidates: Callable[[str], heartbeater.Election]) -> None:
    a = candidates("a")
    got: List[heartbeater.Event] = []
    elected = threading.Event()

    @a.on_event
    def record(ev: heartbeater.Event) -> None:
        got.append(ev)
        if ev.to_state == "elected":
            elected.set()

    ta = a.campaign(timeout=WAIT)
    assert elected.wait(WAIT)
    assert [ev.epoch for ev in got if ev.to_state == "elected"] == [ta.revision]


def test_bad_input_is_named() -> None:
    with pytest.raises(heartbeater.ConfigError, match='name "a/b"') as e:
        heartbeater.Election("etcd://127.0.0.1:2379/p", "a/b")
    assert e.value.field == "name" and e.value.value == "a/b"
    with pytest.raises(heartbeater.ConfigError, match="endpoint") as e:
        heartbeater.Election("udp://127.0.0.1:7946", "db")
    assert e.value.field == "endpoint"
    with pytest.raises(heartbeater.ConfigError, match="ttl"):
        heartbeater.Election("etcd://127.0.0.1:2379/p", "db", ttl=-1)
    with pytest.raises(TypeError, match="value must be bytes or str, got int"):
        heartbeater.Election("etcd://127.0.0.1:2379/p", "db", 3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="timeout must be a number"):
        heartbeater.Election("etcd://127.0.0.1:2379/p", "db").campaign("1")  # type: ignore[arg-type]


def test_unreachable_etcd_is_a_connect_error() -> None:
    with heartbeater.Election("etcd://127.0.0.1:9/p", "db", connect_timeout=0.3) as e:
        with pytest.raises(heartbeater.ConnectError):
            e.campaign(timeout=10.0)
