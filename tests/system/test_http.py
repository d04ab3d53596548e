"""`heartbeater monitor --http`: a real monitor process and real `beat` processes. The peer
JSON agrees with what the monitor reported and what the clients were told to be, a killed
peer turns `dead` in it, and the event stream carries exactly the monitor's `--json` lines,
in order (docs/http.md). About 1.5 s."""

import json
import signal
import urllib.error
import urllib.request

from procs import MonitorProc, beat

PEER_KEYS = {"id", "service", "labels", "state", "last_seen_unix_ms", "incarnation", "epoch", "interval_ms",
             "rtt_us", "addr"}


def get_json(url):
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.loads(r.read())


def read_transitions(resp, count):
    """`count` SSE transitions from an open response: [(id, event)]."""
    out, event_id, kind = [], None, None
    while len(out) < count:
        line = resp.readline().decode().rstrip("\n")
        if line.startswith("id: "):
            event_id = int(line[4:])
        elif line.startswith("event: "):
            kind = line[7:]
        elif line.startswith("data: ") and kind == "transition":
            out.append((event_id, json.loads(line[6:])))
    return out


def test_http_api_of_a_monitor_process(heartbeater_bin, procs):
    mon = MonitorProc(heartbeater_bin, "--http", "127.0.0.1:0")
    procs.append(mon)
    base = mon.stderr_match(r"http API on (http://[\d.:]+)/").group(1)
    assert get_json(f"{base}/v1/peers")["total"] == 0
    assert urllib.request.urlopen(f"{base}/readyz", timeout=5).status == 200
    stream = urllib.request.urlopen(f"{base}/v1/events?last_event_id=0", timeout=10)
    assert stream.headers["Content-Type"].startswith("text/event-stream")

    names = ["p1", "p2", "p3"]
    beats = {}
    for i, name in enumerate(names):
        beats[name] = beat(heartbeater_bin, f"udp://{mon.udp_addr}", name, "--interval", "100ms", "--ttl", "1s",
                           "--label", f"zone=z{i % 2}")
        procs.append(beats[name])
    mon.wait_all(names, "alive", timeout=10)

    page = get_json(f"{base}/v1/peers?service=systest")
    assert page["total"] == 3 and page["next_offset"] is None
    by_id = {p["id"]: p for p in page["peers"]}
    assert [p["id"] for p in page["peers"]] == names  # sorted by service, then id
    for i, name in enumerate(names):
        p = by_id[name]
        assert set(p) == PEER_KEYS, p
        registered = [e for e in mon.events([name]) if e["to"] == "alive"][0]
        assert (p["service"], p["state"], p["labels"], p["incarnation"]) == \
            ("systest", "alive", {"zone": f"z{i % 2}"}, registered["incarnation"])
        assert p["interval_ms"] == 100 and p["addr"].startswith("udp://127.0.0.1:")
    assert [p["id"] for p in get_json(f"{base}/v1/peers?label=zone%3Dz0")["peers"]] == ["p1", "p3"]
    assert get_json(f"{base}/v1/peers/p2")["labels"] == {"zone": "z1"}

    beats["p2"].signal(signal.SIGKILL)
    mon.wait_all(["p2"], "dead", timeout=10)
    assert get_json(f"{base}/v1/peers/p2")["state"] == "dead"
    assert [p["id"] for p in get_json(f"{base}/v1/peers?state=dead")["peers"]] == ["p2"]

    # The stream, opened before the first peer, has every transition the monitor printed.
    printed = [json.loads(line) for _, line in mon.stdout]
    got = read_transitions(stream, len(printed))
    assert [i for i, _ in got] == list(range(1, len(printed) + 1))
    assert [e for _, e in got] == printed
    stream.close()

    try:
        urllib.request.urlopen(f"{base}/v1/peers?sort=age", timeout=5)
        raise AssertionError("a bad parameter was accepted")
    except urllib.error.HTTPError as e:
        assert e.code == 400
        assert json.loads(e.read())["error"].startswith('sort "age": expected')
    assert "heartbeater_beats_received_total" in urllib.request.urlopen(f"{base}/metrics", timeout=5).read().decode()
    for name in ("p1", "p3"):  # first, so that their goodbye is answered
        assert beats[name].stop() == 0
    assert mon.stop() == 0
    try:
        urllib.request.urlopen(f"{base}/healthz", timeout=2)
        raise AssertionError("still serving after the monitor exited")
    except urllib.error.URLError:
        pass
