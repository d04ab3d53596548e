"""Python footprint: import time, and the RSS added by the first Client and each further one.

    python bench/footprint.py [--clients 10] [--runs 7] [--json out.json]

Every measurement runs in a fresh interpreter (this file re-executes itself with
``--probe``). The reference in the same run is a bare interpreter importing only the
standard library modules heartbeater itself imports.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from typing import Any, Dict, List

STDLIB_REFERENCE = "import asyncio, atexit, collections, concurrent.futures, dataclasses, datetime, logging, weakref"


def rss_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def probe_import(what: str) -> Dict[str, Any]:
    t0 = time.perf_counter()
    if what == "heartbeater":
        import heartbeater  # noqa: F401
    else:
        exec(STDLIB_REFERENCE)
    return {"import_s": time.perf_counter() - t0, "rss_kib": rss_kib()}


def probe_clients(n: int) -> Dict[str, Any]:
    import heartbeater

    port = free_udp_port()
    monitor = heartbeater.Monitor(f"udp://127.0.0.1:{port}")
    started = True
    try:
        monitor.start()
    except heartbeater.HeartbeaterError:
        started = False  # engine not built in: measure created (not started) clients
    time.sleep(0.2)
    rss = [rss_kib()]
    clients = []
    for i in range(n):
        c = heartbeater.Client(f"udp://127.0.0.1:{port}", service="bench", instance_id=f"c{i}", interval=0.2, ttl=2.0)
        if started:
            c.start()
        clients.append(c)
        time.sleep(0.3)  # let its threads/tasks and first beats settle
        rss.append(rss_kib())
    for c in clients:
        c.stop()
    if started:
        monitor.stop()
    return {"started": started, "rss_kib": rss}


def run_probe(args: List[str]) -> Dict[str, Any]:
    out = subprocess.run([sys.executable, __file__, "--probe", *args], capture_output=True, text=True, check=True).stdout
    return dict(json.loads(out))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--clients", type=int, default=10)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--json", help="also write the results here")
    ap.add_argument("--probe", nargs="+", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.probe:
        kind = a.probe[0]
        result = probe_clients(int(a.probe[1])) if kind == "clients" else probe_import(kind)
        print(json.dumps(result))
        return

    ref = [run_probe(["stdlib"]) for _ in range(a.runs)]
    hb = [run_probe(["heartbeater"]) for _ in range(a.runs)]
    clients = run_probe(["clients", str(a.clients)])
    rss = clients["rss_kib"]
    further = [rss[i + 1] - rss[i] for i in range(1, len(rss) - 1)]
    import heartbeater

    results = {
        "heartbeater_version": heartbeater.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "import_ms_median": 1000 * statistics.median(r["import_s"] for r in hb),
        "reference_stdlib_import_ms_median": 1000 * statistics.median(r["import_s"] for r in ref),
        "rss_after_import_kib": statistics.median(r["rss_kib"] for r in hb),
        "reference_rss_after_stdlib_kib": statistics.median(r["rss_kib"] for r in ref),
        "clients_started": clients["started"],
        "first_client_kib": rss[1] - rss[0],
        "further_client_kib_median": statistics.median(further) if further else None,
        "further_client_kib_max": max(further) if further else None,
        "rss_series_kib": rss,
    }
    rows = [
        ("import heartbeater (median ms)", f"{results['import_ms_median']:.1f}"),
        ("  reference: stdlib modules it uses (ms)", f"{results['reference_stdlib_import_ms_median']:.1f}"),
        ("RSS after import (KiB)", f"{results['rss_after_import_kib']:.0f}"),
        ("  reference: after stdlib imports (KiB)", f"{results['reference_rss_after_stdlib_kib']:.0f}"),
        (f"RSS added by the first Client (KiB){'' if clients['started'] else ' [not started]'}", f"{results['first_client_kib']}"),
        ("RSS added by each further Client (median KiB)", f"{results['further_client_kib_median']}"),
        ("RSS added by each further Client (max KiB)", f"{results['further_client_kib_max']}"),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"heartbeater {results['heartbeater_version']} on Python {results['python']} ({results['machine']}), {a.runs} runs")
    for name, value in rows:
        print(f"{name:<{width}}  {value:>10}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=2)
        print(f"wrote {os.path.abspath(a.json)}")


if __name__ == "__main__":
    main()
