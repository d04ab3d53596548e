"""The exceptions heartbeater raises. Every one is a :class:`HeartbeaterError`.

Each maps one ``hb_core::Error`` variant; the native module raises them by name.
"""

from __future__ import annotations

from typing import Optional

__all__ = [
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


class HeartbeaterError(Exception):
    """Base class of every heartbeater error."""


class ConfigError(HeartbeaterError, ValueError):
    """A configuration value was rejected.

    ``field`` names the argument (``"ttl"``, ``"endpoint"``, ``"label key"`` ...),
    ``value`` is what was given (secrets are shown as a length only) and ``expected``
    the accepted form. Also a :class:`ValueError`.
    """

    def __init__(self, message: str, *, field: str = "", value: str = "", expected: str = "") -> None:
        super().__init__(message)
        self.field = field
        self.value = value
        self.expected = expected


class ConnectError(HeartbeaterError):
    """A server (etcd, a monitor) could not be reached."""

    def __init__(self, message: str, *, addr: Optional[str] = None) -> None:
        super().__init__(message)
        self.addr = addr


class PermissionDeniedError(ConnectError):
    """The server answered but refused our credentials."""


class NotHolderError(HeartbeaterError):
    """Fencing: this process can no longer be sure it holds its registration."""


class StoppedError(HeartbeaterError):
    """The handle is stopped (or was never started) and cannot do this."""


class ForkedError(HeartbeaterError):
    """The handle was created in the parent before a fork; create a new one in the child."""


class InvalidStateError(HeartbeaterError):
    """Not allowed in the handle's current situation (started twice, pulling events while a
    callback is set, ...)."""


class HeartbeaterTimeoutError(HeartbeaterError, TimeoutError):
    """A bounded wait ran out. Also a builtin :class:`TimeoutError`."""


class HeartbeaterIOError(HeartbeaterError, OSError):
    """An operating-system level failure (bind, socket options, thread spawn)."""


class InternalError(HeartbeaterError):
    """A bug in heartbeater, reported instead of crashing the process."""
