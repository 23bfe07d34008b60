"""Freshness samples kept over time: per online view, the age of its newest stored value and of its
materialization watermark, one sample per UTC day (the day's latest run replaces earlier ones), so
the web UI can draw freshness over time. The live ages are the feature server's gauges.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from repast.errors import StoreUnavailable
from repast.online.base import NewestValueReader
from repast.registry import MonitoringRecord, Registry

FRESHNESS = "freshness"


def record_freshness(registry: Registry, online_store: Any, now: datetime | None = None) -> list[MonitoringRecord]:
    """Sample and keep every online view's freshness (ages in seconds; None when unknown)."""
    registry.check_writable("record freshness")
    now = now or datetime.now(UTC)
    marks = registry.materializations()
    reader = online_store if isinstance(online_store, NewestValueReader) else None
    records = []
    for name, view in sorted(registry.contents().feature_views.items()):
        if not view.online:
            continue
        newest = None
        if reader is not None:
            try:
                newest = reader.newest_event_time(registry.project, name)
            except StoreUnavailable:
                newest = None
        values = {"newest_value_age_seconds": (now - newest).total_seconds() if newest else None,
                  "watermark_age_seconds": (now - marks[name].end).total_seconds() if name in marks else None,
                  "ttl_seconds": view.ttl.total_seconds()}
        records.append(MonitoringRecord(FRESHNESS, "online", name, "", f"{now:%Y-%m-%d}", now, now, 0, values, now))
    registry.record_monitoring(records)
    return records
