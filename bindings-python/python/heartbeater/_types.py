"""Events and peer snapshots: small frozen dataclasses with readable reprs."""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import Any, Literal, Mapping, NamedTuple, Optional

__all__ = ["Event", "Peer", "FencingToken", "Token", "Leader", "StateName", "ReasonName", "PhaseName"]

#: Every state name an event or peer can carry (the same in every language).
StateName = Literal[
    "unknown", "alive", "suspect", "dead", "left",  # a monitor's view of a peer
    "healthy", "degraded", "lost",  # a client's own health
    "joined", "updated", "expired", "reregistered",  # a watcher's view of etcd
    "stopped",
    "invalid",  # a watcher: a value under the prefix that is not a registration
    "elected", "leader_changed",  # an election
]

#: Why a transition happened (like BFD's diagnostic codes).
ReasonName = Literal[
    "registered", "recovered", "timeout", "left", "restarted", "lease_expired", "lease_not_found",
    "lease_deadline", "deregistered", "updated", "ack_timeout", "acked", "connect_failed",
    "keepalive_failed", "rejected", "flapping", "stopped", "conflict", "evicted", "leave_failed",
    "key_deleted", "malformed_value", "resigned",
]

#: Where a handle is in its life (``Client.phase``, ``Monitor.phase``, ``Watcher.phase``).
PhaseName = Literal["idle", "starting", "running", "stopped", "forked"]


def _utc_from_ms(ms: int) -> _dt.datetime:
    return _dt.datetime.fromtimestamp(ms / 1000.0, tz=_dt.timezone.utc)


@dataclass(frozen=True)
class Event:
    """One state transition.

    ``from_state``/``to_state`` are the ``from``/``to`` of the JSON form (``from`` is a
    Python keyword). ``at`` is a timezone-aware UTC :class:`datetime.datetime`.
    ``epoch`` is the etcd registration epoch (0 for direct beats); ``traceparent`` the W3C
    trace context the peer's last beat carried, if any.
    """

    peer: str
    service: str
    from_state: StateName
    to_state: StateName
    reason: ReasonName
    at: _dt.datetime
    incarnation: int = 0
    epoch: int = 0
    labels: Mapping[str, str] = field(default_factory=dict, hash=False)
    traceparent: Optional[str] = None

    def __repr__(self) -> str:
        extra = f", labels={dict(self.labels)!r}" if self.labels else ""
        extra += f", traceparent={self.traceparent!r}" if self.traceparent else ""
        return (
            f"Event({self.service}/{self.peer}: {self.from_state} -> {self.to_state}, "
            f"reason={self.reason}, at={self.at.isoformat(timespec='milliseconds')}, "
            f"incarnation={self.incarnation}, epoch={self.epoch}{extra})"
        )

    @classmethod
    def _from_native(cls, d: Mapping[str, Any]) -> Event:
        return cls(
            peer=d["peer"],
            service=d["service"],
            from_state=d["from"],
            to_state=d["to"],
            reason=d["reason"],
            at=_utc_from_ms(d["at_unix_ms"]),
            incarnation=d["incarnation"],
            epoch=d["epoch"],
            labels=d["labels"],
            traceparent=d["traceparent"],
        )

    def to_dict(self) -> dict[str, Any]:
        """The same shape as ``heartbeater monitor --json`` prints."""
        return {
            "peer": self.peer,
            "service": self.service,
            "from": self.from_state,
            "to": self.to_state,
            "reason": self.reason,
            "at_unix_ms": int(self.at.timestamp() * 1000),
            "incarnation": self.incarnation,
            "epoch": self.epoch,
            "labels": dict(self.labels),
            "traceparent": self.traceparent,
        }


@dataclass(frozen=True)
class Peer:
    """A snapshot of one peer as a Monitor or Watcher sees it.

    ``last_seen`` is a UTC datetime; ``interval`` the beat interval the peer announced, in
    seconds (0.0 when unknown); ``rtt`` its last round-trip time in seconds, if known.
    """

    id: str
    service: str
    state: StateName
    last_seen: _dt.datetime
    incarnation: int = 0
    epoch: int = 0
    interval: float = 0.0
    rtt: Optional[float] = None
    addr: Optional[str] = None
    labels: Mapping[str, str] = field(default_factory=dict, hash=False)

    def __repr__(self) -> str:
        rtt = f", rtt={self.rtt * 1000:.2f}ms" if self.rtt is not None else ""
        addr = f", addr={self.addr}" if self.addr else ""
        return (
            f"Peer({self.service}/{self.id}: {self.state}, "
            f"last_seen={self.last_seen.isoformat(timespec='milliseconds')}, "
            f"incarnation={self.incarnation}, epoch={self.epoch}{rtt}{addr})"
        )

    @classmethod
    def _from_native(cls, d: Mapping[str, Any]) -> Peer:
        rtt_us = d["rtt_us"]
        return cls(
            id=d["id"],
            service=d["service"],
            state=d["state"],
            last_seen=_utc_from_ms(d["last_seen_unix_ms"]),
            incarnation=d["incarnation"],
            epoch=d["epoch"],
            interval=d["interval_ms"] / 1000.0,
            rtt=None if rtt_us is None else rtt_us / 1e6,
            addr=d["addr"],
            labels=d["labels"],
        )


class FencingToken(NamedTuple):
    """``(lease_id, epoch)``: hand it to downstream compare-and-set so that a stale holder's
    writes are refused. ``lease_id`` is 0 for direct beats."""

    lease_id: int
    epoch: int


class Token(NamedTuple):
    """An election term's fencing token ``(revision, lease_id)``: the leader key's creation
    revision, then its lease. A later term always has a larger ``revision``, so downstream
    stores compare ``revision`` alone."""

    revision: int
    lease_id: int


class Leader(NamedTuple):
    """The leader of an election as a candidate's watch observed it: its term's token, its
    candidate value and its etcd key."""

    token: Token
    value: bytes
    key: str
