"""Leader election over etcd, fenced by the Client's lease engine (docs/election.md)."""

from __future__ import annotations

import os
from typing import Optional, Sequence, Union

from . import _heartbeater, _options
from ._handle import EventSource, stop_leaving_forked, timeout_arg
from ._options import Seconds, TextOptions
from ._types import Leader, Token

__all__ = ["Election"]


class Election(EventSource):
    """One candidate in election ``name`` on ``etcd://host:port[,host:port]/prefix``,
    campaigning with ``value`` (bytes, or str as UTF-8). Does not campaign until
    :meth:`campaign`.

    ``check()`` passes only while this candidate leads and its lease is valid by the
    Client's conservative arithmetic; it fails at once on lease loss, ``resign()`` or
    ``stop()``. Events: ``elected``, ``lost`` (reason ``lease_deadline``,
    ``lease_not_found``, ``key_deleted``, ``resigned``, ``stopped``) and ``leader_changed``
    (``service`` is the election name, ``peer`` the term's lease in hex, ``epoch`` the
    token's revision). ``with Election(...) as e:`` stops it on exit.

    The options are the Client's etcd ones (``ttl``, default 15 s; ``connect_timeout``;
    TLS and credentials; ``options`` for any other engine option as text, e.g.
    ``{"stop_timeout": "1s"}``). A bad name or option raises :class:`ConfigError` naming it.
    """

    def __init__(
        self,
        endpoint: Union[str, Sequence[str], None],
        name: str,
        value: Union[str, bytes] = b"",
        *,
        ttl: Optional[Seconds] = None,
        connect_timeout: Optional[Seconds] = None,
        etcd_ca_file: Union[str, "os.PathLike[str]", None] = None,
        etcd_cert_file: Union[str, "os.PathLike[str]", None] = None,
        etcd_key_file: Union[str, "os.PathLike[str]", None] = None,
        etcd_username: Optional[str] = None,
        etcd_password: Optional[str] = None,
        options: Optional[TextOptions] = None,
    ) -> None:
        super().__init__()
        if not isinstance(name, str):
            raise TypeError(f"name must be str, got {type(name).__name__}")
        if isinstance(value, str):
            value = value.encode("utf-8")
        elif isinstance(value, (bytes, bytearray)):
            value = bytes(value)
        else:
            raise TypeError(f"value must be bytes or str, got {type(value).__name__}")
        pairs: _options.Pairs = []
        _options.endpoint(pairs, "endpoint", endpoint)
        _options.seconds(pairs, "ttl", ttl)
        _options.seconds(pairs, "connect_timeout", connect_timeout)
        _options.etcd_security(pairs, etcd_ca_file, etcd_cert_file, etcd_key_file, etcd_username, etcd_password)
        _options.generic(pairs, options)
        self._native: _heartbeater.Election = _heartbeater.Election(pairs, name, value)

    def __repr__(self) -> str:
        return f"<heartbeater.Election {self._native.name}>"

    def __enter__(self) -> Election:
        return self

    def __exit__(self, *exc: object) -> None:
        stop_leaving_forked(self.stop)

    @property
    def name(self) -> str:
        return self._native.name

    def campaign(self, timeout: Optional[float] = None) -> Token:
        """Becomes a candidate (if not one yet) and waits to lead, with the GIL released;
        returns the term's token. ``timeout`` in seconds (``None``: as long as it takes;
        Ctrl-C interrupts it). On :class:`HeartbeaterTimeoutError` the candidacy goes on
        (``elected`` comes later); ``resign()`` withdraws it. Registering is bounded by
        ``connect_timeout`` and fails as a Client's start (:class:`ConnectError`,
        :class:`PermissionDeniedError`). :class:`NotHolderError` when the candidacy ended
        meanwhile (a loss with ``set_recampaign(False)``), :class:`StoppedError` after
        ``stop()``."""
        seconds = timeout_arg(timeout)
        self._started()  # a candidacy runs from here: stop it at exit
        revision, lease_id = self._native.campaign(seconds)
        return Token(revision, lease_id)

    def resign(self, timeout: Optional[float] = None) -> None:
        """Steps down and withdraws within ``timeout`` seconds (``None``: the configured
        ``stop_timeout``): ``lost`` (reason ``resigned``) if we led, ``check()`` fails from
        here, and the next candidate leads without waiting for the TTL. Idempotent;
        ``campaign()`` starts a new candidacy."""
        self._native.resign(timeout_arg(timeout))

    def stop(self, timeout: Optional[float] = None) -> None:
        """Resigns, then ends the events (``events()`` ends once drained), within
        ``timeout`` seconds. Idempotent. Afterwards ``campaign()``, ``token()`` and
        ``leader()`` and ``check()`` raise :class:`StoppedError`."""
        self._native.stop(timeout_arg(timeout))
        self._stopped()

    def _stop_at_exit(self) -> None:
        self._native.stop()

    def set_recampaign(self, on: bool) -> None:
        """Whether a lost term is followed by a new campaign (the default) or withdraws
        the candidacy, as ``resign()`` does."""
        if not isinstance(on, bool):
            raise TypeError(f"on must be bool, got {type(on).__name__}")
        self._native.set_recampaign(on)

    def check(self) -> None:
        """Raises :class:`NotHolderError` unless we lead and our lease is valid. Asks nobody:
        cheap enough before every write."""
        self._native.check()

    def remaining(self) -> float:
        """Seconds we may still act as the leader (0.0 unless we lead)."""
        return self._native.remaining()

    def token(self) -> Token:
        """Our term's token; :class:`NotHolderError` unless we lead. ``check()`` before
        acting on it, and send it with every downstream write."""
        revision, lease_id = self._native.token()
        return Token(revision, lease_id)

    def leader(self) -> Optional[Leader]:
        """The leader as observed while campaigning; ``None`` when nobody leads (or we are
        not campaigning)."""
        seen = self._native.leader()
        if seen is None:
            return None
        revision, lease_id, value, key = seen
        return Leader(Token(revision, lease_id), value, key)
