"""Prometheus gauges of freshness and of the last monitoring results, computed when /metrics is scraped.

- `repast_online_newest_value_age_seconds{feature_view}`: seconds since the newest event time stored
  online for the view (stores that can tell: SQLite, PostgreSQL); with the watermark's age
  (`repast_feature_age_seconds`, repast/server/metrics.py), what the stale-view alert reads;
- `repast_drift_psi` and `repast_drift_detected{feature_view, feature, reference}`: the last drift check;
- `repast_skew_mismatch_rate` and `repast_skew_detected{feature_service, feature_view, feature}`;
- `repast_statistics_null_rate` and `repast_statistics_rows{feature_view, feature, scope}`: the last
  day with statistics;
- `repast_monitoring_last_run_timestamp_seconds{check}`: when each kind of result was last computed.

Results are read from the registry at most every `ttl_seconds`, so a busy scraper costs little.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from repast.online.base import NewestValueReader

if TYPE_CHECKING:
    from repast.registry import MonitoringRecord, Registry

KINDS = ("statistics", "drift", "skew")


class FreshnessCollector(Collector):
    """Per online view: the age of its newest stored value."""

    def __init__(self, registry: Registry, online_store: Callable[[], Any]) -> None:
        self.registry = registry
        self.online_store = online_store

    def collect(self) -> Iterator[GaugeMetricFamily]:
        age = GaugeMetricFamily("repast_online_newest_value_age_seconds",
                                "Seconds since the newest event time stored online per feature view",
                                labels=["feature_view"])
        try:
            store = self.online_store()
            views = self.registry.contents().feature_views
        except Exception:  # a scrape must not fail because a store is briefly away
            store, views = None, {}
        if isinstance(store, NewestValueReader):
            now = datetime.now(UTC)
            for name, view in sorted(views.items()):
                if not view.online:
                    continue
                try:
                    newest = store.newest_event_time(self.registry.project, name)
                except Exception:
                    continue
                if newest is not None:
                    age.add_metric([name], max(0.0, (now - newest).total_seconds()))
        yield age


class MonitoringCollector(Collector):
    """The last drift, skew and statistics results kept in the registry (repast/monitoring/)."""

    def __init__(self, registry: Registry, ttl_seconds: float = 30.0) -> None:
        self.registry = registry
        self.ttl_seconds = ttl_seconds
        self._lock = threading.Lock()
        self._cached: tuple[float, dict[str, list[MonitoringRecord]]] | None = None

    def _records(self) -> dict[str, list[MonitoringRecord]]:
        with self._lock:
            if self._cached is not None and time.monotonic() - self._cached[0] < self.ttl_seconds:
                return self._cached[1]
            try:
                records = {kind: self.registry.monitoring_records(kind) for kind in KINDS}
            except Exception:  # an unreadable registry keeps the last results
                records = self._cached[1] if self._cached else {}
            self._cached = (time.monotonic(), records)
            return records

    def collect(self) -> Iterator[GaugeMetricFamily]:
        records = self._records()
        yield from _drift_gauges(_latest(records.get("drift", [])))
        yield from _skew_gauges(_latest(records.get("skew", [])))
        yield from _statistics_gauges(_latest(records.get("statistics", [])))
        last = GaugeMetricFamily("repast_monitoring_last_run_timestamp_seconds",
                                 "When each kind of monitoring result was last computed (unix time)", labels=["check"])
        for kind in KINDS:
            if records.get(kind):
                last.add_metric([kind], max(r.computed_at for r in records[kind]).timestamp())
        yield last


def _latest(records: list[MonitoringRecord]) -> list[MonitoringRecord]:
    """Per (scope, view, feature) the record of the latest day."""
    latest: dict[tuple[str, str, str], MonitoringRecord] = {}
    for r in records:
        key = (r.scope, r.view, r.feature)
        if key not in latest or (r.day, r.computed_at) > (latest[key].day, latest[key].computed_at):
            latest[key] = r
    return [latest[k] for k in sorted(latest)]


def _drift_gauges(records: list[MonitoringRecord]) -> Iterator[GaugeMetricFamily]:
    labels = ["feature_view", "feature", "reference"]
    psi = GaugeMetricFamily("repast_drift_psi", "PSI of the last drift check per feature", labels=labels)
    drifted = GaugeMetricFamily("repast_drift_detected", "1 when the last drift check crossed the feature's threshold",
                                labels=labels)
    for r in records:
        psi.add_metric([r.view, r.feature, r.scope], float(r.values.get("psi", 0.0)))
        drifted.add_metric([r.view, r.feature, r.scope], 1.0 if r.values.get("drifted") else 0.0)
    yield psi
    yield drifted


def _skew_gauges(records: list[MonitoringRecord]) -> Iterator[GaugeMetricFamily]:
    labels = ["feature_service", "feature_view", "feature"]
    rate = GaugeMetricFamily("repast_skew_mismatch_rate", "Mismatch rate of the last skew check per feature",
                             labels=labels)
    skewed = GaugeMetricFamily("repast_skew_detected", "1 when the last skew check crossed the feature's threshold",
                               labels=labels)
    for r in records:
        service = r.scope.removeprefix("served_log:")
        rate.add_metric([service, r.view, r.feature], float(r.values.get("mismatch_rate", 0.0)))
        skewed.add_metric([service, r.view, r.feature], 1.0 if r.values.get("skewed") else 0.0)
    yield rate
    yield skewed


def _statistics_gauges(records: list[MonitoringRecord]) -> Iterator[GaugeMetricFamily]:
    labels = ["feature_view", "feature", "scope"]
    nulls = GaugeMetricFamily("repast_statistics_null_rate", "Null rate of the latest day with statistics",
                              labels=labels)
    rows = GaugeMetricFamily("repast_statistics_rows", "Rows of the latest day with statistics", labels=labels)
    for r in records:
        nulls.add_metric([r.view, r.feature, r.scope], float(r.values.get("null_rate", 0.0)))
        rows.add_metric([r.view, r.feature, r.scope], float(r.rows))
    yield nulls
    yield rows
