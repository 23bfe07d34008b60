"""What the online half needs from a view's aggregations: one TiledAggregation per output feature.

The definitions (repast.definitions.aggregation) are the source of truth; `tiled_aggregations`
reads them into this small record, so the tile code depends on a few fields only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from math import gcd
from typing import TYPE_CHECKING, Any

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
    function: str
    window_us: int
    tile_us: int
    n: int = 0  # last_n's k


def _us(delta: timedelta) -> int:
    return (delta.days * 86_400 + delta.seconds) * US + delta.microseconds


def _function(agg: Any) -> tuple[str, int]:
    """(function name, last_n's k) of a definition."""
    function = str(agg.function)
    k = int(getattr(agg, "n", 0) or 0)
    if function.startswith("last_n(") and function.endswith(")"):  # "last_n(5)"
        return "last_n", int(function[len("last_n("):-1])
    return function, k


def tiled_aggregations(view: FeatureView) -> list[TiledAggregation]:
    """The view's aggregations as TiledAggregation records, in declaration order (none: [])."""
    out = []
    for agg in getattr(view, "aggregations", None) or []:
        function, k = _function(agg)
        window = _us(agg.time_window)
        tile = _us(agg.slide_interval) if getattr(agg, "slide_interval", None) else default_tile_us(window)
        name = getattr(agg, "name", "") or f"{function}_{agg.column}"
        out.append(TiledAggregation(name, agg.column, function, window, tile, k))
    return out


def storage_tile_us(aggs: list[TiledAggregation]) -> int:
    """The tile size a view's tiles are stored at: every aggregation's tile is a multiple of it, so
    each aggregation's window is a whole number of stored tiles."""
    size = 0
    for a in aggs:
        size = gcd(size, a.tile_us)
    return size


def horizon_us(aggs: list[TiledAggregation]) -> int:
    """How far back from now any window reaches: older tiles are outside every window."""
    return max((a.window_us + a.tile_us for a in aggs), default=0)


def default_tile_us(window_us: int) -> int:
    """Tile size when the definition names none (placeholder until the definitions' own rule)."""
    for limit, tile in ((3600 * US, 60 * US), (86_400 * US, 300 * US)):
        if window_us <= limit and window_us % tile == 0:
            return tile
    return 3600 * US if window_us % (3600 * US) == 0 else window_us


def window_start_us(t_us: int, window_us: int, tile_us: int) -> int:
    """THE boundary rule: an event is in the window at t iff window_start_us(t) <= event_ts <= t.
    The start is the window length before the start of t's tile (so at a tile boundary the window
    is exactly [t - window, t]); tiles then hold exactly the events of a window."""
    return (t_us // tile_us) * tile_us - window_us
