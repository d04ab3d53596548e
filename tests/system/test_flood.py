"""Acceptance 3: while the kill scenario runs, 100k random datagrams and 10k well-formed
frames with a bad tag or a replayed seq hit the monitor. It stays up, the legitimate
peers stay alive, and /metrics counts the rejections by reason."""

import subprocess

from procs import MonitorProc, metric_values
from scenario import kill_and_check, start_beats

RANDOM, BAD_TAG, REPLAY = 100_000, 5_000, 5_000


def test_flood_is_rejected_and_counted(heartbeater_bin, procs, tmp_path):
    key = tmp_path / "key"
    key.write_bytes(b"0123456789abcdef0123456789abcdef\n")
    monitor = MonitorProc(heartbeater_bin, "--auth-key-file", str(key), "--metrics-addr", "127.0.0.1:0")
    procs.append(monitor)
    ids, beats, all_alive = start_beats(heartbeater_bin, monitor, procs, "--auth-key-file", str(key))

    flood = subprocess.Popen([heartbeater_bin, "bench", "flood", "--target", f"udp://{monitor.udp_addr}",
                              "--random", str(RANDOM), "--bad-tag", str(BAD_TAG), "--replay", str(REPLAY),
                              "--auth-key-file", str(key)])
    try:
        kill_and_check(monitor, ids, beats, all_alive)
        assert flood.wait(60) == 0
    finally:
        if flood.poll() is None:
            flood.kill()
            flood.wait()

    assert monitor.popen.poll() is None, "monitor died under the flood"
    rejected = metric_values(monitor.metrics(), "heartbeater_frames_rejected_total")
    by_reason = {k.split('"')[1]: v for k, v in rejected.items() if '"' in k}
    print("rejected by reason:", by_reason)
    assert by_reason.get("bad_tag", 0) >= BAD_TAG * 0.95, by_reason
    assert by_reason.get("replay", 0) >= REPLAY * 0.95, by_reason
    # Random bytes land in several reasons (bad_magic, too_short, untagged, and bad_tag
    # when a random flags byte claims a tag), so the total is what must add up.
    assert sum(by_reason.values()) >= (RANDOM + BAD_TAG + REPLAY) * 0.95, by_reason
    assert by_reason.get("bad_magic", 0) > 0 and by_reason.get("too_long", 0) > 0, by_reason
    assert monitor.stop() == 0
