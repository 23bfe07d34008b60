"""Materialization on Spark: the latest row per key computed in Spark and written to the online
store by the executors, partition by partition, in Arrow batches (`mapInArrow`: no Python per
row, nothing collected to the driver but one row count per partition).

Each partition builds its own online store client from the store's config (the `sink`), so the
store must be reachable from the executors: Redis and PostgreSQL are; an SQLite file is only
with a local master (the executors then run on the driver's machine). Writes are latest-wins in
every store, so a run killed midway is completed by running it again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING

import pyarrow as pa

from repast.errors import ConfigError
from repast.offline.base import cast_to_view_types

if TYPE_CHECKING:
    from repast.definitions import FeatureView
    from repast.offline.spark_job import SparkEngine

Sink = Callable[[Iterator[pa.RecordBatch]], int]
_LOCAL_ONLY_STORES = ("sqlite",)


def check_reachable_from_executors(engine: SparkEngine, store_type: str) -> None:
    """An SQLite online store is a file on the driver: only a local master can write it."""
    master = engine.spark.sparkContext.master or ""
    if store_type in _LOCAL_ONLY_STORES and not master.startswith("local"):
        raise ConfigError(f"online_store type '{store_type}' is a local file the Spark executors of master "
                          f"'{master}' cannot reach: materialize into redis or postgres, or use a local[...] master")


def write_latest_online(engine: SparkEngine, view: FeatureView, start: datetime, end: datetime,
                        sink: Sink, store_type: str, batch_size: int) -> int:
    """Per key, the latest row with start <= event_ts < end, written by the executors; returns the rows."""
    check_reachable_from_executors(engine, store_type)
    columns = [*view.join_keys, *view.feature_names(), "event_timestamp", "created_timestamp"]
    rows = engine.in_range_sql(view, start, end, with_place=True)
    latest = engine.spark.sql(engine.latest_per_key_sql(rows, list(view.join_keys), columns))
    # Sorting within partitions keeps each write transaction on neighbouring keys (see read_latest).
    latest = latest.sortWithinPartitions(*view.join_keys)

    def write_partition(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        written = sink(cast_to_view_types(b, view) for b in _rebatched(batches, batch_size))
        yield pa.RecordBatch.from_pydict({"rows": pa.array([written], pa.int64())})

    counts = latest.mapInArrow(write_partition, "rows long").toArrow()
    return int(pa.compute.sum(counts.column("rows")).as_py() or 0)


def _rebatched(batches: Iterator[pa.RecordBatch], size: int) -> Iterator[pa.RecordBatch]:
    """Spark's Arrow batches (maxRecordsPerBatch rows) regrouped into batches of up to `size` rows."""
    pending: list[pa.RecordBatch] = []
    count = 0
    for batch in batches:
        pending.append(batch)
        count += batch.num_rows
        if count >= size:
            yield from pa.Table.from_batches(pending).combine_chunks().to_batches(size)
            pending, count = [], 0
    if pending:
        yield from pa.Table.from_batches(pending).combine_chunks().to_batches(size)
