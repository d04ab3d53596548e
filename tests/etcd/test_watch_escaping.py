"""Issue 12: `heartbeater watch` output cannot be forged by an etcd key or value. Keys and
values are anyone's who can write under the prefix; a newline, CR, ESC, C1, bidi or
zero-width character in them must be printed escaped, each event on exactly one line
(hb-cli/src/escape.rs, docs/cli.md "Escaping")."""

import json
import os
import re
import sys

import pytest
from terminal import NEWLINE_ESC_BIDI, unsafe_chars

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "system"))
from procs import Proc  # noqa: E402

PREFIX = "/services"
FIELD = r'(?:"(?:[^"\\]|\\.)*"|[^\s"]+)'
TEXT_LINE = re.compile(rf"^\d+ ({FIELD}) ({FIELD}) \w+ -> \w+ reason=\w+ incarnation=\d+(?: label\.{FIELD}={FIELD})*$")

HOSTILE_ID = "id-" + NEWLINE_ESC_BIDI
HOSTILE_SERVICE = "svc\u202e" + "\n1 svc x joined -> expired"
LABELS = {"note": NEWLINE_ESC_BIDI, "k\u2066": "v\r\n"}


def registration(ident, service, labels):
    return json.dumps({"id": ident, "service": service, "labels": labels, "incarnation": 1, "epoch": 1,
                       "started_unix_ms": 1, "state": "up"}, ensure_ascii=False)


@pytest.mark.parametrize("json_out", [False, True], ids=["text", "json"])
def test_watch_prints_hostile_keys_and_values_escaped_on_one_line(etcd, heartbeater_bin, json_out):
    w = Proc([str(heartbeater_bin), "watch", etcd.url(PREFIX)] + (["--json"] if json_out else []), raw=True)
    try:
        w.stderr_match("watching")
        puts = [
            (f"{PREFIX}/svc/{HOSTILE_ID}", registration(HOSTILE_ID, "svc", LABELS)),
            (f"{PREFIX}/{HOSTILE_SERVICE}/plain", registration("plain", HOSTILE_SERVICE, {})),
            (f"{PREFIX}/svc/not-json", "oops\n1 svc ghost unknown -> joined\x1b[2J\u202e"),
            (f"{PREFIX}/svc/witness", registration("witness", "svc", {"zone": "z1"})),
        ]
        for key, value in puts:
            etcd.etcdctl("put", key, value)
        # Keys are watched in revision order: once the witness is printed, all were.
        w.wait_for(lambda: any("witness" in l for _, l in w.stdout), 15, "the witness key's event")
        lines = [l for _, l in w.stdout]
        for line in lines:
            assert not unsafe_chars(line), f"raw {unsafe_chars(line)} reached the terminal: {line!r}"
        if json_out:
            events = {(e["service"], e["peer"]): e for e in map(json.loads, lines)}
            assert set(events) == {("svc", HOSTILE_ID), (HOSTILE_SERVICE, "plain"), ("svc", "not-json"),
                                   ("svc", "witness")}, events
            assert events[("svc", HOSTILE_ID)]["labels"] == LABELS
            assert "\\u202e" in lines[0] and "\\u2028" in lines[0] and "\\u009b" in lines[0], lines[0]
        else:
            assert len(lines) == 4, lines
            for line in lines:
                assert TEXT_LINE.match(line), f"not one event line: {line!r}"
            escaped = 'x\\ny\\u{1b}[2J\\u{202e}gnp.exe\\r\\u{2028}z\\u{200b}\\u{9b}'
            assert f' svc "id-{escaped}" ' in lines[0], lines[0]
            assert f' label.note="{escaped}"' in lines[0] and ' label."k\\u{2066}"="v\\r\\n"' in lines[0], lines[0]
            assert lines[1].split(" ")[1] == '"svc\\u{202e}\\n1', lines[1]
    finally:
        assert w.stop() == 0
