"""Issue 12: terminal output cannot be forged. A peer's id, service and label values reach
`heartbeater monitor` (text and --json) from the network; whatever a terminal would act on
(newline, CR, ESC, C1, bidi and zero-width characters, U+2028) must be printed escaped,
each event on exactly one line (hb-cli/src/escape.rs, docs/cli.md "Escaping")."""

import json
import os
import re
import socket
import struct
import sys
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "harness"))
from procs import Proc  # noqa: E402
from terminal import NEWLINE_ESC_BIDI, unsafe_chars  # noqa: E402

EPOCH_2024 = 1704067200


def beat_frame(peer_id, seq, labels, service="systest"):
    """An untagged BEAT (docs/protocol.md, frame layout) with a service and labels."""
    ext = b""
    for typ, value in [(1, service.encode())] + [(2, f"{k}={v}".encode()) for k, v in labels.items()]:
        ext += struct.pack(">BB", typ, len(value)) + value
    ident = peer_id.encode()
    incarnation = int((time.time() - EPOCH_2024) * 10)
    header = struct.pack(">HBBBIQIIH", 0x4842, 1, 1, 0, seq, time.monotonic_ns(), 1000, incarnation, 0)
    return header + struct.pack(">B", len(ident)) + ident + struct.pack(">H", len(ext)) + ext


# Control characters: refused by the decoder today; if one ever got through it would have to
# be escaped. Format and separator characters: accepted in label values, printed escaped.
CONTROL_LABELS = {"note": NEWLINE_ESC_BIDI}
FORMAT_LABELS = {"note": "evil\u202egnp.exe \u2028 u\u200bv\u2066", "fake": "a b reason=timeout"}

TEXT_LINE = re.compile(r'^\d+ (\S+) (\S+) \w+ -> \w+ reason=\w+ incarnation=\d+'
                       r'(?: label\.[^\s="]+=(?:"(?:[^"\\]|\\.)*"|[^\s"]+))*$')


@pytest.mark.parametrize("json_out", [False, True], ids=["text", "json"])
def test_monitor_prints_hostile_labels_and_ids_escaped_on_one_line(heartbeater_bin, json_out):
    argv = [str(heartbeater_bin), "monitor", "--listen", "udp://127.0.0.1:0"] + (["--json"] if json_out else [])
    mon = Proc(argv, raw=True)
    try:
        host, port = mon.stderr_match(r"listening on udp://([\d.]+):(\d+)").groups()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for seq in (1, 2):
                s.sendto(beat_frame("hostile-ctl", seq, CONTROL_LABELS), (host, int(port)))
                s.sendto(beat_frame("evil\nid\x1b[31m", seq, {}), (host, int(port)))
                s.sendto(beat_frame("hostile-fmt", seq, FORMAT_LABELS), (host, int(port)))
                s.sendto(beat_frame("witness", seq, {"zone": "z1"}), (host, int(port)))
        # The witness was sent last: once it is printed the others were handled.
        mon.wait_for(lambda: any("witness" in l for _, l in mon.stdout), 10, "the witness peer's event")
        lines = [l for _, l in mon.stdout]
        assert lines, "no output"
        for line in lines:
            assert not unsafe_chars(line), f"raw {unsafe_chars(line)} reached the terminal: {line!r}"
        if json_out:
            events = [json.loads(line) for line in lines]
            by_peer = {e["peer"]: e for e in events}
            assert by_peer["hostile-fmt"]["labels"] == FORMAT_LABELS
            fmt_line = next(l for l in lines if '"hostile-fmt"' in l)
            assert "\\u202e" in fmt_line and "\\u2028" in fmt_line and "\\u200b" in fmt_line, fmt_line
            if "hostile-ctl" in by_peer:
                assert by_peer["hostile-ctl"]["labels"] == CONTROL_LABELS
            assert set(by_peer) <= {"hostile-ctl", "hostile-fmt", "witness", "evil\nid\x1b[31m"}
        else:
            for line in lines:
                assert TEXT_LINE.match(line), f"not one event line: {line!r}"
            fmt_line = next(l for l in lines if " hostile-fmt " in l)
            assert 'label.note="evil\\u{202e}gnp.exe \\u{2028} u\\u{200b}v\\u{2066}"' in fmt_line, fmt_line
            assert 'label.fake="a b reason=timeout"' in fmt_line, fmt_line
            assert fmt_line.count("reason=") == 2, fmt_line  # the event's own, and the quoted one
            ctl = [l for l in lines if "hostile-ctl" in l]
            assert all('label.note="x\\ny\\u{1b}[2J\\u{202e}gnp.exe\\r\\u{2028}z\\u{200b}\\u{9b}"' in l for l in ctl), ctl
        assert not [l for _, l in mon.stderr if "warning" in l], "loopback without a key must not warn"
    finally:
        assert mon.stop() == 0
