"""The statistics queries, written once over the SQL engines' dialect hooks (repast/offline/sql_base.py).

Every query reads `rows` (SQL over the measured rows: a view's source in a time range, a saved
dataset, the served-feature log) and aggregates in the engine, streaming over the data; only the
aggregates come back to Python. Per measured day (or one group, "all"):

- `moments`: row count, time range, and per feature the non-null count, min/max/mean/stddev,
  quantiles and a distinct count (numeric features), or the distinct count (categorical);
- `histograms`: per numeric feature the counts in fixed bins between given edges, plus the values
  below and above them (all features in one scan, by GROUPING SETS);
- `category_counts`: per categorical feature the top values, or the counts of given values and of
  all others together.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from repast.sql_quoting import quote_ident

if TYPE_CHECKING:
    from repast.offline.sql_base import SQLOfflineEngine

q = quote_ident
OTHER = "\x00other"  # in Python: the bucket of values outside the given categories (no real value is this)


@dataclass(frozen=True)
class MeasuredFeature:
    """A feature as measured: the view and feature it names, its column in the rows, its kind."""

    view: str
    feature: str
    column: str
    numeric: bool  # numeric: histogram and moments; else categorical: top values


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _number(value: float) -> str:
    return repr(float(value))


def _measured(engine: SQLOfflineEngine, rows: str, ts: str, features: list[MeasuredFeature], by_day: bool | str) -> str:
    """The rows reduced to their group `__d` (the day), `__ts` and one column per feature (f0, f1, ...).

    `by_day`: True groups by UTC day; False is one group, "all"; a 'YYYY-MM-DD' says every row falls
    on that day, so the group is that constant (no date_trunc per row: a third of a plain scan)."""
    if isinstance(by_day, str):
        day = f"CAST({_literal(by_day)} AS {engine.text_type})"
    else:
        day = engine.day_sql(q(ts)) if by_day else f"CAST('all' AS {engine.text_type})"
    columns = [f"{day} AS __d", f"{q(ts)} AS __ts"]
    for i, f in enumerate(features):
        value = f"CAST({q(f.column)} AS {engine.double_type if f.numeric else engine.text_type})"
        columns.append(f"{value} AS f{i}")
    return f"SELECT {', '.join(columns)} FROM ({rows}) AS __measured_rows"


def _day_label(engine: SQLOfflineEngine, by_day: bool | str) -> str:
    """The group `__d` as the `__day` label the results carry ('YYYY-MM-DD' or 'all')."""
    return f"{engine.day_label_sql('__d') if by_day is True else '__d'} AS __day"


def moments_sql(engine: SQLOfflineEngine, rows: str, ts: str, features: list[MeasuredFeature], by_day: bool | str,
                quantiles: list[float]) -> str:
    aggregates = ["min(__ts) AS __first", "max(__ts) AS __last", "count(*) AS __rows"]
    for i, f in enumerate(features):
        x = f"f{i}"
        aggregates.append(f"count({x}) AS c{i}")
        aggregates.append(f"{engine.distinct_count_sql(x)} AS d{i}")
        if f.numeric:
            aggregates += [f"min({x}) AS lo{i}", f"max({x}) AS hi{i}", f"avg({x}) AS mean{i}",
                           f"stddev_samp({x}) AS sd{i}"]
            aggregates.append(f"{engine.quantiles_sql(x, quantiles)} AS q{i}")
    return (f"SELECT {_day_label(engine, by_day)}, {', '.join(aggregates)} "
            f"FROM ({_measured(engine, rows, ts, features, by_day)}) AS __m GROUP BY __d ORDER BY __d")


def _bucket(x: str, low: float, high: float, bins: int, bounded: bool) -> str:
    """The bin of x among `bins` equal bins over [low, high]; -1 below, `bins` above, NULL for NULL.
    `bounded`: the edges are the data's own min and max, so nothing is below or above them: the bin
    is the bare floor (the max lands in `bins`, which the caller folds into the last bin), as a CASE
    per value cost a third of a 20-feature scan. (LEAST would not do: it skips NULLs.)"""
    width = (high - low) / bins if high > low else 1.0
    if bounded:
        return f"CAST(FLOOR(({x} - {_number(low)}) / {_number(width)}) AS INTEGER)"
    return (f"CASE WHEN {x} IS NULL THEN NULL WHEN {x} < {_number(low)} THEN -1 "
            f"WHEN {x} > {_number(high)} THEN {bins} WHEN {x} = {_number(high)} THEN {bins - 1} "
            f"ELSE LEAST(CAST(FLOOR(({x} - {_number(low)}) / {_number(width)}) AS INTEGER), {bins - 1}) END")


def _grouped_by_set(keys: list[str], value: str, day: str) -> str:
    """GROUPING SETS ((__d, k0), (__d, k1), ...) with which set a row belongs to as `__set`."""
    which = " ".join(f"WHEN GROUPING({k}) = 0 THEN {i}" for i, k in enumerate(keys))
    sets = ", ".join(f"(__d, {k})" for k in keys)
    coalesced = keys[0] if len(keys) == 1 else f"COALESCE({', '.join(keys)})"
    return (f"SELECT __d, {day}, CASE {which} END AS __set, {coalesced} AS {value}, count(*) AS __n "
            f"FROM __src GROUP BY GROUPING SETS ({sets})")


def histograms_sql(engine: SQLOfflineEngine, rows: str, ts: str, features: list[MeasuredFeature], by_day: bool | str,
                   edges: list[tuple[float, float]], bins: int, bounded: bool = False) -> str:
    """Per (day, feature index as __set, bin as __bucket) the count __n, NULL values left out
    (`bounded`: see `_bucket`)."""
    buckets = [f"{_bucket(f'f{i}', low, high, bins, bounded)} AS b{i}" for i, (low, high) in enumerate(edges)]
    measured = _measured(engine, rows, ts, features, by_day)
    source = f"SELECT __d, {', '.join(buckets)} FROM ({measured}) AS __h"
    grouped = _grouped_by_set([f"b{i}" for i in range(len(features))], "__bucket",
                              _day_label(engine, by_day)).replace("FROM __src", f"FROM ({source}) AS __src")
    return f"SELECT __day, __set, __bucket, __n FROM ({grouped}) AS __g WHERE __bucket IS NOT NULL"


def category_counts_sql(engine: SQLOfflineEngine, rows: str, ts: str, features: list[MeasuredFeature],
                        by_day: bool | str, top: int, categories: list[list[str]] | None = None) -> str:
    """Per (day, feature index as __set, value as __value) the count __n: the `top` most frequent
    values, or, with `categories`, each given value as 'v:<value>' and every other value as 'o'
    (labels no value can collide with; `decode_category` reads them)."""
    measured = _measured(engine, rows, ts, features, by_day)
    values = []
    for i in range(len(features)):
        if categories is None:
            values.append(f"f{i} AS v{i}")
        else:
            known = ", ".join(_literal(v) for v in categories[i]) or "NULL"
            values.append(f"CASE WHEN f{i} IS NULL THEN NULL WHEN f{i} IN ({known}) THEN 'v:' || f{i} "
                          f"ELSE 'o' END AS v{i}")
    source = f"SELECT __d, {', '.join(values)} FROM ({measured}) AS __c"
    grouped = _grouped_by_set([f"v{i}" for i in range(len(features))], "__value",
                              _day_label(engine, by_day)).replace("FROM __src", f"FROM ({source}) AS __src")
    ranked = (f"SELECT __day, __set, __value, __n, row_number() OVER (PARTITION BY __d, __set "
              f"ORDER BY __n DESC, __value) AS __rank FROM ({grouped}) AS __g WHERE __value IS NOT NULL")
    limit = "" if categories is not None else f" WHERE __rank <= {int(top)}"
    return f"SELECT __day, __set, __value, __n FROM ({ranked}) AS __r{limit}"


def decode_category(label: str) -> str:
    """A value of `category_counts_sql` with categories: the category, or OTHER."""
    return label[2:] if label.startswith("v:") else OTHER


def table_rows(table: Any) -> list[dict[str, Any]]:
    """An Arrow result as Python rows (only aggregates come back: a few rows per feature and day)."""
    rows: list[dict[str, Any]] = table.to_pylist()
    return rows
