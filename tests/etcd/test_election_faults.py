"""Election under faults (issue 16 acceptance, on one host): a 3-member etcd cluster, 5
candidates in 5 processes (hb-core's `election_candidate` example), randomised faults:
SIGKILL of the leading candidate, SIGSTOP of it past the TTL, a partition of it from etcd
past the TTL (each candidate reaches etcd through its own TCP proxies), SIGKILL of the etcd
leader.

Each candidate logs when its check() passes, with CLOCK_REALTIME µs (one host, one clock),
and writes every 20 ms while it passes to a register guarded by its token (an etcd txn).
Verified: at no instant do two candidates pass check(); the token strictly increases from
term to term; every accepted write lies in its writer's term and the accepted tokens never
go back; after every loss a new leader passes check() within TTL + 1 s (+ 1 s when the
loss follows an etcd leader change: see the end of the test).

HB_ELECTION_FAULTS=N (default 3, about 25 s; 100 take about 5 min), HB_ELECTION_SEED=S (default: random,
printed); ETCD_BIN names another etcd.
"""

import os
import random
import signal
import subprocess
import time

import pytest

import etcd as harness
from cluster import Cluster
from etcd import wait_until
from tcpproxy import TcpProxy

TTL_S = 3
CANDIDATES = 5
FAULTS = int(os.environ.get("HB_ELECTION_FAULTS", "3"))
SEED = int(os.environ.get("HB_ELECTION_SEED", str(random.randrange(1 << 30))))


def now_us():
    return time.clock_gettime(time.CLOCK_REALTIME) * 1e6


@pytest.fixture(scope="module")
def candidate_bin():
    root = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(root, "target"))
    path = os.path.join(target, "debug", "examples", "election_candidate")
    if not os.path.exists(path):
        subprocess.run(["cargo", "build", "-q", "-p", "hb-core", "--example", "election_candidate"], cwd=root, check=True)
    return path


class Candidate:
    def __init__(self, binary, cluster, log):
        self.log = log
        self.err = open(log + ".stderr", "ab")
        # Its own way to every etcd member, so that it alone can be cut off.
        self.proxies = [TcpProxy(m.endpoint) for m in cluster.members]
        url = "etcd://" + ",".join(p.endpoint for p in self.proxies) + "/svc"
        self.p = subprocess.Popen([binary, url, os.path.basename(log), f"{TTL_S}s", log],
                                  stdout=subprocess.DEVNULL, stderr=self.err, stdin=subprocess.DEVNULL)
        self.killed_at = None

    def lines(self):
        if not os.path.exists(self.log):
            return []
        with open(self.log) as f:
            return [line.split() for line in f if line.endswith("\n")]

    def leading(self):
        """True while its last check() turn was to passing."""
        ok = [l for l in self.lines() if l[0] in ("ok", "end")]
        return bool(ok) and ok[-1][0] == "ok"

    def partition(self):
        for p in self.proxies:
            p.partition()

    def heal(self):
        for p in self.proxies:
            p.heal()

    def kill(self):
        self.p.send_signal(signal.SIGCONT)
        self.p.kill()
        self.p.wait(10)
        self.killed_at = now_us()
        self.err.close()
        for p in self.proxies:
            p.close()


def runs(c, end_of_test):
    """[(start, end, token)] of one candidate's passing check(); an open run ends at its kill."""
    out, start = [], None
    for l in c.lines():
        if l[0] == "ok":
            start = (int(l[1]), int(l[2]))
        elif l[0] == "end" and start:
            out.append((start[0], int(l[1]), start[1]))
            start = None
    if start:
        out.append((start[0], c.killed_at or end_of_test, start[1]))
    return out


@pytest.mark.timeout(120 + 30 * FAULTS)
def test_at_most_one_leader_under_faults(candidate_bin, tmp_path, require_or_skip):
    if not harness.available():
        require_or_skip("etcd/etcdctl not installed: apt-get install etcd-server etcd-client")
    rng = random.Random(SEED)
    print(f"HB_ELECTION_SEED={SEED} HB_ELECTION_FAULTS={FAULTS}")
    with Cluster() as cluster:
        cluster.put("/register/token", "0" * 20)
        made = iter(range(1000))
        cands = [Candidate(candidate_bin, cluster, str(tmp_path / f"c{next(made)}")) for _ in range(CANDIDATES)]
        everyone = list(cands)
        try:
            losses = []  # (time of loss, what, whether the etcd leader changed just before)
            previous = None
            for i in range(FAULTS):
                leader = wait_until(lambda: next((c for c in cands if c.leading()), None), 30,
                                    what=f"a leader before fault {i}")
                fault = rng.choice(["kill", "freeze", "partition", "etcd_leader"])
                if fault == "kill":
                    leader.kill()
                    losses.append((leader.killed_at, fault, previous == "etcd_leader"))
                    cands.remove(leader)
                    fresh = Candidate(candidate_bin, cluster, str(tmp_path / f"c{next(made)}"))
                    cands.append(fresh)
                    everyone.append(fresh)
                elif fault == "freeze":
                    t = now_us()
                    leader.p.send_signal(signal.SIGSTOP)
                    losses.append((t, fault, previous == "etcd_leader"))
                    wait_until(lambda: any(c.leading() for c in cands if c is not leader), TTL_S + 10,
                               what="a new leader while the old one is frozen")
                    time.sleep(0.5)  # frozen past the TTL + takeover: the point of the fault
                    leader.p.send_signal(signal.SIGCONT)
                    # Thawed past its TTL: its first check() fails (logged as the end of its run).
                    wait_until(lambda: not leader.leading(), 5, what="the thawed leader failing check()")
                elif fault == "partition":
                    t = now_us()
                    leader.partition()
                    losses.append((t, fault, previous == "etcd_leader"))
                    wait_until(lambda: any(c.leading() for c in cands if c is not leader), TTL_S + 10,
                               what="a new leader while the old one is cut off from etcd")
                    # Cut off past the TTL, its check() has failed (before the new leader's
                    # first pass: the overlap check below); healed, it campaigns again.
                    wait_until(lambda: not leader.leading(), 5, what="the cut-off leader failing check()")
                    leader.heal()
                else:
                    m = cluster.wait_leader()
                    cluster.kill(m)
                    cluster.wait_leader()
                    cluster.restart(m)
                # A leader again, after the fault.
                t_fault = now_us()
                wait_until(lambda: any(c.leading() for c in cands), 30, what=f"a leader after fault {i} ({fault})")
                print(f"fault {i}: {fault}, leader again after {(now_us() - t_fault) / 1e3:.0f} ms")
                previous = fault
            time.sleep(0.2)
        finally:
            for c in cands:
                if c.p.poll() is None:
                    c.kill()
        end = now_us()

        # At most one passing check() at any instant, and a new token per term.
        all_runs = sorted((s, e, tok, c.log) for c in everyone for (s, e, tok) in runs(c, end))
        assert all_runs, "nobody ever led"
        for (s0, e0, t0, c0), (s1, e1, t1, c1) in zip(all_runs, all_runs[1:]):
            assert s1 > e0, f"overlap: {c0} passed until {e0}, {c1} from {s1}"
            assert t1 > t0 or (t1 == t0 and c1 == c0), f"token went from {t0} ({c0}) to {t1} ({c1})"
        terms = [r for i, r in enumerate(all_runs) if i == 0 or r[2] != all_runs[i - 1][2]]
        # The register: accepted writes lie in their writer's term; tokens never go back.
        writes = sorted((int(l[1]), int(l[2]), l[3], c.log) for c in everyone for l in c.lines() if l[0] == "w")
        accepted = [w for w in writes if w[2] == "accepted"]
        assert accepted, "no write was accepted"
        for (t, tok, _, who) in accepted:
            assert any(s <= t <= e and rt == tok and rc == who for s, e, rt, rc in all_runs), (t, tok, who)
        assert [w[1] for w in accepted] == sorted(w[1] for w in accepted)
        refused = sum(1 for w in writes if w[2] == "refused")
        failed = sum(1 for w in writes if w[2] == "failed")
        print(f"{len(terms)} terms, {len(accepted)} writes accepted, {refused} refused, {failed} unanswered")
        # Liveness last, once every safety property held: a new leader within TTL + 1 s of
        # each loss (all of them listed when one is late). Right after an etcd leader change
        # the dead leader's lease outlives its TTL by about a second (measured: takeovers
        # 3.4-4.4 s at TTL 3 s, the others 2.4-3.5 s), which fits etcd's new leader
        # extending every lease by its election timeout (1 s) as it takes over. Only there
        # is that second allowed.
        takeovers = []
        for i, (t_loss, what, after_etcd_change) in enumerate(losses):
            nxt = min((s for s, _, _, _ in all_runs if s > t_loss), default=None)
            assert nxt is not None, f"no leader after the {what} at {t_loss}"
            what = what + (" after an etcd leader change" if after_etcd_change else "")
            takeovers.append((what, (nxt - t_loss) / 1e3, TTL_S + 1 + (1 if after_etcd_change else 0)))
        for what in sorted({w for w, _, _ in takeovers}):
            ms = sorted(m for w, m, _ in takeovers if w == what)
            print(f"takeover after {what}: n={len(ms)} median {ms[len(ms) // 2]:.0f} ms, max {ms[-1]:.0f} ms")
        late = [(i, w, m) for i, (w, m, bound_s) in enumerate(takeovers) if m > bound_s * 1e3]
        assert not late, f"a new leader later than its bound after (loss index, fault, ms): {late}"
