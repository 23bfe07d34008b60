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

import math
from dataclasses import dataclass, field, replace
from functools import cached_property
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

    def columns(self, only: set[str] | None = None) -> list[tuple[str, Kind]]:
        """The partial columns, in storage order (`only`: of these partials, and the count)."""
        c, p = self.column, self.partials if only is None else self.partials & only
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
    # Coarse tiles (a multiple of tile_us), kept beside the fine ones so that a read merges the
    # window's interior from few coarse tiles and only its two edges from fine ones; 0: none.
    coarse_us: int = 0
    fine: TileLayout | None = field(default=None, compare=False, repr=False)  # of a coarse layout

    def coarse(self) -> TileLayout | None:
        """The layout of the coarse tiles (the same columns, stored apart), or None."""
        if not self.coarse_us:
            return None
        return replace(self, tile_us=self.coarse_us, coarse_us=0, fine=self)

    def levels(self) -> list[TileLayout]:
        """Every tile level of the view: fine, then coarse when kept."""
        base = self.fine or self
        coarse = base.coarse()
        return [base] if coarse is None else [base, coarse]

    @cached_property
    def columns(self) -> list[tuple[str, Kind]]:
        """Partial columns after the key and tile end, in storage order."""
        out: list[tuple[str, Kind]] = [(EVENTS, "int"), (MAX_ETS, "int")]
        for inp in self.inputs.values():
            out += inp.columns()
        return out

    @cached_property
    def column_names(self) -> list[str]:
        return [name for name, _ in self.columns]

    @cached_property
    def storage_signature(self) -> str:
        cols = ",".join(f"{n}:{k}" for n, k in self.columns)
        return f";tiles={self.tile_us}:{cols};last_n={max((i.last_n for i in self.inputs.values()), default=0)}"

    def signature(self) -> str:
        """What the tile storage depends on: a change rebuilds it (the next materialization refills)."""
        return self.storage_signature


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
    tile = storage_tile_us(aggregations)
    return TileLayout(aggregations, inputs, tile, horizon_us(aggregations), coarse_tile_us(aggregations, tile))


def coarse_tile_us(aggregations: list[TiledAggregation], tile_us: int) -> int:
    """The coarse tile size: k fine tiles with k near sqrt(tiles of the longest window / 2), which
    makes a read's rows (2k fine at the edges + window/k coarse) fewest; 0 when k < 2."""
    k = round(math.sqrt(max(a.window_us for a in aggregations) / tile_us / 2))
    return tile_us * k if k >= 2 else 0


def tile_layout(view: FeatureView) -> TileLayout | None:
    """The tile layout of a view with aggregations; None for an ordinary view."""
    aggs = tiled_aggregations(view)
    if not aggs:
        return None
    dtypes: dict[str, str | None] = {f.name: f.dtype.name for f in view.schema}
    return make_layout(aggs, dtypes)
