"""A 3-member etcd cluster on loopback for the fault tests: free ports, temp data dirs,
started and stopped (or frozen) by PID. The binary is tests/harness/etcd.py's (`ETCD_BIN`
names another one, e.g. an etcd 3.6 build). Status and deletes go through etcd's JSON
gateway (`/v3/...`), so a test can time them to a few milliseconds."""

import base64
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request

import etcd as harness


def b64(text):
    return base64.b64encode(text.encode()).decode()


class Member:
    def __init__(self, name, root):
        self.name = name
        self.client_port = harness.free_port()
        self.peer_port = harness.free_port()
        self.data_dir = os.path.join(root, name)
        self.log = os.path.join(root, name + ".log")
        self.proc = None

    @property
    def endpoint(self):
        return f"127.0.0.1:{self.client_port}"

    @property
    def peer_url(self):
        return f"http://127.0.0.1:{self.peer_port}"

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def post(self, path, body, timeout=10.0):
        # Generous: a write on a loaded host can take seconds; what the tests time is
        # bracketed by their own clock reads, not bounded by this.
        req = urllib.request.Request(f"http://{self.endpoint}{path}", data=json.dumps(body).encode(), method="POST")
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return json.loads(r.read().decode())

    def status(self):
        """(member id, leader id) as this member sees them; None if it does not answer."""
        try:
            s = self.post("/v3/maintenance/status", {}, timeout=1.0)
        except (OSError, ValueError):
            return None
        return int(s["header"]["member_id"]), int(s.get("leader", 0))


class Cluster:
    def __init__(self, size=3):
        self.root = tempfile.mkdtemp(prefix="hb-etcd-cluster-")
        self.members = [Member(f"m{i}", self.root) for i in range(size)]
        self.initial = ",".join(f"{m.name}={m.peer_url}" for m in self.members)

    def url(self, prefix="/services"):
        return "etcd://" + ",".join(m.endpoint for m in self.members) + prefix

    def start_member(self, m, state="new"):
        client = f"http://{m.endpoint}"
        args = [
            harness.ETCD, "--name", m.name, "--data-dir", m.data_dir,
            "--listen-client-urls", client, "--advertise-client-urls", client,
            "--listen-peer-urls", m.peer_url, "--initial-advertise-peer-urls", m.peer_url,
            "--initial-cluster", self.initial, "--initial-cluster-state", state,
            "--logger", "zap", "--log-outputs", "stderr",
        ]
        log = open(m.log, "ab")
        # Its own process group, not its own session: see tests/harness/etcd.py.
        m.proc = subprocess.Popen(args, stdout=log, stderr=log, stdin=subprocess.DEVNULL, process_group=0)
        log.close()

    def start(self):
        for m in self.members:
            self.start_member(m)
        self.wait_leader()
        return self

    def leader(self):
        """The member every answering member agrees leads, or None."""
        seen = {m.status() for m in self.members if m.proc}
        seen.discard(None)
        leaders = {lead for _, lead in seen}
        if len(leaders) != 1 or 0 in leaders:
            return None
        lead = leaders.pop()
        return next((m for m in self.members if m.proc and m.status() == (lead, lead)), None)

    def wait_leader(self, timeout=90, other_than=None):
        # Generous: an election and a member catching up take long on a loaded host.
        def found():
            m = self.leader()
            return m if m is not None and m is not other_than else None

        return harness.wait_until(found, timeout, interval=0.1, what="an etcd leader")

    def kill(self, m):
        harness.stop_pid(m.pid, kill=True)
        m.proc.wait(timeout=10)
        m.proc = None

    def freeze(self, m):
        os.kill(m.pid, signal.SIGSTOP)

    def thaw(self, m):
        os.kill(m.pid, signal.SIGCONT)

    def restart(self, m):
        """Starts a stopped member again with its data."""
        self.start_member(m, state="existing")

    def delete(self, key):
        """Deletes `key` through a member that has a leader; returns (t_before, t_after) in
        CLOCK_BOOTTIME ms around the request: etcd deleted the key between the two."""
        m = self.leader() or self.members[0]
        t0 = time.clock_gettime(time.CLOCK_BOOTTIME) * 1000
        out = m.post("/v3/kv/deleterange", {"key": b64(key)})
        t1 = time.clock_gettime(time.CLOCK_BOOTTIME) * 1000
        assert int(out.get("deleted", 0)) == 1, out
        return t0, t1

    def put(self, key, value):
        (self.leader() or self.members[0]).post("/v3/kv/put", {"key": b64(key), "value": b64(value)})

    def etcdctl_watch(self, member):
        """`etcdctl watch --prefix /` against `member` alone: the command line for a
        process whose output times every change as that member applies it."""
        return [harness.ETCDCTL, "--endpoints", f"http://{member.endpoint}", "watch", "--prefix", "/"]

    def version(self):
        """(major, minor) of the etcd binary."""
        out = subprocess.run([harness.ETCD, "--version"], capture_output=True, text=True, check=True).stdout
        major, minor = out.split("etcd Version:")[1].split()[0].split(".")[:2]
        return int(major), int(minor)

    def keys(self, prefix):
        """{key: value} under `prefix`, from whichever member answers."""
        end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        for m in self.members:
            if not m.proc:
                continue
            try:
                out = m.post("/v3/kv/range", {"key": b64(prefix), "range_end": b64(end)})
            except (OSError, ValueError):
                continue
            return {base64.b64decode(kv["key"]).decode(): base64.b64decode(kv.get("value", "")).decode() for kv in out.get("kvs", [])}
        return None

    def close(self):
        for m in self.members:
            if m.proc:
                try:
                    os.kill(m.pid, signal.SIGCONT)
                except ProcessLookupError:
                    pass
                harness.stop_pid(m.pid, kill=True)
                m.proc.wait(timeout=10)
                m.proc = None
        if os.environ.get("HB_ETCD_KEEP_LOGS"):
            print(f"etcd cluster logs kept in {self.root}")
        else:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()
