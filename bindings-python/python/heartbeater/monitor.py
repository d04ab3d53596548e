"""The watching side: a Monitor listens for direct beats; a Watcher follows an etcd prefix."""

from __future__ import annotations

import os
from typing import Any, Optional, Protocol, Sequence, Union

from . import _heartbeater, _options
from ._handle import Handle, _NativeEvents
from ._options import Seconds, TextOptions
from ._types import Peer

__all__ = ["Monitor", "Watcher"]


class _NativePeerView(_NativeEvents, Protocol):
    def start(self) -> None: ...
    def stop(self) -> None: ...
    def peers(self) -> list[dict[str, Any]]: ...
    def http_addr(self) -> Optional[str]: ...


class _PeerView(Handle):
    """What Monitor and Watcher share: a view of many peers that starts, stops and snapshots."""

    _native: _NativePeerView

    def start(self) -> None:
        """Starts watching (GIL released meanwhile); an error names what failed.
        :class:`InvalidStateError` when already started, :class:`StoppedError` after
        ``stop()`` (make a new one)."""
        self._native.start()
        self._started()

    def stop(self) -> None:
        """Stops; no callback runs after it returns. Idempotent."""
        self._native.stop()
        self._stopped()

    def _stop_at_exit(self) -> None:
        self._native.stop()

    def peers(self) -> list[Peer]:
        """A snapshot of every peer known now (none before start); :class:`StoppedError`
        once stopped."""
        return [Peer._from_native(p) for p in self._native.peers()]

    @property
    def http_addr(self) -> Optional[str]:
        """``"ip:port"`` of the HTTP API while it serves (useful with port 0), else None."""
        return self._native.http_addr()


class Monitor(_PeerView):
    """Listens on ``udp://host:port``, ``tcp://host:port`` and/or ``tls://host:port`` (port
    0 picks a free one; see ``local_addrs``) and reports every peer's transitions:
    ``alive``, ``suspect``, ``dead`` (nothing heard within the detector's bound), ``left``
    (a graceful goodbye).

    ``with Monitor(...) as m:`` starts and stops it. ``metrics_addr`` (``"ip:port"``) also
    serves Prometheus ``/metrics`` there; ``http_addr`` (``"ip:port"``, or a port on
    127.0.0.1) serves the HTTP API (peers as JSON, events as Server-Sent Events, ``/metrics``,
    probes: docs/http.md), behind the bearer token in ``http_token_file`` if given.
    ``false_dead_rate`` and ``false_suspect_rate`` (``"COUNT/PERIOD"``, e.g. ``"1/2y"``,
    ``"1/d"``) are the adaptive detector's targets per peer. ``tls_ca_file`` (the CA that
    signs the clients' certificates), ``tls_cert_file`` and ``tls_key_file`` (the monitor's
    own) are required with a ``tls://`` listener, and read again when they change.
    ``options`` passes any other
    engine option as
    text (see :class:`Client`), after the keyword arguments.
    """

    def __init__(
        self,
        listen: Union[str, Sequence[str], None] = None,
        *,
        auth_key: Union[str, bytes, None] = None,
        detector: Optional[str] = None,
        false_dead_rate: Optional[str] = None,
        false_suspect_rate: Optional[str] = None,
        max_peers: Optional[int] = None,
        listen_threads: Optional[int] = None,
        metrics_addr: Optional[str] = None,
        http_addr: Optional[str] = None,
        http_token_file: Optional[str] = None,
        event_capacity: Optional[int] = None,
        tls_ca_file: Union[str, "os.PathLike[str]", None] = None,
        tls_cert_file: Union[str, "os.PathLike[str]", None] = None,
        tls_key_file: Union[str, "os.PathLike[str]", None] = None,
        options: Optional[TextOptions] = None,
    ) -> None:
        super().__init__()
        pairs: _options.Pairs = []
        _options.endpoint(pairs, "listen", listen)
        _options.tls_files(pairs, tls_ca_file, tls_cert_file, tls_key_file)
        _options.text(pairs, "detector", detector)
        _options.text(pairs, "false_dead_rate", false_dead_rate)
        _options.text(pairs, "false_suspect_rate", false_suspect_rate)
        _options.count(pairs, "max_peers", max_peers)
        _options.count(pairs, "listen_threads", listen_threads)
        _options.text(pairs, "metrics_addr", metrics_addr)
        _options.text(pairs, "http_addr", http_addr)
        _options.text(pairs, "http_token_file", http_token_file)
        _options.count(pairs, "event_capacity", event_capacity)
        _options.generic(pairs, options)
        self._native: _heartbeater.Monitor = _heartbeater.Monitor(pairs, _options.secret("auth_key", auth_key))

    def __repr__(self) -> str:
        return "<heartbeater.Monitor>"

    @property
    def local_addrs(self) -> list[str]:
        """The bound addresses as ``udp://ip:port`` / ``tcp://ip:port``."""
        return [name if "://" in name else f"{name}://{addr}" for name, addr in self._native.local_addrs()]


class Watcher(_PeerView):
    """Follows the registrations under an etcd prefix (``etcd://host:port[,host:port]/prefix``):
    ``joined``, ``updated``, ``expired``, ``left`` events and ``peers()``. ``etcd_ca_file``,
    ``etcd_cert_file``/``etcd_key_file`` and ``etcd_username``/``etcd_password`` set TLS and
    credentials, as for :class:`Client`; ``http_addr`` and ``http_token_file`` serve the HTTP
    API as for :class:`Monitor`; ``options`` any other engine option as text.
    ``start()`` lists the prefix, then watches from that revision."""

    def __init__(
        self,
        endpoint: Optional[str] = None,
        *,
        connect_timeout: Optional[Seconds] = None,
        event_capacity: Optional[int] = None,
        etcd_ca_file: Union[str, "os.PathLike[str]", None] = None,
        etcd_cert_file: Union[str, "os.PathLike[str]", None] = None,
        etcd_key_file: Union[str, "os.PathLike[str]", None] = None,
        etcd_username: Optional[str] = None,
        etcd_password: Optional[str] = None,
        http_addr: Optional[str] = None,
        http_token_file: Optional[str] = None,
        options: Optional[TextOptions] = None,
    ) -> None:
        super().__init__()
        pairs: _options.Pairs = []
        _options.endpoint(pairs, "endpoint", endpoint)
        _options.seconds(pairs, "connect_timeout", connect_timeout)
        _options.count(pairs, "event_capacity", event_capacity)
        _options.etcd_security(pairs, etcd_ca_file, etcd_cert_file, etcd_key_file, etcd_username, etcd_password)
        _options.text(pairs, "http_addr", http_addr)
        _options.text(pairs, "http_token_file", http_token_file)
        _options.generic(pairs, options)
        self._native: _heartbeater.Watcher = _heartbeater.Watcher(pairs)

    def __repr__(self) -> str:
        return "<heartbeater.Watcher>"
