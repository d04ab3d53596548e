"""The status page (`GET /`, issue 15) in a real headless browser: Chromium from the
distribution, driven over the DevTools protocol. A monitor process with 50 `beat` peers;
the page, loaded once, lists all 50 `alive`; 5 peers are SIGKILLed and the same page, never
reloaded, shows exactly those 5 `dead` within their detection time (TTL 1 s) plus the
event's trip to the page. A screenshot is kept in the test's tmp dir (and, with
HB_STATUS_SCREENSHOT=PATH, written there: docs/img/status-page.png comes from it).
About 10 s."""

import base64
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request

import pytest

from procs import MonitorProc, beat

PEERS = 50
KILLED = 5
TTL_S = 1.0
# The page learns of a `dead` over the event stream: the monitor's own delay (TTL + one
# sweeper tick) plus delivery and a render, on a loaded machine.
PAGE_SLACK_S = 1.5


def chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


class Page:
    """One browser tab over the DevTools protocol (websocket-client)."""

    def __init__(self, ws_url):
        import websocket  # noqa: PLC0415 (only this test needs it)

        self.ws = websocket.create_connection(ws_url, timeout=30, suppress_origin=True)
        self.next_id = 0

    def call(self, method, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise AssertionError(f"{method}: {msg['error']}")
                return msg["result"]

    def eval(self, expression):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value")

    def rows(self):
        """{peer id: state} as the page shows it now."""
        got = self.eval("JSON.stringify([...document.querySelectorAll('tr[data-peer]')]"
                        ".map(r => [r.dataset.peer, r.dataset.state]))")
        return {peer.split("/", 1)[1]: state for peer, state in json.loads(got or "[]")}

    def close(self):
        self.ws.close()


@pytest.fixture
def browser(tmp_path, require_or_skip):
    exe = chromium()
    if exe is None:
        require_or_skip("chromium not installed: apt-get install chromium")
    try:
        import websocket  # noqa: F401, PLC0415
    except ImportError:
        require_or_skip("websocket-client not installed: python3 -m pip install websocket-client")
    log_path = tmp_path / "chromium.log"
    with open(log_path, "w") as log:  # a file, not a pipe: nobody reads it once started
        proc = subprocess.Popen(
            [exe, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--window-size=1280,1600",
             "--remote-debugging-port=0", f"--user-data-dir={tmp_path / 'profile'}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=log)

    def devtools_url():
        for line in log_path.read_text(errors="replace").splitlines():
            if line.startswith("DevTools listening on "):
                return line.split(" on ", 1)[1].strip()
        if proc.poll() is not None:
            raise AssertionError(f"chromium exited ({proc.returncode}): {log_path.read_text(errors='replace')[-2000:]}")
        return None

    ws_url = wait_for("chromium's DevTools address", 60, devtools_url)
    port = ws_url.split(":")[2].split("/")[0]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
        tab = next(t for t in json.loads(r.read()) if t["type"] == "page")
    page = Page(tab["webSocketDebuggerUrl"])
    yield page
    page.close()
    proc.kill()
    proc.wait(10)


def wait_for(what, timeout, predicate):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


def test_the_page_shows_killed_peers_dead_without_a_reload(heartbeater_bin, procs, browser, tmp_path):
    mon = MonitorProc(heartbeater_bin, "--http", "127.0.0.1:0")
    procs.append(mon)
    base = mon.stderr_match(r"http API on (http://[\d.:]+)/").group(1)
    names = [f"svc-{i:02d}" for i in range(PEERS)]
    beats = {}
    for i, name in enumerate(names):
        beats[name] = beat(heartbeater_bin, f"udp://{mon.udp_addr}", name, "--interval", "100ms",
                           "--ttl", f"{TTL_S}s", "--label", f"zone=z{i % 3}")
        procs.append(beats[name])
    mon.wait_all(names, "alive", timeout=60)

    browser.call("Page.enable")
    browser.call("Page.navigate", url=f"{base}/")
    wait_for("the page to list 50 peers alive", 30,
             lambda: (rows := browser.rows()) and len(rows) == PEERS and set(rows.values()) == {"alive"})
    wait_for("the page on the event stream", 10, lambda: browser.eval("document.getElementById('live').textContent") == "live")

    victims = names[::PEERS // KILLED][:KILLED]
    marker = browser.eval("window.__loaded = performance.timeOrigin; window.__loaded")
    t_kill = time.monotonic()
    for name in victims:
        beats[name].signal(signal.SIGKILL)
    shown = wait_for("the page to show the killed peers dead", TTL_S + PAGE_SLACK_S + 5,
                     lambda: (rows := browser.rows()) and all(rows.get(v) == "dead" for v in victims) and rows)
    took = time.monotonic() - t_kill
    assert browser.eval("window.__loaded") == marker, "the page was reloaded"
    assert {p for p, s in shown.items() if s == "dead"} == set(victims), shown
    assert sum(s == "alive" for s in shown.values()) == PEERS - KILLED, shown
    print(f"\nthe page showed {KILLED} killed peers dead {took:.2f} s after SIGKILL (TTL {TTL_S:.0f} s)")
    assert took <= TTL_S + PAGE_SLACK_S, f"page showed dead {took:.2f} s after the kill"
    # Counts and the timeline follow the same stream.
    counts = [browser.eval(f"document.getElementById('count-{s}')?.textContent") for s in ("alive", "dead")]
    assert counts == [f"alive {PEERS - KILLED}", f"dead {KILLED}"], counts
    timeline = browser.eval("document.getElementById('timeline').textContent")
    assert all(v in timeline for v in victims), timeline

    shot = base64.b64decode(browser.call("Page.captureScreenshot", format="png")["data"])
    assert shot.startswith(b"\x89PNG"), "not a PNG"
    (tmp_path / "status-page.png").write_bytes(shot)
    if os.environ.get("HB_STATUS_SCREENSHOT"):
        with open(os.environ["HB_STATUS_SCREENSHOT"], "wb") as f:
            f.write(shot)
    print(f"screenshot: {tmp_path / 'status-page.png'} ({len(shot)} bytes)")
