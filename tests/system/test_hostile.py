"""Issue 12: without a key, one forged datagram or a flood of them cannot take a live peer
out of a monitor or shut newcomers out; what they tried is counted, and a competing claim
on a live id is reported as a `conflict` (docs/protocol.md, "Claims on an id";
docs/states.md, "A full table")."""

import random
import socket
import threading

import wire
from procs import MonitorProc, beat, metric_values


def sender(host):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((host, 0))
    s.settimeout(0.2)
    return s


def target(monitor):
    host, port = monitor.udp_addr.rsplit(":", 1)
    return host, int(port)


def rejected(monitor):
    values = metric_values(monitor.metrics(), "heartbeater_frames_rejected_total")
    return {k.split('"')[1]: v for k, v in values.items() if '"' in k}


def test_forged_frames_do_not_take_a_live_peer_out(heartbeater_bin, procs):
    monitor = MonitorProc(heartbeater_bin, "--metrics-addr", "127.0.0.1:0")
    procs.append(monitor)
    procs.append(beat(heartbeater_bin, f"udp://{monitor.udp_addr}", "victim", "--interval", "100ms"))
    mark = monitor.wait_all(["victim"], "alive", timeout=15)
    # What any observer of the monitor's output knows: the header's incarnation. A frame
    # without incarnation_us carrying it is taken as the victim's own incarnation.
    inc = monitor.events(["victim"])[0]["incarnation"]
    with sender("127.0.0.2") as other, sender("127.0.0.1") as same:
        nacks, before = forge(monitor, other, same, inc)
    monitor.wait_for(lambda: any(e["reason"] == "conflict" for e in monitor.events(["victim"], after_line=mark)),
                     10, "a conflict reported for victim")
    after = rejected(monitor)
    delta = {r: after.get(r, 0) - before.get(r, 0) for r in after}
    print("rejected:", {r: v for r, v in delta.items() if v})
    assert delta["future_incarnation"] >= 30, delta
    assert delta["implausible_seq"] >= 20, delta
    assert delta["stale_leave"] >= 10, delta
    assert delta["conflict"] >= 20, delta
    assert any(kind == wire.NACK and reason == 7 for kind, _, reason in nacks), nacks
    events = monitor.events(["victim"], after_line=mark)
    assert [e["reason"] for e in events] == ["conflict"], events
    assert monitor.states()["victim"] == "alive"


def forge(monitor, other, same, inc):
    """Ten rounds of forged frames for `victim`, over about ten of its intervals; returns
    the replies `other` got and the rejection counts from before."""
    forged = [
        (other, wire.beat("victim", incarnation=2**32 - 1)),  # far future (header)
        (other, wire.beat("victim", incarnation=inc + 1, incarnation_us=2**63)),  # far future (µs)
        (same, wire.beat("victim", incarnation=2**32 - 1)),  # far future, from its own host
        (same, wire.leave("victim", seq=2**32 - 1, incarnation=inc)),  # no sender counts that fast
        (same, wire.beat("victim", seq=2**32 - 1, incarnation=inc)),
        (same, wire.leave("victim", seq=0, incarnation=inc)),  # older than its beats
        # A plausible newer incarnation from another host: a claim, held off.
        (other, wire.leave("victim", incarnation=inc + 1, incarnation_us=wire.unix_us())),
        (other, wire.beat("victim", incarnation=inc + 1, incarnation_us=wire.unix_us())),
    ]
    before = rejected(monitor)
    nacks = []
    for _ in range(10):
        for sock, data in forged:
            sock.sendto(data, target(monitor))
        try:
            while True:
                nacks.append(wire.parse_header(other.recv(2048)))
        except socket.timeout:
            pass
    return nacks, before


def test_new_peers_register_during_a_random_id_flood(heartbeater_bin, procs):
    monitor = MonitorProc(heartbeater_bin, "--max-peers", "4096", "--metrics-addr", "127.0.0.1:0")
    procs.append(monitor)
    procs.append(beat(heartbeater_bin, f"udp://{monitor.udp_addr}", "steady", "--interval", "100ms"))
    mark = monitor.wait_all(["steady"], "alive", timeout=15)

    stop = threading.Event()
    sent = [0]

    def flood():
        to, rng = target(monitor), random.Random(12)
        with sender("127.0.0.3") as s:
            while not stop.is_set():
                for _ in range(256):
                    s.sendto(wire.beat(f"made-up-{rng.getrandbits(48):012x}", flags=0), to)
                sent[0] += 256

    flooder = threading.Thread(target=flood, daemon=True)
    flooder.start()
    try:
        monitor.wait_for(lambda: sent[0] >= 20_000, 60, "20,000 made-up ids sent")
        procs.append(beat(heartbeater_bin, f"udp://{monitor.udp_addr}", "newcomer", "--interval", "100ms"))
        monitor.wait_all(["newcomer"], "alive", timeout=15)
        monitor.stderr_match(r"warning: in the last 5 s \d+ peers evicted", timeout=15)
    finally:
        stop.set()
        flooder.join()
    print("made-up ids sent:", sent[0])
    made_up = [e for e in monitor.events(after_line=mark) if e["peer"].startswith("made-up-")]
    # One host's share (1,024) may be reported before its new ids go on probation.
    assert len([e for e in made_up if e["reason"] == "registered"]) <= 1024, len(made_up)
    steady = monitor.events(["steady"], after_line=mark)
    assert steady == [], steady
    evicted = metric_values(monitor.metrics(), "heartbeater_peers_evicted_total")
    assert sum(evicted.values()) > 0, evicted
