"""Freshness of each feature view: watermark, last run, rows written, age of the newest online value.

A view is stale when it is served online and either nothing of it is stored online yet, or its
newest stored value is older than its ttl (the age at which reads report OUTSIDE_MAX_AGE). A view
without a ttl is stale only when nothing is stored. What a store or registry cannot tell (a remote
registry keeps no watermarks here; Redis does not report the newest value; a store that is down)
is shown as unknown.

A view fed by `repast stream` (a KafkaSource, with or without aggregations) also shows its stream
lag: per partition, the high watermark the consumer last saw minus the view's position, as recorded
with its last batch, and how long ago that was (repast/streaming/lag.py): an old age means the
consumer is behind or stopped.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from repast.definitions import FeatureView
from repast.errors import ConfigError, StoreUnavailable
from repast.online.base import NewestValueReader
from repast.registry import Registry
from repast.streaming.lag import PartitionLag, recorded_lag
from repast.ui.catalog import Catalog


@dataclass
class ViewFreshness:
    view: str
    online: bool
    ttl_seconds: float
    watermark: datetime | None = None  # end of the last materialized window
    last_run: datetime | None = None
    rows_written: int | None = None
    newest_value: datetime | None = None
    age_seconds: float | None = None
    stale: bool = False
    reason: str = ""
    stream: list[PartitionLag] | None = None  # a view fed by a Kafka source: each partition's recorded lag
    age_now: datetime | None = None  # when the report was made (the stream lag's age is measured to it)

    def to_json(self) -> dict[str, Any]:
        iso = {k: getattr(self, k).isoformat() if getattr(self, k) else None
               for k in ("watermark", "last_run", "newest_value")}
        return {"view": self.view, "online": self.online, "ttl_seconds": self.ttl_seconds, **iso,
                "rows_written": self.rows_written, "age_seconds": self.age_seconds, "stale": self.stale,
                "reason": self.reason, "stream_lag": self._stream_json()}

    def _stream_json(self) -> dict[str, Any] | None:
        """The lag summed over partitions, as of the oldest record (its age in seconds, as of `age_now`)."""
        if self.stream is None:
            return None
        as_of = min((p.seen_at for p in self.stream), default=None)
        return {"messages": sum(p.lag for p in self.stream) if self.stream else None,
                "as_of": as_of.isoformat() if as_of else None,
                "age_seconds": max(0.0, (self.age_now - as_of).total_seconds()) if as_of and self.age_now else None,
                "partitions": [{"topic": p.topic, "partition": p.partition, "position": p.position,
                                "high_watermark": p.high_watermark, "lag": p.lag, "seen_at": p.seen_at.isoformat()}
                               for p in self.stream]}


@dataclass
class FreshnessReport:
    views: list[ViewFreshness]
    notes: list[str]

    def to_json(self) -> dict[str, Any]:
        return {"views": [v.to_json() for v in self.views], "notes": self.notes,
                "stale": [v.view for v in self.views if v.stale]}


def freshness(catalog: Catalog, registry: Registry, online_store: Any, now: datetime,
              views: list[str] | None = None) -> FreshnessReport:
    """Freshness of `views` (default: every feature view of the catalog's project), as of `now`.
    `online_store` is None for a project other than the one the store is configured for."""
    notes: list[str] = []
    try:
        marks, runs = registry.materializations(catalog.project), registry.last_runs(catalog.project)
    except ConfigError as e:
        marks, runs = {}, {}
        notes.append(f"Watermarks and runs are unknown: {e}")
    reader = online_store if isinstance(online_store, NewestValueReader) else None
    if online_store is None:
        notes.append("Online values are checked for the repo's configured project only.")
    elif reader is None:
        notes.append(f"The online store ({type(online_store).__name__}) does not report its newest values.")
    specs = catalog.specs["feature_view"]
    result = []
    for name in views if views is not None else sorted(specs):
        spec = specs[name]
        f = ViewFreshness(name, bool(spec.get("online", True)), float(spec.get("ttl_seconds") or 0))
        if name in marks:
            f.watermark = marks[name].end
            f.last_run = marks[name].recorded_at
        if name in runs:
            f.last_run, f.rows_written = runs[name].finished_at, runs[name].rows
        if f.online and "topic" in spec.get("source", {}):
            f.stream, f.age_now = _stream_lag(online_store, catalog.project, spec, notes), now
        if f.online and reader is not None:
            try:
                f.newest_value = reader.newest_event_time(catalog.project, name)
            except StoreUnavailable as e:  # a down store: the registry's pages still render
                reader = None
                notes.append(f"Online values are unknown: the online store is unavailable ({e}).")
            else:
                _judge(f, now)
        result.append(f)
    return FreshnessReport(result, notes)


def _stream_lag(store: Any, project: str, spec: dict[str, Any], notes: list[str]) -> list[PartitionLag] | None:
    """The view's recorded stream lag; None when the store keeps no stream offsets (or tiles) or is down."""
    if store is None:
        return None
    try:
        return recorded_lag(store, project, FeatureView.from_dict(spec))
    except ConfigError:
        return None
    except StoreUnavailable as e:
        notes.append(f"Stream lag of {spec['name']} is unknown: the online store is unavailable ({e}).")
        return None


def _judge(f: ViewFreshness, now: datetime) -> None:
    if f.newest_value is None:
        f.stale, f.reason = True, "nothing stored online" + ("" if f.watermark else "; never materialized")
        return
    f.age_seconds = max(0.0, (now - f.newest_value).total_seconds())
    if f.ttl_seconds > 0 and f.age_seconds > f.ttl_seconds:
        f.stale, f.reason = True, "newest online value is older than the ttl"
