"""Optional ``prometheus_client`` integration.

>>> from prometheus_client import REGISTRY
>>> import heartbeater.prometheus
>>> heartbeater.prometheus.register(REGISTRY)  # idempotent per registry  # doctest: +SKIP

The engine keeps its metrics in its own registry; this collector parses their text
exposition on every scrape, so nothing is registered twice in the user's registry and the
numbers are always current.
"""

from __future__ import annotations

import threading
import weakref
from typing import Iterable, Optional

from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import REGISTRY, CollectorRegistry

from . import metrics_text

__all__ = ["Collector", "register"]


class Collector:
    """A ``prometheus_client`` collector yielding every ``heartbeater_*`` metric.

    ``describe()`` names the families, so registering a second heartbeater collector in the
    same registry fails loudly (``ValueError: Duplicated timeseries``) rather than exporting
    every series twice; :func:`register` avoids that by returning the one already there.
    """

    def collect(self) -> Iterable[Metric]:
        return list(text_string_to_metric_families(metrics_text()))

    def describe(self) -> Iterable[Metric]:
        return self.collect()


_registered: weakref.WeakKeyDictionary[CollectorRegistry, Collector] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def register(registry: Optional[CollectorRegistry] = None) -> Collector:
    """Adds the heartbeater metrics to ``registry`` (default: the global ``REGISTRY``) once;
    later calls return the same collector."""
    target = REGISTRY if registry is None else registry
    with _lock:
        existing = _registered.get(target)
        if existing is not None:
            return existing
        collector = Collector()
        target.register(collector)
        _registered[target] = collector
        return collector
