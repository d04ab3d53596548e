"""`heartbeater elect` (issue 16): COMMAND runs only while its candidate leads. Two
candidates; SIGTERM hands over at once; a revoked lease stops the leader's COMMAND and
starts a new term with a larger token; a SIGKILLed candidate takes its COMMAND with it.
The COMMANDs log start/stop with CLOCK_REALTIME, and the test checks the runs never
overlap and the tokens only grow. About 5 s."""

import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "harness"))

from etcd import pid_alive, wait_until  # noqa: E402

# The leader's work: log start (with its token and pid), and stop on SIGTERM.
WORKER = r"""
import os, signal, sys, time
log, name = sys.argv[1], sys.argv[2]
def w(what):
    with open(log, "a") as f:
        f.write(f"{time.clock_gettime(time.CLOCK_REALTIME):.6f} {name} {what} "
                f"{os.environ['HEARTBEATER_ELECTION_TOKEN']} {os.getpid()}\n")
def term(*_):
    w("stop")
    sys.exit(0)
signal.signal(signal.SIGTERM, term)
w("start")
while True:
    time.sleep(1)
"""


def entries(log):
    if not os.path.exists(log):
        return []
    with open(log) as f:
        return [line.split() for line in f if line.strip()]


def started(log, name, after=0):
    return [e for e in entries(log)[after:] if e[1] == name and e[2] == "start"]


def candidate(heartbeater_bin, etcd, log, name):
    with open(f"{log}.{name}.stderr", "a") as err:
        return subprocess.Popen(
            [heartbeater_bin, "elect", etcd.url("/svc"), "--name", "db", "--value", name, "--ttl", "3s",
             "--grace", "2s", "--", sys.executable, "-c", WORKER, log, name],
            stdout=subprocess.DEVNULL, stderr=err)


def test_command_runs_only_while_leader(etcd, heartbeater_bin, tmp_path):
    log = str(tmp_path / "runs.log")
    a = candidate(heartbeater_bin, etcd, log, "A")
    wait_until(lambda: started(log, "A"), 10, what="A's COMMAND started")
    b = candidate(heartbeater_bin, etcd, log, "B")
    wait_until(lambda: len(etcd.keys_with_leases("/svc/election/db/")) == 2, 10, what="B campaigning")

    # SIGTERM: A stops its COMMAND, resigns, and B leads without waiting for the 3 s TTL.
    t0 = time.monotonic()
    a.send_signal(signal.SIGTERM)
    assert a.wait(10) == 0
    wait_until(lambda: started(log, "B"), 10, what="B's COMMAND started")
    handover = time.monotonic() - t0
    assert handover < 2.0, f"handover took {handover:.2f}s"

    # B's lease revoked by hand: its COMMAND is stopped, and B leads again in a new term.
    n = len(entries(log))
    (lease,) = etcd.keys_with_leases("/svc/election/db/").values()
    etcd.etcdctl("lease", "revoke", format(lease, "x"))
    wait_until(lambda: started(log, "B", after=n), 10, what="B's COMMAND started again")

    # SIGKILL: no goodbye, but B's COMMAND dies with it (no orphan acting as leader).
    worker_pid = int(started(log, "B")[-1][4])
    b.kill()
    b.wait(10)
    wait_until(lambda: not pid_alive(worker_pid), 5, what="B's COMMAND gone with B")

    # The runs never overlap (each stop precedes the next start), and tokens only grow.
    runs = entries(log)
    events = [(e[2], float(e[0]), int(e[3])) for e in runs]
    assert [e[0] for e in events] == ["start", "stop", "start", "stop", "start"], runs
    times = [e[1] for e in events]
    assert times == sorted(times), runs
    tokens = [e[2] for e in events if e[0] == "start"]
    assert tokens == sorted(set(tokens)), runs
    print(f"handover after SIGTERM: {handover:.3f}s; tokens {tokens}")


def test_bad_input_is_named(heartbeater_bin, tmp_path):
    out = subprocess.run([heartbeater_bin, "elect", "udp://127.0.0.1:9", "--name", "db", "--", "true"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 2 and "endpoint" in out.stderr and "udp://127.0.0.1:9" in out.stderr, out.stderr
    out = subprocess.run([heartbeater_bin, "elect", "etcd://127.0.0.1:9/p", "--name", "db", "--grace", "soon",
                          "--", "true"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 2 and "grace" in out.stderr and "soon" in out.stderr, out.stderr
