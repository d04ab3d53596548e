"""The installed package: version, typing files, exception hierarchy."""

from __future__ import annotations

import pathlib
import re

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
