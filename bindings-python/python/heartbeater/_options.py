"""Python arguments → the text form hb-core's ``Options::set`` parses.

Types are checked here (a wrong type is a ``TypeError``); values are checked by hb-core,
whose ``ConfigError`` names the argument and the accepted form. An argument left as
``None`` is not set, so ``HEARTBEATER_*`` environment variables and hb-core's defaults apply.
"""

from __future__ import annotations

import math
import os
from typing import Mapping, Optional, Sequence, Tuple, Union

Seconds = Union[int, float]
Interval = Union[Seconds, Tuple[Seconds, Seconds]]
Pairs = list[Tuple[str, str]]
#: Generic text options, as hb-core's ``Options::set`` (and the C ``hb_config_set``, Go
#: ``WithOption``) takes them: ``{"stop_timeout": "500ms", "ack": "false"}`` or
#: ``[("label", "zone=a"), ("label", "tier=web")]`` (pairs, applied in order).
TextOptions = Union[Mapping[str, str], Sequence[Tuple[str, str]]]


def _type_name(value: object) -> str:
    return type(value).__name__


def text(pairs: Pairs, name: str, value: Optional[str]) -> None:
    if value is None:
        return
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {_type_name(value)}")
    pairs.append((name, value))


def endpoint(pairs: Pairs, name: str, value: Union[str, Sequence[str], None]) -> None:
    """One endpoint string, or a list of them (``["udp://a:1", "tcp://b:2"]``)."""
    if value is None:
        return
    if isinstance(value, str):
        pairs.append((name, value))
        return
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, str) for v in value):
        pairs.append((name, ",".join(value)))
        return
    raise TypeError(f"{name} must be a str or a non-empty list of str, got {_type_name(value)}")


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _duration_text(value: Seconds) -> str:
    # Plain decimal seconds ("0.2s", "15s"): hb-core rejects negatives, NaN and infinity
    # with an error naming the argument.
    if isinstance(value, float) and not math.isfinite(value):
        return f"{value}s"
    return f"{float(value):.6f}".rstrip("0").rstrip(".") + "s"


def seconds(pairs: Pairs, name: str, value: Optional[Seconds]) -> None:
    if value is None:
        return
    if not _is_number(value):
        raise TypeError(f"{name} must be a number of seconds (int or float), got {_type_name(value)}")
    pairs.append((name, _duration_text(value)))


def interval(pairs: Pairs, value: Optional[Interval]) -> None:
    """``0.2`` (fixed) or ``(1.0, 30.0)`` (adaptive between bounds), in seconds."""
    if value is None:
        return
    if _is_number(value):
        pairs.append(("interval", _duration_text(value)))  # type: ignore[arg-type]
        return
    if isinstance(value, tuple) and len(value) == 2 and all(_is_number(v) for v in value):
        low, high = value
        pairs.append(("interval", f"{_duration_text(low)}..{_duration_text(high)}"))
        return
    raise TypeError(f"interval must be seconds or a (min, max) tuple of seconds, got {value!r}")


def count(pairs: Pairs, name: str, value: Optional[int]) -> None:
    if value is None:
        return
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int, got {_type_name(value)}")
    pairs.append((name, str(value)))


def labels(value: Optional[Mapping[str, str]]) -> Optional[dict[str, str]]:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise TypeError(f"labels must be a mapping of str to str, got {_type_name(value)}")
    out: dict[str, str] = {}
    for k, v in value.items():
        if not isinstance(k, str) or not isinstance(v, str):
            raise TypeError(f"labels must map str to str, got {k!r}: {_type_name(v)}")
        out[k] = v
    return out


def path(pairs: Pairs, name: str, value: "Union[str, os.PathLike[str], None]") -> None:
    if value is None:
        return
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{name} must be a str or os.PathLike, got {_type_name(value)}")
    pairs.append((name, os.fspath(value)))


def etcd_security(
    pairs: Pairs,
    ca_file: "Union[str, os.PathLike[str], None]",
    cert_file: "Union[str, os.PathLike[str], None]",
    key_file: "Union[str, os.PathLike[str], None]",
    username: Optional[str],
    password: Optional[str],
) -> None:
    """TLS to etcd (CA; client certificate and key) and etcd credentials."""
    path(pairs, "etcd_ca_file", ca_file)
    path(pairs, "etcd_cert_file", cert_file)
    path(pairs, "etcd_key_file", key_file)
    text(pairs, "etcd_username", username)
    text(pairs, "etcd_password", password)


def tls_files(
    pairs: Pairs,
    ca_file: "Union[str, os.PathLike[str], None]",
    cert_file: "Union[str, os.PathLike[str], None]",
    key_file: "Union[str, os.PathLike[str], None]",
) -> None:
    """A ``tls://`` endpoint's PEM files: the other side's CA, this side's certificate and key."""
    path(pairs, "tls_ca_file", ca_file)
    path(pairs, "tls_cert_file", cert_file)
    path(pairs, "tls_key_file", key_file)


def secret(name: str, value: Union[str, bytes, None]) -> Optional[bytes]:
    if value is None:
        return None
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    raise TypeError(f"{name} must be str or bytes, got {_type_name(value)}")


def generic(pairs: Pairs, options: Optional[TextOptions]) -> None:
    """Appends the caller's text options after the keyword arguments' (they win)."""
    if options is None:
        return
    items = list(options.items()) if isinstance(options, Mapping) else options
    if isinstance(items, (str, bytes)) or not isinstance(items, (list, tuple)):
        raise TypeError(f"options must be a mapping of str to str or a sequence of (str, str), got {_type_name(options)}")
    for item in items:
        if not (isinstance(item, tuple) or isinstance(item, list)) or len(item) != 2:
            raise TypeError(f"options must hold (key, value) pairs of str, got {item!r}")
        key, value = item
        if not isinstance(key, str) or not isinstance(value, str):
            raise TypeError(f"options must map str to str, got {key!r}: {_type_name(value)}")
        pairs.append((key, value))
