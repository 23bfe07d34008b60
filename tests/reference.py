"""A deliberately simple point-in-time join: plain Python loops over small data.

It states DESIGN.md's semantics as directly as possible so engines can be compared with it.
Speed does not matter here; obviousness does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

NO_CREATED = datetime.min.replace(tzinfo=UTC)


@dataclass
class ReferenceView:
    """One requested view projection: its source rows and how entity columns map to its keys."""

    key_columns: list[str]  # source columns holding the join keys
    request_columns: list[str]  # entity columns holding the same keys, in the same order
    rows: list[dict[str, Any]]  # source rows, source column names
    timestamp_field: str
    features: dict[str, str]  # source column -> output column name
    ttl: timedelta = timedelta(0)
    created_column: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def utc(value: datetime) -> datetime:
    """Timestamps without a zone are UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _rank(view: ReferenceView, row: dict[str, Any]) -> tuple[datetime, datetime]:
    created = row.get(view.created_column) if view.created_column else None
    return utc(row[view.timestamp_field]), utc(created) if created is not None else NO_CREATED


def latest_row(view: ReferenceView, keys: tuple[Any, ...], at: datetime) -> dict[str, Any] | None:
    """The candidate with the greatest (event_ts, created_ts), or None. Null keys match nothing.

    The tie rule: among candidates with equal (event_ts, created_ts), the one that comes last in
    the source (`view.rows` are in the source's order)."""
    if any(k is None for k in keys):
        return None
    best: dict[str, Any] | None = None
    for row in view.rows:
        if tuple(row[c] for c in view.key_columns) != keys:
            continue
        event_ts = utc(row[view.timestamp_field])
        if event_ts > at:
            continue
        if view.ttl > timedelta(0) and event_ts < at - view.ttl:
            continue
        if best is None or _rank(view, row) >= _rank(view, best):
            best = row
    return best


def point_in_time_join(entity_rows: list[dict[str, Any]], timestamp_column: str,
                       views: list[ReferenceView]) -> list[dict[str, Any]]:
    """Every entity row, in order, with its columns (timestamp made UTC) and then each view's features."""
    output = []
    for entity_row in entity_rows:
        at = utc(entity_row[timestamp_column])
        result = {**entity_row, timestamp_column: at}
        for view in views:
            row = latest_row(view, tuple(entity_row[c] for c in view.request_columns), at)
            for column, name in view.features.items():
                result[name] = None if row is None else row[column]
        output.append(result)
    return output


@dataclass
class ReferenceAggregation:
    """One windowed aggregation: `function` of source column `column` over `window` of `tile`s, output `name`."""

    column: str
    function: str  # canonical: count, count_distinct, sum, mean, min, max, last, first, stddev, variance, last_n
    window: timedelta
    tile: timedelta
    name: str
    n: int = 1


def windowed_aggregates(entity_rows: list[dict[str, Any]], timestamp_column: str, view: ReferenceView,
                        aggregations: list[ReferenceAggregation]) -> list[dict[str, Any]]:
    """Every entity row, in order, with its columns, then each aggregation at its time (windowed_value)."""
    output = []
    for entity_row in entity_rows:
        at = utc(entity_row[timestamp_column])
        result = {**entity_row, timestamp_column: at}
        keys = tuple(entity_row[c] for c in view.request_columns)
        rows = [] if any(k is None for k in keys) else [  # null keys match nothing
            row for row in view.rows if tuple(row[c] for c in view.key_columns) == keys
            and row[view.timestamp_field] is not None]
        for agg in aggregations:
            events = [(micros(row[view.timestamp_field]), _created_us(view, row), row[agg.column]) for row in rows]
            result[agg.name] = windowed_value(events, agg.function, micros(at), micros_of(agg.window),
                                              micros_of(agg.tile), agg.n)
        output.append(result)
    return output


# --- Windowed aggregates: the value at t by brute force (training data and online reads) ----------

US_PER_S = 1_000_000
_NO_CREATED_US = -(2**63)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def micros_of(d: timedelta) -> int:
    return d // timedelta(microseconds=1)


def micros(t: datetime) -> int:
    return micros_of(utc(t) - _EPOCH)


def _created_us(view: ReferenceView, row: dict[str, Any]) -> int | None:
    created = row.get(view.created_column) if view.created_column else None
    return None if created is None else micros(created)


def window_start_us(t_us: int, window_us: int, tile_us: int) -> int:
    """The window rule, restated: the (excluded) start of the window at t is the window length
    before the end of t's tile, tiles being (end - tile, end] aligned to the epoch."""
    return -(-t_us // tile_us) * tile_us - window_us


def windowed_value(events: list[tuple[int, int | None, Any]], function: str, t_us: int, window_us: int,
                   tile_us: int, n: int = 0) -> Any:
    """`function` over the events (event_us, created_us or None, value) with start < event <= t.

    Nulls are ignored; an empty window is 0 for count and count_distinct, null otherwise (last_n too); stddev
    and variance are the sample ones; first/last/last_n order by (event, created, value), a missing
    created time first; last_n is oldest first."""
    start = window_start_us(t_us, window_us, tile_us)
    chosen = sorted((e, _NO_CREATED_US if c is None else c, v) for e, c, v in events
                    if start < e <= t_us and v is not None)
    values = [v for _, _, v in chosen]
    if function == "count":
        return len(values)
    if function == "count_distinct":
        return len(set(values))
    if not values:
        return None
    if function == "last_n":
        return values[-n:]
    simple = {"sum": sum, "min": min, "max": max, "first": lambda vs: vs[0], "last": lambda vs: vs[-1],
              "mean": lambda vs: sum(vs) / len(vs)}
    if function in simple:
        return simple[function](values)
    if len(values) < 2:
        return None
    mean = sum(values) / len(values)
    variance = sum((v - mean) ** 2 for v in values) / (len(values) - 1)
    return variance if function == "variance" else variance ** 0.5
