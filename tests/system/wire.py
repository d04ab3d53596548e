"""Hand-made heartbeater frames (docs/protocol.md), for tests that play a hostile sender.
Only what the tests need: BEAT and LEAVE with the extensions a forger would set."""

import hashlib
import hmac
import struct
import time

BEAT, ACK, LEAVE, NACK = 1, 2, 3, 4
ACK_REQ = 0x01
AUTH = 0x04
HEADER = struct.Struct(">2sBBBIQIIH")


def frame(kind, peer_id, seq=1, incarnation=1, incarnation_us=None, interval_ms=200, flags=ACK_REQ,
          labels=(), sent_unix_ms=None, key=None):
    """A frame; with `key` (bytes) tagged as docs/protocol.md, Authentication says."""
    ident = peer_id.encode()
    ext = b""
    for k, v in labels:
        kv = f"{k}={v}".encode()
        ext += bytes([2, len(kv)]) + kv
    if incarnation_us is not None:
        ext += bytes([7, 8]) + struct.pack(">Q", incarnation_us)
    if sent_unix_ms is not None:
        ext += bytes([10, 8]) + struct.pack(">Q", sent_unix_ms)
    if key is not None:
        flags |= AUTH
    head = HEADER.pack(b"HB", 1, kind, flags, seq, time.monotonic_ns(), interval_ms, incarnation, 0)
    body = head + bytes([len(ident)]) + ident + struct.pack(">H", len(ext)) + ext
    if key is not None:
        body += hmac.new(key, body, hashlib.sha256).digest()[:16]
    return body


def beat(peer_id, **kw):
    return frame(BEAT, peer_id, **kw)


def leave(peer_id, **kw):
    return frame(LEAVE, peer_id, **kw)


def parse_header(data):
    """(kind, seq, nack_reason or None) of a reply."""
    magic, _version, kind, _flags, seq, _ts, _interval, _inc, _stall = HEADER.unpack_from(data)
    assert magic == b"HB", data
    id_len = data[HEADER.size]
    pos = HEADER.size + 1 + id_len
    (ext_len,) = struct.unpack_from(">H", data, pos)
    ext = data[pos + 2:pos + 2 + ext_len]
    reason = None
    while ext:
        t, n = ext[0], ext[1]
        if t == 5:
            reason = ext[2]
        ext = ext[2 + n:]
    return kind, seq, reason


def unix_us():
    return time.time_ns() // 1000


def tenths_now():
    """The header's incarnation for a process starting now (tenths since 2024-01-01)."""
    return (unix_us() - 1_704_067_200_000_000) // 100_000
