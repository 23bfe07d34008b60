"""One batch of one Kafka source's messages into the online and the offline store, exactly once
in effect (the mechanism: docs/streaming.md; the positions: repast/streaming/positions.py).

For a batch: parse and validate (bad messages become dead letters), run the views' udf, check
every row against every target, and only then write: each online view with its new offsets in one
transaction, then one part file per partition into the batch source. The caller commits the
offsets to Kafka afterwards. Each store is given only the events past its own position, so a
batch replayed after a crash at any point writes nothing twice and misses nothing.
"""

from __future__ import annotations

import os
import random
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from repast.definitions import FeatureView, KafkaSource, StreamFeatureView
from repast.errors import ConfigError, DefinitionError
from repast.jobs.push import offline_rows, view_rows
from repast.jobs.tile_writes import push_tiles
from repast.offline.file_sources import write_part
from repast.online.base import OnlineStore, StreamOffsets, StreamOffsetStore, tile_storage
from repast.streaming.cutover import at_or_after, backfill_tiles, choose_cutover, cutover_mark
from repast.streaming.lag import lag_marks
from repast.streaming.messages import (
    OFFSET,
    PARTITION,
    DeadLetter,
    Message,
    parse_messages,
    refuse_incomplete,
    split_failures,
)
from repast.streaming.positions import offline_positions, part_name, start_offset, tile_mark, write_marker

if TYPE_CHECKING:
    from repast.offline.base import OfflineEngine

FAILPOINTS_ENV = "REPAST_STREAM_FAILPOINTS"  # tests only: "parse=0.1,after_online=0.1" kills the process


@dataclass
class IngestResult:
    """What one batch did: rows written, refused messages, late events, newest event time (us)."""

    events: int = 0
    dead_letters: list[DeadLetter] = field(default_factory=list)
    late: int = 0
    event_times_us: list[int] = field(default_factory=list)


@dataclass
class SourceViews:
    """The views one Kafka source feeds; they share its udf (one function turns a batch into rows)."""

    source: KafkaSource
    views: list[FeatureView]

    @property
    def udf_view(self) -> StreamFeatureView | None:
        with_udf = [v for v in self.views if isinstance(v, StreamFeatureView) and v.has_udf]
        sources = {v.udf_source for v in with_udf}
        if len(sources) > 1 or with_udf and len(with_udf) != len(self.views):
            raise DefinitionError(f"the views of Kafka source '{self.source.name}' "
                                  f"({', '.join(v.name for v in self.views)}) must share one udf (or none): "
                                  "the consumer turns each batch into rows once")
        return with_udf[0] if with_udf else None


class SourceIngest:
    """Writes batches of one Kafka source; holds each store's position per partition."""

    def __init__(self, project: str, group: SourceViews, online: OnlineStore, repo_path: str,
                 endpoint: str | None) -> None:
        if any(v.online and not v.aggregations for v in group.views) and not isinstance(online, StreamOffsetStore):
            raise ConfigError(f"online store {type(online).__name__} cannot record stream offsets with its rows; "
                              "`repast stream` needs the sqlite, redis or postgres online store")
        for view in group.views:
            if view.online and view.aggregations:
                tile_storage(online, view)  # ConfigError naming the view when the store keeps no tiles
        self.project, self.group, self.online = project, group, online
        self.repo_path, self.endpoint = repo_path, endpoint
        self.udf_view = group.udf_view
        self.online_views = [v for v in group.views if v.online]
        self.writes_offline = any(v.offline for v in group.views)
        self.online_next: dict[str, dict[int, int]] = {}
        self.offline_next: dict[int, int] = {}
        self.newest_us: dict[int, int] = {}  # per partition: the newest event time seen (the watermark)
        self.high_watermarks: dict[int, int] = {}  # per partition, as the consumer last saw it (for the UI's lag)
        self.cutovers: dict[str, int] = {}  # per aggregated view: its tiles take stream events from this time (us)
        self.partition_count = 0  # the topic's partitions as known here (the UI reads tile marks by name)

    @property
    def topic(self) -> str:
        return self.group.source.topic

    def load_positions(self, partitions: Sequence[int]) -> dict[int, int]:
        """Read every store's position; per partition with any, where to start reading."""
        self.partition_count = max(self.partition_count, max(partitions, default=-1) + 1)
        self.online_next = {v.name: self._online_positions(v, partitions) for v in self.online_views}
        self.offline_next = offline_positions(self.group.source.batch_source, self.repo_path, self.endpoint,
                                              self.topic) if self.writes_offline else {}
        known = {p for positions in [*self.online_next.values(), self.offline_next] for p in positions}
        starts = {}
        for p in known:
            found = start_offset(self._positions(p))
            if found is not None:
                starts[p] = found
        return starts

    def backfill_tiles(self, engine: OfflineEngine, start: str | None, first_start: bool, enabled: bool) -> list[str]:
        """The first start of each aggregated view (no position): its tiles from the batch source
        before the cut-over T (repast/streaming/cutover.py); a T stored by a run killed before the
        view's first batch is kept, and its backfill run again (it replaces tiles: the same result)."""
        done = []
        for view in self.online_views:
            if not view.aggregations or self.online_next.get(view.name):
                continue
            cutover = self.cutovers.get(view.name)
            if cutover is None and enabled:
                cutover = choose_cutover(start, first_start, self.group.source.batch_source, self.repo_path,
                                         self.endpoint)
            if cutover is not None:
                backfill_tiles(self.project, engine, self.online, view, self.topic, cutover)
                self.cutovers[view.name] = cutover
                done.append(view.name)
        return done

    def ingest(self, messages: Sequence[Message],
               refuse: Callable[[list[DeadLetter]], None] = lambda dead: None) -> IngestResult:
        """Write one batch (messages of this source's topic, any partitions, in offset order).
        `refuse` gets the refused messages before any write moves a position (so none is lost)."""
        failpoint("parse")
        table, dead = parse_messages(self.group.source, messages)
        by_origin = {(m.partition, m.offset): m for m in messages}
        required = [self.group.source.timestamp_field,
                    *(k for k in self._join_keys() if k in self.group.source.message_format.message_schema().names)]
        table, incomplete = refuse_incomplete(table, required, by_origin)
        dead += incomplete
        table = self._needed(table)
        converted, failed = split_failures([table], lambda part: self._convert(part[0])) if table.num_rows \
            else ([], [])
        refused: list[tuple[pa.Table, str]] = []
        if failed:  # some rows fail the udf or the views' types: find them one by one
            converted, refused = split_failures(_rows(table), lambda part: self._convert(pa.concat_tables(part)))
            dead += [DeadLetter(by_origin[_origin(row)], reason) for row, reason in refused]
        refuse(dead)
        self._write_online([c[0] for c in converted], _ranges(messages))
        failpoint("after_online")
        self._write_offline([c[1] for c in converted], messages)
        failpoint("after_offline")
        late, times = self._lateness(table)
        return IngestResult(table.num_rows - len(refused), dead, late, times)

    def _positions(self, partition: int) -> list[int | None]:
        """Each store's position in the partition (None: nothing written there yet)."""
        online = [self.online_next.get(v.name, {}).get(partition) for v in self.online_views]
        return [*online, self.offline_next.get(partition)] if self.writes_offline else online

    def _online_positions(self, view: FeatureView, partitions: Sequence[int]) -> dict[int, int]:
        if view.aggregations:  # kept as marks in the tiles' transaction, with the view's cut-over
            marks = tile_storage(self.online, view).read_marks(
                self.project, view, [cutover_mark(self.topic), *(tile_mark(self.topic, p) for p in partitions)])
            if cutover_mark(self.topic) in marks:
                self.cutovers[view.name] = int(marks[cutover_mark(self.topic)])
            return {p: int(marks[tile_mark(self.topic, p)]) for p in partitions if tile_mark(self.topic, p) in marks}
        assert isinstance(self.online, StreamOffsetStore)
        return {p: o for (t, p), o in self.online.stream_offsets(self.project, view.name).items() if t == self.topic}

    # ---- rows ------------------------------------------------------------------------------------
    def _join_keys(self) -> list[str]:
        return list(dict.fromkeys(k for v in self.group.views for k in v.join_keys))

    def _needed(self, table: pa.Table) -> pa.Table:
        """The rows some store still needs (a replay after a crash skips what every store has)."""
        floors = {p: start_offset(self._positions(p)) or 0
                  for p in pc.unique(table.column(PARTITION)).to_pylist()}
        return _at_or_past(table, floors)

    def _convert(self, table: pa.Table) -> tuple[list[pa.Table], pa.Table | None]:
        """The udf, then each online view's rows and the offline rows: every check before any write."""
        rows = self._apply_udf(table)
        online = []
        for view in self.online_views:
            past = _at_or_past(rows, self.online_next.get(view.name, {}))
            if view.aggregations:  # events before the cut-over are in the tiles from the batch source
                past = at_or_after(past, self.group.source.timestamp_field, self.cutovers.get(view.name))
            online.append(view_rows(view, past, "stream").append_column(PARTITION, past.column(PARTITION)))
        offline = None
        if self.writes_offline:
            past = _at_or_past(rows, self.offline_next)
            source = self.group.source.batch_source
            keep = [c for c in past.column_names if c not in (PARTITION, OFFSET)]
            offline = offline_rows(source, [v for v in self.group.views if v.offline], past, "stream", keep) \
                .append_column(PARTITION, past.column(PARTITION)).append_column(OFFSET, past.column(OFFSET))
        return online, offline

    def _apply_udf(self, table: pa.Table) -> pa.Table:
        view = self.udf_view
        if view is None or view.udf is None:
            return table
        udf: Callable[[Any], Any] = view.udf
        if view.mode == "python":
            out = pa.table(udf(table.to_pydict()))
        else:
            out = pa.Table.from_pandas(udf(table.to_pandas()), preserve_index=False)
        for column in (PARTITION, OFFSET):
            if column not in out.column_names:
                if out.num_rows != table.num_rows:
                    raise ValueError(f"the udf of '{view.name}' changed the number of rows and dropped the "
                                     f"column {column}; keep it to filter rows")
                out = out.append_column(column, table.column(column))
        return out

    # ---- writes ----------------------------------------------------------------------------------
    def _write_online(self, per_part: list[list[pa.Table]], ranges: dict[int, tuple[int, int]]) -> None:
        for i, view in enumerate(self.online_views):
            rows = pa.concat_tables([part[i] for part in per_part]).drop_columns([PARTITION]) if per_part else None
            known = self.online_next.setdefault(view.name, {})
            # Never backwards: a replay for the offline store's sake leaves an online position ahead.
            offsets = {p: max(known.get(p, 0), end + 1) for p, (_, end) in ranges.items()}
            batch = f"kafka:{self.topic}:" + ",".join(f"{p}:{max(first, known.get(p, 0))}-{end}"
                                                       for p, (first, end) in sorted(ranges.items()))
            seen = {p: hw for p, hw in self.high_watermarks.items() if p in ranges}
            self.partition_count = max(self.partition_count, max(ranges, default=-1) + 1)
            marks = lag_marks(self.topic, seen, int(time.time() * 1000),
                              self.partition_count if view.aggregations else None)
            write_online(self.online, self.project, view, rows,
                         {**{(self.topic, p): o for p, o in offsets.items()}, **marks}, batch)
            known.update(offsets)
            failpoint("after_view")

    def _write_offline(self, parts: list[pa.Table | None], messages: Sequence[Message]) -> None:
        if not self.writes_offline:
            return
        found = [p for p in parts if p is not None and p.num_rows]
        rows = pa.concat_tables(found) if found else None
        for partition, (first, end) in _ranges(messages).items():
            begin = max(first, self.offline_next.get(partition, 0))
            if end < begin:
                continue
            mine = rows.filter(pc.equal(rows.column(PARTITION), partition)) if rows is not None else None
            name = part_name(self.topic, partition, begin, end)
            if mine is not None and mine.num_rows:
                write_part(self.group.source.batch_source, self.repo_path, mine.drop_columns([PARTITION, OFFSET]),
                           self.endpoint, name)
            else:  # no rows (all refused): the position still moves, durably
                write_marker(self.group.source.batch_source, self.repo_path, self.endpoint, name)
            self.offline_next[partition] = end + 1

    def _lateness(self, table: pa.Table) -> tuple[int, list[int]]:
        """Events older than the newest seen minus watermark_delay_threshold (counted; they are
        written all the same: offline always, online where still the latest)."""
        column = self.group.source.timestamp_field
        if not table.num_rows or column not in table.column_names:
            return 0, []
        times = pc.cast(table.column(column), pa.int64()).to_pylist()
        delay = self.group.source.watermark_delay_threshold
        late = 0
        for partition, t in zip(table.column(PARTITION).to_pylist(), times, strict=True):
            newest = self.newest_us.get(partition, t)
            if delay is not None and t < newest - int(delay.total_seconds() * 1e6):
                late += 1
            self.newest_us[partition] = max(newest, t)
        return late, times


def write_online(online: OnlineStore, project: str, view: FeatureView, rows: pa.Table | None,
                 offsets: StreamOffsets, batch: str) -> None:
    """The one online write of the consumer: rows (None: none) and the view's new offsets in one
    transaction: the latest row per key with the offsets (StreamOffsetStore), or for a view with
    aggregations, the events added to its tiles with the offsets as marks (TileStorage; `batch`
    names the offset ranges, recorded in the tiles' ledger too)."""
    if view.aggregations:
        push_tiles(project, online, view, rows, {tile_mark(t, p): str(o) for (t, p), o in offsets.items()}, batch)
        return
    assert isinstance(online, StreamOffsetStore)
    online.write_batch_at_offsets(project, view, rows, offsets)


def failpoint(name: str) -> None:
    """Tests only: with REPAST_STREAM_FAILPOINTS="name=probability,...", SIGKILL this process here
    with that probability (the kill tests' way to stop it between two writes)."""
    spec = os.environ.get(FAILPOINTS_ENV)
    if not spec:
        return
    for item in spec.split(","):
        point, _, chance = item.partition("=")
        if point == name and random.random() < float(chance or 1):
            os.kill(os.getpid(), signal.SIGKILL)


def _at_or_past(table: pa.Table, floors: dict[int, int]) -> pa.Table:
    if not floors or not table.num_rows:
        return table
    partitions = table.column(PARTITION)
    floor = pc.fill_null(pc.take(pa.array(list(floors.values()), pa.int64()),
                                 pc.index_in(partitions, pa.array(list(floors.keys()), pa.int32()))), 0)
    return table.filter(pc.greater_equal(table.column(OFFSET), floor))


def _rows(table: pa.Table) -> list[pa.Table]:
    return [table.slice(i, 1) for i in range(table.num_rows)]


def _origin(row: pa.Table) -> tuple[int, int]:
    return int(row.column(PARTITION)[0].as_py()), int(row.column(OFFSET)[0].as_py())


def _ranges(messages: Sequence[Message]) -> dict[int, tuple[int, int]]:
    out: dict[int, tuple[int, int]] = {}
    for m in messages:
        first, end = out.get(m.partition, (m.offset, m.offset))
        out[m.partition] = (min(first, m.offset), max(end, m.offset))
    return out
