"""Shared fixtures. These tests run against the INSTALLED heartbeater (scripts/test.sh
builds the wheel and installs it into a fresh venv); nothing here puts the source tree on
sys.path."""

from __future__ import annotations

import os
import pathlib
import socket
import subprocess
import sys
import time
from typing import Any, Callable, Iterator, List, NoReturn

import pytest

import heartbeater

TESTS = pathlib.Path(__file__).resolve().parent
REPO = pathlib.Path(os.environ.get("HEARTBEATER_REPO", str(TESTS.parents[1])))
HELPERS = TESTS / "helpers"


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


def collect_until(
    handle: heartbeater.Monitor, done: Callable[[List[heartbeater.Event]], bool], timeout: float
) -> List[heartbeater.Event]:
    """Pulls events through ``events()`` until ``done(seen)`` or the deadline."""
    seen: List[heartbeater.Event] = []
    deadline = time.monotonic() + timeout
    while not done(seen):
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"timed out after {timeout}s; events so far: {seen}")
        for ev in handle.events(timeout=min(left, 0.5)):
            seen.append(ev)
            break
    return seen


def require_or_skip(why: str, allow_module_level: bool = False) -> NoReturn:
    """Skips for a prerequisite missing on a developer's partial machine (etcd, the CLI,
    prometheus_client), but fails when HEARTBEATER_REQUIRE_ALL=1 (scripts/test-all sets it):
    there everything is installed and built, so a skip would hide an untested feature."""
    if os.environ.get("HEARTBEATER_REQUIRE_ALL") == "1":
        pytest.fail(f"{why} (a failure, not a skip, because HEARTBEATER_REQUIRE_ALL=1)", pytrace=False)
    pytest.skip(why, allow_module_level=allow_module_level)


@pytest.fixture
def monitor() -> Iterator[heartbeater.Monitor]:
    # An explicit free port rather than port 0: works whether or not this hb-core accepts 0.
    with heartbeater.Monitor(f"udp://127.0.0.1:{free_port()}") as m:
        yield m


def udp_addr(m: heartbeater.Monitor) -> str:
    return next(a for a in m.local_addrs if a.startswith("udp://"))


@pytest.fixture(scope="session")
def hb_bin() -> str:
    path = os.environ.get("HEARTBEATER_BIN", str(REPO / "target" / "debug" / "heartbeater"))
    if not os.access(path, os.X_OK):
        require_or_skip(f"CLI binary not found at {path} (build it with `cargo build -p hb-cli` or set HEARTBEATER_BIN)")
    return path


class Proc:
    """A child process stopped by its own PID at the end of the test."""

    def __init__(self, args: List[str]) -> None:
        self.popen = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def signal(self, sig: int) -> None:
        self.popen.send_signal(sig)
        self.popen.wait(timeout=10)

    def close(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(timeout=10)
        for stream in (self.popen.stdout, self.popen.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture
def procs() -> Iterator[Callable[[List[str]], Proc]]:
    started: List[Proc] = []

    def spawn(args: List[str]) -> Proc:
        p = Proc(args)
        started.append(p)
        return p

    yield spawn
    for p in started:
        p.close()


def python_client_args(endpoint: str, service: str, instance_id: str, interval: float = 0.2, ttl: float = 2.0) -> List[str]:
    return [sys.executable, str(HELPERS / "beat.py"), endpoint, service, instance_id, str(interval), str(ttl)]


def cli_client_args(hb_bin: str, endpoint: str, service: str, instance_id: str) -> List[str]:
    return [hb_bin, "beat", "--endpoint", endpoint, "--service", service, "--id", instance_id, "--ttl", "2s", "--interval", "200ms"]


HARNESS = REPO / "tests" / "harness" / "etcd.py"


@pytest.fixture(scope="module")
def etcd() -> Iterator[Any]:
    """A private etcd per test module (tests/harness/etcd.py), stopped at its end."""
    sys.path.insert(0, str(HARNESS.parent))
    try:
        import etcd as harness  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(HARNESS.parent))
    if not harness.available():
        require_or_skip("etcd/etcdctl binaries not installed (apt-get install etcd-server etcd-client)")
    with harness.Etcd() as server:
        yield server
