"""Aggregation: a feature computed over a sliding time window of a view's events (docs/aggregations.md).

THE window rule, one for training data and serving, stated here once: the value of an aggregation
with window W and tile interval S (`tile_interval`) for an entity at time t is computed from the
view's events with the entity's keys and

    E - W < event_timestamp <= t,   E = tile_end(t, S)

where E is the end of the epoch-aligned tile (E - S, E] holding t (t itself when t is a tile end).
At a tile end the window is exactly (t - W, t]; between tile ends its start stays on the tile grid,
so the window is the W/S tiles ending with t's tile, that tile cut at t: what the online store
merges from its tiles. `window_start_us` / `in_window` state it in code; the offline engines write
the same inequality in SQL (repast/offline/window_aggregates.py) and the online read merges
exactly those tiles (repast/aggregations). Every event counts (events are not deduplicated by
event or created time); null values are ignored by every function; a window without a non-null
value gives null, except count and count_distinct, which give 0. first, last and last_n order
events by (event_timestamp, created_timestamp with null lowest, value): exact ties keep the
greatest value as `last`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from repast.errors import DefinitionError
from repast.types import Array, FeatureType, Float64, Int64, PrimitiveType

__all__ = ["FUNCTIONS", "Aggregation", "check_aggregations", "in_window", "tile_end", "window_start_us"]

# Canonical function -> what its input may be ("any", "numeric", "ordered") and what it outputs.
FUNCTIONS: dict[str, str] = {
    "count": "any", "count_distinct": "scalar", "sum": "numeric", "mean": "numeric", "min": "ordered",
    "max": "ordered", "last": "scalar", "first": "scalar", "stddev": "numeric", "variance": "numeric",
    "last_n": "scalar",
}
# Other spellings Feast users write (Spark's and pandas' names); the feature name keeps the spelling.
ALIASES = {"avg": "mean", "std": "stddev", "stddev_samp": "stddev", "var": "variance", "var_samp": "variance",
           "nunique": "count_distinct", "approx_count_distinct": "count_distinct"}
_INTEGERS = ("Int32", "Int64")
_FLOATS = ("Float32", "Float64")
_ORDERED = (*_INTEGERS, *_FLOATS, "String", "UnixTimestamp")
_NOT_SCALAR = ("Map", "Json")
# Default tile sizes, in seconds: the largest that fits 12 times in the window and divides it.
_NICE_TILES = (1, 5, 10, 15, 30, 60, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 604800)
TILES_PER_WINDOW = 12
_US = 1_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _micros(d: timedelta) -> int:
    return (d.days * 86_400 + d.seconds) * _US + d.microseconds


def tile_end(event_timestamp_us: int, tile_us: int) -> int:
    """The end (microseconds since the epoch) of the tile holding an event: tiles are (end - tile,
    end], aligned to the epoch, so a window (t - W, t] with t on a tile end is exactly its tiles."""
    return -(-event_timestamp_us // tile_us) * tile_us


def window_start_us(t_us: int, window_us: int, tile_us: int) -> int:
    """THE window rule: the excluded start of the window at `t_us`, the window length before the end
    of t's tile; an event counts at t iff window_start_us(t) < event_ts <= t (all microseconds
    since the epoch)."""
    return tile_end(t_us, tile_us) - window_us


def epoch_us(t: datetime) -> int:
    """Microseconds since the epoch (a naive datetime is UTC)."""
    aware = t if t.tzinfo is not None else t.replace(tzinfo=UTC)
    return (aware - _EPOCH) // timedelta(microseconds=1)


def in_window(event_timestamp: datetime, t: datetime, aggregation: Aggregation) -> bool:
    """Does an event at `event_timestamp` count for `aggregation`'s value at `t`? (window_start_us)"""
    t_us = epoch_us(t)
    start = window_start_us(t_us, aggregation.window_us, aggregation.tile_us)
    return start < epoch_us(event_timestamp) <= t_us


def window_label(d: timedelta) -> str:
    """A window as text: 1h, 30m, 7d, 90s, 1500ms."""
    us = _micros(d)
    for unit, size in (("d", 86_400 * _US), ("h", 3_600 * _US), ("m", 60 * _US), ("s", _US), ("ms", 1_000)):
        if us % size == 0:
            return f"{us // size}{unit}"
    return f"{us}us"


def default_tile(time_window: timedelta) -> timedelta:
    """The tile size when none is given: the largest of 1s, 5s, 10s, 15s, 30s, 1m, 5m, 10m, 15m,
    30m, 1h, 2h, 3h, 6h, 12h, 1d, 7d that fits TILES_PER_WINDOW times in the window and divides
    it; a window too short or too odd for any of them is one tile."""
    window = _micros(time_window)
    for seconds in reversed(_NICE_TILES):
        tile = seconds * _US
        if tile * TILES_PER_WINDOW <= window and window % tile == 0:
            return timedelta(seconds=seconds)
    return time_window


@dataclass(eq=False)
class Aggregation:
    """`Aggregation(column="amount", function="sum", time_window=timedelta(hours=1))`, Feast's names.

    The feature is named as Feast names it, `{function}_{column}` (`sum_amount`), unless `name` is
    given; two aggregations of one column by one function (over two windows) need a `name` each.
    Functions: count, sum, mean (or avg), min, max, last, first, stddev, variance, count_distinct,
    and last_n with `n` (the n latest values, oldest first). `slide_interval` is the tile size of
    the online store's partial aggregates (default: `default_tile(time_window)`); the window must
    be a whole number of tiles.
    """

    column: str
    function: str
    time_window: timedelta
    slide_interval: timedelta | None = None
    name: str | None = None
    n: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.column, str) or not self.column:
            raise DefinitionError(f"Aggregation needs a column name, got {self.column!r}")
        if not isinstance(self.function, str) or self.kind not in FUNCTIONS:
            raise DefinitionError(f"Aggregation of '{self.column}': unknown function {self.function!r}; use one of "
                                  f"{', '.join(FUNCTIONS)} (or {', '.join(ALIASES)})")
        if not isinstance(self.time_window, timedelta) or self.time_window <= timedelta(0):
            raise DefinitionError(f"Aggregation '{self.feature_name}': time_window must be a positive "
                                  f"datetime.timedelta, got {self.time_window!r}")
        if self.slide_interval is not None and (not isinstance(self.slide_interval, timedelta)
                                                or self.slide_interval <= timedelta(0)):
            raise DefinitionError(f"Aggregation '{self.feature_name}': slide_interval must be a positive "
                                  f"datetime.timedelta, got {self.slide_interval!r}")
        if _micros(self.time_window) % _micros(self.tile_interval):
            raise DefinitionError(f"Aggregation '{self.feature_name}': time_window {window_label(self.time_window)} "
                                  f"is not a whole number of slide_interval {window_label(self.tile_interval)} "
                                  "tiles; choose a slide_interval that divides the window")
        if self.kind == "last_n" and (isinstance(self.n, bool) or not isinstance(self.n, int) or self.n < 1):
            raise DefinitionError(f"Aggregation '{self.feature_name}': function 'last_n' needs n, a positive "
                                  f"number of values, got n={self.n!r}")
        if self.kind != "last_n" and self.n is not None:
            raise DefinitionError(f"Aggregation '{self.feature_name}': n is for function 'last_n' only")
        if self.name is not None and (not isinstance(self.name, str) or not self.name):
            raise DefinitionError(f"Aggregation of '{self.column}': name must be a non-empty string")

    @property
    def kind(self) -> str:
        """The canonical function (`avg` is `mean`)."""
        return ALIASES.get(self.function, self.function)

    @property
    def feature_name(self) -> str:
        return self.name or f"{self.function}_{self.column}"

    @property
    def tile_interval(self) -> timedelta:
        """The tile size online: `slide_interval`, else `default_tile(time_window)`."""
        return self.slide_interval or default_tile(self.time_window)

    @property
    def window_us(self) -> int:
        return _micros(self.time_window)

    @property
    def tile_us(self) -> int:
        return _micros(self.tile_interval)

    def output_type(self, input_type: FeatureType | None) -> FeatureType:
        """The feature's type given its column's (Float64 for an unknown column of a numeric function)."""
        kind = self.kind
        if kind in ("count", "count_distinct"):
            return Int64
        if kind in ("mean", "stddev", "variance"):
            return Float64
        if kind == "last_n":
            return Array(input_type if isinstance(input_type, PrimitiveType) else Float64)
        if input_type is None:
            return Float64
        if kind == "sum":
            return Int64 if input_type.name in _INTEGERS else Float64
        return input_type

    def check_input(self, input_type: FeatureType, view: str) -> None:
        """Raise DefinitionError naming the view and aggregation when the column's type does not fit."""
        need = FUNCTIONS[self.kind]
        ok = {"any": True,
              "numeric": input_type.name in (*_INTEGERS, *_FLOATS),
              "ordered": input_type.name in _ORDERED,
              "scalar": isinstance(input_type, PrimitiveType) and input_type.name not in _NOT_SCALAR}[need]
        if not ok:
            what = {"numeric": "a number (Int32, Int64, Float32, Float64)",
                    "ordered": "a number, a String or a UnixTimestamp",
                    "scalar": "a scalar (not an Array, Struct, Map or Json)"}[need]
            raise DefinitionError(f"feature view '{view}': aggregation '{self.feature_name}' applies "
                                  f"{self.function} to column '{self.column}' of type {input_type}; "
                                  f"{self.function} needs {what}: "
                                  "aggregate another column or choose another function")

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"column": self.column, "function": self.function,
                             "time_window_us": self.window_us}
        if self.slide_interval is not None:
            d["slide_interval_us"] = _micros(self.slide_interval)
        if self.name:
            d["name"] = self.name
        if self.n is not None:
            d["n"] = self.n
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Aggregation:
        slide = d.get("slide_interval_us")
        return cls(column=d["column"], function=d["function"], time_window=timedelta(microseconds=d["time_window_us"]),
                   slide_interval=None if slide is None else timedelta(microseconds=slide), name=d.get("name"),
                   n=d.get("n"))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Aggregation) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash((self.feature_name, self.window_us))


def check_aggregations(view: str, aggregations: list[Aggregation], schema: dict[str, FeatureType],
                       join_keys: list[str]) -> None:
    """Check a view's aggregations against its declared input columns `schema` (name -> type).

    Errors name the view, the aggregation and the fix: a column missing from the schema, a column
    of the wrong type for the function, two aggregations under one feature name.
    """
    seen: dict[str, Aggregation] = {}
    for agg in aggregations:
        if not isinstance(agg, Aggregation):
            raise DefinitionError(f"feature view '{view}': aggregations must be Aggregation(...) objects, "
                                  f"got {agg!r}")
        name = agg.feature_name
        if name in seen:
            suggestion = f"{agg.function}_{agg.column}_{window_label(agg.time_window)}"
            raise DefinitionError(f"feature view '{view}': two aggregations are named '{name}'; give one a name, "
                                  f"e.g. Aggregation(..., name=\"{suggestion}\")")
        if name in join_keys:
            raise DefinitionError(f"feature view '{view}': aggregation '{name}' has the name of a join key; "
                                  "give it another name=")
        seen[name] = agg
        if schema and agg.column not in schema:
            raise DefinitionError(f"feature view '{view}': aggregation '{name}' reads column '{agg.column}', which "
                                  f"is not in the view's schema ({sorted(schema)}); add "
                                  f"Field(name=\"{agg.column}\", dtype=...) to schema=")
        if agg.column in schema:
            agg.check_input(schema[agg.column], view)
