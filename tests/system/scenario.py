"""The kill scenario of acceptance 2, shared by the kill test and the flood test:
a monitor and 20 `beat` processes at --interval 200ms; 5 get SIGKILL and 1 SIGTERM.
The monitor must report exactly those 5 `dead` within 2 s, the SIGTERM one `left` within
0.5 s, and, once all 20 are alive, no transition at all for the 14 untouched peers."""

import signal
import time

from procs import beat, now_ms

PEERS = 20
DEAD_WITHIN_MS = 2000
LEFT_WITHIN_MS = 500


def start_beats(bin_path, monitor, procs, *extra):
    ids = [f"peer-{i:02d}" for i in range(PEERS)]
    beats = {}
    for peer_id in ids:
        p = beat(bin_path, f"udp://{monitor.udp_addr}", peer_id, "--interval", "200ms", *extra)
        procs.append(p)
        beats[peer_id] = p
    all_alive = monitor.wait_all(ids, "alive", timeout=15)
    return ids, beats, all_alive


def kill_and_check(monitor, ids, beats, all_alive, during=None):
    """Runs the kills (and `during()` right after them, e.g. a flood); checks the bounds.
    `all_alive` is the output mark from `start_beats`: every event printed after it counts."""
    killed, termed = ids[:5], ids[5]
    untouched = ids[6:]
    assert len(untouched) == 14

    kill_ms = {}
    for peer_id in killed:
        beats[peer_id].signal(signal.SIGKILL)
        kill_ms[peer_id] = now_ms()
    term_ms = now_ms()
    beats[termed].signal(signal.SIGTERM)
    if during is not None:
        during()

    monitor.wait_all(killed, "dead", timeout=10)
    monitor.wait_all([termed], "left", timeout=5)
    assert beats[termed].popen.wait(5) == 0, "beat must exit 0 after SIGTERM"

    for peer_id in killed:
        dead = [e for e in monitor.events([peer_id], after_line=all_alive) if e["to"] == "dead"]
        assert len(dead) == 1, (peer_id, dead)
        took = dead[0]["at_unix_ms"] - kill_ms[peer_id]
        assert took <= DEAD_WITHIN_MS, f"{peer_id} reported dead {took} ms after SIGKILL"
        assert dead[0]["reason"] == "timeout"

    left = [e for e in monitor.events([termed], after_line=all_alive) if e["to"] == "left"]
    assert len(left) == 1 and left[0]["reason"] == "left", left
    took = left[0]["at_unix_ms"] - term_ms
    assert took <= LEFT_WITHIN_MS, f"{termed} reported left {took} ms after SIGTERM"
    assert not [e for e in monitor.events([termed], after_line=all_alive) if e["to"] == "dead"]

    # Give a false conviction time to show up: well past the 2 s bound.
    time.sleep(3)
    noise = monitor.events(set(untouched), after_line=all_alive)
    assert noise == [], f"untouched peers had transitions: {noise}"
    return untouched
