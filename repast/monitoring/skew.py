"""Training/serving skew, as Chronon measures consistency: replay served rows through the offline path.

From a logged feature service's served-feature log, the rows served in [end - window, end) are
sampled by entity-key hash (the keys whose hash is smallest, so the same keys are chosen run after
run, with every row of a chosen key), up to `sample` rows. For those keys at their logged times,
the same features are recomputed by point-in-time retrieval in the offline engine, and each served
value is compared with its recomputed one:

- a served value counts only when its status is PRESENT or NULL_VALUE: a value OUTSIDE_MAX_AGE
  is one the offline join would not return either (older than the ttl), NOT_FOUND is no value;
- `missing`: served a value, recomputed none; `extra`: recomputed a value, served none;
- `mismatches`: both present and different (numbers beyond `skew_tolerance`, relatively);
- `mismatch_rate` = (mismatches + missing + extra) / rows sampled; the check fails for a feature
  whose rate is above `skew_mismatch_threshold` (tag or `monitoring:`, default 0).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from repast.definitions.feature_refs import resolve_features
from repast.errors import InputError
from repast.monitoring.sources import LOG_TIMESTAMP, file_engine, logged_services, logged_source, served_columns
from repast.monitoring.statistics import sql_engine
from repast.registry import MonitoringRecord, Registry
from repast.sql_quoting import quote_ident
from repast.types.timestamps import as_utc

if TYPE_CHECKING:
    from repast.config.repo_config import RepoConfig
    from repast.definitions import FeatureService, RepoContents
    from repast.offline.base import OfflineEngine
    from repast.offline.sql_base import SQLOfflineEngine

SKEW = "skew"
_SERVED = {"PRESENT", "NULL_VALUE"}


@dataclass(frozen=True)
class FeatureSkew:
    service: str
    view: str
    feature: str
    sampled: int
    compared: int  # rows where both sides have a value
    mismatches: int
    missing: int
    extra: int
    mismatch_rate: float
    mean_abs_diff: float | None
    threshold: float
    skewed: bool

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(frozen=True)
class SkewReport:
    start: datetime
    end: datetime
    features: list[FeatureSkew]

    @property
    def skewed(self) -> list[FeatureSkew]:
        return [f for f in self.features if f.skewed]


def sample_served(engine: SQLOfflineEngine, service: FeatureService, repo_path: str, keys: list[str],
                  start: datetime, end: datetime, sample: int) -> pa.Table:
    """Up to `sample` served rows of the window, chosen by the hash of their entity key."""
    source, _ = logged_source(engine, service, repo_path)
    ts = quote_ident(LOG_TIMESTAMP)

    def build() -> str:
        return (f"SELECT * FROM {engine.relation(source)} WHERE {ts} >= {engine.timestamp_literal(start)} "
                f"AND {ts} < {engine.timestamp_literal(end)} "
                f"ORDER BY {engine.key_hash_sql([quote_ident(k) for k in keys])}, "
                f"{', '.join(quote_ident(k) for k in keys)}, {ts}, {quote_ident('__request_id')} LIMIT {int(sample)}")
    return engine.run_query(build)


def _as_numbers(column: pa.ChunkedArray) -> np.ndarray[Any, Any] | None:
    if pa.types.is_integer(column.type) or pa.types.is_floating(column.type) or pa.types.is_decimal(column.type):
        return np.asarray(column.cast(pa.float64()).to_numpy(zero_copy_only=False), dtype=float)
    return None


def compare(served: pa.ChunkedArray, status: pa.ChunkedArray | None, offline: pa.ChunkedArray,
            tolerance: float) -> tuple[int, int, int, int, float | None]:
    """(compared, mismatches, missing, extra, mean absolute difference) of served vs recomputed values."""
    counted = np.ones(len(served), bool) if status is None else \
        np.isin(np.asarray(status.to_pylist(), dtype=object), list(_SERVED))
    has_served = counted & ~np.asarray(served.is_null().to_numpy(zero_copy_only=False), bool)
    has_offline = ~np.asarray(offline.is_null().to_numpy(zero_copy_only=False), bool)
    both = has_served & has_offline
    a, b = _as_numbers(served), _as_numbers(offline)
    mad = None
    if a is not None and b is not None:
        diff = np.abs(a - b)
        differ = both & (diff > tolerance * np.maximum(1.0, np.abs(b)))
        mad = float(diff[both].mean()) if both.any() else None
    else:
        left = np.asarray(served.cast(pa.string()).to_pylist(), dtype=object)
        right = np.asarray(offline.cast(pa.string()).to_pylist(), dtype=object)
        differ = both & (left != right)
    return (int(both.sum()), int(differ.sum()), int((has_served & ~has_offline).sum()),
            int((has_offline & ~has_served).sum()), mad)


def _service_skew(registry: Registry, engine: SQLOfflineEngine, reader: SQLOfflineEngine, config: RepoConfig,
                  service: FeatureService, start: datetime, end: datetime, sample: int) -> list[FeatureSkew]:
    from repast.jobs.retrieval import get_historical_features

    contents: RepoContents = registry.contents()
    request = resolve_features(contents, service, True)
    keys = request.entity_columns()
    served = sample_served(reader, service, str(config.repo_path), keys, start, end, sample)
    if served.num_rows == 0:
        return []
    missing_keys = [k for k in keys if k not in served.column_names]
    if missing_keys:
        raise InputError(f"the served log of '{service.name}' has no column {missing_keys[0]!r}")
    entity = pa.table({**{k: served.column(k) for k in keys}, "event_timestamp": served.column(LOG_TIMESTAMP)})
    offline = get_historical_features(contents, engine, entity, service, True, None, None).to_arrow()
    results = []
    for m, view_name in served_columns(service, contents, served.column_names):
        status = served.column(f"{m.column}__status") if f"{m.column}__status" in served.column_names else None
        compared, mismatches, missing, extra, mad = compare(served.column(m.column), status,
                                                            offline.column(f"{m.view}__{m.feature}"),
                                                            config.monitoring.skew_tolerance)
        view = contents.feature_views[view_name]
        tags = next((f.tags for f in view.features if f.name == m.feature), {})
        threshold = float(tags.get("skew_mismatch_threshold", view.tags.get(
            "skew_mismatch_threshold", config.monitoring.skew_mismatch_threshold)))
        rate = (mismatches + missing + extra) / served.num_rows
        results.append(FeatureSkew(service.name, m.view, m.feature, served.num_rows, compared, mismatches, missing,
                                   extra, rate, mad, threshold, rate > threshold))
    return results


def check_skew(registry: Registry, engine: OfflineEngine, config: RepoConfig, sample: int = 10_000,
               window: timedelta = timedelta(days=1), end: datetime | None = None,
               services: list[str] | None = None) -> SkewReport:
    """Skew of every logged feature service (or `services`) over [end - window, end); the results
    are kept in the registry (kind "skew", day of `end`)."""
    if sample < 1:
        raise InputError(f"sample must be at least 1 row, got {sample}")
    registry.check_writable("record skew results")
    sql = sql_engine(engine)
    reader = file_engine(sql, config)
    end = as_utc(end or datetime.now(UTC))
    start = end - window
    chosen = logged_services(registry.contents(), services)
    if not chosen:
        raise InputError("no feature service logs what it serves (none has a logging_config)")
    results = [s for service in chosen
               for s in _service_skew(registry, sql, reader, config, service, start, end, sample)]
    registry.record_monitoring([MonitoringRecord(SKEW, f"served_log:{s.service}", s.view, s.feature, f"{end:%Y-%m-%d}",
                                                 start, end, s.sampled, s.to_dict(), datetime.now(UTC))
                                for s in results])
    return SkewReport(start, end, results)
