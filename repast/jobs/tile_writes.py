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
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

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
TILE_CHUNK = 50_000  # tile rows per write transaction of a materialization
GROUP_ROWS = 500_000  # events turned into tiles at a time by a materialization (whole keys)


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
    """Add a batch of events (engine column contract) to the view's tiles of every level, once per
    batch: `batch` names it (a stream consumer: its topic, partitions and offset ranges), else its
    content hash; rows None: only the marks. `marks` (e.g. a stream consumer's offsets) are
    committed in the transaction of the LAST level, so a batch cut off between levels is completed
    by sending it again (the levels already written find the batch's id and skip). Returns the tile
    rows written (0 for a batch applied before)."""
    levels = _layout(view).levels()
    store, events = tile_storage(online, view), events_view(view)
    name = batch or (batch_id(rows) if rows is not None else None)
    written = 0
    for i, level in enumerate(levels):
        last = i == len(levels) - 1
        if rows is None and not last:
            continue
        tiles = empty_tiles(level) if rows is None else \
            compute_tiles(events, level, rows, min_tile_us=expired_through(level) + 1)
        written += store.write_tiles(project, view, level, tiles, add=True,
                                     batch_id=None if name is None else f"{name}:{level.tile_us}",
                                     marks=marks if last else None)
    return written


def materialize_tiles(project: str, engine: OfflineEngine, online: OnlineStore, view: FeatureView,
                      start: datetime, end: datetime, marks: Mapping[str, str] | None = None,
                      group_rows: int = GROUP_ROWS) -> int:
    """Recompute and replace the tiles of every level that (start, end] touches; returns the tile
    rows written. `marks` (a stream consumer's cut-over) commit with the first tile write, before
    any tile is replaced.

    Memory is bounded: the engine streams the window's events sorted by key (read_range_by_key),
    and they are turned into tiles a group of whole keys at a time, about `group_rows` events (more
    only when one key alone has more). Each write is a transaction of whole tiles that replaces
    what is stored, so a run killed at any point is completed by running it again."""
    levels = _layout(view).levels()
    store, events_of = tile_storage(online, view), events_view(view)
    horizon = expired_through(levels[0])
    written = sum(store.write_tiles(project, view, level, empty_tiles(level), add=False, expire_through_us=horizon,
                                    marks=marks if i == 0 else None)
                  for i, level in enumerate(levels))
    grid = levels[-1].tile_us  # the largest tile: read from its start, so every tile of every level is whole
    # From the start of the tile holding `start` (tiles are (end - S, end]), so tiles are whole.
    first = max(tile_end(micros(start), grid) - grid, tile_end(horizon + 1, grid) - grid)
    if first >= micros(end):
        return written
    batches = engine.read_range_by_key(events_of, _time(first) + _US, end + _US, min(group_rows, 100_000))
    for events in key_groups(batches, view.join_keys, group_rows):
        for level in levels:
            tiles = compute_tiles(events_of, level, events, min_tile_us=horizon + 1)
            # Each chunk a transaction of whole tiles (replaced, never added to): only one chunk is
            # ever Python rows.
            for chunk in tiles.to_batches(max_chunksize=TILE_CHUNK):
                written += store.write_tiles(project, view, level, pa.Table.from_batches([chunk]), add=False)
    return written


def key_groups(batches: Iterable[pa.RecordBatch], keys: Sequence[str], group_rows: int) -> Iterator[pa.Table]:
    """Key-ordered batches regrouped into tables of whole keys (every row of a key in one table),
    each of about `group_rows` rows: the rows of the last key of a full group wait for the next."""
    pending: list[pa.RecordBatch] = []
    size = 0
    for batch in batches:
        if not batch.num_rows:
            continue
        pending.append(batch)
        size += batch.num_rows
        if size < group_rows:
            continue
        table = pa.Table.from_batches(pending)
        cut = table.num_rows - _last_key_rows(table, keys)
        if cut == 0:  # one key so far: keep reading until it ends
            continue
        yield table.slice(0, cut)
        rest = table.slice(cut)
        pending, size = rest.to_batches(), rest.num_rows
    if size:
        yield pa.Table.from_batches(pending)


def _last_key_rows(table: pa.Table, keys: Sequence[str]) -> int:
    """How many rows at the end of a key-ordered table hold its last row's key."""
    last = table.slice(table.num_rows - 1)
    same = None
    for k in keys:
        value = last.column(k)[0]
        equal = pc.is_null(table.column(k)) if not value.is_valid else pc.equal(table.column(k), value)
        same = equal if same is None else pc.and_(same, equal)
    return int(pc.sum(pc.fill_null(same, False)).as_py() or 0)


def _time(us: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us)
