"""Aggregation tiles written to the online store: by materialization (whole tiles recomputed from
the offline source, replacing what is stored) and by push / write_to_online_store (partials added
to the stored tiles, once per batch).

Idempotence, and why it holds:
- materialize(start, end) recomputes every tile that (start, end] touches from ALL the source's
  events of that tile up to `end` and replaces it: replaying a window rewrites the same tiles.
- a pushed batch adds its partials and records its content hash (sha256 of the batch's rows) in
  the same store transaction; the same batch pushed again finds its hash and changes nothing.
  A materialization over a pushed tile replaces it from the offline source, which holds the pushed
  rows when they were pushed with `to=online_and_offline` (online-only pushes into a re-materialized
  tile are replaced, as an online-only row would be by a newer materialized one).
- tiles ending `horizon` (longest window + its tile) before now are outside every window: not
  written, and deleted by each materialization (Redis: key expiry as well).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import pyarrow as pa

from repast.aggregations.layout import TileLayout, tile_layout
from repast.aggregations.partials import compute_tiles, empty_tiles
from repast.aggregations.spec import events_view
from repast.definitions.aggregation import tile_end
from repast.jobs.aggregated_read import micros
from repast.online.base import tile_storage

if TYPE_CHECKING:
    from repast.definitions import FeatureView
    from repast.offline.base import OfflineEngine
    from repast.online.base import OnlineStore

_US = timedelta(microseconds=1)


def _layout(view: FeatureView) -> TileLayout:
    layout = tile_layout(view)
    assert layout is not None, f"feature view '{view.name}' has no aggregations"
    return layout


def expired_through(layout: TileLayout, now_us: int | None = None) -> int:
    """Tiles ending at or before this time (microseconds) are outside every window at now."""
    now = time.time_ns() // 1000 if now_us is None else now_us
    return now - layout.horizon_us


def batch_id(rows: pa.Table) -> str:
    """The content hash of a pushed batch (its rows as Arrow IPC): the same rows, the same id."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, rows.schema) as writer:
        writer.write_table(rows)
    return hashlib.sha256(sink.getvalue().to_pybytes()).hexdigest()


def push_tiles(project: str, online: OnlineStore, view: FeatureView, rows: pa.Table | None,
               marks: Mapping[str, str] | None = None, batch: str | None = None) -> int:
    """Add a batch of events (engine column contract) to the view's tiles, once per batch: `batch`
    names it (a stream consumer: its topic, partitions and offset ranges), else its content hash;
    `marks` (e.g. a stream consumer's offsets) are committed in the same transaction; rows None:
    only the marks. Returns the tile rows written (0 for a batch applied before)."""
    layout = _layout(view)
    if rows is None:
        tiles = empty_tiles(layout)
    else:
        tiles = compute_tiles(events_view(view), layout, rows, min_tile_us=expired_through(layout) + 1)
    return tile_storage(online, view).write_tiles(project, view, layout, tiles, add=True,
                                                  batch_id=batch or (batch_id(rows) if rows is not None else None),
                                                  marks=marks)


def materialize_tiles(project: str, engine: OfflineEngine, online: OnlineStore, view: FeatureView,
                      start: datetime, end: datetime) -> int:
    """Recompute and replace the tiles (start, end] touches; returns the source events read."""
    layout = _layout(view)
    store = tile_storage(online, view)
    horizon = expired_through(layout)
    # From the start of the tile holding `start` (tiles are (end - S, end]), so tiles are whole.
    first = max(tile_end(micros(start), layout.tile_us) - layout.tile_us, horizon - layout.tile_us)
    low = datetime(1970, 1, 1, tzinfo=end.tzinfo) + timedelta(microseconds=first) + _US
    if low > end:
        store.write_tiles(project, view, layout, empty_tiles(layout), add=False, expire_through_us=horizon)
        return 0
    events = engine.read_range(events_view(view), low, end + _US)
    tiles = compute_tiles(events_view(view), layout, events, min_tile_us=horizon + 1)
    store.write_tiles(project, view, layout, tiles, add=False, expire_through_us=horizon)
    return int(events.num_rows)

