"""Materialization: the latest row per entity with start <= event_ts <= end, offline -> online.

Per view, record batches stream from the offline engine's `read_latest` into the online store's
`write_batch`; the next batch is read while the current one is written, and at most a few batches
are in memory at once, whatever the data size. The view's watermark is recorded in the registry only
after all its rows are written. Writes are latest-wins in the store, so a run that was killed, or
that failed on a lost connection, is completed by running it again: the result is the same as an
uninterrupted run. Transient failures (TransientError: a lost connection, a busy server) are retried a few times
per batch.

The functions take their collaborators, the registry (definitions and watermarks), the offline
engine and the online store, not the FeatureStore facade.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from repast.definitions import FeatureView
from repast.errors import InputError, TransientError
from repast.jobs.row_validation import check_rows, check_source_types
from repast.jobs.tile_writes import materialize_tiles
from repast.ondemand.storage import storage_view
from repast.ondemand.writes import refresh_after_write
from repast.online.base import writable
from repast.registry.base import MaterializationRecord, MaterializationRun
from repast.types.timestamps import as_utc

if TYPE_CHECKING:
    from repast.offline.base import OfflineEngine
    from repast.online.base import OnlineReader, OnlineStore
    from repast.registry import Registry

BATCH_SIZE = 100_000
TILE_GROUP_BATCHES = 5  # an aggregated view's events are made tiles of 5 batches at a time
# Where materialize_incremental starts a view that was never materialized and has no ttl.
BEGINNING_OF_TIME = datetime(1970, 1, 1, tzinfo=UTC)
_RETRY_DELAYS = (1.0, 4.0)


@dataclass
class ViewMaterialization:
    """Progress and result of materializing one view over [start, end)."""

    view: str
    start: datetime
    end: datetime
    rows: int = 0  # rows written to the online store so far
    seconds: float = 0.0
    done: bool = False

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0


Progress = Callable[[ViewMaterialization], None]


def utc(ts: datetime, what: str) -> datetime:
    if not isinstance(ts, datetime):
        raise InputError(f"{what} must be a datetime, got {ts!r}")
    return as_utc(ts)


def select_views(registry: Registry, names: list[str] | None) -> list[FeatureView]:
    """The named views (all checked before any is materialized), or every view with online=True."""
    contents = registry.contents()
    if not contents.feature_views:
        raise InputError(f"project '{registry.project}' has no feature views registered: nothing to materialize; "
                         "run `repast apply` first")
    if names is None:
        return [v for v in contents.feature_views.values() if v.online]
    views = [contents.get("feature_view", n) for n in names]
    offline_only = [v.name for v in views if not v.online]
    if offline_only:
        raise InputError(f"feature view(s) {offline_only} have online=False: they are not materialized")
    return views


def storage_ids(online: OnlineStore, project: str, views: list[FeatureView]) -> dict[str, str]:
    """Each view's online storage id, creating storage that is missing (another online store
    configured, or an apply killed before it made the storage) so that it can be filled."""
    online.update(project, views, [])
    return {v.name: online.storage_id(project, v) or "" for v in views}


def check_reachable(online: OnlineStore) -> None:
    """StoreUnavailable at once when the online store does not answer before the run starts: the
    per-batch retries are for a blip in a long run, not for a store that is down."""
    online.ping()  # every OnlineStore implements it (an abstract method of the interface)


def materialize(registry: Registry, engine: OfflineEngine, reader: OnlineReader, start_date: datetime,
                end_date: datetime, feature_views: list[str] | None = None, progress: Progress | None = None,
                batch_size: int = BATCH_SIZE) -> list[ViewMaterialization]:
    """Per view, write the latest row per entity with start <= event_ts <= end (no ttl filter, as Feast)."""
    start, end = utc(start_date, "start_date"), utc(end_date, "end_date")
    if start >= end:
        raise InputError(f"start_date {start.isoformat()} must be before end_date {end.isoformat()}")
    views = select_views(registry, feature_views)
    online = writable(reader, "materialize")
    check_reachable(online)
    storage = storage_ids(online, registry.project, views)
    return [materialize_view(registry, engine, online, view, start, end, progress, batch_size, storage[view.name])
            for view in views]


def incremental_start(view: FeatureView, end: datetime, watermark: MaterializationRecord | None,
                      storage: str) -> datetime:
    """Where an incremental run of `view` starts: its watermark when that belongs to the storage
    the view has now, else the beginning of its ttl window (the epoch without ttl): a rebuilt or
    re-created table, or another online store, is refilled."""
    if watermark is not None and storage and watermark.storage == storage:
        return watermark.end
    return end - view.ttl if view.ttl.total_seconds() > 0 else BEGINNING_OF_TIME


def materialize_incremental(registry: Registry, engine: OfflineEngine, reader: OnlineReader, end_date: datetime,
                            feature_views: list[str] | None = None, progress: Progress | None = None,
                            batch_size: int = BATCH_SIZE) -> list[ViewMaterialization]:
    """Like materialize, each view from the end of its last run, or end - ttl when it never ran
    (from BEGINNING_OF_TIME, the Unix epoch, when it also has no ttl). An up-to-date view writes nothing.
    An end before a view's watermark is an InputError (use materialize for a backfill)."""
    end = utc(end_date, "end_date")
    views = select_views(registry, feature_views)
    online = writable(reader, "materialize")
    check_reachable(online)
    storage = storage_ids(online, registry.project, views)
    done = registry.materializations()
    starts = {v.name: incremental_start(v, end, done.get(v.name), storage[v.name]) for v in views}
    behind = [f"'{n}' (materialized up to {s.isoformat()})" for n, s in starts.items() if s > end]
    if behind:
        raise InputError(f"end {end.isoformat()} is before the watermark of feature view(s) {', '.join(behind)}; "
                         "materialize-incremental only moves forward: use `repast materialize START END` "
                         "to load an earlier window")
    results = []
    for view in views:
        start = starts[view.name]
        if start >= end:
            stats = ViewMaterialization(view.name, start, end, done=True)
            if progress is not None:
                progress(stats)
            results.append(stats)
            continue
        results.append(materialize_view(registry, engine, online, view, start, end, progress, batch_size,
                                        storage[view.name]))
    return results


def materialize_view(registry: Registry, engine: OfflineEngine, online: OnlineStore, view: FeatureView,
                     start: datetime, end: datetime, progress: Progress | None = None, batch_size: int = BATCH_SIZE,
                     storage: str = "") -> ViewMaterialization:
    """Materialize one view over [start, end), then record the watermark for the storage written to."""
    stats = ViewMaterialization(view.name, start, end)
    if progress is not None:
        progress(stats)
    began = time.perf_counter()
    if view.enable_validation:
        check_source_types(view, engine.source_schema(view.batch_source))
    # Feast includes rows at exactly `end`; the engines read [start, end), and timestamps are
    # microseconds, so one microsecond more is the closed window. The next incremental run starts
    # at `end` again: those rows are written twice, which latest-wins makes harmless.
    window_end = end + timedelta(microseconds=1)
    if view.aggregations:  # tiles (rows: tiles written), recomputed whole from the source (jobs/tile_writes.py)
        stats.rows = materialize_tiles(registry.project, engine, online, view, start, end,
                                       group_rows=batch_size * TILE_GROUP_BATCHES)
    elif writes_in_place(engine, registry, view):
        sink = OnlineSink(type(online), online.config, online.repo_config, registry.project, view)
        stats.rows = engine.write_latest_online(view, start, window_end, sink, batch_size)  # type: ignore[attr-defined]
    else:
        batches = engine.read_latest(view, start, window_end, batch_size)
        for batch in prefetched(batches):
            if view.enable_validation:
                check_rows(view, batch, f"materialize '{view.name}'")
            stats.rows += _write(registry, online, view, batch)
            stats.seconds = time.perf_counter() - began
            if progress is not None:
                progress(stats)
    registry.record_materialization(view.name, start, end, storage)
    registry.record_run(MaterializationRun(view.name, start, end, datetime.now(UTC), stats.rows))
    stats.seconds = time.perf_counter() - began
    stats.done = True
    if progress is not None:
        progress(stats)
    return stats


def writes_in_place(engine: OfflineEngine, registry: Registry, view: FeatureView) -> bool:
    """Whether the engine's executors write the view's rows themselves: the engine can, and no
    step needs the driver per batch (row validation, or write-time on-demand views reading it)."""
    if not engine.capabilities.write_online_in_place or view.enable_validation:
        return False
    contents = registry.contents()
    return not any(storage_view(o, contents) is not None and view.name in [p.view_name for p in o.source_views]
                   for o in contents.on_demand_feature_views.values())


class OnlineSink:
    """Writes batches of latest rows to the online store wherever it is called: pickled to a Spark
    executor, it opens its own connection there (store class + config, never a live client)."""

    def __init__(self, store_class: type[OnlineStore], config: Any, repo_config: Any, project: str,
                 view: FeatureView) -> None:
        self.store_class = store_class
        self.config = config
        self.repo_config = repo_config
        self.project = project
        self.view = view

    def __call__(self, batches: Iterator[pa.RecordBatch]) -> int:
        """Write every batch (transient failures retried, as on the driver); returns the rows written."""
        store = self.store_class(self.config, self.repo_config)
        try:
            return sum(self._write(store, batch) for batch in batches)
        finally:
            store.close()

    def _write(self, store: OnlineStore, batch: pa.RecordBatch) -> int:
        for delay in (*_RETRY_DELAYS, None):
            try:
                return store.write_batch(self.project, self.view, batch)
            except TransientError:
                if delay is None:  # safe to repeat: the store keeps the latest row
                    raise
                time.sleep(delay)
        raise AssertionError("unreachable")


def _write(registry: Registry, online: OnlineStore, view: FeatureView, batch: pa.RecordBatch) -> int:
    for delay in (*_RETRY_DELAYS, None):
        try:
            written = online.write_batch(registry.project, view, batch)
            refresh_after_write(registry, online, view, batch)  # on-demand views stored on write (idempotent too)
            return written
        except TransientError:
            # Safe to repeat: the store keeps the latest row whatever was already written.
            if delay is None:
                raise
            time.sleep(delay)
    raise AssertionError("unreachable")


_DONE = object()


def prefetched(batches: Iterator[Any], depth: int = 1) -> Iterator[Any]:
    """Iterate `batches` in a background thread, `depth` items ahead.

    The engine's read (DuckDB, PostgreSQL: native code without the GIL) then overlaps the store
    write. Errors of the producer re-raise here; stopping early stops the producer.
    """
    items: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in batches:
                while not stop.is_set():
                    try:
                        items.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    break
            items.put(_DONE)
        except BaseException as e:  # handed to the consumer, which re-raises it
            items.put(e)
        finally:
            close = getattr(batches, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=produce, name="repast-materialize-read", daemon=True)
    thread.start()
    try:
        while True:
            item = items.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():
            try:
                items.get(timeout=0.1)
            except queue.Empty:
                pass
        thread.join()
