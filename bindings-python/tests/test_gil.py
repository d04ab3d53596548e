"""Beats come from Rust threads: holding the GIL for 3 s in pure Python does not make a
monitor in another process suspect this client."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any, Dict, List

import heartbeater
from conftest import HELPERS, free_port


def spin(seconds: float) -> int:
    # A tight pure-Python loop: it holds the GIL (only the interpreter's switch interval
    # would hand it over, and no Python thread of ours is waiting for it).
    n = 0
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        n += 1
    return n


def test_holding_the_gil_does_not_stop_beats() -> None:
    mon = subprocess.Popen(
        [sys.executable, str(HELPERS / "monitor_json.py"), str(free_port())], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert mon.stdout is not None
        listen = json.loads(mon.stdout.readline())["listen"]
        addr = next(a for a in listen if a.startswith("udp://"))
        events: List[Dict[str, Any]] = []
        with heartbeater.Client(addr, service="gil", instance_id="spinner", interval=0.2, ttl=1.0):
            while not any(e["peer"] == "spinner" and e["to"] == "alive" for e in events):
                events.append(json.loads(mon.stdout.readline()))
            assert spin(3.0) > 0
            # Beats keep flowing for a moment after the spin, then a graceful leave.
            time.sleep(0.5)
        while not any(e["peer"] == "spinner" and e["to"] == "left" for e in events):
            events.append(json.loads(mon.stdout.readline()))
    finally:
        mon.terminate()
        mon.wait(timeout=10)
        for s in (mon.stdout, mon.stderr):
            if s is not None:
                s.close()
    mine = [(e["from"], e["to"], e["reason"]) for e in events if e["peer"] == "spinner"]
    assert all(to not in ("suspect", "dead") for _, to, _ in mine), mine
    assert mine[-1][1] == "left", mine
