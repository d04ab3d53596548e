"""`heartbeater watch --http`: the watcher's view over HTTP (docs/http.md). /v1/peers is
the registrations under the prefix, /readyz is 200 once listed, and /v1/events carries the
same transitions as `watch --json`, with resume. About 1 s with a local etcd."""

import json
import os
import sys
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "system"))
from procs import Proc  # noqa: E402

PREFIX = "/services"


def registration(ident, service, labels):
    return json.dumps({"id": ident, "service": service, "labels": labels, "incarnation": 1, "epoch": 1,
                       "started_unix_ms": 1, "state": "up"})


def get_json(url):
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.loads(r.read())


def test_watch_serves_its_view_over_http(etcd, heartbeater_bin):
    etcd.etcdctl("put", f"{PREFIX}/web/w1", registration("w1", "web", {"zone": "a"}))
    w = Proc([str(heartbeater_bin), "watch", etcd.url(PREFIX), "--json", "--http", "127.0.0.1:0"])
    try:
        base = w.stderr_match(r"http API on (http://[\d.:]+)/").group(1)
        w.stderr_match("watching")
        assert urllib.request.urlopen(f"{base}/readyz", timeout=5).status == 200
        etcd.etcdctl("put", f"{PREFIX}/db/d1", registration("d1", "db", {"zone": "b"}))
        w.wait_for(lambda: len(w.stdout) >= 2, 15, "two joined events")
        page = get_json(f"{base}/v1/peers")
        assert [(p["service"], p["id"], p["state"], p["labels"]) for p in page["peers"]] == \
            [("db", "d1", "alive", {"zone": "b"}), ("web", "w1", "alive", {"zone": "a"})]
        assert get_json(f"{base}/v1/peers/d1?service=db")["epoch"] == 1

        # The listing's event is in the history (the listener started before it), then the put's.
        printed = [json.loads(line) for _, line in w.stdout]
        req = urllib.request.Request(f"{base}/v1/events", headers={"Last-Event-ID": "0"})
        with urllib.request.urlopen(req, timeout=10) as stream:
            got, event_id = [], None
            while len(got) < len(printed):
                line = stream.readline().decode().rstrip("\n")
                if line.startswith("id: "):
                    event_id = int(line[4:])
                elif line.startswith("data: "):
                    got.append((event_id, json.loads(line[6:])))
        assert got == list(zip(range(1, len(printed) + 1), printed))
    finally:
        w.stop()
