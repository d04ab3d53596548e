#!/usr/bin/env python3
"""Writes the seed corpus, fuzz/corpus/<target>/seed-*, from tests/vectors and hand-made
cases (the input layouts are those of fuzz/src/targets.rs). Deterministic; run again after
changing either. Inputs the fuzzer finds worth keeping may be added beside the seeds."""

import json
import pathlib
import random
import struct

ROOT = pathlib.Path(__file__).resolve().parents[1]
CORPUS = ROOT / "fuzz" / "corpus"
OPTION_KEYS = ["endpoint", "listen", "service", "instance_id", "ttl", "interval", "labels", "label", "auth_key",
               "auth_key_file", "detector", "max_peers", "stop_timeout", "connect_timeout", "event_capacity",
               "traceparent", "metrics_addr", "etcd_ca_file", "etcd_cert_file", "etcd_key_file", "etcd_username",
               "etcd_password", "ack", "http_addr", "http_token_file", "health_addr", "false_dead_rate",
               "false_suspect_rate"]


def vectors():
    out = {}
    for path in sorted((ROOT / "tests" / "vectors").glob("*.json")):
        v = json.loads(path.read_text())
        out[v["name"]] = bytes.fromhex(v["hex"])
    return out


def write(target, seeds):
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    for old in d.glob("seed-*"):
        old.unlink()
    for name, data in seeds.items():
        (d / f"seed-{name}").write_bytes(data)


def prefixed(frame):
    return struct.pack(">H", len(frame)) + frame


def main():
    vec = vectors()
    valid = {k: v for k, v in vec.items() if not k.startswith("invalid-")}
    write("decode", vec)

    # stream: [cuts][cut sizes...][bytes]
    stream = {}
    for i, (name, frame) in enumerate(sorted(valid.items())):
        stream[name] = bytes([i % 4, *[1 + i % 7, 3, 30][: i % 4]]) + prefixed(frame)
    frames = b"".join(prefixed(f) for f in valid.values())
    stream["all-whole"] = b"\x00" + frames
    stream["all-bytewise"] = b"\x01\x01" + frames
    stream["all-odd-cuts"] = b"\x03\x02\x05\x11" + frames
    stream["zero-length"] = b"\x00" + prefixed(valid["beat-minimal"]) + b"\x00\x00" + b"junk"
    stream["too-long"] = b"\x01\x07" + b"\x02\x01" + b"x" * 600
    stream["max-length"] = b"\x00" + b"\x02\x00" + b"y" * 512
    stream["partial-prefix"] = b"\x00" + prefixed(valid["beat-minimal"]) + b"\x00"
    stream["partial-frame"] = b"\x00" + prefixed(valid["beat-minimal"]) + b"\x00\x20abc"
    write("stream", stream)

    # reply: ops 0 beat, 1 advance u16 ms, 2/3 reply(pick, [seq u32, ts u32], nack, ...), 4 raw, 5 leave, 6 leave ACK
    rng = random.Random(12)
    reply = {
        "beat-ack": bytes([0, 2, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x90, 0]),
        "beat-nack": bytes([0, 2, 0, 1, 4]),
        "beat-ack-promise": bytes([0, 2, 0, 0, 0, 0, 0x0f, 0xa0, 1, 0, 0, 0x13, 0x88]),
        "beat-timeout-beat-ack": bytes([0, 1, 0x27, 0x10, 0, 2, 1, 0, 0, 0, 0, 0, 0]),
        "unknown-reply": bytes([2, 9, 0, 0, 0, 7, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0]),
        "leave-then-ack": bytes([0, 5, 6, 0]),
        "leave-then-stale-ack": bytes([0, 0, 5, 2, 0, 0, 0, 0, 0, 0, 0, 0]),
        "many-beats-lost": bytes([0, 1, 0, 200] * 20 + [7]),
    }
    for name, frame in sorted(vec.items())[:12]:
        reply[f"raw-{name}"] = bytes([0, 4, len(frame)]) + frame
    for i in range(8):
        reply[f"random-{i}"] = bytes(rng.randrange(256) for _ in range(40 + 20 * i))
    write("reply", reply)

    # table: [check_replay] then ops 0/1 frame(op, flags, seq u32, interval u16, inc u32, [inc_us u32], [ttl u16], from),
    # 2 raw(len, bytes, from), 3 sweep(late u16 ms)
    def beat(op, seq, interval=1000, inc=7, flags=1, frm=0, inc_us=None, ttl=None):
        b = bytes([0, op, flags]) + struct.pack(">IHI", seq, interval, inc)
        if op & 0x40:
            b += struct.pack(">I", inc_us or 1)
        if op & 0x20:
            b += struct.pack(">H", ttl or 300)
        return b + bytes([frm])

    def sweep(ms):
        return bytes([3]) + struct.pack(">H", ms)

    table = {
        "join-suspect-dead": b"\x00" + beat(0x10, 1) + sweep(0) + sweep(3000) + sweep(10000) + sweep(60000),
        "join-recover": b"\x00" + beat(0x10, 1) + sweep(5000) + beat(0x10, 2) + sweep(0),
        "join-leave-rejoin": b"\x01" + beat(0x10, 1) + beat(0x90, 2) + beat(0x10, 3) + sweep(100),
        "restart": b"\x01" + beat(0x10, 1, inc=7) + beat(0x10, 1, inc=9),
        "restart-us": b"\x01" + beat(0x50, 1, inc_us=5) + beat(0x50, 2, inc_us=9) + beat(0x50, 3, inc_us=2),
        "replay": b"\x01" + beat(0x10, 5) + beat(0x10, 5) + beat(0x10, 4),
        "ttl": b"\x00" + beat(0x30, 1, ttl=50) + sweep(600) + sweep(600),
        "full-table": b"\x00" + b"".join(beat(0x10 | i, 1) for i in range(6)) + sweep(1000),
        "full-then-dead": b"\x00" + b"".join(beat(0x10 | i, 1) for i in range(4)) + sweep(60000) + sweep(60000)
        + b"".join(beat(0x10 | i, 2) for i in range(4, 6)),
        "reap": b"\x00" + beat(0x10, 1) + sweep(60000) + sweep(60000) + sweep(65535) * 12 + beat(0x10, 2),
        "two-addresses": b"\x00" + beat(0x10, 1, frm=0) + beat(0x10, 2, frm=0x13) + beat(0x10, 3, frm=8),
        "flapping": b"\x00" + (beat(0x10, 1) + sweep(4000) + beat(0x10, 2) + sweep(0)) * 6,
        "zero-interval": b"\x00" + beat(0x10, 1, interval=0) + sweep(100) + beat(0x10, 2, interval=65535) + sweep(65535),
        "leave-unknown": b"\x00" + beat(0x80, 1) + sweep(10),
        "pause": b"\x00" + beat(0x10, 1) + sweep(65535) + beat(0x10, 2) + sweep(0),
    }
    for name, frame in sorted(vec.items())[:14]:
        table[f"raw-{name}"] = b"\x00" + bytes([2, len(frame)]) + frame + bytes([0]) + sweep(5000)
    for i in range(6):
        table[f"random-{i}"] = bytes(rng.randrange(256) for _ in range(60 + 40 * i))
    write("table", table)

    # options: ([key index][len][value])*
    samples = {
        "endpoint": ["udp://127.0.0.1:7946", "etcd://h:1,h:2/p", "tcp://[::1]:0", "udp//x", ""],
        "listen": ["udp://0.0.0.0:0,tcp://127.0.0.1:0", "udp://host:99999"],
        "service": ["checkout", "a b", "evil\u202e"],
        "instance_id": ["web-1", "x" * 65, "a/b"],
        "ttl": ["15s", "-1", "1.5s", "0", "999999h"],
        "interval": ["1s..30s", "200ms", "5s..1s", "fast"],
        "labels": ["zone=a,rack=b", "=v", "k", "k=v\n"],
        "label": ["zone=eu", "a=b,c=d", "k=\u202e"],
        "auth_key": ["secret", ""],
        "auth_key_file": ["/nonexistent"],
        "detector": ["adaptive", "phi", "x"],
        "max_peers": ["100", "0", "1e9", "-5"],
        "stop_timeout": ["2s", "2"],
        "connect_timeout": ["1ms"],
        "event_capacity": ["1024", "18446744073709551616"],
        "traceparent": ["00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "00-0-0-0"],
        "metrics_addr": ["127.0.0.1:9100", "nope"],
        "etcd_username": ["root"],
        "etcd_password": ["pw"],
        "ack": ["true", "false", "maybe"],
        "http_addr": ["127.0.0.1:8080", "8080", "[::1]:0", "nope"],
        "health_addr": ["127.0.0.1:0", "70000"],
        "false_dead_rate": ["1/2y", "1e-8/s", "0/d", "1/d/2", "1e308/1ns"],
        "false_suspect_rate": ["3/1.5h", "1/fortnight", "nan/d"],
    }
    options = {}
    for key, values in samples.items():
        for j, value in enumerate(values):
            raw = value.encode()[:255]
            options[f"{key}-{j}"] = bytes([OPTION_KEYS.index(key), len(raw)]) + raw
    options["unknown-key"] = bytes([200, 3]) + b"abc"
    options["several"] = b"".join(options[k] for k in ["endpoint-0", "service-0", "instance_id-0", "ttl-0", "label-0"])
    write("options", options)

    value = {"id": "a", "service": "svc", "labels": {"zone": "z1"}, "incarnation": 7, "epoch": 2,
             "started_unix_ms": 1, "state": "up"}
    reg = {
        "up": json.dumps(value).encode(),
        "leaving": json.dumps(dict(value, state="leaving")).encode(),
        "minimal": b'{"id":"a","service":"s","state":"up"}',
        "no-state": b'{"id":"a","service":"s"}',
        "extra-field": json.dumps(dict(value, extra=[1, 2])).encode(),
        "hostile-text": json.dumps(dict(value, id="x\ny\x1b[2J\u202e", labels={"k\u2028": "v\r"}), ensure_ascii=False).encode(),
        "big-numbers": json.dumps(dict(value, incarnation=2**32, epoch=2**64 - 1)).encode(),
        "negative": json.dumps(dict(value, epoch=-1)).encode(),
        "not-json": b"oops",
        "empty": b"",
        "array": b"[1,2,3]",
        "null": b"null",
        "deep": b"[" * 200 + b"]" * 200,
        "bad-utf8": b'{"id":"\xff","service":"s","state":"up"}',
        "escapes": b'{"id":"\\ud800","service":"\\u0000","state":"up"}',
        "duplicate-keys": b'{"id":"a","id":"b","service":"s","state":"up"}',
        "labels-not-strings": b'{"id":"a","service":"s","state":"up","labels":{"k":1}}',
        "float": b'{"id":"a","service":"s","state":"up","epoch":1.5}',
    }
    write("registry_value", reg)


if __name__ == "__main__":
    main()
