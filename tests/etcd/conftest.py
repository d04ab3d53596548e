"""Fixtures for the etcd system tests (issue 3): a real etcd from tests/harness/etcd.py and
the `etcd_clients` example (many clients in one process); `heartbeater_bin` and
`require_or_skip` come from tests/conftest.py."""

import json
import os
import queue
import subprocess
import sys
import threading
import time

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "harness"))

import etcd as harness  # noqa: E402


def target_dir():
    return os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))


@pytest.fixture
def etcd(require_or_skip):
    if not harness.available():
        require_or_skip("etcd/etcdctl not installed: apt-get install etcd-server etcd-client")
    with harness.Etcd() as server:
        yield server


@pytest.fixture(scope="session")
def clients_bin():
    """The etcd_clients example; built once if it is not there."""
    path = os.environ.get("HB_ETCD_CLIENTS_BIN", os.path.join(target_dir(), "debug", "examples", "etcd_clients"))
    if not os.path.exists(path):
        subprocess.run(["cargo", "build", "-q", "-p", "hb-core", "--example", "etcd_clients"], cwd=ROOT, check=True)
    return path


class Proc:
    """A child process whose stdout lines are collected by a thread (JSON parsed when possible)."""

    def __init__(self, args, stdin=False):
        self.args = args
        self.p = subprocess.Popen(
            args,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            text=True,
            bufsize=1,
        )
        self.lines = queue.Queue()
        self.seen = []
        self.stderr = []
        self.readers = [
            threading.Thread(target=self._read, args=(self.p.stdout, self.lines), daemon=True),
            threading.Thread(target=self._read_err, daemon=True),
        ]
        for reader in self.readers:
            reader.start()

    @staticmethod
    def _read(stream, q):
        for line in stream:
            line = line.strip()
            if not line:
                continue
            try:
                q.put((time.clock_gettime(time.CLOCK_BOOTTIME) * 1000, json.loads(line)))
            except ValueError:
                q.put((time.clock_gettime(time.CLOCK_BOOTTIME) * 1000, {"text": line}))

    def _read_err(self):
        for line in self.p.stderr:
            self.stderr.append(line)

    def next(self, timeout, pred=lambda m: True, what="a line"):
        """The next line matching `pred` (earlier ones are kept in self.seen)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}; saw {self.seen[-20:]}; stderr {''.join(self.stderr[-20:])}")
            try:
                _, msg = self.lines.get(timeout=min(left, 0.2))
            except queue.Empty:
                continue
            self.seen.append(msg)
            if pred(msg):
                return msg

    def drain(self):
        out = []
        while True:
            try:
                out.append(self.lines.get_nowait()[1])
            except queue.Empty:
                self.seen.extend(out)
                return out

    def send(self, text):
        self.p.stdin.write(text + "\n")
        self.p.stdin.flush()

    def alive(self):
        return self.p.poll() is None

    def signal(self, sig):
        self.p.send_signal(sig)

    def kill(self):
        if self.alive():
            self.p.kill()
        self.p.wait(timeout=10)
        # The readers end at EOF once the process is gone; then the pipes can be closed
        # (pytest.ini turns the ResourceWarning of an unclosed pipe into an error).
        for reader in self.readers:
            reader.join(timeout=5)
        for stream in (self.p.stdin, self.p.stdout, self.p.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture
def procs():
    """Starts processes; kills whatever is left at teardown."""
    started = []

    def start(args, stdin=False):
        proc = Proc(args, stdin=stdin)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        try:
            proc.kill()
        except Exception:
            pass
