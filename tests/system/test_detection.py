"""Acceptance 4: detection through `heartbeater relay` (100-500 ms jitter, 5% loss),
1 s interval, 50 peers, 60 s. The relay tees the same impaired traffic to an adaptive and
a phi-accrual monitor. Every crash (SIGKILL) must be detected; the adaptive detector must
report 0 false `dead`. Both detectors' detection times are written to
target/detection-system.json for docs/benchmarks.md."""

import json
import os
import pathlib
import random
import signal
import time

from procs import MonitorProc, Proc, beat, now_ms

PEERS, KILL, RUN_S = 50, 5, 60


def p99(values):
    s = sorted(values)
    return s[max(0, -(-99 * len(s) // 100) - 1)] if s else None


def test_detection_through_relay(heartbeater_bin, procs):
    monitors = {d: MonitorProc(heartbeater_bin, "--detector", d) for d in ("adaptive", "phi")}
    procs.extend(monitors.values())
    relay = Proc([heartbeater_bin, "relay", "--listen", "udp://127.0.0.1:0",
                  "--upstream", f"udp://{monitors['adaptive'].udp_addr}",
                  "--upstream", f"udp://{monitors['phi'].udp_addr}",
                  "--jitter", "100ms..500ms", "--loss", "5%", "--seed", "4"])
    procs.append(relay)
    relay_addr = relay.stderr_match(r"listening on (udp://[\d.]+:\d+)").group(1)

    ids = [f"peer-{i:02d}" for i in range(PEERS)]
    beats = {}
    for peer_id in ids:
        beats[peer_id] = beat(heartbeater_bin, relay_addr, peer_id, "--interval", "1s")
        procs.append(beats[peer_id])
    marks = {name: m.wait_all(ids, "alive", timeout=30) for name, m in monitors.items()}
    t0 = time.monotonic()

    rng = random.Random(4)
    victims = rng.sample(ids, KILL)
    schedule = sorted((rng.uniform(0.2, 0.5) * RUN_S, v) for v in victims)
    kill_ms = {}
    for at, victim in schedule:
        time.sleep(max(0.0, t0 + at - time.monotonic()))
        beats[victim].signal(signal.SIGKILL)
        kill_ms[victim] = now_ms()
    time.sleep(max(0.0, t0 + RUN_S - time.monotonic()))
    end_ms = now_ms()

    report = {}
    for name, m in monitors.items():
        detection, false_dead, suspicions = [], [], 0
        for peer_id in ids:
            evs = [e for e in m.events([peer_id], after_line=marks[name]) if e["at_unix_ms"] <= end_ms]
            up_until = kill_ms.get(peer_id, end_ms)
            false_dead += [e for e in evs if e["to"] == "dead" and e["at_unix_ms"] < up_until]
            suspicions += sum(1 for e in evs if e["to"] == "suspect" and e["at_unix_ms"] < up_until)
            if peer_id in kill_ms:
                dead = [e for e in evs if e["to"] == "dead" and e["at_unix_ms"] >= kill_ms[peer_id]]
                if dead:
                    detection.append(dead[0]["at_unix_ms"] - kill_ms[peer_id])
        report[name] = {"detected": len(detection), "killed": KILL, "detection_ms": sorted(detection),
                        "p50_ms": sorted(detection)[len(detection) // 2] if detection else None,
                        "p99_ms": p99(detection), "false_dead": len(false_dead), "false_suspicions": suspicions}
    print(json.dumps(report, indent=1))
    out = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", pathlib.Path(__file__).resolve().parents[2] / "target"))
    out.mkdir(parents=True, exist_ok=True)
    (out / "detection-system.json").write_text(json.dumps(report, indent=1) + "\n")

    for name, r in report.items():
        assert r["detected"] == KILL, f"{name}: only {r['detected']}/{KILL} crashes detected"
    assert report["adaptive"]["false_dead"] == 0, report["adaptive"]
