"""Running `heartbeater` processes in system tests: start, read their output live, wait
for conditions with a deadline, and always clean up (by PID, never by name)."""

import json
import re
import signal
import subprocess
import threading
import time
import urllib.request


def now_ms():
    return int(time.time() * 1000)


class Proc:
    """A child process whose stdout and stderr lines are collected by reader threads.
    With `raw=True` lines are split at b"\\n" only and decoded as UTF-8, so a CR or a
    U+2028 in the output stays visible (text mode splits at CR)."""

    def __init__(self, argv, raw=False):
        self.argv = argv
        self.raw = raw
        self.popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=not raw, bufsize=-1 if raw else 1)
        self.cond = threading.Condition()
        self.stdout = []
        self.stderr = []
        self.readers = [
            threading.Thread(target=self._read, args=(self.popen.stdout, self.stdout), daemon=True),
            threading.Thread(target=self._read, args=(self.popen.stderr, self.stderr), daemon=True),
        ]
        for r in self.readers:
            r.start()

    def _read(self, stream, sink):
        for line in stream:
            line = line.rstrip(b"\n").decode("utf-8") if self.raw else line.rstrip("\n")
            with self.cond:
                sink.append((now_ms(), line))
                self.cond.notify_all()
        stream.close()

    @property
    def pid(self):
        return self.popen.pid

    def wait_for(self, predicate, timeout, what):
        """Waits until predicate() (called under the lock) is truthy; returns its value."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                value = predicate()
                if value:
                    return value
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out after {timeout}s waiting for {what}; "
                                         f"stderr tail: {[l for _, l in self.stderr[-5:]]}")
                self.cond.wait(min(left, 0.1))

    def stderr_match(self, pattern, timeout=10):
        rx = re.compile(pattern)

        def find():
            for _, line in self.stderr:
                m = rx.search(line)
                if m:
                    return m
            return None

        return self.wait_for(find, timeout, f"stderr /{pattern}/")

    def signal(self, sig):
        if self.popen.poll() is None:
            self.popen.send_signal(sig)

    def stop(self, timeout=5):
        """SIGTERM, then SIGKILL if it does not exit in time; returns the exit code."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        for r in self.readers:
            r.join(2)
        return self.popen.returncode


class MonitorProc(Proc):
    """`heartbeater monitor --json`; `events` are the parsed JSON lines."""

    def __init__(self, bin_path, *extra, listen="udp://127.0.0.1:0"):
        super().__init__([bin_path, "monitor", "--listen", listen, "--json", *extra])
        m = self.stderr_match(r"listening on udp://([\d.]+):(\d+)")
        self.udp_addr = f"{m.group(1)}:{m.group(2)}"
        self.tcp_addr = None
        if "tcp://" in listen:
            m = self.stderr_match(r"listening on tcp://([\d.]+):(\d+)")
            self.tcp_addr = f"{m.group(1)}:{m.group(2)}"
        self.metrics_url = None
        if "--metrics-addr" in extra:
            m = self.stderr_match(r"metrics on (http://\S+)")
            self.metrics_url = m.group(1)

    def events(self, peers=None, since_ms=0, after_line=0):
        """Parsed events of `peers` stamped at or after `since_ms`, among the lines printed
        after the first `after_line` (a mark from `wait_all`: exact where a timestamp
        cannot be, since an event and the test's clock read can share a millisecond)."""
        out = []
        for _, line in self.stdout[after_line:]:
            ev = json.loads(line)
            if ev["at_unix_ms"] >= since_ms and (peers is None or ev["peer"] in peers):
                out.append(ev)
        return out

    def states(self):
        """Latest state per peer, from the transitions seen so far."""
        state = {}
        for _, line in self.stdout:
            ev = json.loads(line)
            state[ev["peer"]] = ev["to"]
        return state

    def wait_all(self, peers, state, timeout):
        """Waits until every peer's latest state is `state`; returns the number of output
        lines at that moment, so later checks can look at exactly what came after."""
        mark = self.wait_for(lambda: all(self.states().get(p) == state for p in peers) and [len(self.stdout)],
                             timeout, f"{len(peers)} peers {state}")
        return mark[0]

    def metrics(self):
        with urllib.request.urlopen(self.metrics_url, timeout=5) as r:
            return r.read().decode()


def beat(bin_path, endpoint, peer_id, *extra):
    return Proc([bin_path, "beat", "--endpoint", endpoint, "--service", "systest", "--id", peer_id, *extra])


def metric_values(text, name):
    """{label-set: value} for one metric family in Prometheus text exposition."""
    out = {}
    for line in text.splitlines():
        if line.startswith(name):
            key, value = line.rsplit(" ", 1)
            out[key[len(name):]] = float(value)
    return out
