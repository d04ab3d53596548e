"""heartbeater: heartbeats and liveness detection over a Rust engine.

>>> import heartbeater
>>> with heartbeater.Client("udp://127.0.0.1:7946", service="api") as client:  # doctest: +SKIP
...     for event in client.events(timeout=5.0):
...         print(event)

Diagnostics go to ``logging.getLogger("heartbeater")``.
"""

from __future__ import annotations

from . import _heartbeater
from ._types import Event, FencingToken, Leader, Peer, PhaseName, ReasonName, StateName, Token
from .client import Client
from .election import Election
from .errors import (
    ConfigError,
    ConnectError,
    ForkedError,
    HeartbeaterError,
    HeartbeaterIOError,
    HeartbeaterTimeoutError,
    InternalError,
    InvalidStateError,
    NotHolderError,
    PermissionDeniedError,
    StoppedError,
)
from .monitor import Monitor, Watcher

#: The version of the native engine this package was built from (Cargo version).
__version__: str = _heartbeater.__version__

__all__ = [
    "__version__",
    "Client",
    "Monitor",
    "Watcher",
    "Election",
    "Token",
    "Leader",
    "Event",
    "Peer",
    "FencingToken",
    "StateName",
    "ReasonName",
    "PhaseName",
    "metrics_text",
    "callback_errors",
    "HeartbeaterError",
    "ConfigError",
    "ConnectError",
    "PermissionDeniedError",
    "NotHolderError",
    "StoppedError",
    "ForkedError",
    "InvalidStateError",
    "HeartbeaterTimeoutError",
    "HeartbeaterIOError",
    "InternalError",
]


def metrics_text() -> str:
    """Every ``heartbeater_*`` metric of this process in the Prometheus text format."""
    return _heartbeater.metrics_text()


def callback_errors() -> int:
    """How many times an event callback raised, across every handle in this process."""
    return _heartbeater.callback_errors()
