"""The installed package: version, typing files, exception hierarchy."""

from __future__ import annotations

import dataclasses
import pathlib
import re
from typing import get_args

import heartbeater
import heartbeater._heartbeater as native


def test_runs_against_the_installed_wheel_not_the_source_tree() -> None:
    location = pathlib.Path(heartbeater.__file__).resolve()
    assert "site-packages" in location.parts, f"imported from {location}; run scripts/test.sh"


def test_version_comes_from_the_native_module() -> None:
    assert heartbeater.__version__ == native.__version__
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", heartbeater.__version__)


def test_typing_files_are_shipped() -> None:
    pkg = pathlib.Path(heartbeater.__file__).parent
    assert (pkg / "py.typed").exists()
    assert (pkg / "_heartbeater.pyi").exists()


def test_exception_hierarchy() -> None:
    for cls in (
        heartbeater.ConfigError,
        heartbeater.ConnectError,
        heartbeater.PermissionDeniedError,
        heartbeater.NotHolderError,
        heartbeater.StoppedError,
        heartbeater.ForkedError,
        heartbeater.InvalidStateError,
        heartbeater.HeartbeaterTimeoutError,
        heartbeater.HeartbeaterIOError,
        heartbeater.InternalError,
    ):
        assert issubclass(cls, heartbeater.HeartbeaterError)
    assert issubclass(heartbeater.HeartbeaterTimeoutError, TimeoutError)
    assert issubclass(heartbeater.ConfigError, ValueError)
    assert not issubclass(heartbeater.HeartbeaterError, RuntimeError)


def test_metrics_text_is_prometheus_exposition() -> None:
    text = heartbeater.metrics_text()
    assert "# TYPE heartbeater_beats_sent_total counter" in text
    assert "heartbeater_callback_panics_total" in text


def test_event_repr_is_readable() -> None:
    ev = heartbeater.Event._from_native(
        {
            "peer": "w1",
            "service": "api",
            "from": "alive",
            "to": "dead",
            "reason": "timeout",
            "at_unix_ms": 1_700_000_000_123,
            "incarnation": 7,
            "epoch": 0,
            "labels": {"zone": "a"},
            "traceparent": None,
        }
    )
    assert repr(ev) == (
        "Event(api/w1: alive -> dead, reason=timeout, at=2023-11-14T22:13:20.123+00:00, "
        "incarnation=7, epoch=0, labels={'zone': 'a'})"
    )
    assert ev.to_dict()["from"] == "alive" and ev.to_dict()["at_unix_ms"] == 1_700_000_000_123
    assert ev.at.tzinfo is not None


# Drift: names copied into Python must stay the engine's (REVIEW item 8).


def test_state_and_reason_names_are_the_engines() -> None:
    assert list(get_args(heartbeater.StateName)) == native.STATES
    assert list(get_args(heartbeater.ReasonName)) == native.REASONS


def test_every_error_class_the_native_layer_raises_exists() -> None:
    import heartbeater.errors as errors

    for kind, name in native.ERROR_CLASSES.items():
        cls = getattr(errors, name, None)
        assert isinstance(cls, type) and issubclass(cls, heartbeater.HeartbeaterError), (kind, name)
        assert name in errors.__all__ and getattr(heartbeater, name) is cls
    # One class per kind: the class tells the kind back (the conformance driver relies on it).
    assert len(set(native.ERROR_CLASSES.values())) == len(native.ERROR_CLASSES)


def test_event_fields_are_the_engines_json_keys(monitor: heartbeater.Monitor) -> None:
    # The facade's Event: the JSON keys, with `from`/`to`/`at_unix_ms` as from_state/to_state/at.
    renamed = {"from_state": "from", "to_state": "to", "at": "at_unix_ms"}
    fields = [renamed.get(f.name, f.name) for f in dataclasses.fields(heartbeater.Event)]
    assert sorted(fields) == sorted(native.EVENT_FIELDS)
    # The native dict of a real event, and the facade's to_dict(), have exactly those keys.
    c = native.Client([("endpoint", next(a for a in monitor.local_addrs if a.startswith("udp://"))), ("service", "d")])
    c.start()
    ev = c.next_event(10.0)
    c.stop(0.5)
    assert ev is not None
    assert sorted(ev) == sorted(native.EVENT_FIELDS)
    assert sorted(heartbeater.Event._from_native(ev).to_dict()) == sorted(native.EVENT_FIELDS)
