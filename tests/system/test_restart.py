"""A `beat` killed and restarted at once under the same id is `restarted` at the monitor,
even within 100 ms of the killed one's start (same header incarnation: only the
incarnation_us extension tells the two processes apart), with and without an auth key
(with one, the new process's seq starting at 1 again must not be taken for a replay)."""

import signal
import time

import pytest

from procs import MonitorProc, beat

ROUNDS = 3
PEER = "crashloop"


def events_of(monitor, after_line):
    return monitor.events([PEER], after_line=after_line)


@pytest.mark.parametrize("auth", [False, True], ids=["open", "auth-key"])
def test_beat_killed_and_restarted_at_once_is_restarted(heartbeater_bin, procs, tmp_path, auth):
    extra = []
    if auth:
        key = tmp_path / "key"
        key.write_text("0123456789abcdef0123456789abcdef\n")
        extra = ["--auth-key-file", str(key)]
    monitor = MonitorProc(heartbeater_bin, *extra)
    procs.append(monitor)
    endpoint = f"udp://{monitor.udp_addr}"

    started = time.monotonic()
    current = beat(heartbeater_bin, endpoint, PEER, "--interval", "200ms", *extra)
    procs.append(current)
    monitor.wait_for(lambda: any(e["to"] == "alive" for e in events_of(monitor, 0)), 15, f"{PEER} registered")
    lifetimes_ms = []
    for round_no in range(ROUNDS):
        # Kill the process as soon as the monitor has heard it, and start the next one at
        # once (a crash loop): often within the same tenth of a second as the killed start.
        mark = len(monitor.stdout)
        current.signal(signal.SIGKILL)
        current.popen.wait(5)
        previous, started = started, time.monotonic()
        current = beat(heartbeater_bin, endpoint, PEER, "--interval", "200ms", *extra)
        procs.append(current)
        lifetimes_ms.append(round((started - previous) * 1000))
        restarted = monitor.wait_for(
            lambda: [e for e in events_of(monitor, mark) if e["reason"] == "restarted"], 10,
            f"round {round_no}: {PEER} restarted (previous process started {lifetimes_ms[-1]} ms earlier)")
        assert restarted[0]["from"] == "alive" and restarted[0]["to"] == "alive", restarted
        # Nothing else in between: no left (it was killed), no dead (restarted at once).
        assert [e["reason"] for e in events_of(monitor, mark)] == ["restarted"], events_of(monitor, mark)
    print(f"previous process started this many ms before each restart: {lifetimes_ms}")
    # The last process is a healthy, acknowledged peer (with a key: not taken for a replay).
    current.stderr_match(r"-> healthy")
    assert monitor.stop() == 0
