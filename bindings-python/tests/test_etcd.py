"""Registration in a real etcd: the key is there (checked with etcdctl) while the `with`
block runs, and gone at once after it."""

from __future__ import annotations

import os
import subprocess
from typing import Any

import pytest

import heartbeater

def etcdctl_keys(endpoint: str, prefix: str) -> list[str]:
    out = subprocess.run(
        ["etcdctl", f"--endpoints={endpoint}", "get", "--prefix", "--keys-only", prefix],
        env={**os.environ, "ETCDCTL_API": "3"},
        capture_output=True,
        text=True,
        timeout=20,
        check=True,
    ).stdout
    return [line for line in out.splitlines() if line.strip()]


def test_key_exists_while_registered_and_is_gone_after_the_with_block(etcd: Any) -> None:
    endpoint = f"etcd://{etcd.endpoint}/pytest"
    with heartbeater.Client(endpoint, service="api", instance_id="py-1", ttl=3.0) as c:
        assert etcdctl_keys(etcd.endpoint, "/pytest/") == ["/pytest/api/py-1"]
        assert c.state == "healthy"
        lease_id, epoch = c.fencing_token()
        assert lease_id != 0 and epoch >= 1
        c.check()
        assert 0 < c.remaining() <= 3.0
    # Gone at once: the client revoked its lease on the way out, no TTL wait.
    assert etcdctl_keys(etcd.endpoint, "/pytest/") == []


def test_unreachable_etcd_is_a_connect_error() -> None:
    c = heartbeater.Client("etcd://127.0.0.1:9/pytest", service="api", connect_timeout=1.0)
    try:
        c.start()
    except (heartbeater.ConnectError, heartbeater.HeartbeaterTimeoutError):
        return
    finally:
        c.stop()
    pytest.fail("start() against a closed port succeeded")


def test_watcher_lists_and_follows_the_prefix(etcd: Any) -> None:
    endpoint = f"etcd://{etcd.endpoint}/pytest-watch"
    with heartbeater.Watcher(endpoint) as w:
        assert w.peers() == []
        with heartbeater.Client(endpoint, service="api", instance_id="py-w", ttl=3.0):
            ev = w.next_event(timeout=10.0)
            assert ev is not None and (ev.peer, ev.to_state) == ("py-w", "joined"), ev
            assert [p.id for p in w.peers()] == ["py-w"]
        gone = w.next_event(timeout=10.0)
        assert gone is not None and gone.peer == "py-w" and gone.to_state == "left", gone
    assert list(w.events()) == []


def test_watcher_on_a_closed_port_is_a_connect_error() -> None:
    w = heartbeater.Watcher("etcd://127.0.0.1:9/pytest", connect_timeout=1.0)
    try:
        w.start()
    except (heartbeater.ConnectError, heartbeater.HeartbeaterTimeoutError):
        return
    finally:
        w.stop()
    pytest.fail("Watcher.start() against a closed port succeeded")
