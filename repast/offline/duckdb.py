"""DuckDBOfflineEngine: the embedded engine over Parquet and CSV files, scanned in place.

Dialect code only (the shared structure is repast/offline/sql_base.py). The point-in-time join
is one DuckDB query: the entity key frame (Arrow, zero-copy) ASOF-joined to each view's rows. The
ASOF inequality runs on a struct of a HUGEINT holding (event_ts, created_ts) and the row's place in
the source, so that among equal event times the greatest created timestamp wins and among exact
ties the row that comes last in the source (the tie rule, see docs/offline.md), without a separate
dedup pass.
"""

from __future__ import annotations

import os
import re
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import pyarrow as pa
from pydantic import Field, field_validator

from repast.definitions import DataSource, FileSource
from repast.errors import InputError
from repast.offline.file_sources import list_source_files, read_schema, schema_file, source_filesystem, write_part
from repast.offline.object_scan import PLACE_COLUMN, remote_dataset, scan_reader, window_filter
from repast.offline.sql_base import KEYS_TABLE, ROW, TS, SQLOfflineEngine
from repast.offline.storage_paths import explain, is_remote
from repast.offline.window_aggregates import EVENT_ALIAS, aggregate_view_sql
from repast.plugins.base_config import BackendConfig
from repast.sql_quoting import quote_ident, quote_literal
from repast.types.timestamps import as_utc

if TYPE_CHECKING:
    import duckdb
    import pyarrow.fs as pafs

    from repast.definitions.feature_refs import FeatureRequest, ViewRequest

q = quote_ident
# (event_us, created_us) packed into one ordered HUGEINT: event_us * 2^64 + (created_us + 2^63).
# A null created sorts lowest; an entity row's key ends in 2^64 - 1, above every created value.
_SHIFT = 2**64
_CREATED_OFFSET = 2**63
_ENTITY_CREATED = 2**64 - 1
# A row's place in a Parquet source: file index * 2^40 + row number in the file.
_FILE_SHIFT = 2**40
_ENTITY_PLACE = 2**63 - 1


class DuckDBOfflineConfig(BackendConfig):
    type: Literal["duckdb", "file", "dask"] = "duckdb"
    # Default: half of the memory this process may use (the container's cgroup limit, else the
    # machine's), so a materialization window larger than memory spills instead of failing.
    memory_limit: str | None = None
    # Where DuckDB spills what does not fit (default: <system temp dir>/repast-duckdb-spill).
    temp_directory: str | None = None
    threads: int | None = Field(default=None, ge=1)
    # An S3-compatible server (or GCS emulator) for s3:// and gs:// source paths, e.g.
    # http://minio:9000 (path-style addressing); a FileSource's own s3_endpoint_override wins.
    endpoint_override: str | None = None
    # DuckDB's own progress bar, which it prints to stdout (TTY or not) for queries over 2 s: off,
    # so a library call prints nothing; the CLI draws its own progress where a person watches.
    progress_bar: bool = False
    # With progress_bar on: draw it for queries running longer than this (DuckDB's progress_bar_time).
    progress_bar_after_seconds: float = Field(default=2.0, ge=0)

    @field_validator("memory_limit")
    @classmethod
    def _memory_size(cls, v: str | None) -> str | None:
        # DuckDB's own check runs only when a connection opens, as a traceback mid-command.
        if v is not None and not re.fullmatch(r"\s*\d+(\.\d+)?\s*([KMGT]i?B|%)\s*", v, re.IGNORECASE):
            raise ValueError(f"{v!r} is not a memory size; use e.g. 4GB, 512MB, 2GiB or 80%")
        return v


def available_memory_bytes() -> int:
    """The memory this process may use: the cgroup limit in a container, else the machine's RAM."""
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(path).read_text().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < 2**60:  # "max" or a huge number: no limit
            return int(text)
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def default_memory_limit() -> str:
    """Half of the available memory (at least 256 MB): room for the Arrow batches in flight."""
    return f"{max(256, available_memory_bytes() // 2 // 2**20)}MB"


class DuckDBOfflineEngine(SQLOfflineEngine):
    Config = DuckDBOfflineConfig
    dialect = "DuckDB"
    type_name = "duckdb"
    source_kinds: ClassVar[tuple[type[DataSource], ...]] = (FileSource,)
    double_type: ClassVar[str] = "DOUBLE"
    approx_distinct: ClassVar[bool] = True

    def quantiles_sql(self, expr: str, fractions: list[float]) -> str:
        # A reservoir sample of 8,192 values per group: bounded memory, and several times cheaper
        # per row than approx_quantile's t-digest (which dominated a 20-feature statistics run).
        return f"reservoir_quantile({expr}, [{', '.join(map(repr, fractions))}], 8192)"

    def distinct_count_sql(self, expr: str) -> str:
        return f"approx_count_distinct({expr})"

    def key_hash_sql(self, columns: list[str]) -> str:
        return f"hash({', '.join(columns)})"

    def connect(self) -> duckdb.DuckDBPyConnection:
        """A fresh in-memory connection: UTC session zone, so zone-less timestamps read as UTC."""
        import duckdb

        con = duckdb.connect()
        con.execute("SET TimeZone = 'UTC'")
        con.execute(f"SET enable_progress_bar = {str(self.config.progress_bar).lower()}")
        if self.config.progress_bar:
            con.execute(f"SET progress_bar_time = {int(self.config.progress_bar_after_seconds * 1000)}")
        if self.config.threads:
            con.execute(f"SET threads = {int(self.config.threads)}")
        con.execute(f"SET memory_limit = {quote_literal(self.config.memory_limit or default_memory_limit())}")
        # An in-memory database spills only where it is told to: without this a large window fails.
        temp = self.config.temp_directory or os.path.join(tempfile.gettempdir(), "repast-duckdb-spill")
        con.execute(f"SET temp_directory = {quote_literal(temp)}")
        return con

    def _file_source(self, source: DataSource) -> FileSource:
        self.check_source(source)
        assert isinstance(source, FileSource)
        return source

    def source_schema(self, source: DataSource) -> pa.Schema:
        src = self._file_source(source)
        repo, endpoint = str(self.repo_config.repo_path), self.config.endpoint_override
        fs, _ = source_filesystem(src, repo, endpoint)
        path = schema_file(src, repo, endpoint)
        try:
            schema = read_schema(src, path, fs)
        except OSError as e:
            if is_remote(src.path):
                raise explain(e, src.path, f"FileSource '{src.name}' path '{src.path}'") from None
            reason = " ".join(str(e).split())
            raise InputError(f"'{path}' cannot be read as {src.file_format.upper()} ({reason}); point the "
                             "source at Parquet or CSV files, or set file_format") from None
        except pa.ArrowInvalid as e:
            reason = " ".join(str(e).split())
            raise InputError(f"'{path}' cannot be read as {src.file_format.upper()} ({reason}); point the "
                             "source at Parquet or CSV files, or set file_format") from None
        if is_remote(src.path) and _directory_of(src, fs) is not None:  # hive partition columns too
            return remote_dataset(src, fs, list_source_files(src, repo, endpoint), _directory_of(src, fs)).schema
        return schema

    def write_rows(self, source: DataSource, table: pa.Table) -> None:
        write_part(self._file_source(source), str(self.repo_config.repo_path), table, self.config.endpoint_override)

    # ---- dialect hooks -----------------------------------------------------------------------
    def relation(self, source: DataSource, window: tuple[datetime, datetime] | None = None) -> str:
        source = self._file_source(source)
        files = list_source_files(source, str(self.repo_config.repo_path), self.config.endpoint_override)
        if is_remote(source.path):
            return self._remote_relation(source, files, window)
        files = [f.removeprefix("file://") for f in files]
        listing = "[" + ", ".join(quote_literal(f) for f in files) + "]"
        if source.file_format == "csv":
            return f"read_csv({listing}, header = true, union_by_name = {len(files) > 1})"
        return f"read_parquet({listing}, union_by_name = {len(files) > 1})"

    def _remote_relation(self, source: FileSource, files: list[str], window: tuple[datetime, datetime] | None) -> str:
        """A deferred Arrow scan of the source on object storage (see repast/offline/object_scan.py)."""
        fs, _ = source_filesystem(source, str(self.repo_config.repo_path), self.config.endpoint_override)
        dataset = remote_dataset(source, fs, files, _directory_of(source, fs))
        expr = window_filter(dataset, source.timestamp_field, window)
        return self.defer(f"__repast_scan_{uuid.uuid4().hex[:12]}", lambda: scan_reader(dataset, files, expr))

    def attach(self, conn: Any, deferred: dict[str, Callable[[], Any]]) -> None:
        for name, factory in deferred.items():
            conn.register(name, factory())

    def timestamp_literal(self, value: datetime) -> str:
        return f"CAST({quote_literal(as_utc(value).isoformat())} AS TIMESTAMPTZ)"

    def source_place(self, source: DataSource) -> str:
        if is_remote(self._file_source(source).path):
            return PLACE_COLUMN
        if self._file_source(source).file_format == "csv":
            return "row_number() OVER ()"  # a streaming window: numbers rows in file order
        return f"file_index::BIGINT * {_FILE_SHIFT} + file_row_number"

    def latest_per_key_sql(self, rows: str, keys: list[str], columns: list[str]) -> str:
        by = ", ".join(q(k) for k in keys)
        return (f"SELECT {', '.join(q(c) for c in columns)} FROM ({rows}) "
                f"QUALIFY row_number() OVER (PARTITION BY {by} ORDER BY event_timestamp DESC, "
                f"created_timestamp DESC NULLS LAST, __place DESC) = 1 ORDER BY {by}")

    def point_in_time_sql(self, request: FeatureRequest) -> str:
        if all(vr.view.aggregations for vr in request.views):
            return self._aggregates_only_sql(request)
        selects: list[str] = []
        joins: list[str] = []
        for i, vr in enumerate(request.views):
            select, join = self._view_join(f"v{i}", vr)
            selects += select
            joins.append(join)
        order_key = f"{{'t': epoch_us({TS})::HUGEINT * {_SHIFT} + {_ENTITY_CREATED}, 'p': {_ENTITY_PLACE}}}"
        return (f"WITH e AS (SELECT *, {order_key} AS __order FROM {KEYS_TABLE}) "
                f"SELECT {', '.join(selects)} FROM e {' '.join(joins)} ORDER BY e.{ROW}")

    def _aggregates_only_sql(self, request: FeatureRequest) -> str:
        """Only aggregated views: each grouped query has one row per entity row already, so the
        first is the spine (no join back to the key frame, no ASOF order key)."""
        parts = [f"({aggregate_view_sql(self, vr, KEYS_TABLE)}) v{i}" for i, vr in enumerate(request.views)]
        joins = [f"JOIN {part} ON v{i + 1}.__row = v0.__row" for i, part in enumerate(parts[1:])]
        selects = [f"v{i}.{q(vr.output_name(f, True))}" for i, vr in enumerate(request.views) for f in vr.read_features]
        return f"SELECT {', '.join(selects)} FROM {parts[0]} {' '.join(joins)} ORDER BY v0.__row"

    def _view_join(self, alias: str, vr: ViewRequest) -> tuple[list[str], str]:
        if vr.view.aggregations:
            selects = [f"{alias}.{q(vr.output_name(f, True))}" for f in vr.read_features]
            return selects, f"LEFT JOIN ({aggregate_view_sql(self, vr, KEYS_TABLE)}) {alias} ON {alias}.__row = e.{ROW}"
        src = vr.view.batch_source
        ts = self.timestamp(src.timestamp_field)
        columns = [f"{q(src.source_column(k))} AS __k{j}" for j, k in enumerate(vr.view.join_keys)]
        columns += [f"{q(src.source_column(f))} AS __f{j}" for j, f in enumerate(vr.read_features)]
        columns.append(f"{ts} AS __ts")
        on = [f"e.{q(c)} = {alias}.__k{j}" for j, c in enumerate(vr.request_columns())]
        created = f"epoch_us({self.timestamp(src.created_timestamp_column)})" \
            if src.created_timestamp_column else "NULL"
        # A row without event time is never a candidate: its whole order key is NULL.
        columns.append(f"CASE WHEN {ts} IS NOT NULL THEN {{'t': epoch_us({ts})::HUGEINT * {_SHIFT} "
                       f"+ COALESCE({created}, {-_CREATED_OFFSET})::HUGEINT + {_CREATED_OFFSET}, "
                       f"'p': {self.source_place(src)}}} END AS __order")
        on.append(f"e.__order >= {alias}.__order")
        join = f"ASOF LEFT JOIN (SELECT {', '.join(columns)} FROM {self.relation(src)}) {alias} ON {' AND '.join(on)}"
        ttl_us = int(vr.view.ttl.total_seconds() * 1_000_000)
        selects = []
        for j, feature in enumerate(vr.read_features):
            value = f"{alias}.__f{j}"
            if ttl_us > 0:  # the ASOF match is the latest row <= t; older than t - ttl means no candidate
                value = f"CASE WHEN {alias}.__ts >= e.{TS} - to_microseconds({ttl_us}) THEN {value} END"
            selects.append(f"{value} AS {q(vr.output_name(feature, True))}")
        return selects, join

    def ordered_aggregate_sql(self, kind: str, value: str, n: int, text: bool) -> str:
        a = EVENT_ALIAS
        order = (f"{{'t': epoch_us({a}.__ts)::HUGEINT * {_SHIFT} + COALESCE(epoch_us({a}.__created), "
                 f"{-_CREATED_OFFSET})::HUGEINT + {_CREATED_OFFSET}, 'v': {value}}}")
        if kind == "last_n":
            return (f"list_reverse(list_slice(list({value} ORDER BY {order} DESC) FILTER (WHERE {value} IS NOT NULL), "
                    f"1, {n}))")
        # arg_max/arg_min skip rows whose ordering value is NULL: those without a value.
        return f"arg_{'max' if kind == 'last' else 'min'}({value}, CASE WHEN {value} IS NOT NULL THEN {order} END)"

    @contextmanager
    def session(self) -> Iterator[duckdb.DuckDBPyConnection]:
        con = self.connect()
        try:
            yield con
        finally:
            con.close()

    def interrupt(self, conn: Any) -> None:
        conn.interrupt()

    def read_arrow(self, conn: Any, sql: str) -> pa.Table:
        return conn.sql(sql).to_arrow_table()

    def read_batches(self, conn: Any, sql: str, batch_rows: int) -> Iterator[pa.RecordBatch]:
        yield from conn.sql(sql).to_arrow_reader(batch_rows)

    def stream_arrow(self, sql: str, batch_size: int,
                     deferred: dict[str, Callable[[], Any]]) -> Iterator[pa.RecordBatch]:
        con = self.connect()  # held by the generator until the last batch is read
        try:
            self.attach(con, deferred)
            yield from con.sql(sql).to_arrow_reader(batch_size)
        finally:
            con.close()

    def load_keys(self, conn: Any, keys: pa.Table) -> None:
        conn.register(KEYS_TABLE, keys)

    def query_schema(self, sql: str) -> pa.Schema:
        with self.session() as con:
            return con.sql(f"SELECT * FROM ({sql}) LIMIT 0").to_arrow_table().schema


def _directory_of(source: FileSource, fs: pafs.FileSystem) -> str | None:
    """The directory of a directory source on object storage (its hive partitions are columns)."""
    import pyarrow.fs as pafs

    path = source.path.split("://", 1)[-1].rstrip("/")
    if any(c in path for c in "*?["):
        return None
    return path if fs.get_file_info(path).type == pafs.FileType.Directory else None
