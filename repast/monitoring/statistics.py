"""Feature statistics, computed in the offline engine and kept by day in the registry.

What is measured (`Measured`): a view's source over [start, end) (scope "source"), a saved dataset
(scope "dataset:NAME", one group "all") or a feature service's served-feature log (scope
"served_log:SERVICE"). Per feature and UTC day: rows, non-null count, null rate, distinct count
(approximate on DuckDB and Spark: `distinct_approx`), and for numeric features min, max, mean,
stddev, quantiles and a histogram of fixed bins between the min and max of the run; for
categorical ones (String, Bool, Uuid) the top values and the count of all others. Other types
(bytes, arrays, maps, timestamps) are counted only.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from repast.errors import ConfigError
from repast.monitoring.statistics_sql import (
    MeasuredFeature,
    category_counts_sql,
    decode_category,
    histograms_sql,
    moments_sql,
    table_rows,
)
from repast.registry import MonitoringRecord
from repast.types.timestamps import as_utc

if TYPE_CHECKING:
    from repast.config.repo_config import MonitoringConfig
    from repast.definitions import FeatureView
    from repast.offline.base import OfflineEngine
    from repast.offline.sql_base import SQLOfflineEngine

NUMERIC = {"Int32", "Int64", "Float32", "Float64", "Decimal"}
CATEGORICAL = {"String", "Bool", "Uuid"}
STATISTICS = "statistics"


@dataclass(frozen=True)
class Measured:
    """Rows to measure: SQL built on demand (it may defer relations), their time column, the features."""

    scope: str
    rows: Callable[[], str]
    ts: str
    features: list[MeasuredFeature]
    by_day: bool | str = True  # see statistics_sql._measured


def sql_engine(engine: OfflineEngine) -> SQLOfflineEngine:
    from repast.offline.sql_base import SQLOfflineEngine

    if not isinstance(engine, SQLOfflineEngine):
        raise ConfigError(f"the {type(engine).__name__} cannot compute statistics: run the check where the offline "
                          "store is configured directly (DuckDB, PostgreSQL or Spark), e.g. in the offline server's "
                          "pod")
    return engine


def view_features(view: FeatureView, columns: Callable[[str], str | None] | None = None) -> list[MeasuredFeature]:
    """The view's measurable features; `columns` maps a feature to its column (None: not present)."""
    measured = []
    for f in view.features:
        kind = str(f.dtype)
        column = f.name if columns is None else columns(f.name)
        if column is not None:
            measured.append(MeasuredFeature(view.name, f.name, column, kind in NUMERIC)
                            if kind in NUMERIC | CATEGORICAL else MeasuredFeature(view.name, f.name, column, False))
    return measured


def view_in_range(engine: SQLOfflineEngine, view: FeatureView, start: datetime, end: datetime) -> Measured:
    """The view's source over [start, end), by UTC day (a range within one day is that day)."""
    first, last = as_utc(start), as_utc(end) - timedelta(microseconds=1)
    one_day = f"{first:%Y-%m-%d}" if f"{first:%Y-%m-%d}" == f"{last:%Y-%m-%d}" else True
    return Measured("source", lambda: engine.in_range_sql(view, start, end), "event_timestamp", view_features(view),
                    one_day)


def compute(engine: SQLOfflineEngine, measured: Measured, settings: MonitoringConfig) -> list[MonitoringRecord]:
    """The statistics of `measured`, one record per feature and day (see the module docstring)."""
    features = measured.features
    if not features:
        return []
    quantiles = list(settings.quantiles)
    moments = table_rows(engine.run_query(lambda: moments_sql(
        engine, measured.rows(), measured.ts, features, measured.by_day, quantiles)))
    numeric = [i for i, f in enumerate(features) if f.numeric]
    histograms = _histograms(engine, measured, moments, numeric, settings.histogram_bins)
    categorical = [i for i, f in enumerate(features) if not f.numeric]
    tops = category_counts(engine, measured, categorical, settings.top_values)
    now = datetime.now(UTC)
    records = []
    for row in moments:
        day, rows = str(row["__day"]), int(row["__rows"])
        for i, f in enumerate(features):
            values = _feature_values(row, i, f, rows, quantiles, engine.approx_distinct)
            if f.numeric and (day, i) in histograms:
                values["histogram"] = histograms[(day, i)]
            if not f.numeric and (day, i) in tops:
                values["top_values"] = tops[(day, i)]
                values["other_count"] = values["count"] - sum(n for _, n in tops[(day, i)])
            records.append(MonitoringRecord(STATISTICS, measured.scope, f.view, f.feature, day,
                                            as_utc(row["__first"]), as_utc(row["__last"]), rows, values, now))
    return sorted(records, key=lambda r: (r.view, r.feature, r.day))  # as the registry returns them


def _number(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _feature_values(row: dict[str, Any], i: int, f: MeasuredFeature, rows: int, quantiles: list[float],
                    approx: bool) -> dict[str, Any]:
    count = int(row[f"c{i}"])
    values: dict[str, Any] = {"numeric": f.numeric, "count": count, "null_rate": (rows - count) / rows if rows else 0.0,
                              "distinct_count": int(row[f"d{i}"] or 0), "distinct_approx": approx}
    if f.numeric:
        values.update({"min": _number(row[f"lo{i}"]), "max": _number(row[f"hi{i}"]),
                       "mean": _number(row[f"mean{i}"]), "stddev": _number(row[f"sd{i}"]),
                       "quantiles": {repr(p): _number(q) for p, q in zip(quantiles, row[f"q{i}"] or
                                                                         [None] * len(quantiles), strict=True)}})
    return values


def bin_edges(low: float, high: float, bins: int) -> list[float]:
    width = (high - low) / bins if high > low else 1.0
    return [low + k * width for k in range(bins)] + [high if high > low else low + 1.0]


def histogram_counts(engine: SQLOfflineEngine, measured: Measured, indexes: list[int],
                     edges: dict[int, tuple[float, float]], bins: int,
                     bounded: bool = False) -> dict[tuple[str, int], dict[str, Any]]:
    """Per (day, feature index) the histogram of the given features over the given edges (low, high);
    `bounded`: the edges are the measured rows' own min and max."""
    if not indexes:
        return {}
    chosen = [measured.features[i] for i in indexes]
    result = engine.run_query(lambda: histograms_sql(engine, measured.rows(), measured.ts, chosen, measured.by_day,
                                                     [edges[i] for i in indexes], bins, bounded))
    histograms: dict[tuple[str, int], dict[str, Any]] = {}
    for row in table_rows(result):
        i = indexes[int(row["__set"])]
        low, high = edges[i]
        h = histograms.setdefault((str(row["__day"]), i), {"edges": bin_edges(low, high, bins), "counts": [0] * bins,
                                                             "below": 0, "above": 0})
        bucket, n = int(row["__bucket"]), int(row["__n"])
        if bounded:  # the max (and any rounding at the edges) belongs to the first or last bin
            bucket = min(max(bucket, 0), bins - 1)
        if bucket < 0:
            h["below"] += n
        elif bucket >= bins:
            h["above"] += n
        else:
            h["counts"][bucket] += n
    return histograms


def _histograms(engine: SQLOfflineEngine, measured: Measured, moments: list[dict[str, Any]], numeric: list[int],
                bins: int) -> dict[tuple[str, int], dict[str, Any]]:
    """Fixed bins between the feature's min and max over the whole run (the same edges every day)."""
    edges = {}
    for i in numeric:
        lows = [v for v in (_number(r[f"lo{i}"]) for r in moments) if v is not None]
        highs = [v for v in (_number(r[f"hi{i}"]) for r in moments) if v is not None]
        if lows and highs:
            edges[i] = (min(lows), max(highs))
    return histogram_counts(engine, measured, [i for i in numeric if i in edges], edges, bins, bounded=True)


def category_counts(engine: SQLOfflineEngine, measured: Measured, indexes: list[int], top: int,
                    categories: list[list[str]] | None = None) -> dict[tuple[str, int], list[list[Any]]]:
    """Per (day, feature index) [(value, count)]: the top values, or the given ones and OTHER."""
    if not indexes:
        return {}
    chosen = [measured.features[i] for i in indexes]
    result = engine.run_query(lambda: category_counts_sql(engine, measured.rows(), measured.ts, chosen,
                                                          measured.by_day, top, categories))
    counts: dict[tuple[str, int], list[list[Any]]] = {}
    for row in table_rows(result):
        value = str(row["__value"]) if categories is None else decode_category(str(row["__value"]))
        counts.setdefault((str(row["__day"]), indexes[int(row["__set"])]), []).append([value, int(row["__n"])])
    return counts


def records_frame(records: list[MonitoringRecord]) -> Any:
    """Statistics records as a pandas DataFrame: one row per (scope, view, feature, day)."""
    import pandas as pd

    columns = ["scope", "view", "feature", "day", "start", "end", "rows", "count", "null_rate", "distinct_count",
               "distinct_approx", "min", "max", "mean", "stddev", "quantiles", "histogram", "top_values",
               "other_count", "computed_at"]
    rows = [{"scope": r.scope, "view": r.view, "feature": r.feature, "day": r.day, "start": r.start, "end": r.end,
             "rows": r.rows, **{k: r.values.get(k) for k in columns[7:-1]}, "computed_at": r.computed_at}
            for r in records]
    return pd.DataFrame(rows, columns=columns)
