"""SparkOfflineEngine: SparkSources and FileSources read by Spark, the join run in Spark SQL.

Dialect code only (the shared structure is repast/offline/sql_base.py; the retrieval job and the
staging of results are in repast/offline/spark_job.py). The session runs with ANSI SQL and double
quoted identifiers, so the shared SQL runs unchanged, and with a UTC session time zone.

The point-in-time join has no ASOF join in Spark: per view, entity rows and view rows are unioned
and ordered by (keys, event time, kind, created, place) in one window; each entity row takes the
last view row before it (`last(..., ignorenulls)`), so there is no self-join and no Python per row.

The tie rule (the row last in the source's order wins exact ties): a file's rows are placed by
(file path, row index in the file), both read from Spark's `_metadata` column. Sorting by path
is the source order of repast/offline/file_sources.py (the original file, then parts by name) for local
paths without characters that URI encoding changes; rows of a Spark table or query are placed in
the order Spark reads them.
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import pyarrow as pa

from repast.definitions import DataSource, FileSource, SparkSource
from repast.errors import DefinitionError, require_module
from repast.offline.file_sources import list_source_files, read_schema
from repast.offline.spark_console import hide_pyspark_warnings, jvm_output_to_log, quiet, quiet_conf, quiet_session
from repast.offline.spark_job import SparkRetrievalJob, spark_entity, staged_batches
from repast.offline.sql_base import KEYS_TABLE, ROW, TS, SQLOfflineEngine
from repast.offline.window_aggregates import EVENT_ALIAS, aggregate_view_sql
from repast.plugins.base_config import BackendConfig
from repast.plugins.capabilities import Capabilities
from repast.sql_quoting import quote_ident
from repast.types.timestamps import as_utc

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from repast.definitions import FeatureView
    from repast.definitions.feature_refs import FeatureRequest, ViewRequest

q = quote_ident
FILE_COLUMN = "__repast_file"  # hidden columns of a file source's view: where each row comes from
ROW_INDEX_COLUMN = "__repast_row_index"
# Settings every session of the engine runs with (the user's spark_conf cannot change them).
SESSION_SETTINGS = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.ansi.enabled": "true",
    "spark.sql.ansi.doubleQuotedIdentifiers": "true",
    # pandas writes nanosecond timestamps, which Spark refuses; read as longs, converted per column.
    "spark.sql.legacy.parquet.nanosAsLong": "true",
    # Staged results are read back by pyarrow: microsecond UTC instants, not legacy INT96.
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
}


class SparkOfflineConfig(BackendConfig):
    type: Literal["spark"] = "spark"
    spark_conf: dict[str, str] = {}  # applied when the engine creates the session (spark.master, ...)
    staging_location: str | None = None  # where results are written before streaming (dir or URI)
    region: str | None = None  # accepted for Feast compatibility


def spark_session(spark_conf: dict[str, str]) -> SparkSession:
    """The active SparkSession (or a new one with `spark_conf`), set to the engine's settings."""
    require_module("pyspark", "spark")
    if quiet():  # `repast ...` without --verbose: Spark's console output would mix into repast's
        hide_pyspark_warnings()  # some are issued as pyspark is imported
    from pyspark.sql import SparkSession

    conf = {"spark.master": "local[*]", **spark_conf}
    if quiet():
        conf = quiet_conf(conf)
    if conf["spark.master"].startswith("local"):
        # Local Python workers run this interpreter (with repast and pyarrow), not the PATH's python3.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.appName("repast")
    for key, value in conf.items():
        builder = builder.config(key, value)
    with jvm_output_to_log() if quiet() else nullcontext():
        session = builder.getOrCreate()
    for key, value in SESSION_SETTINGS.items():
        session.conf.set(key, value)
    if quiet():
        quiet_session(session)
    return session


def _has_scheme(path: str) -> bool:
    return "://" in path and not path.startswith("file://")


class SparkOfflineEngine(SQLOfflineEngine):
    Config = SparkOfflineConfig
    dialect = "Spark SQL"
    type_name = "spark"
    source_kinds: ClassVar[tuple[type[DataSource], ...]] = (SparkSource, FileSource)
    double_type: ClassVar[str] = "DOUBLE"
    text_type: ClassVar[str] = "STRING"
    approx_distinct: ClassVar[bool] = True

    def quantiles_sql(self, expr: str, fractions: list[float]) -> str:
        return f"percentile_approx({expr}, array({', '.join(map(repr, fractions))}))"

    def distinct_count_sql(self, expr: str) -> str:
        return f"approx_count_distinct({expr})"

    def key_hash_sql(self, columns: list[str]) -> str:
        return f"hash({', '.join(columns)})"
    spine_union = "UNION ALL"
    null_timestamp = "CAST(NULL AS TIMESTAMP)"
    job_class = SparkRetrievalJob  # type: ignore[assignment]
    capabilities: ClassVar[Capabilities] = Capabilities(write_online_in_place=True)

    @property
    def spark(self) -> SparkSession:
        return spark_session(self.config.spark_conf)

    def _spark_source(self, source: DataSource) -> DataSource:
        self.check_source(source)
        return source

    # ---- sources -----------------------------------------------------------------------------
    def _files(self, source: DataSource) -> tuple[list[str], str] | None:
        """The files of a file-backed source and their format, or None for a table or query."""
        if isinstance(source, FileSource):
            # Spark's Hadoop connector names S3 s3a:// where pyarrow and DuckDB say s3://.
            files = list_source_files(source, str(self.repo_config.repo_path))
            return [f.replace("s3://", "s3a://", 1) if f.startswith("s3://") else f for f in files], \
                source.file_format
        assert isinstance(source, SparkSource)
        if not source.path:
            return None
        local = self._local_files(source)
        if local is None:
            return [source.path], source.file_format or "parquet"  # s3a://, gs://, hdfs://, other formats
        return list_source_files(local, str(self.repo_config.repo_path)), local.file_format

    @staticmethod
    def _local_files(source: DataSource) -> FileSource | None:
        """A source of local Parquet or CSV files as the FileSource DuckDB reads, else None."""
        if isinstance(source, FileSource):
            return source
        assert isinstance(source, SparkSource)
        fmt = source.file_format or "parquet"
        if not source.path or _has_scheme(source.path) or fmt not in ("parquet", "csv"):
            return None
        return FileSource(name=source.name, path=source.path.removeprefix("file://"), file_format=fmt)

    def _file_view(self, source: DataSource, files: list[str], fmt: str) -> str:
        """A temporary view of the files (its name fixed by the file list, so new parts make a new
        view) with nanosecond timestamps as microseconds and each row's place as hidden columns."""
        digest = hashlib.sha1(repr((source.name, fmt, files)).encode()).hexdigest()[:16]
        name = f"__repast_src_{digest}"
        spark = self.spark
        if spark.catalog.tableExists(name):
            return name
        from pyspark.sql import functions as F

        reader = spark.read.format(fmt)
        if fmt == "csv":
            reader = reader.option("header", "true").option("inferSchema", "true")
        df = reader.load(files)
        nanos = self._nanosecond_columns(files, fmt)
        columns = [self._micros(F.col(c), c) if c in nanos else F.col(c) for c in df.columns]
        row_index = F.col("_metadata.row_index") if fmt == "parquet" else F.monotonically_increasing_id()
        df = df.select(*columns, F.col("_metadata.file_path").alias(FILE_COLUMN), row_index.alias(ROW_INDEX_COLUMN))
        df.createOrReplaceTempView(name)
        return name

    @staticmethod
    def _micros(column: Any, name: str) -> Any:
        from pyspark.sql import functions as F

        # To the nearest microsecond, half up, in integers: the instant DuckDB's cast gives.
        shifted = column + F.lit(500)
        return F.timestamp_micros(((shifted - F.pmod(shifted, F.lit(1000))) / F.lit(1000)).cast("long")).alias(name)

    @staticmethod
    def _nanosecond_columns(files: list[str], fmt: str) -> set[str]:
        first = files[0].removeprefix("file://") if files else ""
        if fmt != "parquet" or not first or _has_scheme(first) or not os.path.isfile(first):
            return set()
        schema = read_schema(FileSource(name="x", path=first), first)
        return {f.name for f in schema if pa.types.is_timestamp(f.type) and f.type.unit == "ns"}

    def source_frame(self, source: DataSource) -> DataFrame:
        """The source's rows as a Spark DataFrame (hidden place columns dropped)."""
        df = self.spark.sql(f"SELECT * FROM {self.relation(source)}")
        return df.drop(FILE_COLUMN, ROW_INDEX_COLUMN)

    def source_schema(self, source: DataSource) -> pa.Schema:
        self.check_source(source)
        try:
            return self.source_frame(source).limit(0).toArrow().schema
        except DefinitionError:
            raise
        except Exception as e:  # Spark raises AnalysisException and others: all mean it cannot be read
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise DefinitionError(f"{type(source).__name__} '{source.name}': Spark cannot read it: {first}") from None

    def schema_for_apply(self, source: DataSource) -> pa.Schema | None:
        """Local Parquet/CSV files: their metadata, read without Spark (so `plan` and `apply` start no
        JVM), nanosecond timestamps as the microseconds Spark reads; tables, queries and remote
        files only Spark reads: None."""
        from repast.offline.file_sources import read_schema, schema_file

        self.check_source(source)
        local = self._local_files(source)
        if local is None:
            return None
        try:
            schema = read_schema(local, schema_file(local, str(self.repo_config.repo_path)))
        except (OSError, pa.ArrowInvalid) as e:
            reason = " ".join(str(e).split())
            raise DefinitionError(f"{type(source).__name__} '{source.name}': cannot read it: {reason}") from None
        return pa.schema([f.with_type(pa.timestamp("us", f.type.tz)) if pa.types.is_timestamp(f.type) else f
                          for f in schema])

    def write_rows(self, source: DataSource, table: pa.Table) -> None:
        self.check_source(source)
        local = self._local_files(source)
        if local is not None:  # the same immutable part files DuckDB writes (repast/offline/file_sources.py)
            from repast.offline.file_sources import write_part

            write_part(local, str(self.repo_config.repo_path), table)
            return
        assert isinstance(source, SparkSource)
        if not source.table:
            raise DefinitionError(f"SparkSource '{source.name}': rows can only be appended to a table source")
        self.spark.createDataFrame(table).write.insertInto(source.table)

    # ---- dialect hooks -----------------------------------------------------------------------
    def relation(self, source: DataSource, window: tuple[datetime, datetime] | None = None) -> str:
        self.check_source(source)
        files = self._files(source)
        if files is not None:
            return f"{self._file_view(source, *files)} AS __src"
        assert isinstance(source, SparkSource)
        return f"{source.table} AS __src" if source.table else f"({source.query}) AS __src"

    def timestamp(self, column: str) -> str:
        return f"CAST({q(column)} AS TIMESTAMP)"

    def timestamp_literal(self, value: datetime) -> str:
        micros = int(as_utc(value).timestamp()) * 1_000_000 + as_utc(value).microsecond
        return f"timestamp_micros({micros})"

    def source_place(self, source: DataSource) -> str:
        if self._files(source) is not None:
            return f"named_struct('f', __src.{FILE_COLUMN}, 'r', __src.{ROW_INDEX_COLUMN})"
        return "named_struct('f', '', 'r', monotonically_increasing_id())"

    def latest_per_key_sql(self, rows: str, keys: list[str], columns: list[str]) -> str:
        by = ", ".join(q(k) for k in keys)
        return (f"SELECT {', '.join(q(c) for c in columns)} FROM (SELECT *, row_number() OVER (PARTITION BY {by} "
                f"ORDER BY event_timestamp DESC, created_timestamp DESC NULLS LAST, __place DESC) AS __rank "
                f"FROM ({rows}) AS __range) AS __ranked WHERE __rank = 1 ORDER BY {by}")

    def spine_key_columns(self, vr: ViewRequest, request: FeatureRequest) -> list[str]:
        # UNION ALL matches by position: every part lists every key column (NULL where it has none).
        src = vr.view.batch_source
        own = dict(zip(vr.request_columns(), vr.view.join_keys, strict=True))
        return [f"{q(src.source_column(own[c]))} AS {q(c)}" if c in own else f"NULL AS {q(c)}"
                for c in request.entity_columns()]

    def point_in_time_sql(self, request: FeatureRequest) -> str:
        return self.join_sql(request, KEYS_TABLE)

    def join_sql(self, request: FeatureRequest, keys_view: str) -> str:
        """The join of the key frame in `keys_view` to every view: ROW, then each view feature."""
        ctes, selects, joins = [], [f"k.{ROW}"], []
        for i, vr in enumerate(request.views):
            ctes += self._view_ctes(i, vr, keys_view)
            selects += [f"r{i}.{q(vr.output_name(f, True))}" for f in vr.read_features]
            joins.append(f"LEFT JOIN r{i} ON r{i}.__row = k.{ROW}")
        return f"WITH {', '.join(ctes)} SELECT {', '.join(selects)} FROM {keys_view} k {' '.join(joins)}"

    def _view_ctes(self, i: int, vr: ViewRequest, keys_view: str) -> list[str]:
        """u: view rows (kind 0, features in one struct) and entity rows (kind 1); m: for each
        row, the last view row at or before it in (ts, kind, created, place) order; r: per entity
        row, that row's features when within ttl. An aggregated view: r, its windowed aggregates."""
        if vr.view.aggregations:
            return [f"r{i} AS ({aggregate_view_sql(self, vr, keys_view)})"]
        src = vr.view.batch_source
        keys = [f"__k{j}" for j in range(len(vr.view.join_keys))]
        created = self.timestamp(src.created_timestamp_column) if src.created_timestamp_column else "NULL"
        ts = self.timestamp(src.timestamp_field)
        value = ", ".join(["'ts', " + ts, *(f"'f{j}', {q(src.source_column(f))}"
                                            for j, f in enumerate(vr.read_features))])
        view_keys = [f"{q(src.source_column(k))} AS {n}" for k, n in zip(vr.view.join_keys, keys, strict=True)]
        not_null = " AND ".join([*(f"{q(src.source_column(k))} IS NOT NULL" for k in vr.view.join_keys),
                                 f"{ts} IS NOT NULL"])
        view_rows = (f"SELECT {', '.join(view_keys)}, {ts} AS __ts, 0 AS __kind, {created} AS __created, "
                     f"{self.source_place(src)} AS __place, NULL AS __row, named_struct({value}) AS __val "
                     f"FROM {self.relation(src)} WHERE {not_null}")
        entity_keys = [f"{q(c)} AS {n}" for c, n in zip(vr.request_columns(), keys, strict=True)]
        entity_rows = (f"SELECT {', '.join(entity_keys)}, {TS} AS __ts, 1 AS __kind, NULL AS __created, "
                       f"NULL AS __place, {ROW} AS __row, NULL AS __val FROM {keys_view}")
        ttl_us = int(vr.view.ttl.total_seconds() * 1_000_000)
        within = f"unix_micros(__m.ts) >= unix_micros(__ts) - {ttl_us}" if ttl_us > 0 else "__m IS NOT NULL"
        out = ", ".join(f"CASE WHEN {within} THEN __m.f{j} END AS {q(vr.output_name(f, True))}"
                        for j, f in enumerate(vr.read_features))
        return [
            f"u{i} AS ({view_rows} UNION ALL {entity_rows})",
            f"m{i} AS (SELECT __row, __kind, __ts, last(__val, true) OVER (PARTITION BY {', '.join(keys)} "
            f"ORDER BY __ts, __kind, __created NULLS FIRST, __place NULLS FIRST "
            f"ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS __m FROM u{i})",
            f"r{i} AS (SELECT __row, {out} FROM m{i} WHERE __kind = 1)",
        ]

    def minus_micros(self, timestamp: str, micros: int | str) -> str:
        return f"timestamp_micros(unix_micros({timestamp}) - {micros})"

    def epoch_micros_sql(self, timestamp: str) -> str:
        return f"unix_micros({timestamp})"

    def ordered_aggregate_sql(self, kind: str, value: str, n: int, text: bool) -> str:
        a = EVENT_ALIAS
        order = (f"named_struct('t', {a}.__ts, 'c', coalesce({a}.__created, timestamp_micros(-62135596800000000)), "
                 f"'v', {value})")
        if kind == "last_n":  # structs sort by their fields in order: the tie rule, oldest first
            events = (f"array_sort(collect_list(CASE WHEN {value} IS NOT NULL THEN "
                      f"named_struct('o', {order}, 'v', {value}) END))")
            return (f"CASE WHEN size({events}) > 0 THEN transform(slice({events}, "
                    f"greatest(size({events}) - {n} + 1, 1), {n}), e -> e.v) END")
        # max_by/min_by skip rows whose ordering value is NULL: those without a value.
        return f"{'max' if kind == 'last' else 'min'}_by({value}, CASE WHEN {value} IS NOT NULL THEN {order} END)"

    def write_latest_online(self, view: FeatureView, start: datetime, end: datetime, sink: Any,
                            batch_size: int) -> int:
        """Materialization from the executors (repast/offline/spark_materialize.py); returns the rows."""
        from repast.offline.spark_materialize import write_latest_online

        store_type = getattr(getattr(sink, "config", None), "type", "")
        return write_latest_online(self, view, start, end, sink, store_type, batch_size)

    # ---- how queries run ---------------------------------------------------------------------
    @contextmanager
    def session(self) -> Iterator[SparkSession]:
        yield self.spark

    def read_arrow(self, conn: Any, sql: str) -> pa.Table:
        return conn.sql(sql).toArrow()

    def stream_arrow(self, sql: str, batch_size: int,
                     deferred: dict[str, Callable[[], Any]] | None = None) -> Iterator[pa.RecordBatch]:
        yield from staged_batches(self, self.spark.sql(sql), batch_size)

    def load_keys(self, conn: Any, keys: pa.Table) -> None:
        conn.createDataFrame(keys).createOrReplaceTempView(KEYS_TABLE)

    def query_schema(self, sql: str) -> pa.Schema:
        return self.spark.sql(sql).limit(0).toArrow().schema

    def get_historical_features(self, entity: Any, request: FeatureRequest,
                                full_feature_names: bool) -> Any:
        if type(entity).__module__.startswith("pyspark."):  # a Spark DataFrame: joined where it is
            entity = spark_entity(self, entity)
        return super().get_historical_features(entity, request, full_feature_names)

