"""The Spark retrieval job and the staging location results stream through.

A result never comes to the driver in one piece: Spark writes it, sorted, as Parquet under the
staging location, and the driver reads it back one record batch at a time (`staged_batches`).
So `to_parquet` of a result larger than the driver's memory works, and `to_arrow` holds only
the result itself. `to_spark_df` returns the distributed result without running it.
"""

from __future__ import annotations

import functools
import os
import posixpath
import re
import tempfile
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from repast.errors import ConfigError
from repast.offline.base import RetrievalJob
from repast.offline.point_in_time import ROW, TS, assemble, check_entity, key_frame

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from repast.definitions import FeatureView
    from repast.definitions.feature_refs import FeatureRequest



class SparkEngine(Protocol):
    """What the retrieval job, the staging and executor-side materialization use of the Spark engine
    (repast.offline.spark.SparkOfflineEngine), which imports them."""

    config: Any

    @property
    def spark(self) -> SparkSession: ...

    def join_sql(self, request: FeatureRequest, keys_view: str) -> str: ...

    def in_range_sql(self, view: FeatureView, start: datetime, end: datetime, with_place: bool = False) -> str: ...

    def latest_per_key_sql(self, rows: str, keys: list[str], columns: list[str]) -> str: ...


BATCH_SIZE = 100_000
_PART_NAME = re.compile(r"part-(\d+)-.*-c(\d+)")


def spark_entity(engine: SparkEngine, frame: DataFrame) -> str:
    """A Spark DataFrame entity frame as the SQL query the job reads (a temporary view of it)."""
    name = f"__repast_entity_{uuid.uuid4().hex[:12]}"
    frame.createOrReplaceTempView(name)
    return f"SELECT * FROM {name}"


def staging_root(engine: SparkEngine) -> str:
    """Where results are staged: staging_location, or (local master only) the system temp dir."""
    if engine.config.staging_location:
        return str(engine.config.staging_location)
    master = engine.spark.sparkContext.master or ""
    if not master.startswith("local"):
        raise ConfigError(f"offline_store.staging_location is required with Spark master '{master}': a directory "
                          "or URI (s3a://, gs://, hdfs://) the executors write and this process reads")
    return os.path.join(tempfile.gettempdir(), "repast-spark-staging")


def _filesystem(location: str) -> tuple[pafs.FileSystem, str]:
    if "://" not in location:
        return pafs.LocalFileSystem(), os.path.abspath(location)
    # Spark's Hadoop schemes name the same stores pyarrow knows under other names.
    uri = location.replace("s3a://", "s3://", 1).replace("gcs://", "gs://", 1)
    fs, path = pafs.FileSystem.from_uri(uri)
    return fs, path


def stage(engine: SparkEngine, frame: DataFrame, rows_per_file: int | None = None) -> str:
    """Write `frame` as Parquet to a new directory under the staging location; returns it. With
    `rows_per_file`, no file (so no row group) holds more rows, whatever the partitions' sizes."""
    location = staging_root(engine).rstrip("/") + "/" + uuid.uuid4().hex
    writer = frame.write
    if rows_per_file:
        writer = writer.option("maxRecordsPerFile", rows_per_file)
    writer.parquet(location)
    return location


def _part_order(path: str) -> tuple[int, int, str]:
    """Spark names parts `part-<partition>-<job>-c<file>`: in frame order by both numbers (names
    alone misorder past c999)."""
    name = posixpath.basename(path)
    found = _PART_NAME.match(name)
    return (int(found.group(1)), int(found.group(2)), name) if found else (-1, -1, name)


def read_staged(location: str, batch_size: int, remove: bool = True) -> Iterator[pa.RecordBatch]:
    """The staged rows in order (part files in frame order, rows in file order), batch by batch;
    the directory is removed once read (also when the reader stops early).

    Memory: one file's row group at most is decoded at a time (`stage` with `rows_per_file`
    bounds it), and the pool's freed memory goes back to the system after each file."""
    fs, path = _filesystem(location)
    pool = pa.default_memory_pool()
    try:
        found = fs.get_file_info(pafs.FileSelector(path, recursive=False))
        files = sorted((f.path for f in found if f.type == pafs.FileType.File
                        and posixpath.basename(f.path).startswith("part-")), key=_part_order)
        for file in files:
            with fs.open_input_file(file) as handle:
                # pre_buffer would read every row group of the file ahead of the first batch.
                yield from pq.ParquetFile(handle, pre_buffer=False).iter_batches(batch_size)
            pool.release_unused()
    finally:
        if remove:
            fs.delete_dir(path)


def staged_batches(engine: SparkEngine, frame: DataFrame, batch_size: int) -> Iterator[pa.RecordBatch]:
    """`frame`'s rows, in its order, streamed through the staging location."""
    yield from read_staged(stage(engine, frame, rows_per_file=batch_size), batch_size)


def _assemble_batches(batches: Iterator[pa.RecordBatch], names: list[str], ts: str, request: FeatureRequest,
                      full_feature_names: bool) -> Iterator[pa.RecordBatch]:
    """On an executor: joined rows (entity columns, ROW, view features) to output batches."""
    for batch in batches:
        part = pa.Table.from_batches([batch])
        yield from assemble(part.select(names), ts, part, request, full_feature_names).to_batches()


class SparkRetrievalJob(RetrievalJob):
    """The point-in-time join on Spark; `entity` is Arrow (from pandas or Arrow) or Spark SQL."""

    def __init__(self, engine: SparkEngine, entity: pa.Table | str, request: FeatureRequest,
                 full_feature_names: bool) -> None:
        self.engine = engine
        self.entity = entity
        self.request = request
        self.full_feature_names = full_feature_names
        self._group: str | None = None  # the Spark job group of the `to_*` call under way

    def _keys_view(self, keys: DataFrame) -> str:
        name = f"__repast_keys_{uuid.uuid4().hex[:12]}"
        keys.createOrReplaceTempView(name)
        return name

    def _spark_entity(self) -> tuple[DataFrame, str]:
        """The entity frame in Spark with its row number as ROW (fixed by staging it once, as
        monotonically_increasing_id is only stable within one read), and its timestamp column."""
        from pyspark.sql import functions as F

        spark = self.engine.spark
        if isinstance(self.entity, pa.Table):
            ts = check_entity(self.entity.schema, self.request)
            rows = self.entity.append_column(ROW, pa.array(range(self.entity.num_rows), pa.int64()))
            return spark.createDataFrame(rows), ts
        frame = spark.sql(self.entity)
        ts = check_entity(frame.limit(0).toArrow().schema, self.request)
        numbered = frame.withColumn(ROW, F.monotonically_increasing_id())
        return spark.read.parquet(stage(self.engine, numbered)), ts

    def _features(self, entity: DataFrame, ts: str) -> DataFrame:
        """One row per entity row: ROW, then every view feature named `projection__feature`."""
        from pyspark.sql import functions as F

        keys = entity.select(*self.request.entity_columns(), F.col(ts).cast("timestamp").alias(TS), ROW)
        return self.engine.spark.sql(self.engine.join_sql(self.request, self._keys_view(keys)))

    def to_spark_df(self) -> DataFrame:
        """The result as a distributed Spark DataFrame, in entity order: entity columns, then
        features. On-demand views run on the executors (mapInArrow), batch by batch, with the same
        code as `to_arrow` (repast/offline/point_in_time.py `assemble`), so repast must be importable there."""
        from pyspark.sql import functions as F

        entity, ts = self._spark_entity()
        joined = entity.join(self._features(entity, ts), ROW, "left").orderBy(ROW)
        names = [c for c in entity.columns if c != ROW]
        if self.request.on_demand:
            return self._assembled_on_executors(joined, names, ts)
        outputs = []
        for vr in self.request.views:
            for feature in vr.features:
                column = F.col(f"`{vr.output_name(feature, True)}`")
                outputs.append(column.alias(vr.output_name(feature, self.full_feature_names)))
        return joined.select(*[F.col(f"`{c}`") for c in names], *outputs)

    def _assembled_on_executors(self, joined: DataFrame, names: list[str], ts: str) -> DataFrame:
        from pyspark.sql.pandas.types import from_arrow_schema

        run = functools.partial(_assemble_batches, names=names, ts=ts, request=self.request,
                                full_feature_names=self.full_feature_names)
        empty = joined.limit(0).toArrow()  # the output schema: the same code on no rows
        schema = assemble(empty.select(names), ts, empty, self.request, self.full_feature_names).schema
        return joined.mapInArrow(run, from_arrow_schema(schema))

    def to_batches(self, batch_rows: int = BATCH_SIZE) -> Iterator[pa.RecordBatch]:
        """The result in entity order through the staging location: the driver (and the offline
        server in front of it) holds one batch at a time."""
        yield from self.batches(batch_rows)

    def cancel(self) -> None:
        """Cancel the Spark jobs of the `to_*` call under way (its job group)."""
        group = self._group
        if group is not None:
            self.engine.spark.sparkContext.cancelJobGroup(group)

    def batches(self, batch_size: int = BATCH_SIZE) -> Iterator[pa.RecordBatch]:
        """The result in entity order, batch by batch, through the staging location; the Spark jobs
        it runs form one job group, which `cancel` stops."""
        context = self.engine.spark.sparkContext
        self._group = f"repast-retrieval-{uuid.uuid4().hex[:12]}"
        context.setJobGroup(self._group, "repast retrieval", interruptOnCancel=True)
        try:
            yield from self._batches(batch_size)
        finally:
            self._group = None
            context.setLocalProperty("spark.jobGroup.id", None)  # type: ignore[arg-type]  # None: unset

    def _batches(self, batch_size: int) -> Iterator[pa.RecordBatch]:
        if isinstance(self.entity, pa.Table):
            yield from self._batches_for_arrow(self.entity, batch_size)
            return
        entity, ts = self._spark_entity()
        joined = entity.join(self._features(entity, ts), ROW, "left").orderBy(ROW)
        names = [c for c in entity.columns if c != ROW]
        for batch in staged_batches(self.engine, joined, batch_size):
            part = pa.Table.from_batches([batch])
            yield from self._assemble(part.select(names), ts, part)

    def _batches_for_arrow(self, entity: pa.Table, batch_size: int) -> Iterator[pa.RecordBatch]:
        ts = check_entity(entity.schema, self.request)
        spark = self.engine.spark
        keys = spark.createDataFrame(key_frame(entity, ts, self.request))
        features = spark.sql(self.engine.join_sql(self.request, self._keys_view(keys))).orderBy(ROW)
        offset = 0
        for batch in staged_batches(self.engine, features, batch_size):
            part = entity.slice(offset, batch.num_rows)
            offset += batch.num_rows
            yield from self._assemble(part, ts, pa.Table.from_batches([batch]))

    def _assemble(self, entity: pa.Table, ts: str, features: pa.Table) -> Iterator[pa.RecordBatch]:
        yield from assemble(entity, ts, features, self.request, self.full_feature_names).to_batches()

    def _empty(self) -> pa.Table:
        entity = self.entity if isinstance(self.entity, pa.Table) else None
        if entity is None:
            return pa.Table.from_batches([], schema=self._schema_from_spark())
        ts = check_entity(entity.schema, self.request)
        features = pa.table({vr.output_name(f, True): pa.array([], f_type)
                             for vr in self.request.views
                             for f, f_type in ((f.name, f.dtype.to_arrow()) for f in vr.view.features)
                             if f in vr.read_features})
        return assemble(entity, ts, features, self.request, self.full_feature_names)

    def _schema_from_spark(self) -> pa.Schema:
        return self.to_spark_df().limit(0).toArrow().schema

    def to_arrow(self) -> pa.Table:
        batches = list(self.batches())
        if not batches:
            return self._empty()
        return pa.Table.from_batches(batches)

    def to_parquet(self, path: str, endpoint_override: str | None = None) -> None:
        """Write the result to one Parquet file (local, s3://, gs://), a batch at a time, so the
        driver's memory stays flat whatever the result's size."""
        from repast.offline.storage_paths import filesystem_for

        fs, inner = filesystem_for(path, endpoint_override)
        writer: pq.ParquetWriter | None = None
        try:
            for batch in self.batches():
                if writer is None:
                    writer = pq.ParquetWriter(inner, batch.schema, filesystem=fs)
                writer.write_batch(batch)
            if writer is None:
                pq.write_table(self._empty(), inner, filesystem=fs)
        finally:
            if writer is not None:
                writer.close()
