"""The Python driver of the conformance suite (tests/conformance/README.md): one test per
scenario file, every step of the README, handles made from generic text options.

A step this driver does not know fails the scenario; a scenario is n/a only where
capabilities.json says Python lacks what it `requires`. Error kinds come from the exception
class (through the native ERROR_CLASSES table), messages are `str(exc)`, the engine's text.
"""

from __future__ import annotations

import gc
import json
import os
import pathlib
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.request
import warnings
from collections import defaultdict
from typing import Any, Callable, Dict, Iterator, List, Optional, Union, get_args

import pytest

import heartbeater
import heartbeater._heartbeater as native
from conftest import REPO, require_or_skip

Handle = Union[heartbeater.Client, heartbeater.Monitor, heartbeater.Watcher, heartbeater.Election]


def find_suite() -> pathlib.Path:
    if os.environ.get("HB_CONFORMANCE_DIR"):
        return pathlib.Path(os.environ["HB_CONFORMANCE_DIR"])
    # Walk up from this file to the repository's tests/conformance/.
    for d in pathlib.Path(__file__).resolve().parents:
        if (d / "tests" / "conformance" / "scenarios").is_dir():
            return d / "tests" / "conformance"
    return REPO / "tests" / "conformance"


SUITE = find_suite()
SCENARIOS = sorted((SUITE / "scenarios").glob("*.json"))
KIND_OF_CLASS = {cls: kind for kind, cls in native.ERROR_CLASSES.items()}


class Failure(AssertionError):
    pass


def fail(what: str) -> Failure:
    return Failure(what)


def error_kind(e: BaseException) -> str:
    kind = KIND_OF_CLASS.get(type(e).__name__)
    if kind is None:
        raise fail(f"{type(e).__name__}: {e} is not one of the engine's error classes")
    return kind


class Recorder:
    """One handle's events, per peer, from its callback or from polling."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.queues: Dict[str, List[heartbeater.Event]] = defaultdict(list)
        self.in_order: List[heartbeater.Event] = []  # every peer's, as they came
        self.by_callback = False

    def push(self, ev: heartbeater.Event) -> None:
        with self.cond:
            self.queues[ev.peer].append(ev)
            self.in_order.append(ev)
            self.cond.notify_all()

    def take_through(self, i: int) -> None:
        """Consumes the first i + 1 events (of any peer)."""
        with self.cond:
            for ev in self.in_order[: i + 1]:
                self.queues[ev.peer].remove(ev)
            del self.in_order[: i + 1]

    def count(self, peer: str) -> int:
        with self.cond:
            return len(self.queues[peer])


class Driver:
    def __init__(self, etcd: Callable[[], str], hb_bin: Callable[[], str]) -> None:
        self.etcd = etcd
        self.hb_bin = hb_bin
        self.run = f"py{os.getpid()}-{secrets.token_hex(3)}"
        self.handles: Dict[str, Handle] = {}
        self.records: Dict[str, Recorder] = {}
        self.addrs: Dict[str, List[str]] = {}
        self.procs: Dict[str, subprocess.Popen[bytes]] = {}
        self.tokens: Dict[str, heartbeater.Token] = {}
        self.in_child = False

    # ---- running steps -------------------------------------------------------------

    def run_steps(self, steps: List[Dict[str, Any]], where: str = "") -> None:
        for i, raw in enumerate(steps):
            try:
                self.step(raw)
            except Failure as e:
                raise Failure(f"step {where}{i} {json.dumps(raw)}: {e}") from None

    def step(self, raw: Dict[str, Any]) -> None:
        s = {k: (v if k == "steps" else self.expand(v)) for k, v in raw.items()}
        do = s.get("do")
        run = getattr(self, f"do_{do}", None) if isinstance(do, str) else None
        if run is None:
            raise fail(f"unknown step {do!r}")
        run(s)

    def expand(self, value: Any) -> Any:
        if isinstance(value, str):
            return re.sub(r"\$\{([^}]+)\}", lambda m: self.variable(m.group(1)), value)
        if isinstance(value, list):
            return [self.expand(v) for v in value]
        if isinstance(value, dict):
            return {k: self.expand(v) for k, v in value.items()}
        return value

    def variable(self, name: str) -> str:
        if name == "run":
            return self.run
        if name == "etcd":
            return self.etcd()
        handle, _, scheme = name.partition(".")
        if scheme in ("udp", "tcp", "tls"):
            addrs = self.addrs.get(handle)
            if addrs is None:
                h = self.handle(handle)
                if not isinstance(h, heartbeater.Monitor):
                    raise fail(f"${{{name}}}: {handle} is not a monitor")
                addrs = h.local_addrs
            for a in addrs:
                if a.startswith(f"{scheme}://"):
                    return a
            raise fail(f"${{{name}}}: monitor {handle} has no {scheme} listener (bound: {addrs})")
        raise fail(f"unknown variable ${{{name}}}")

    def handle(self, name: str) -> Handle:
        try:
            return self.handles[name]
        except KeyError:
            raise fail(f"no handle {name!r} (never made, or freed)") from None

    def call(self, s: Dict[str, Any], fn: Callable[[], Any]) -> Any:
        """Runs `fn` against the step's expectation: an error (kind, message), or success
        (whose value the caller compares)."""
        expect = s.get("expect")
        wants_error = isinstance(expect, dict) and "error" in expect
        try:
            value = fn()
        except heartbeater.HeartbeaterError as e:
            if not wants_error:
                raise fail(f"expected success, got {error_kind(e)}: {e}") from None
            assert isinstance(expect, dict)
            self.check_error(e, expect)
            return None
        if wants_error:
            raise fail(f"expected error {expect}, but it succeeded (value {value!r})")
        return value

    @staticmethod
    def check_error(e: BaseException, expect: Dict[str, Any]) -> None:
        kind = error_kind(e)
        if kind != expect["error"]:
            raise fail(f"expected error {expect['error']}, got {kind}: {e}")
        if "message" in expect and str(e) != expect["message"]:
            raise fail(f"expected message {expect['message']!r}, got {str(e)!r}")
        if "contains" in expect and expect["contains"] not in str(e):
            raise fail(f"expected a message containing {expect['contains']!r}, got {str(e)!r}")

    @staticmethod
    def expect_value(s: Dict[str, Any], got: Any) -> None:
        expect = s.get("expect")
        if not isinstance(expect, dict) or "error" in expect:
            return
        if "value" in expect and got != expect["value"]:
            raise fail(f"expected value {expect['value']!r}, got {got!r}")
        if "value_min" in expect and got < expect["value_min"]:
            raise fail(f"expected at least {expect['value_min']}, got {got!r}")
        if "value_max" in expect and got > expect["value_max"]:
            raise fail(f"expected at most {expect['value_max']}, got {got!r}")

    # ---- handles ---------------------------------------------------------------------

    def make(self, s: Dict[str, Any], cls: Callable[..., Handle]) -> None:
        options = [(str(k), str(v)) for k, v in s.get("options", [])]
        h = self.call(s, lambda: cls(options=options))
        if h is not None:
            self.handles[s["as"]] = h
            self.records[s["as"]] = Recorder()

    def do_monitor(self, s: Dict[str, Any]) -> None:
        self.make(s, heartbeater.Monitor)

    def do_client(self, s: Dict[str, Any]) -> None:
        self.make(s, heartbeater.Client)

    def do_watcher(self, s: Dict[str, Any]) -> None:
        self.make(s, heartbeater.Watcher)

    def do_election(self, s: Dict[str, Any]) -> None:
        pairs = [(str(k), str(v)) for k, v in s.get("options", [])]
        endpoint = next(v for k, v in pairs if k == "endpoint")
        rest = {k: v for k, v in pairs if k != "endpoint"}
        h = self.call(s, lambda: heartbeater.Election(endpoint, s["name"], s.get("value", ""), options=rest))
        if h is not None:
            self.handles[s["as"]] = h
            self.records[s["as"]] = Recorder()

    def view(self, s: Dict[str, Any]) -> Union[heartbeater.Monitor, heartbeater.Watcher]:
        h = self.handle(s["h"])
        if not isinstance(h, (heartbeater.Monitor, heartbeater.Watcher)):
            raise fail(f"{s['h']} is not a monitor or watcher: no peers, no HTTP API")
        return h

    def election(self, s: Dict[str, Any]) -> heartbeater.Election:
        h = self.handle(s["h"])
        if not isinstance(h, heartbeater.Election):
            raise fail(f"{s['h']} is not an election")
        return h

    def do_campaign(self, s: Dict[str, Any]) -> None:
        h = self.election(s)
        self.call(s, lambda: h.campaign(timeout=s["timeout_ms"] / 1000))

    def do_resign(self, s: Dict[str, Any]) -> None:
        self.call(s, self.election(s).resign)

    def do_token(self, s: Dict[str, Any]) -> None:
        token = self.call(s, self.election(s).token)
        if token is None:
            return
        if "save" in s:
            self.tokens[s["save"]] = token
        above = s.get("expect", {}).get("greater_than")
        if above is not None:
            if above not in self.tokens:
                raise fail(f"no saved token {above!r}")
            if token.revision <= self.tokens[above].revision:
                raise fail(f"token revision {token.revision} not above {above}'s {self.tokens[above].revision}")

    def do_leader(self, s: Dict[str, Any]) -> None:
        # With within_ms, until it matches: the leader is what our watch has seen.
        h = self.election(s)
        deadline = time.monotonic() + s.get("within_ms", 0) / 1000
        expect = s.get("expect", {})
        while True:
            if "error" in expect:
                self.call(s, h.leader)
                return
            leader = h.leader()
            got = None if leader is None else leader.value.decode("utf-8", "replace")
            if "value" not in expect or got == expect["value"]:
                return
            if time.monotonic() > deadline:
                raise fail(f"leader {got!r}, expected {expect['value']!r}")
            time.sleep(0.02)

    def do_wait_event(self, s: Dict[str, Any]) -> None:
        """Until an event of any peer matches; consumes it and every one before it."""
        name, want = s["h"], s["expect"]
        rec = self.records[name]
        deadline = time.monotonic() + s.get("within_ms", 20000) / 1000
        while True:
            with rec.cond:
                seen = list(rec.in_order)
            for i, ev in enumerate(seen):
                got = ev.to_dict()
                if all(got.get(k) == v for k, v in want.items()):
                    rec.take_through(i)
                    return
            left = deadline - time.monotonic()
            if left <= 0:
                raise fail(f"no event {want} within {s.get('within_ms', 20000)} ms, got {[e.to_dict() for e in seen]}")
            if rec.by_callback:
                with rec.cond:
                    rec.cond.wait(min(left, 0.1))
            elif not self.poll(name, rec, min(left, 0.1)):
                time.sleep(min(left, 0.05))

    def do_start(self, s: Dict[str, Any]) -> None:
        h = self.handle(s["h"])
        if isinstance(h, heartbeater.Election):
            raise fail(f"{s['h']} is an election: no start (campaign)")
        self.call(s, h.start)
        if isinstance(h, heartbeater.Monitor) and h.phase == "running":
            self.addrs[s["h"]] = h.local_addrs  # for ${m.udp} once m is stopped

    def do_stop(self, s: Dict[str, Any]) -> None:
        h = self.handle(s["h"])
        self.call(s, h.stop)  # Client.stop(): the configured stop_timeout

    def do_free(self, s: Dict[str, Any]) -> None:
        self.handle(s["h"])
        del self.handles[s["h"]]
        gc.collect()

    def do_state(self, s: Dict[str, Any]) -> None:
        h = self.client(s)
        self.expect_value(s, self.call(s, lambda: h.state))

    def do_check(self, s: Dict[str, Any]) -> None:
        h = self.handle(s["h"])
        self.call(s, (h if isinstance(h, heartbeater.Election) else self.client(s)).check)

    def do_fencing_token(self, s: Dict[str, Any]) -> None:
        h = self.client(s)
        token = self.call(s, h.fencing_token)
        self.expect_value(s, None if token is None else list(token))

    def do_remaining(self, s: Dict[str, Any]) -> None:
        h = self.handle(s["h"])
        seconds = self.call(s, (h if isinstance(h, heartbeater.Election) else self.client(s)).remaining)
        self.expect_value(s, None if seconds is None else round(seconds * 1000))

    def do_incarnation(self, s: Dict[str, Any]) -> None:
        h = self.client(s)
        self.expect_value(s, self.call(s, lambda: h.incarnation))

    def client(self, s: Dict[str, Any]) -> heartbeater.Client:
        h = self.handle(s["h"])
        if not isinstance(h, heartbeater.Client):
            raise fail(f"{s['h']} is not a client")
        return h

    def do_peers(self, s: Dict[str, Any]) -> None:
        # With within_ms, until the list matches: a watcher's list follows etcd a round trip
        # after the event that announced the change.
        deadline = time.monotonic() + s.get("within_ms", 0) / 1000
        while True:
            try:
                return self.peers_once(s)
            except Failure:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    def peers_once(self, s: Dict[str, Any]) -> None:
        h = self.view(s)
        peers = self.call(s, h.peers)
        expect = s.get("expect")
        if peers is not None and isinstance(expect, dict) and "ids" in expect:
            ids = sorted(p.id for p in peers)
            if ids != sorted(expect["ids"]):
                raise fail(f"expected peers {expect['ids']}, got {ids}")

    def do_http_addr(self, s: Dict[str, Any]) -> None:
        h = self.view(s)
        addr = self.call(s, lambda: h.http_addr)
        if "error" in s["expect"]:
            return
        got = "none" if addr is None else "port 0" if addr.endswith(":0") else "serving"
        if got != s["expect"]["value"]:
            raise fail(f"http_addr {got} ({addr}), expected {s['expect']['value']}")

    def do_http_peers(self, s: Dict[str, Any]) -> None:
        # Until the API and peers() agree on what was expected: the two reads are not one snapshot.
        deadline = time.monotonic() + s.get("within_ms", 2000) / 1000
        while True:
            try:
                return self.http_peers_once(s)
            except (Failure, OSError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    def http_peers_once(self, s: Dict[str, Any]) -> None:
        """GET /v1/peers against expect.ids and against this language's own peers()."""
        h = self.view(s)
        if h.http_addr is None:
            raise fail(f"{s['h']} serves no HTTP API")
        with urllib.request.urlopen(f"http://{h.http_addr}/v1/peers", timeout=10) as resp:
            body = json.load(resp)

        def fields(id: str, service: str, labels: Any, state: str, incarnation: int) -> Dict[str, Any]:
            return {"id": id, "service": service, "labels": dict(labels), "state": state, "incarnation": incarnation}

        def order(p: Dict[str, Any]) -> Any:
            return (p["service"], p["id"])

        api = [fields(p["id"], p["service"], p["labels"], p["state"], p["incarnation"]) for p in body["peers"]]
        own = [fields(p.id, p.service, p.labels, p.state, p.incarnation) for p in h.peers()]
        ids = sorted(p["id"] for p in api)
        if ids != sorted(s["expect"]["ids"]):
            raise fail(f"GET /v1/peers ids {ids}, expected {s['expect']['ids']}")
        if sorted(api, key=order) != sorted(own, key=order):
            raise fail(f"GET /v1/peers {api}, peers() {own}")

    def do_wait_state(self, s: Dict[str, Any]) -> None:
        h = self.client(s)
        deadline = time.monotonic() + s["within_ms"] / 1000
        while (state := h.state) != s["value"]:
            if time.monotonic() > deadline:
                raise fail(f"state still {state!r} after {s['within_ms']} ms, expected {s['value']!r}")
            time.sleep(0.02)

    # ---- events ----------------------------------------------------------------------

    def do_next_event(self, s: Dict[str, Any]) -> None:
        h = self.handle(s["h"])
        ev = self.call(s, lambda: h.next_event(s["timeout_ms"] / 1000))
        expect = s.get("expect")
        if isinstance(expect, dict) and "error" in expect:
            return
        # None is the timeout, or the end of the stream: once stopped, every None is the end.
        seen = "end" if ev is None and getattr(h, "phase", None) == "stopped" else "timeout" if ev is None else ev.to_dict()
        if expect in ("timeout", "end"):
            if seen != expect:
                raise fail(f"expected {expect}, got {seen}")
        elif isinstance(expect, dict) and "event" in expect:
            if not isinstance(seen, dict):
                raise fail(f"expected an event, got {seen}")
            self.compare([expect["event"]], [ev])
        else:
            raise fail(f"unknown next_event expectation {expect!r}")

    def do_on_event(self, s: Dict[str, Any]) -> None:
        name, then = s["h"], s["then"]
        h = self.handle(name)
        rec = self.records[name]
        if then not in ("record", "stop", "free", "raise"):
            raise fail(f"unknown on_event then {then!r}")
        first = [True]

        def on_event(ev: heartbeater.Event) -> None:
            rec.push(ev)
            if not first[0]:
                return
            first[0] = False
            if then == "stop":
                self.handles[name].stop()
            elif then == "free":
                # The driver holds the only reference: dropping it here frees the handle
                # from inside its own callback.
                self.handles.pop(name, None)
                gc.collect()
            elif then == "raise":
                raise RuntimeError(f"conformance: {name}'s callback raises on its first event")

        rec.by_callback = True
        self.call(s, lambda: h.on_event(on_event))

    def poll(self, name: str, rec: Recorder, wait: float) -> bool:
        """One pull into the recorder; False at the end of the stream."""
        h = self.handle(name)
        ev = h.next_event(wait)
        if ev is not None:
            rec.push(ev)
            return True
        return getattr(h, "phase", None) != "stopped"  # an Election has no phase

    def wait_for(self, name: str, peer: str, n: int, within: float) -> List[heartbeater.Event]:
        rec = self.records[name]
        deadline = time.monotonic() + within
        while rec.count(peer) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            if rec.by_callback:
                with rec.cond:
                    rec.cond.wait(min(left, 0.1))
            elif not self.poll(name, rec, min(left, 0.1)):
                break
        with rec.cond:
            return list(rec.queues[peer])

    def do_events(self, s: Dict[str, Any]) -> None:
        name, peer, expect = s["h"], s["peer"], s["expect"]
        seen = self.wait_for(name, peer, len(expect), s["within_ms"] / 1000)
        if len(seen) < len(expect):
            raise fail(f"expected {len(expect)} events of {peer} within {s['within_ms']} ms, got {[e.to_dict() for e in seen]}")
        self.compare(expect, seen[: len(expect)])
        rec = self.records[name]
        with rec.cond:
            del rec.queues[peer][: len(expect)]

    def do_no_events(self, s: Dict[str, Any]) -> None:
        name, peer = s["h"], s["peer"]
        seen = self.wait_for(name, peer, 1, s["for_ms"] / 1000)
        if seen:
            raise fail(f"expected no events of {peer} for {s['for_ms']} ms, got {[e.to_dict() for e in seen]}")

    @staticmethod
    def compare(expect: List[Dict[str, Any]], seen: List[heartbeater.Event]) -> None:
        for i, (want, ev) in enumerate(zip(expect, seen)):
            got = ev.to_dict()
            for key, value in want.items():
                if key not in got:
                    raise fail(f"event {i}: no field {key!r} in {got}")
                if got[key] != value:
                    raise fail(f"event {i}: expected {want}, got {got}")

    # ---- processes -------------------------------------------------------------------

    def do_beat(self, s: Dict[str, Any]) -> None:
        args = [self.hb_bin(), "beat", *[str(a) for a in s["args"]]]
        with tempfile.TemporaryFile() as log:
            self.procs[s["as"]] = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=log)

    def do_kill(self, s: Dict[str, Any]) -> None:
        sig = {"KILL": signal.SIGKILL, "TERM": signal.SIGTERM}.get(s["signal"])
        if sig is None:
            raise fail(f"unknown signal {s['signal']!r}")
        p = self.procs.get(s["p"])
        if p is None:
            raise fail(f"no process {s['p']!r}")
        p.send_signal(sig)
        p.wait(timeout=20)

    def do_fork(self, s: Dict[str, Any]) -> None:
        r, w = os.pipe()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # "multi-threaded, fork()" (3.12+)
            pid = os.fork()
        if pid == 0:  # the child: never returns into pytest
            os.close(r)
            code = 1
            try:
                self.in_child = True
                self.run_steps(s["steps"], where="fork.")
                code = 0
            except Failure as e:
                os.write(w, str(e).encode())
            except BaseException:  # noqa: BLE001 - reported to the parent
                os.write(w, traceback.format_exc().encode())
            finally:
                os._exit(code)
        os.close(w)
        deadline = time.monotonic() + 45
        while (done := os.waitpid(pid, os.WNOHANG))[0] == 0:
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                done = os.waitpid(pid, 0)
                break
            time.sleep(0.01)
        with os.fdopen(r, "rb") as out:
            message = out.read().decode(errors="replace") or "(no message: killed after 45 s?)"
        code = os.waitstatus_to_exitcode(done[1])
        if code != 0:
            raise fail(f"the forked child exited {code}: {message}")

    # ---- names -----------------------------------------------------------------------

    def do_names(self, s: Dict[str, Any]) -> None:
        names = json.loads((SUITE / "names.json").read_text())
        ours = {
            "states": list(get_args(heartbeater.StateName)),
            "reasons": list(get_args(heartbeater.ReasonName)),
            "error_kinds": list(native.ERROR_CLASSES),
            "phases": list(get_args(heartbeater.PhaseName)),
        }
        for key, value in ours.items():
            if value != names[key]:
                raise fail(f"Python's {key} {value} differ from names.json {names[key]}")
        if native.STATES != names["states"] or native.REASONS != names["reasons"]:
            raise fail("the native module's STATES/REASONS differ from names.json")

    def close(self) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                p.kill()
                p.wait(timeout=10)
        for h in list(self.handles.values()):
            try:
                h.stop()
            except heartbeater.HeartbeaterError:
                pass
        self.handles.clear()
        gc.collect()


def test_the_suite_is_found() -> None:
    assert SCENARIOS, f"no scenarios in {SUITE / 'scenarios'} (set HB_CONFORMANCE_DIR)"


@pytest.fixture(scope="module")
def etcd_server() -> Iterator[Callable[[], str]]:
    """${etcd}: HB_CONFORMANCE_ETCD, else an etcd of our own from tests/harness/etcd.py
    (started on first use), else skipped (a failure with HEARTBEATER_REQUIRE_ALL=1)."""
    servers: List[Any] = []

    def endpoint() -> str:
        if os.environ.get("HB_CONFORMANCE_ETCD"):
            return os.environ["HB_CONFORMANCE_ETCD"]
        if not servers:
            harness_dir = REPO / "tests" / "harness"
            sys.path.insert(0, str(harness_dir))
            try:
                import etcd as harness  # type: ignore[import-not-found]
            finally:
                sys.path.remove(str(harness_dir))
            if not harness.available():
                require_or_skip("scenario needs etcd: set HB_CONFORMANCE_ETCD or install etcd-server/etcd-client")
            servers.append(harness.Etcd().__enter__())
        return str(servers[0].endpoint)

    yield endpoint
    for server in servers:
        server.__exit__(None, None, None)


def over(value: Any, transport: str, certs: pathlib.Path) -> Any:
    """The scenario as run over `transport` (tests/conformance/README.md, "Transports"):
    ``${transport}`` replaced, and each list element ``${tls.monitor}``, ``${tls.client}``
    (options) or ``${tls.beat}`` (CLI arguments) replaced by that side's TLS files, or by
    nothing over another transport."""

    def files(side: str) -> List[List[str]]:
        names = [("tls_ca_file", "ca.pem"), ("tls_cert_file", f"{side}.pem"), ("tls_key_file", f"{side}-key.pem")]
        return [[key, str(certs / name)] for key, name in names]

    flags = [x for (key, path) in files("client") for x in (f"--{key.replace('_', '-')}", path)]
    splices: Dict[str, List[Any]] = {
        "${tls.monitor}": files("monitor"),
        "${tls.client}": files("client"),
        "${tls.beat}": flags,
    }
    if isinstance(value, str):
        return value.replace("${transport}", transport)
    if isinstance(value, list):
        out: List[Any] = []
        for v in value:
            if isinstance(v, str) and v in splices:
                out.extend(splices[v] if transport == "tls" else [])
            else:
                out.append(over(v, transport, certs))
        return out
    if isinstance(value, dict):
        return {k: over(v, transport, certs) for k, v in value.items()}
    return value


def cases() -> List[Any]:
    """Every scenario, once per transport it lists (once as written without the list)."""
    out = []
    for p in SCENARIOS:
        for t in json.loads(p.read_text()).get("transports", [None]):
            out.append(pytest.param(p, t, id=p.stem if t is None else f"{p.stem}-over-{t}"))
    return out


@pytest.mark.parametrize("path, transport", cases())
def test_scenario(
    path: pathlib.Path, transport: Optional[str], etcd_server: Callable[[], str], request: pytest.FixtureRequest
) -> None:
    scenario = json.loads(path.read_text())
    if scenario.get("name") != path.stem:
        pytest.fail(f"{path.name}: name {scenario.get('name')!r} is not the file's name", pytrace=False)
    capabilities = json.loads((SUITE / "capabilities.json").read_text())["capabilities"]
    for need in scenario.get("requires", []):
        if need not in capabilities:
            pytest.fail(f"{path.name} requires {need!r}, which capabilities.json does not declare", pytrace=False)
        if capabilities[need].get("python") is not True:
            pytest.skip(f"n/a: {capabilities[need].get('python')}")

    def hb_bin() -> str:
        return str(request.getfixturevalue("hb_bin"))

    driver = Driver(etcd_server, hb_bin)
    certs = tempfile.TemporaryDirectory()
    request.addfinalizer(certs.cleanup)
    if transport is not None:
        scenario = over(scenario, transport, pathlib.Path(certs.name))
    if transport == "tls":
        ids = [driver.expand(i) for i in scenario.get("tls_ids", [])]
        subprocess.run([str(SUITE / "tls-certs"), certs.name, *ids], check=True)
    try:
        driver.run_steps(scenario["steps"])
    except Failure as e:
        pytest.fail(f"{path.name}: {e}", pytrace=False)
    finally:
        driver.close()
