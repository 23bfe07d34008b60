"""The partial-aggregate columns of a view's tile rows: one definition every store creates storage from.

A tile row is keyed by (entity key, tile end) (tiles are (end - tile, end]) and holds, per input column
`c` of the view's aggregations, only the partials its functions need:

    c__n            non-null values (every input: count, and whether mean/min/... have a value)
    c__sum c__m2    sum, and the sum of squared deviations from the tile's mean (mean, variance,
                    stddev: merged with Chan's formula, stable where a sum of squares is not)
    c__min c__max   in the column's kind
    c__first c__last (+ _e, _c)   the value with its (event_ts, created_ts) in microseconds
    c__last_n       JSON [[event_ts, created_ts, value], ...], newest first, at most n
    c__distinct     JSON sorted list of the distinct values (exact)

plus `_events` (events in the tile, nulls included) and `_max_ets` (its newest event time): the
read's status and event timestamp. Kinds are "int", "float" or "text", which every store holds natively.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from repast.aggregations.spec import PARTIALS, TiledAggregation, horizon_us, storage_tile_us, tiled_aggregations

if TYPE_CHECKING:
    from repast.definitions import FeatureView

Kind = Literal["int", "float", "text"]
KEY, TILE = "_entity_key", "_tile_end"
EVENTS, MAX_ETS = "_events", "_max_ets"
_INT_TYPES = {"Int32", "Int64", "Bool", "UnixTimestamp"}
_FLOAT_TYPES = {"Float32", "Float64"}


def value_kind(dtype_name: str | None) -> Kind:
    if dtype_name in _INT_TYPES:
        return "int"
    if dtype_name is None or dtype_name in _FLOAT_TYPES:
        return "float"
    return "text"


@dataclass
class InputPartials:
    """What the tiles keep of one input column."""

    column: str
    kind: Kind
    partials: set[str] = field(default_factory=set)
    last_n: int = 0  # the largest k of the column's last_n aggregations

    def columns(self) -> list[tuple[str, Kind]]:
        c, p = self.column, self.partials
        out: list[tuple[str, Kind]] = [(f"{c}__n", "int")]
        if "sum" in p:
            out.append((f"{c}__sum", "float"))
        if "m2" in p:
            out.append((f"{c}__m2", "float"))
        out += [(f"{c}__{m}", self.kind) for m in ("min", "max") if m in p]
        for m in ("first", "last"):
            if m in p:
                out += [(f"{c}__{m}", self.kind), (f"{c}__{m}_e", "int"), (f"{c}__{m}_c", "int")]
        out += [(f"{c}__{m}", "text") for m in ("last_n", "distinct") if m in p]
        return out


@dataclass
class TileLayout:
    """The tile rows of one view: stored tile size, partial columns, and how long tiles matter."""

    aggregations: list[TiledAggregation]
    inputs: dict[str, InputPartials]
    tile_us: int
    horizon_us: int

    @property
    def columns(self) -> list[tuple[str, Kind]]:
        """Partial columns after the key and tile start, in storage order."""
        out: list[tuple[str, Kind]] = [(EVENTS, "int"), (MAX_ETS, "int")]
        for inp in self.inputs.values():
            out += inp.columns()
        return out

    @property
    def column_names(self) -> list[str]:
        return [name for name, _ in self.columns]

    def signature(self) -> str:
        """What the tile storage depends on: a change rebuilds it (the next materialization refills)."""
        cols = ",".join(f"{n}:{k}" for n, k in self.columns)
        return f";tiles={self.tile_us}:{cols};last_n={max((i.last_n for i in self.inputs.values()), default=0)}"


def make_layout(aggregations: list[TiledAggregation], dtypes: dict[str, str | None]) -> TileLayout | None:
    """The layout of tiles for `aggregations` (None when there are none); `dtypes` names each input
    column's declared type (None when undeclared: kept as a float)."""
    if not aggregations:
        return None
    inputs: dict[str, InputPartials] = {}
    for a in aggregations:
        inp = inputs.setdefault(a.column, InputPartials(a.column, value_kind(dtypes.get(a.column))))
        inp.partials.update(PARTIALS[a.function])
        if a.function == "last_n":
            inp.last_n = max(inp.last_n, a.n)
    return TileLayout(aggregations, inputs, storage_tile_us(aggregations), horizon_us(aggregations))


def tile_layout(view: FeatureView) -> TileLayout | None:
    """The tile layout of a view with aggregations; None for an ordinary view."""
    aggs = tiled_aggregations(view)
    if not aggs:
        return None
    dtypes: dict[str, str | None] = {f.name: f.dtype.name for f in view.schema}
    return make_layout(aggs, dtypes)
