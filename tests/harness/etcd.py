#!/usr/bin/env python3
"""The one etcd test helper, shared by the Rust, Go and Python tests.

Starts Debian's etcd (`etcd-server`, etcd 3.4) on free loopback ports with a temp data
dir, waits until it answers (with a deadline), and stops it by PID.

As a library (pytest)::

    from etcd import Etcd
    with Etcd() as etcd:
        etcd.endpoint            # "127.0.0.1:PORT"
        etcd.restart(wipe=True)  # same ports; wipe=True empties the data dir first

As a script (Rust via std::process::Command, Go via os/exec)::

    python3 tests/harness/etcd.py start [--data-dir D] [--tls-dir D] [--client-port P]
                                        [--peer-port P] [--metrics-port P]
        -> one JSON line {"pid", "endpoint", "client_port", "peer_port", "metrics_port",
                          "data_dir", "log"}; etcd keeps running.
    python3 tests/harness/etcd.py stop PID [--kill]

A restart is `start` again with the same --data-dir and ports. With --tls-dir the
directory must hold ca.pem, server.pem, server-key.pem, client.pem and client-key.pem;
etcd then serves https and requires client certificates.
"""

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ETCD = os.environ.get("ETCD_BIN", shutil.which("etcd") or "/usr/bin/etcd")
ETCDCTL = os.environ.get("ETCDCTL_BIN", shutil.which("etcdctl") or "/usr/bin/etcdctl")
START_DEADLINE_S = 20.0


def available():
    """True when the etcd and etcdctl binaries are installed."""
    return os.path.exists(ETCD) and os.path.exists(ETCDCTL)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped by its parent) is not alive.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


def stop_pid(pid, kill=False, timeout=10.0):
    """SIGTERM (or SIGKILL), then SIGKILL after `timeout`; returns once the process is gone."""
    try:
        os.kill(pid, signal.SIGKILL if kill else signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while pid_alive(pid):
        if time.monotonic() > deadline:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                return
            deadline = time.monotonic() + timeout
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        time.sleep(0.02)


class Etcd:
    """One etcd server. Ports are chosen once and kept across restarts."""

    def __init__(self, data_dir=None, tls_dir=None, client_port=None, peer_port=None, metrics_port=None):
        self._own_dir = data_dir is None
        self.data_dir = data_dir or tempfile.mkdtemp(prefix="hb-etcd-")
        self.tls_dir = tls_dir
        self.client_port = client_port or free_port()
        self.peer_port = peer_port or free_port()
        self.metrics_port = metrics_port or free_port()
        self.log = self.data_dir.rstrip("/") + ".log"
        self.proc = None
        self.pid = None

    # -- addresses -------------------------------------------------------------------
    @property
    def endpoint(self):
        return f"127.0.0.1:{self.client_port}"

    @property
    def scheme(self):
        return "https" if self.tls_dir else "http"

    def url(self, prefix="/services"):
        """The heartbeater endpoint URL: etcd://127.0.0.1:P/prefix."""
        return f"etcd://{self.endpoint}{prefix}"

    # -- lifecycle -------------------------------------------------------------------
    def start(self):
        os.makedirs(self.data_dir, exist_ok=True)
        client = f"{self.scheme}://127.0.0.1:{self.client_port}"
        peer = f"http://127.0.0.1:{self.peer_port}"
        args = [
            ETCD,
            "--name", "hb-test",
            "--data-dir", os.path.join(self.data_dir, "member-data"),
            "--listen-client-urls", client,
            "--advertise-client-urls", client,
            "--listen-peer-urls", peer,
            "--initial-advertise-peer-urls", peer,
            "--initial-cluster", f"hb-test={peer}",
            "--initial-cluster-state", "new",
            "--listen-metrics-urls", f"http://127.0.0.1:{self.metrics_port}",
            "--logger", "zap",
            "--log-outputs", "stderr",
        ]
        if self.tls_dir:
            d = self.tls_dir
            args += [
                "--cert-file", os.path.join(d, "server.pem"),
                "--key-file", os.path.join(d, "server-key.pem"),
                "--trusted-ca-file", os.path.join(d, "ca.pem"),
                "--client-cert-auth",
            ]
        log = open(self.log, "ab")
        # A process group of its own: a Ctrl-C in the test runner does not reach etcd first,
        # and the script form can exit while etcd keeps running. Not a session of its own:
        # on this kernel (6.18, autogroups on) a new session is a new scheduling group,
        # which a busy loop in another group can starve for 30 s and more (scripts/stress).
        self.proc = subprocess.Popen(args, stdout=log, stderr=log, stdin=subprocess.DEVNULL, process_group=0)
        log.close()
        self.pid = self.proc.pid
        self.wait_healthy()
        return self

    def wait_healthy(self, deadline_s=START_DEADLINE_S):
        deadline = time.monotonic() + deadline_s
        last = ""
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"etcd exited with {self.proc.returncode}; log {self.log}:\n{tail(self.log)}")
            try:
                # A linearizable read goes through raft: etcd has a leader and serves.
                self.etcdctl("get", "/heartbeater-health-probe", timeout=3)
                return
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as e:
                last = getattr(e, "output", "") or str(e)
                # With auth enabled an anonymous read is refused, which also means etcd serves.
                if "user name is empty" in last or "permission denied" in last:
                    return
            time.sleep(0.1)
        self.stop(kill=True)
        raise RuntimeError(f"etcd not healthy within {deadline_s}s: {last}\nlog {self.log}:\n{tail(self.log)}")

    def stop(self, kill=False):
        """Stops etcd (SIGTERM, or SIGKILL with kill=True) and waits until it is gone."""
        if self.pid is None:
            return
        stop_pid(self.pid, kill=kill)
        if self.proc is not None:
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        self.proc = None
        self.pid = None

    def restart(self, wipe=False, kill=True, down_for=0.0):
        """Stops etcd and starts it again on the same ports; wipe=True empties its data."""
        self.stop(kill=kill)
        if wipe:
            shutil.rmtree(os.path.join(self.data_dir, "member-data"), ignore_errors=True)
        if down_for:
            time.sleep(down_for)
        return self.start()

    def close(self):
        self.stop(kill=True)
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            try:
                os.unlink(self.log)
            except OSError:
                pass

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()

    # -- tools -----------------------------------------------------------------------
    def etcdctl(self, *args, timeout=10, user=None):
        """Runs etcdctl (API v3) against this server and returns its stdout."""
        cmd = [ETCDCTL, "--endpoints", f"{self.scheme}://{self.endpoint}", "--dial-timeout", "2s", "--command-timeout", "5s"]
        if self.tls_dir:
            d = self.tls_dir
            cmd += ["--cacert", os.path.join(d, "ca.pem"), "--cert", os.path.join(d, "client.pem"), "--key", os.path.join(d, "client-key.pem")]
        if user:
            cmd += ["--user", user]
        env = dict(os.environ, ETCDCTL_API="3")
        res = subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=timeout, env=env)
        if res.returncode != 0:
            raise subprocess.CalledProcessError(res.returncode, cmd + list(args), output=res.stdout + res.stderr)
        return res.stdout

    def get_prefix(self, prefix):
        """{key: value} of everything under `prefix`, via `etcdctl get --prefix -w json`."""
        import base64

        out = json.loads(self.etcdctl("get", "--prefix", prefix, "-w", "json"))
        return {
            base64.b64decode(kv["key"]).decode(): base64.b64decode(kv.get("value", "")).decode()
            for kv in out.get("kvs", [])
        }

    def keys_with_leases(self, prefix):
        """{key: lease id} for keys under `prefix` (0 when a key has no lease)."""
        import base64

        out = json.loads(self.etcdctl("get", "--prefix", prefix, "-w", "json"))
        return {base64.b64decode(kv["key"]).decode(): int(kv.get("lease", 0)) for kv in out.get("kvs", [])}

    def metrics(self):
        """etcd's own Prometheus metrics text."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as r:
            return r.read().decode()

    def info(self):
        return {
            "pid": self.pid,
            "endpoint": self.endpoint,
            "client_port": self.client_port,
            "peer_port": self.peer_port,
            "metrics_port": self.metrics_port,
            "data_dir": self.data_dir,
            "log": self.log,
        }


def metric_value(text, name, **labels):
    """Sum of the samples of metric `name` whose labels include `labels`."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name) or line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        metric, _, label_text = head.partition("{")
        if metric != name:
            continue
        if all(f'{k}="{v}"' in label_text for k, v in labels.items()):
            total += float(value)
    return total


def tail(path, lines=30):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return ""


def wait_until(predicate, timeout, interval=0.05, what="condition"):
    """Polls `predicate` until it returns a true value (returned) or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    start = sub.add_parser("start", help="start etcd and print one JSON line")
    start.add_argument("--data-dir")
    start.add_argument("--tls-dir")
    start.add_argument("--client-port", type=int)
    start.add_argument("--peer-port", type=int)
    start.add_argument("--metrics-port", type=int)
    stop = sub.add_parser("stop", help="stop the etcd with this PID")
    stop.add_argument("pid", type=int)
    stop.add_argument("--kill", action="store_true", help="SIGKILL instead of SIGTERM")
    args = parser.parse_args(argv)
    if args.cmd == "start":
        if not available():
            print(json.dumps({"error": f"etcd not installed ({ETCD}); apt-get install etcd-server etcd-client"}))
            return 2
        etcd = Etcd(args.data_dir, args.tls_dir, args.client_port, args.peer_port, args.metrics_port)
        try:
            etcd.start()
        except RuntimeError as e:
            print(json.dumps({"error": str(e)}))
            return 1
        print(json.dumps(etcd.info()), flush=True)
        return 0
    stop_pid(args.pid, kill=args.kill)
    return 0


if __name__ == "__main__":
    sys.exit(main())
