"""heartbeater.prometheus adds the engine's metrics to a prometheus_client registry once."""

from __future__ import annotations

import pytest

from conftest import require_or_skip

try:
    from prometheus_client import CollectorRegistry, generate_latest
except ImportError:
    require_or_skip("prometheus_client is not installed (pip install prometheus_client)", allow_module_level=True)

import heartbeater.prometheus  # noqa: E402  (needs prometheus_client)


def test_collector_exports_heartbeater_metrics_once() -> None:
    registry = CollectorRegistry()
    first = heartbeater.prometheus.register(registry)
    assert heartbeater.prometheus.register(registry) is first
    text = generate_latest(registry).decode()
    assert text.count("# TYPE heartbeater_beats_sent_total counter") == 1
    assert "heartbeater_callback_panics_total" in text
    # A second, separate collector in the same registry is refused, not exported twice.
    with pytest.raises(ValueError, match="Duplicated"):
        registry.register(heartbeater.prometheus.Collector())


def test_values_are_current_on_every_scrape() -> None:
    registry = CollectorRegistry()
    heartbeater.prometheus.register(registry)
    before = registry.get_sample_value("heartbeater_dropped_events_total")
    assert before is not None
    c = heartbeater.Client("udp://127.0.0.1:9", service="api")
    assert registry.get_sample_value("heartbeater_dropped_events_total") == before
    c.stop()
