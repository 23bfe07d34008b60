"""The cut-over of an aggregated stream view's first start: its tiles are built from the batch
source for events before a time T, and from the stream for events at or after T, so an event that
both hold is counted once and none between them is missing.

T is chosen once per view and topic, when the view has no stored position (no tile marks):
- `--from TIMESTAMP` on the consumer's first start: T = that time (the batch data ends there, the
  stream begins there);
- `--from latest` on the consumer's first start: T = the start time (the stream begins now);
- otherwise (`--from earliest`, or the view joins a stream other views already read: it reads the
  partitions from their beginning): T = one microsecond past the newest event time in the batch
  source. The batch source then holds every event the consumer already appended (its own parts:
  those events are in the stream too) and the user's batch data; the stream replays everything it
  still retains, and only its events newer than all of that are added.
With no file in the batch source there is no cut-over: every stream event goes to the tiles.

T is stored as the tile mark `kafka-cutover:<topic>` (microseconds) in the transaction of the
backfill's first tile write, before any tile is replaced. The backfill replaces whole tiles, so
running it again (a kill before the view's first stream batch) gives the same tiles; once a stream
batch is folded (the view has positions) it never runs again, and the consumer folds into the tiles
only the stream's events at or after T (all of them are still appended to the batch source).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from repast.definitions import FileSource
from repast.errors import DefinitionError
from repast.jobs.aggregated_read import micros
from repast.jobs.tile_writes import materialize_tiles
from repast.offline.file_sources import list_source_files, source_filesystem
from repast.online.base import tile_storage
from repast.types.timestamps import parse_time

if TYPE_CHECKING:
    from repast.definitions import FeatureView
    from repast.offline.base import OfflineEngine
    from repast.online.base import OnlineStore

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def cutover_mark(topic: str) -> str:
    return f"kafka-cutover:{topic}"


def stored_cutover(online: OnlineStore, project: str, view: FeatureView, topic: str) -> int | None:
    """The view's stored cut-over time (microseconds), None when it has none."""
    found = tile_storage(online, view).read_marks(project, view, [cutover_mark(topic)])
    value = found.get(cutover_mark(topic))
    return None if value is None else int(value)


def choose_cutover(start: str | None, first_start: bool, source: FileSource, repo_path: str,
                   endpoint: str | None) -> int | None:
    """T for a view starting now (the rule above), microseconds; None: no cut-over."""
    try:
        files = list_source_files(source, repo_path, endpoint)
    except DefinitionError:  # no file: nothing to backfill, every stream event goes to the tiles
        return None
    if first_start and start == "latest":
        return time.time_ns() // 1000
    if first_start and start not in (None, "earliest"):
        return micros(parse_time(start, "--from"))
    newest = newest_event_us(source, files, repo_path, endpoint)
    return None if newest is None else newest + 1


def newest_event_us(source: FileSource, files: list[str], repo_path: str, endpoint: str | None) -> int | None:
    """The newest event time in the batch source's files (None: no event); one column is read."""
    fs, _ = source_filesystem(source, repo_path, endpoint)
    column = ds.dataset(files, filesystem=fs, format=source.file_format) \
        .to_table(columns=[source.timestamp_field]).column(0)
    newest = pc.max(_as_micros(column)).as_py()
    return None if newest is None else int(newest)


def backfill_tiles(project: str, engine: OfflineEngine, online: OnlineStore, view: FeatureView, topic: str,
                   cutover_us: int) -> int:
    """Replace the view's tiles with the batch source's events before T, T recorded first (in the
    same transaction as the first tile write); returns the tile rows written."""
    end = _EPOCH + timedelta(microseconds=cutover_us - 1)  # events at or before T - 1us: before T
    return materialize_tiles(project, engine, online, view, _EPOCH, end, marks={cutover_mark(topic): str(cutover_us)})


def at_or_after(table: pa.Table, column: str, cutover_us: int | None) -> pa.Table:
    """The rows whose event time is at or after T (all of them without a cut-over)."""
    if cutover_us is None or not table.num_rows:
        return table
    return table.filter(pc.fill_null(pc.greater_equal(_as_micros(table.column(column)), cutover_us), False))


def _as_micros(column: pa.ChunkedArray) -> pa.ChunkedArray:
    tz = getattr(column.type, "tz", None)
    return pc.cast(pc.cast(column, pa.timestamp("us", tz)), pa.int64())
