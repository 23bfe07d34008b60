"""The online read of aggregated features: each key's tiles of the longest requested window,
fetched in one batched store read, merged at the request time (repast.aggregations.merge).

A view with aggregations reads as any other view (ReadRow per key), with these semantics:
- the value of each feature is its aggregation over the window ending at the request time, by
  the boundary rule (repast.aggregations.spec.window_start_us), fresh without rematerializing;
- the row's event timestamp is the newest event time within the requested windows, and None when
  no event is in any of them: the read then reports NOT_FOUND, with count and count_distinct 0
  (as training data) and the other features null.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from repast.aggregations.layout import TileLayout, tile_layout
from repast.aggregations.merge import values_at
from repast.aggregations.spec import TiledAggregation, tiled_aggregations, window_start_us
from repast.definitions.aggregation import tile_end
from repast.online.base import ReadRow, tile_storage
from repast.types.timestamps import as_utc

if TYPE_CHECKING:
    from repast.definitions import FeatureView
    from repast.online.base import OnlineReader


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def micros(at: datetime) -> int:
    """A time as UTC microseconds since the epoch (a naive time is UTC)."""
    d = as_utc(at) - _EPOCH
    return (d.days * 86_400 + d.seconds) * 1_000_000 + d.microseconds


@dataclass(frozen=True)
class AggregatedRead:
    """What a read of some of a view's aggregated features needs, resolved once per plan."""

    layout: TileLayout
    aggregations: list[TiledAggregation]  # the requested features', in request order

    def tile_range(self, t_us: int) -> tuple[int, int]:
        """(after, through): the tile ends the requested windows at t cover."""
        after = min(window_start_us(t_us, a.window_us, a.tile_us) for a in self.aggregations)
        return after, tile_end(t_us, self.layout.tile_us)


def aggregated_read(view: FeatureView, features: Sequence[str]) -> AggregatedRead | None:
    """The read of `features` of an aggregated view; None for an ordinary view."""
    layout = tile_layout(view)
    if layout is None:
        return None
    by_name = {a.name: a for a in tiled_aggregations(view)}
    return AggregatedRead(layout, [by_name[f] for f in features])


def read_aggregated(online: OnlineReader, project: str, view: FeatureView, plan: AggregatedRead,
                    keys: Sequence[str], t_us: int) -> list[ReadRow]:
    """Per key, (newest event time in the windows or None, *values at t) in plan order."""
    after, through = plan.tile_range(t_us)
    tiles = tile_storage(online, view).read_tiles(project, view, plan.layout, keys, after, through)
    out: list[ReadRow] = []
    for rows in tiles:
        values, newest = values_at(plan.layout, rows, t_us, plan.aggregations)
        times = [x for x in newest if x is not None]
        out.append((max(times) if times else None, *values))
    return out
