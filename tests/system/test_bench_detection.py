"""`heartbeater bench detection`: a short recording of one profile through the relay to
the tap, then its replay (also again from the written trace with --replay). Checks the
trace, the table, the JSON figures and that the SVG frontier has a curve per reference
detector and heartbeater's operating points."""

import json
import subprocess

REFERENCES = ("timeout", "chen", "bertier", "akka-phi")


def run(argv, timeout):
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)


def check_figures(out, profile):
    frontier = json.loads((out / f"frontier-{profile}.json").read_text())
    assert frontier["trace"]["profile"] == profile
    assert frontier["observed_peer_hours"] > 0
    hb = {(p["detector"], p["level"]): p for p in frontier["heartbeater"]}
    assert set(hb) == {(d, l) for d in ("adaptive", "phi") for l in ("suspect", "dead")}
    for point in hb.values():
        assert point["td_p99_ms"] is not None and point["td_p99_ms"] >= point["td_p50_ms"]
    assert set(frontier["references"]) == set(REFERENCES)
    for family in REFERENCES:
        sweep = frontier["references"][family]
        assert len(sweep) > 10
        # The sweep spans the frontier: from settings that make mistakes to ones that do not.
        assert sweep[0]["observed_mistakes"] > 0, family
        assert sweep[-1]["observed_mistakes"] == 0, family
        assert all(p["model_per_peer_hour"] >= 0 for p in sweep)
    svg = (out / f"frontier-{profile}.svg").read_text()
    assert svg.startswith("<svg") and svg.rstrip().endswith("</svg>")
    assert svg.count("<polyline") == len(REFERENCES)
    for name in REFERENCES + ("heartbeater adaptive (dead)", "heartbeater phi (dead)"):
        assert name in svg
    table = (out / f"frontier-{profile}.md").read_text()
    assert "| heartbeater adaptive (dead) |" in table
    return frontier


def test_record_and_replay_lan(heartbeater_bin, tmp_path):
    out = tmp_path / "rec"
    r = run([heartbeater_bin, "bench", "detection", "--profile", "lan", "--duration", "12s",
             "--peers", "12", "--out", str(out)], timeout=120)
    assert r.returncode == 0, r.stderr
    trace = (out / "trace-lan.csv").read_text().splitlines()
    header = json.loads(trace[0][2:])
    assert header["profile"] == "lan" and len(header["peers"]) == 12 and len(header["kills"]) == 4
    # 12 peers at 50 ms for 12 s, less 0.1 % loss and the killed peers' silence.
    assert len(trace) - 1 > 12 * 12 * 20 * 0.6
    first = check_figures(out, "lan")
    assert len(first["heartbeater"][1]["td_ms"]) == 4, "every kill detected"

    again = tmp_path / "replay"
    r = run([heartbeater_bin, "bench", "detection", "--replay", str(out / "trace-lan.csv"),
             "--out", str(again)], timeout=60)
    assert r.returncode == 0, r.stderr
    second = check_figures(again, "lan")
    assert second["heartbeater"] == first["heartbeater"], "a replay is deterministic"


def test_unknown_profile_is_a_usage_error(heartbeater_bin):
    r = run([heartbeater_bin, "bench", "detection", "--profile", "moon"], timeout=10)
    assert r.returncode == 2
    assert "expected lan, wan, burst, partition or all" in r.stderr
