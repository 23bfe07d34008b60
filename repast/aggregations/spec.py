"""What the online half needs from a view's aggregations: one TiledAggregation per output feature.
The window rule itself is repast.definitions.aggregation.window_start_us, shared with training data.

The definitions (repast.definitions.aggregation) are the source of truth; `tiled_aggregations`
reads them into this small record. Tiles are (end - tile, end], aligned to the epoch
(`tile_end`), and stored under their end.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import gcd
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from repast.definitions import FeatureView

US = 1_000_000
# What each function keeps per tile (beyond the non-null count every input keeps).
PARTIALS: dict[str, tuple[str, ...]] = {
    "count": (), "sum": ("sum",), "mean": ("sum",), "min": ("min",), "max": ("max",),
    "first": ("first",), "last": ("last",), "variance": ("sum", "m2"), "stddev": ("sum", "m2"),
    "count_distinct": ("distinct",), "last_n": ("last_n",),
}


@dataclass(frozen=True)
class TiledAggregation:
    """One aggregated feature: `function` of `column` over `window_us`, on tiles of `tile_us`."""

    name: str
    column: str
    function: str  # canonical (Aggregation.kind)
    window_us: int
    tile_us: int
    n: int = 0  # last_n's n


def tiled_aggregations(view: FeatureView) -> list[TiledAggregation]:
    """The view's aggregations as TiledAggregation records, in declaration order (none: [])."""
    out = []
    for agg in view.aggregations:
        tile = agg.tile_interval
        tile_us = (tile.days * 86_400 + tile.seconds) * US + tile.microseconds
        out.append(TiledAggregation(agg.feature_name, agg.column, agg.kind, agg.window_us, tile_us, agg.n or 0))
    return out


def storage_tile_us(aggs: list[TiledAggregation]) -> int:
    """The tile size a view's tiles are stored at: every aggregation's tile is a multiple of it, so
    each aggregation's window is a whole number of stored tiles."""
    size = 0
    for a in aggs:
        size = gcd(size, a.tile_us)
    return size


def horizon_us(aggs: list[TiledAggregation]) -> int:
    """How far back from now any window reaches: tiles ending earlier are outside every window."""
    return max((a.window_us + a.tile_us for a in aggs), default=0)


def events_view(view: FeatureView) -> FeatureView:
    """The view as its raw events: same name, source and keys, its features the aggregation inputs
    (what materialization reads from the source and what a push or an offline write carries)."""
    import copy

    if not view.aggregations:
        return view
    events = copy.copy(view)
    events.aggregations = []
    return events
