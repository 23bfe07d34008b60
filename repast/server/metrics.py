"""Prometheus metrics of the feature server.

Request counts by endpoint and status are updated on the request path; latencies and entity rows
read are added up per process and handed to prometheus_client at most once a second and before
each scrape (labelled children are cached, so an observation is a dict lookup and a few adds).
Per-view materialization watermark and feature age are computed from the registry when
/metrics is scraped, never per request. With several workers, prometheus_client's multiprocess
mode ($PROMETHEUS_MULTIPROC_DIR, set by `repast serve`) merges every worker's counters.
"""

from __future__ import annotations

import os
import time
from bisect import bisect_left
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from repast.server.monitoring_metrics import FreshnessCollector, MonitoringCollector

if TYPE_CHECKING:
    from repast.registry import Registry

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 60.0)
KNOWN_ENDPOINTS = frozenset({
    "/get-online-features", "/push", "/write-to-online-store", "/materialize", "/materialize-incremental",
    "/health", "/ready", "/metrics", "/registry", "/docs", "/openapi.json",
})


def endpoint_label(path: str) -> str:
    """Unknown paths share one label, so a scanner cannot grow the metric's cardinality."""
    return path if path in KNOWN_ENDPOINTS else "other"


class MaterializationCollector(Collector):
    """Per view: end of the last materialized window (unix seconds) and its age in seconds."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def collect(self) -> Iterator[GaugeMetricFamily]:
        watermark = GaugeMetricFamily(
            "repast_materialization_watermark_seconds",
            "End of the last materialized window per feature view (unix time)", labels=["feature_view"])
        age = GaugeMetricFamily(
            "repast_feature_age_seconds",
            "Seconds since the end of the last materialized window per feature view", labels=["feature_view"])
        try:
            records = self.registry.materializations()
        except Exception:  # a scrape must not fail because the registry is briefly away
            records = {}
        now = time.time()
        for view, record in sorted(records.items()):
            end = record.end.timestamp()
            watermark.add_metric([view], end)
            age.add_metric([view], max(0.0, now - end))
        yield watermark
        yield age


class RegistryCollector(Collector):
    """Whether this process serves cached definitions because the registry cannot be read."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def collect(self) -> Iterator[GaugeMetricFamily]:
        since = self.registry.stale_since
        yield GaugeMetricFamily("repast_registry_stale",
                                "1 while the registry cannot be read and cached definitions are served",
                                value=0 if since is None else 1)
        yield GaugeMetricFamily("repast_registry_stale_seconds",
                                "Seconds since the registry could last be read (0 when it can)",
                                value=0 if since is None else max(0.0, time.time() - since))


class ServerMetrics:
    """The server's metrics; `observe` is called once per request by the middleware."""

    def __init__(self, registry: Registry, online_store: Callable[[], Any] | None = None) -> None:
        self.multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        values = CollectorRegistry(auto_describe=True)
        self.requests = Counter("repast_http_requests", "HTTP requests by endpoint and status",
                                ["endpoint", "status"], registry=values)
        self.latency = Histogram("repast_http_request_duration_seconds",
                                 "HTTP request latency by endpoint and status", ["endpoint", "status"],
                                 buckets=LATENCY_BUCKETS, registry=values)
        self.rows_read = Counter("repast_online_rows_read", "Entity rows read by get-online-features",
                                 registry=values)
        self._children: dict[tuple[str, int], tuple[Any, Any]] = {}
        # Latencies and rows are added up here and handed to prometheus_client at most once a second
        # (and before every scrape): in multiprocess mode each of its updates costs a lock and a
        # getpid() system call, more than the rest of the metrics work per request.
        self._bounds = [*LATENCY_BUCKETS, float("inf")]
        self._pending: dict[tuple[str, int], list[float]] = {}  # per bucket counts, then the sum
        self._rows_pending = 0
        self._flushed_at = time.monotonic()
        self.scrape_registry = CollectorRegistry() if self.multiprocess else values
        if self.multiprocess:
            from prometheus_client import multiprocess

            multiprocess.MultiProcessCollector(self.scrape_registry)  # type: ignore[no-untyped-call]
        self.scrape_registry.register(MaterializationCollector(registry))
        self.scrape_registry.register(RegistryCollector(registry))
        if online_store is not None:
            self.scrape_registry.register(FreshnessCollector(registry, online_store))
        self.scrape_registry.register(MonitoringCollector(registry))

    def observe(self, endpoint: str, status: int, seconds: float) -> None:
        key = (endpoint, status)
        children = self._children.get(key)
        if children is None:
            labels = (endpoint, str(status))
            children = (self.requests.labels(*labels), self.latency.labels(*labels))
            self._children[key] = children
            self._pending[key] = [0.0] * (len(self._bounds) + 1)
        children[0].inc()  # exact at once: request counts are what alerts and tests read
        pending = self._pending[key]
        pending[bisect_left(self._bounds, seconds)] += 1
        pending[-1] += seconds
        if time.monotonic() - self._flushed_at > 1.0:
            self.flush()

    def count_rows(self, rows: int) -> None:
        self._rows_pending += rows

    def flush(self) -> None:
        """Hand the latencies and rows added up since the last flush to prometheus_client."""
        self._flushed_at = time.monotonic()
        if self._rows_pending:
            self.rows_read.inc(self._rows_pending)
            self._rows_pending = 0
        for key, pending in self._pending.items():
            if not pending[-1] and not any(pending[:-1]):
                continue
            histogram = self._children[key][1]
            # prometheus_client's Histogram keeps one (non-cumulative) count per bucket and a sum.
            for i, count in enumerate(pending[:-1]):
                if count:
                    histogram._buckets[i].inc(count)
            histogram._sum.inc(pending[-1])
            self._pending[key] = [0.0] * len(pending)

    def render(self) -> tuple[bytes, str]:
        self.flush()
        return generate_latest(self.scrape_registry), CONTENT_TYPE_LATEST
