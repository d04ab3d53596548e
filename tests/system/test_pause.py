"""The monitor's own pauses (issue 11's pause-guard gap): a real `heartbeater monitor` is
SIGSTOPped for 0.1 .. 3 s while 19 peers keep beating into its socket, with peers at 50 ms
and at 200 ms. No live peer may be suspected or declared dead for the monitor's own stall,
and a peer killed just before each stall must still be convicted soon after it."""

import json
import signal
import time

import pytest

from procs import MonitorProc, beat, now_ms

STALLS_S = [0.1, 0.25, 0.45, 0.49, 1.0, 3.0]
TTL_MS = 2000  # bounds the victim's deadline from outside: dead within TTL of the stall's end
TICK_MS = 10
SCHEDULING_MS = 40  # as in test_fencing.py


@pytest.mark.parametrize("interval", ["50ms", "200ms"])
def test_own_stalls_convict_nobody(heartbeater_bin, procs, interval):
    monitor = MonitorProc(str(heartbeater_bin))
    procs.append(monitor)
    live = [f"live-{interval}-{i}" for i in range(19)]
    for peer in live:
        procs.append(beat(str(heartbeater_bin), f"udp://{monitor.udp_addr}", peer, "--interval", interval,
                          "--ttl", f"{TTL_MS}ms"))
    monitor.wait_all(live, "alive", timeout=30)
    # Let the detectors learn the steady rhythm before judging anything.
    time.sleep(3)
    start_line = len(monitor.stdout)
    report = []
    for n, stall in enumerate(STALLS_S):
        victim = f"victim-{interval}-{n}"
        v = beat(str(heartbeater_bin), f"udp://{monitor.udp_addr}", victim, "--interval", interval,
                 "--ttl", f"{TTL_MS}ms")
        procs.append(v)
        monitor.wait_all([victim], "alive", timeout=15)
        time.sleep(1)
        v.popen.kill()  # a crash just before the stall: no goodbye
        v.popen.wait()
        monitor.signal(signal.SIGSTOP)
        time.sleep(stall)
        monitor.signal(signal.SIGCONT)
        resumed = now_ms()
        monitor.wait_all([victim], "dead", timeout=TTL_MS / 1000 + 10)
        dead = [e for e in monitor.events([victim]) if e["to"] == "dead"][0]
        report.append((stall, dead["at_unix_ms"] - resumed))
        assert dead["at_unix_ms"] <= resumed + TTL_MS + TICK_MS + SCHEDULING_MS, (stall, dead)
        time.sleep(0.5)  # a false alarm right after the conviction would show up here
    false_alarms = [e for e in monitor.events(live, after_line=start_line) if e["to"] in ("suspect", "dead")]
    print(f"\n{interval} peers: victim dead after each stall's end (ms): "
          + ", ".join(f"{s}s: {d}" for s, d in report) + f"; false alarms: {len(false_alarms)}")
    assert not false_alarms, false_alarms
