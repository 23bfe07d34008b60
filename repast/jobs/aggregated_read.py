"""The online read of aggregated features: each key's tiles of the longest requested window,
fetched in one batched store read, merged at the request time (repast.aggregations.merge).

A view with aggregations reads as any other view (ReadRow per key), with these semantics:
- the value of each feature is its aggregation over the window ending at the request time, by
  the boundary rule (repast.definitions.aggregation.window_start_us), fresh without rematerializing;
- the row's event timestamp is the newest event time within the requested windows, and None when
  no event is in any of them: the read then reports NOT_FOUND, with count and count_distinct 0
  (as training data) and the other features null.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from repast.aggregations.cache import MergedValueCache
from repast.aggregations.layout import TileLayout, tile_layout
from repast.aggregations.merge import TileRow, values_at, window_bounds
from repast.aggregations.spec import TiledAggregation, tiled_aggregations
from repast.definitions.aggregation import tile_end, window_start_us
from repast.online.base import ReadRow, TileStorage, tile_storage, tile_versions_of
from repast.plugins.capabilities import capabilities_of
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
    # What a kept merged row depends on besides the key: the storage and the requested aggregations.
    cache_id: str = field(default="", compare=False)
    has_lists: bool = field(default=False, compare=False)  # last_n: values that are lists

    def tile_ranges(self, t_us: int) -> tuple[list[tuple[int, int]], tuple[int, int]]:
        """The (after, through] ranges of tile ends the requested windows at t need: fine tiles
        (all of a window without coarse tiles, else its two edges), and coarse tiles."""
        end = tile_end(t_us, self.layout.tile_us)
        starts = {window_start_us(t_us, a.window_us, a.tile_us) for a in self.aggregations}
        bounds = [(s, *window_bounds(self.layout, s, end)) for s in sorted(starts)]
        fine = [(s, left) for s, left, _ in bounds] + [(min(right for _, _, right in bounds), end)]
        return fine, (min(left for _, left, _ in bounds), max(right for _, _, right in bounds))


def aggregated_read(view: FeatureView, features: Sequence[str]) -> AggregatedRead | None:
    """The read of `features` of an aggregated view; None for an ordinary view."""
    layout = tile_layout(view)
    if layout is None:
        return None
    by_name = {a.name: a for a in tiled_aggregations(view)}
    aggregations = [by_name[f] for f in features]
    # A string: hashed once, where a tuple of the aggregations would be hashed at every look-up.
    cache_id = repr((view.name, layout.storage_signature, aggregations))
    return AggregatedRead(layout, aggregations, cache_id, any(a.function == "last_n" for a in aggregations))


_CACHES: weakref.WeakKeyDictionary[OnlineReader, MergedValueCache] = weakref.WeakKeyDictionary()


def merged_value_cache(online: OnlineReader) -> MergedValueCache:
    """The merged rows kept for one online store object (made on first use)."""
    cache = _CACHES.get(online)
    if cache is None:
        cache = _CACHES[online] = MergedValueCache()
    return cache


def read_aggregated(online: OnlineReader, project: str, view: FeatureView, plan: AggregatedRead,
                    keys: Sequence[str], t_us: int) -> list[ReadRow]:
    """Per key, (newest event time in the windows or None, *values at t) in plan order. A store
    that merges aggregations itself (the remote store: its feature server does, at its own now) is
    read as for any feature."""
    caps = capabilities_of(online)
    if caps.merges_aggregations:
        return online.read(project, view, keys, [a.name for a in plan.aggregations])
    store = tile_storage(online, view)
    versioned = tile_versions_of(store)
    if versioned is None:
        return merge_tiles(store, project, view, plan, keys, t_us)
    # Tokens first, then the tiles they vouch for (TileVersionReader).
    tokens = versioned.tile_versions(project, view, plan.layout, keys)
    cache, end = merged_value_cache(online), tile_end(t_us, plan.layout.tile_us)
    ids = [(project, plan.cache_id, k) for k in keys]
    out: list[ReadRow] = [cache.get(i, end, token) for i, token in zip(ids, tokens, strict=True)]
    missing = [j for j, row in enumerate(out) if row is None]
    if missing:
        merged = merge_tiles(store, project, view, plan, [keys[j] for j in missing], t_us)
        for j, row in zip(missing, merged, strict=True):
            out[j] = row
            cache.put(ids[j], end, tokens[j], row)
    if plan.has_lists:  # last_n values are lists a caller may change: hand out copies of kept rows
        out = [row if row is None else tuple([list(v) if type(v) is list else v for v in row]) for row in out]
    return out


def merge_tiles(store: TileStorage, project: str, view: FeatureView, plan: AggregatedRead,
                keys: Sequence[str], t_us: int) -> list[ReadRow]:
    """Per key, the tiles of the requested windows at t read and merged (no cache)."""
    fine_ranges, coarse_range = plan.tile_ranges(t_us)
    coarse_layout = plan.layout.coarse()
    ranges = [(plan.layout, after, through) for after, through in fine_ranges if after < through]
    coarse_ranges = 0
    if coarse_layout is not None and coarse_range[0] < coarse_range[1]:
        ranges.append((coarse_layout, coarse_range[0], coarse_range[1]))
        coarse_ranges = 1
    read = store.read_tile_ranges(project, view, keys, ranges) if ranges else []
    fine: list[dict[int, TileRow]] = [{} for _ in keys]
    for per_key in read[:len(read) - coarse_ranges]:
        for found, rows in zip(fine, per_key, strict=True):
            found.update((r[0], r) for r in rows)
    coarse: list[list[TileRow]] = read[-1] if coarse_ranges else [[] for _ in keys]
    out: list[ReadRow] = []
    for by_end, coarse_rows in zip(fine, coarse, strict=True):
        values, newest = values_at(plan.layout, [by_end[e] for e in sorted(by_end)], t_us, plan.aggregations,
                                   coarse_rows)
        times = [x for x in newest if x is not None]
        out.append((max(times) if times else None, *values))
    return out
