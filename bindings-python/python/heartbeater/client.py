"""The beating side: keeps this process registered as alive."""

from __future__ import annotations

import os

from typing import Mapping, Optional, Sequence, Union

from . import _heartbeater, _options
from ._handle import Handle, timeout_arg
from ._options import Interval, Seconds, TextOptions
from ._types import FencingToken, StateName

__all__ = ["Client"]


class Client(Handle):
    """Beats to a Monitor (``udp://host:port``, ``tcp://host:port``) or holds an etcd lease
    (``etcd://host:port[,host:port]/prefix``).

    ``with Client(...) as c:`` starts on entry and stops (gracefully: peers see ``left``)
    on exit. Arguments left as ``None`` come from ``HEARTBEATER_*`` environment variables,
    else hb-core's defaults: ``ttl`` 15 s; ``interval`` (1.0, 30.0) capped at ttl/3;
    ``instance_id`` ``hostname-pid``; ``detector`` ``"adaptive"``.

    ``options`` passes any other engine option as text, exactly as the other languages do
    (``options={"stop_timeout": "500ms", "ack": "false"}``, or a sequence of pairs applied in
    order); it is applied after the keyword arguments, so a key given both ways takes the
    ``options`` value. ``endpoint`` and ``service`` may come from there (or the environment).

    Durations are seconds (int or float). ``interval`` is a number (fixed) or a
    ``(min, max)`` tuple (adaptive between bounds). ``auth_key`` (str or bytes, at least 16
    bytes) signs every beat. ``health_addr`` (``"ip:port"``, or a port on 127.0.0.1) serves
    the client's own ``/healthz`` for probes (200 while healthy or degraded, 503 otherwise;
    docs/http.md). ``tls_ca_file``, ``tls_cert_file`` and ``tls_key_file`` (PEM files) are
    required with a ``tls://`` endpoint: the CA that signs the monitor's certificate, and this
    client's certificate (naming ``instance_id`` as a DNS-name or URI SAN) and key;
    ``tls_server_name`` is the name the monitor's certificate holds when it is not the
    endpoint's host (docs/protocol.md, "TLS connections"). A bad value raises :class:`ConfigError` naming the argument;
    a wrong type raises :class:`TypeError`.
    """

    def __init__(
        self,
        endpoint: Union[str, Sequence[str], None] = None,
        *,
        service: Optional[str] = None,
        instance_id: Optional[str] = None,
        ttl: Optional[Seconds] = None,
        labels: Optional[Mapping[str, str]] = None,
        interval: Optional[Interval] = None,
        auth_key: Union[str, bytes, None] = None,
        detector: Optional[str] = None,
        connect_timeout: Optional[Seconds] = None,
        traceparent: Optional[str] = None,
        health_addr: Optional[str] = None,
        etcd_ca_file: Union[str, "os.PathLike[str]", None] = None,
        etcd_cert_file: Union[str, "os.PathLike[str]", None] = None,
        etcd_key_file: Union[str, "os.PathLike[str]", None] = None,
        etcd_username: Optional[str] = None,
        etcd_password: Optional[str] = None,
        tls_ca_file: Union[str, "os.PathLike[str]", None] = None,
        tls_cert_file: Union[str, "os.PathLike[str]", None] = None,
        tls_key_file: Union[str, "os.PathLike[str]", None] = None,
        tls_server_name: Optional[str] = None,
        options: Optional[TextOptions] = None,
    ) -> None:
        super().__init__()
        pairs: _options.Pairs = []
        _options.endpoint(pairs, "endpoint", endpoint)
        _options.text(pairs, "service", service)
        _options.text(pairs, "instance_id", instance_id)
        _options.seconds(pairs, "ttl", ttl)
        _options.interval(pairs, interval)
        _options.text(pairs, "detector", detector)
        _options.seconds(pairs, "connect_timeout", connect_timeout)
        _options.text(pairs, "traceparent", traceparent)
        _options.text(pairs, "health_addr", health_addr)
        _options.etcd_security(pairs, etcd_ca_file, etcd_cert_file, etcd_key_file, etcd_username, etcd_password)
        _options.tls_files(pairs, tls_ca_file, tls_cert_file, tls_key_file)
        _options.text(pairs, "tls_server_name", tls_server_name)
        _options.generic(pairs, options)
        self._native: _heartbeater.Client = _heartbeater.Client(
            pairs, _options.labels(labels), _options.secret("auth_key", auth_key)
        )

    def __repr__(self) -> str:
        try:
            state = self._native.state
        except Exception:  # a forked child's handle still deserves a repr
            state = "forked"
        return f"<heartbeater.Client {self._native.service}/{self._native.instance_id} {state}>"

    def start(self) -> None:
        """Starts beating. With etcd, waits (GIL released, bounded by ``connect_timeout``) for
        the first registration, so unreachable etcd raises :class:`ConnectError` here."""
        self._native.start()
        self._started()

    def stop(self, timeout: Optional[float] = None) -> None:
        """Says goodbye (peers see ``left``) and stops within ``timeout`` seconds (``None``:
        the configured ``stop_timeout``, 2 s by default). Idempotent. Pending events can
        still be read; ``events()`` and ``aevents()`` then end."""
        self._native.stop(timeout_arg(timeout))
        self._stopped()

    def _stop_at_exit(self) -> None:
        self._native.stop()

    @property
    def state(self) -> StateName:
        """Own health: ``healthy``, ``degraded``, ``lost``; ``unknown`` before the first
        acknowledgement, ``stopped`` after ``stop()``. :class:`ForkedError` in a forked
        child."""
        return self._native.state  # type: ignore[return-value]

    @property
    def service(self) -> str:
        return self._native.service

    @property
    def instance_id(self) -> str:
        return self._native.instance_id

    @property
    def incarnation(self) -> int:
        """This process start's incarnation, sent with every beat."""
        return self._native.incarnation

    def fencing_token(self) -> FencingToken:
        """``(lease_id, epoch)`` of the current registration; :class:`NotHolderError` when
        there is none yet, :class:`StoppedError` once stopped."""
        lease_id, epoch = self._native.fencing_token()
        return FencingToken(lease_id, epoch)

    def check(self) -> None:
        """Raises :class:`NotHolderError` once ``remaining()`` is zero (asks no one), and
        :class:`StoppedError` once stopped."""
        self._native.check()

    @property
    def health_addr(self) -> Optional[str]:
        """``"ip:port"`` of ``/healthz`` while the client runs (useful with port 0), else None."""
        return self._native.health_addr()

    def remaining(self) -> float:
        """Seconds this process may still act as the holder (conservative); 0.0 before the
        first acknowledgement and once stopped."""
        return self._native.remaining()
