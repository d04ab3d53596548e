"""Fencing in direct mode (issue 10): a client beats to one or two monitors through
relays, and at a random moment it is cut off: the relay killed, the relay dropping
everything, or the client SIGSTOPped past its TTL. Every time, over UDP and TCP:

- `check()` has stopped passing strictly before any monitor that acknowledged the client
  reports it `dead`: the client's last passing check (`beat --watch-fencing`, stamped when
  the check began) began before the monitor's `dead` event. A check that spans the event
  cannot be judged from outside (a SIGSTOP can land between the check and its time stamp:
  seen once under scripts/stress, 3.5 ms), but the client keeps checking every 1 ms with
  its paths cut, so a client that passed wrongly would pass again, later;
- `dead` comes no later than TTL + one sweeper tick after the last beat the monitor
  received (the relay's last send towards it bounds that from below).

HB_FENCING_TRIALS sets the number of trials per transport (default 50)."""

import json
import os
import random
import re
import signal
import threading
import time

import pytest

from faultline import Faultline, now_us
from procs import MonitorProc, beat

TRIALS = int(os.environ.get("HB_FENCING_TRIALS", "50"))
LANES = 5  # trials running at once; lanes 3 and 4 use both monitors
TICK_MS = 10  # the sweeper's wheel tick
# The sweeper's own wake-up on a loaded machine (it is a thread like any other) and the
# ms resolution of event stamps; reported below with the worst figure seen.
SCHEDULING_MS = 40
FAULTS = ("kill_relay", "drop_all", "sigstop")


def dead_event(monitor, peer):
    for _, line in monitor.stdout:
        ev = json.loads(line)
        if ev["peer"] == peer and ev["to"] == "dead":
            return ev
    return None


def fencing_lines(proc):
    out = []
    for _, line in proc.stdout:
        m = re.match(r"fencing (valid|invalid) at_unix_us=(\d+)(?: last_valid_unix_us=(\d+))?", line)
        if m:
            out.append((m.group(1), int(m.group(2)), int(m.group(3) or 0)))
    return out


def run_trial(bin_path, monitors, scheme, rng, name, results):
    ttl_ms = rng.choice([1000, 1500, 2000])
    interval = rng.choice(["50ms", "100ms", "100ms..1s"])
    relays = [Faultline(scheme, m.udp_addr if scheme == "udp" else m.tcp_addr) for m in monitors]
    endpoint = ",".join(r.endpoint for r in relays)
    client = beat(bin_path, endpoint, name, "--ttl", f"{ttl_ms}ms", "--interval", interval,
                  "--watch-fencing", "1ms")
    try:
        for m in monitors:
            m.wait_for(lambda: any(json.loads(l)["peer"] == name and json.loads(l)["to"] == "alive"
                                   for _, l in m.stdout), 15, f"{name} alive")
        client.wait_for(lambda: any(v == "valid" for v, _, _ in fencing_lines(client)), 15, f"{name} valid")
        time.sleep(rng.uniform(0.2, 1.2))  # the random moment of the fault
        fault = rng.choice(FAULTS)
        # With two monitors a relay fault may cut one path only; SIGSTOP silences both.
        cut = list(range(len(relays)))
        if fault != "sigstop" and len(relays) == 2 and rng.random() < 0.5:
            cut = [rng.randrange(2)]
        if fault == "sigstop":
            client.signal(signal.SIGSTOP)
        for i in cut:
            relays[i].kill() if fault == "kill_relay" else relays[i].drop() if fault == "drop_all" else None
        deads = []
        for i in cut:
            m = monitors[i]
            ev = m.wait_for(lambda: dead_event(m, name), ttl_ms / 1000 + 10, f"{name} dead")
            deads.append((i, ev))
        if fault == "sigstop":
            # Resume with the paths down, so the first check after it must fail.
            for r in relays:
                r.drop()
            client.signal(signal.SIGCONT)
        def lost_validity():
            lines = fencing_lines(client)
            first_valid = next(i for i, l in enumerate(lines) if l[0] == "valid")
            return [l for l in lines[first_valid:] if l[0] == "invalid"]

        inv = client.wait_for(lost_validity, 15, f"{name} fencing invalid")[0]
        last_valid_us = inv[2]
        for i, ev in deads:
            dead_us = ev["at_unix_ms"] * 1000
            last_up_ms = relays[i].last_up_us / 1000
            results.append({
                "scheme": scheme, "fault": fault, "monitors": len(monitors), "cut": len(cut),
                "ttl_ms": ttl_ms, "interval": interval,
                # > 0: check() had stopped passing this long before the monitor said dead.
                "fence_lead_ms": (dead_us - last_valid_us) / 1000,
                "dead_after_last_beat_ms": ev["at_unix_ms"] - last_up_ms,
            })
    finally:
        client.signal(signal.SIGCONT)
        client.popen.kill()
        client.stop(timeout=3)
        for r in relays:
            r.close()


@pytest.mark.parametrize("scheme", ["udp", "tcp"])
def test_check_fails_before_any_monitor_reports_dead(heartbeater_bin, procs, scheme):
    monitors = [MonitorProc(str(heartbeater_bin), listen="udp://127.0.0.1:0,tcp://127.0.0.1:0") for _ in range(2)]
    procs.extend(monitors)
    results, errors = [], []
    seed = int(os.environ.get("HB_FENCING_SEED", str(random.randrange(1 << 30))))

    def lane(n):
        rng = random.Random(seed * 31 + n)
        try:
            for t in range(n, TRIALS, LANES):
                run_trial(str(heartbeater_bin), monitors if n >= 3 else monitors[:1], scheme, rng,
                          f"fence-{scheme}-{t}", results)
        except BaseException as e:  # reported below with the seed
            errors.append(f"lane {n}: {e!r}")

    threads = [threading.Thread(target=lane, args=(n,)) for n in range(LANES)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, f"seed {seed}: {errors}"
    assert len(results) >= TRIALS, results

    lead = sorted(r["fence_lead_ms"] for r in results)
    late = sorted(r["dead_after_last_beat_ms"] - r["ttl_ms"] for r in results)
    by_fault = {f: sum(r["fault"] == f for r in results) for f in FAULTS}
    print(f"\n{scheme}: {len(results)} convictions over {TRIALS} trials (seed {seed}), faults {by_fault}; "
          f"check() stopped passing {lead[0]:.1f}..{lead[-1]:.1f} ms before dead (median "
          f"{lead[len(lead) // 2]:.1f}); dead - last beat - TTL: max {late[-1]:+.1f} ms")
    for r in results:
        assert r["fence_lead_ms"] > 0, f"seed {seed}: check() passed at or after dead: {r}"
        bound = r["ttl_ms"] + TICK_MS + SCHEDULING_MS
        assert r["dead_after_last_beat_ms"] <= bound, f"seed {seed}: dead later than TTL + tick: {r}"
