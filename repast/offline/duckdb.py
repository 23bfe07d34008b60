"""DuckDBOfflineEngine: the embedded engine over Parquet and CSV files, scanned in place.

The point-in-time join is one DuckDB query: the entity key frame (Arrow, zero-copy) ASOF-joined
to each view's rows. The ASOF inequality runs on a struct of a HUGEINT holding (event_ts,
created_ts) and the row's place in the source, so that among equal event times the greatest created
timestamp wins and among exact ties the row that comes last in the source (the tie rule, see
docs/offline.md), without a separate dedup pass.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

import pyarrow as pa
from pydantic import Field, field_validator

from repast.config import BackendConfig
from repast.definitions import DataSource, FeatureView, FileSource
from repast.errors import DefinitionError, InputError
from repast.offline.base import (
    EntityInput,
    JoinRetrievalJob,
    OfflineEngine,
    RetrievalJob,
    SpineRange,
    cast_to_view_types,
)
from repast.offline.files import list_source_files, read_schema, schema_file, write_part
from repast.retrieval import ROW, TIMESTAMP_COLUMN, TS, assemble, check_entity, key_frame
from repast.sql_quoting import quote_ident, quote_literal
from repast.timestamps import as_utc

if TYPE_CHECKING:
    import duckdb

    from repast.feature_refs import FeatureRequest, ViewRequest

q = quote_ident
# (event_us, created_us) packed into one ordered HUGEINT: event_us * 2^64 + (created_us + 2^63).
# A null created sorts lowest; an entity row's key ends in 2^64 - 1, above every created value.
_SHIFT = 2**64
_CREATED_OFFSET = 2**63
_ENTITY_CREATED = 2**64 - 1
# A row's place in a Parquet source: file index * 2^40 + row number in the file.
_FILE_SHIFT = 2**40
_ENTITY_PLACE = 2**63 - 1
_KEYS = "__repast_keys"


class DuckDBOfflineConfig(BackendConfig):
    type: Literal["duckdb", "file", "dask"] = "duckdb"
    memory_limit: str | None = None
    threads: int | None = Field(default=None, ge=1)

    @field_validator("memory_limit")
    @classmethod
    def _memory_size(cls, v: str | None) -> str | None:
        # DuckDB's own check runs only when a connection opens, as a traceback mid-command.
        if v is not None and not re.fullmatch(r"\s*\d+(\.\d+)?\s*([KMGT]i?B|%)\s*", v, re.IGNORECASE):
            raise ValueError(f"{v!r} is not a memory size; use e.g. 4GB, 512MB, 2GiB or 80%")
        return v


class DuckDBOfflineEngine(OfflineEngine):
    Config = DuckDBOfflineConfig

    def connect(self) -> duckdb.DuckDBPyConnection:
        """A fresh in-memory connection: UTC session zone, so zone-less timestamps read as UTC."""
        import duckdb

        con = duckdb.connect()
        con.execute("SET TimeZone = 'UTC'")
        if self.config.threads:
            con.execute(f"SET threads = {int(self.config.threads)}")
        if self.config.memory_limit:
            con.execute(f"SET memory_limit = {quote_literal(self.config.memory_limit)}")
        return con

    def _file_source(self, source: DataSource) -> FileSource:
        if not isinstance(source, FileSource):
            raise DefinitionError(
                f"data source '{source.name}' ({type(source).__name__}) cannot be read by the duckdb "
                "offline engine; use a FileSource or set offline_store.type to match the source")
        return source

    def source_schema(self, source: DataSource) -> pa.Schema:
        src = self._file_source(source)
        path = schema_file(src, str(self.repo_config.repo_path))
        try:
            return read_schema(src, path)
        except (pa.ArrowInvalid, OSError) as e:
            reason = " ".join(str(e).split())
            raise InputError(f"'{path}' cannot be read as {src.file_format.upper()} ({reason}); point the "
                             "source at Parquet or CSV files, or set file_format") from None

    def scan(self, source: DataSource) -> str:
        """SQL usable after FROM that reads every file of the source in place."""
        source = self._file_source(source)
        files = list_source_files(source, str(self.repo_config.repo_path))
        listing = "[" + ", ".join(quote_literal(f) for f in files) + "]"
        if source.file_format == "csv":
            return f"read_csv({listing}, header = true, union_by_name = {len(files) > 1})"
        return f"read_parquet({listing}, union_by_name = {len(files) > 1})"

    # ---- training data ---------------------------------------------------------------------
    def get_historical_features(self, entity: EntityInput, request: FeatureRequest,
                                full_feature_names: bool) -> RetrievalJob:
        for vr in request.views:
            self._file_source(vr.view.batch_source)
        if isinstance(entity, SpineRange):
            return DuckDBRetrievalJob(self, self._spine_sql(request, entity), request, full_feature_names)
        schema = entity.schema if isinstance(entity, pa.Table) else self._query_schema(entity)
        check_entity(schema, request, self.source_schema)
        return DuckDBRetrievalJob(self, entity, request, full_feature_names)

    def _query_schema(self, sql: str) -> pa.Schema:
        try:
            return self.connect().sql(f"SELECT * FROM ({sql}) LIMIT 0").to_arrow_table().schema
        except Exception as e:  # duckdb raises many error classes; all mean the query is bad
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise InputError(f"entity_df query failed in DuckDB: {first}") from None

    def _spine_sql(self, request: FeatureRequest, spine: SpineRange) -> str:
        start, end = (quote_literal(as_utc(t).isoformat()) for t in (spine.start, spine.end))
        parts = []
        for vr in request.views:
            src = vr.view.batch_source
            ts = f"CAST({q(src.timestamp_field)} AS TIMESTAMPTZ)"
            keys = [f"{q(src.source_column(k))} AS {q(c)}" for k, c in zip(vr.view.join_keys, vr.request_columns(),
                                                                            strict=True)]
            parts.append(f"SELECT {', '.join(keys)}, {ts} AS {TIMESTAMP_COLUMN} FROM {self.scan(src)} "
                         f"WHERE {ts} BETWEEN CAST({start} AS TIMESTAMPTZ) AND CAST({end} AS TIMESTAMPTZ)")
        key_list = ", ".join(q(c) for c in request.entity_columns())
        order = ", ".join(f"{q(c)} NULLS FIRST" for c in [TIMESTAMP_COLUMN, *request.entity_columns()])
        # As Feast: one row per entity, at its latest event time in the window.
        return (f"SELECT {key_list}, max({TIMESTAMP_COLUMN}) AS {TIMESTAMP_COLUMN} "
                f"FROM ({' UNION ALL BY NAME '.join(parts)}) GROUP BY {key_list} ORDER BY {order}")

    def point_in_time_sql(self, request: FeatureRequest) -> str:
        """The join of the registered key frame to every view: one row per entity row, in order."""
        selects: list[str] = []
        joins: list[str] = []
        for i, vr in enumerate(request.views):
            select, join = self._view_join(f"v{i}", vr)
            selects += select
            joins.append(join)
        order_key = f"{{'t': epoch_us({TS})::HUGEINT * {_SHIFT} + {_ENTITY_CREATED}, 'p': {_ENTITY_PLACE}}}"
        return (f"WITH e AS (SELECT *, {order_key} AS __order FROM {_KEYS}) "
                f"SELECT {', '.join(selects)} FROM e {' '.join(joins)} ORDER BY e.{ROW}")

    def _view_join(self, alias: str, vr: ViewRequest) -> tuple[list[str], str]:
        src = vr.view.batch_source
        ts = f"CAST({q(src.timestamp_field)} AS TIMESTAMPTZ)"
        columns = [f"{q(src.source_column(k))} AS __k{j}" for j, k in enumerate(vr.view.join_keys)]
        columns += [f"{q(src.source_column(f))} AS __f{j}" for j, f in enumerate(vr.read_features)]
        columns.append(f"{ts} AS __ts")
        on = [f"e.{q(c)} = {alias}.__k{j}" for j, c in enumerate(vr.request_columns())]
        created = f"epoch_us(CAST({q(src.created_timestamp_column)} AS TIMESTAMPTZ))" \
            if src.created_timestamp_column else "NULL"
        # A row without event time is never a candidate: its whole order key is NULL.
        columns.append(f"CASE WHEN {ts} IS NOT NULL THEN {{'t': epoch_us({ts})::HUGEINT * {_SHIFT} "
                       f"+ COALESCE({created}, {-_CREATED_OFFSET})::HUGEINT + {_CREATED_OFFSET}, "
                       f"'p': {self.source_place(src)}}} END AS __order")
        on.append(f"e.__order >= {alias}.__order")
        join = f"ASOF LEFT JOIN (SELECT {', '.join(columns)} FROM {self.scan(src)}) {alias} ON {' AND '.join(on)}"
        ttl_us = int(vr.view.ttl.total_seconds() * 1_000_000)
        selects = []
        for j, feature in enumerate(vr.read_features):
            value = f"{alias}.__f{j}"
            if ttl_us > 0:  # the ASOF match is the latest row <= t; older than t - ttl means no candidate
                value = f"CASE WHEN {alias}.__ts >= e.{TS} - to_microseconds({ttl_us}) THEN {value} END"
            selects.append(f"{value} AS {q(vr.output_name(feature, True))}")
        return selects, join

    def source_place(self, source: DataSource) -> str:
        """SQL for a row's place in the source's order (file order, then row order in the file): a
        BIGINT that breaks exact (event, created) ties, the greatest winning. Valid in a SELECT
        directly over `scan(source)`."""
        if self._file_source(source).file_format == "csv":
            return "row_number() OVER ()"  # a streaming window: numbers rows in file order
        return f"file_index::BIGINT * {_FILE_SHIFT} + file_row_number"

    # ---- materialization and push ------------------------------------------------------------
    def view_rows_sql(self, view: FeatureView, with_place: bool = False) -> str:
        """The view's rows under the read_* column contract, before any time filter (and with
        `with_place`, their place in the source as `__place`)."""
        src = view.batch_source
        columns = [f"{q(src.source_column(k))} AS {q(k)}" for k in view.join_keys]
        columns += [f"{q(src.source_column(f))} AS {q(f)}" for f in view.feature_names()]
        columns.append(f"CAST({q(src.timestamp_field)} AS TIMESTAMPTZ) AS event_timestamp")
        created = q(src.created_timestamp_column) if src.created_timestamp_column else "NULL"
        columns.append(f"CAST({created} AS TIMESTAMPTZ) AS created_timestamp")
        if with_place:
            columns.append(f"{self.source_place(src)} AS __place")
        return f"SELECT {', '.join(columns)} FROM {self.scan(src)}"

    def read_latest(self, view: FeatureView, start: datetime, end: datetime,
                    batch_size: int = 100_000) -> Iterator[pa.RecordBatch]:
        keys = ", ".join(q(k) for k in view.join_keys)
        # Key order costs DuckDB little and saves the online store much: batches of random keys
        # make each write transaction touch (and rewrite) pages across the whole stored key space.
        sql = (f"SELECT * EXCLUDE (__place) FROM ({self.view_rows_sql(view, with_place=True)}) "
               f"WHERE event_timestamp >= $1 AND event_timestamp < $2 "
               f"QUALIFY row_number() OVER (PARTITION BY {keys} "
               f"ORDER BY event_timestamp DESC, created_timestamp DESC NULLS LAST, __place DESC) = 1 ORDER BY {keys}")
        return self._stream(sql, [as_utc(start), as_utc(end)], view, batch_size)

    def _stream(self, sql: str, params: list[Any], view: FeatureView, batch_size: int) -> Iterator[pa.RecordBatch]:
        con = self.connect()  # held by the generator until the last batch is read
        for batch in con.sql(sql, params=params).to_arrow_reader(batch_size):
            yield cast_to_view_types(batch, view)
        con.close()

    def read_range(self, view: FeatureView, start: datetime, end: datetime) -> pa.Table:
        sql = f"SELECT * FROM ({self.view_rows_sql(view)}) WHERE event_timestamp >= $1 AND event_timestamp < $2"
        return cast_to_view_types(self.connect().sql(sql, params=[as_utc(start), as_utc(end)]).to_arrow_table(), view)

    def write_rows(self, source: DataSource, table: pa.Table) -> None:
        write_part(self._file_source(source), str(self.repo_config.repo_path), table)


class DuckDBRetrievalJob(JoinRetrievalJob):
    """Runs the join when a `to_*` method is called; `entity` is Arrow or a DuckDB query."""

    engine: DuckDBOfflineEngine

    def to_arrow(self) -> pa.Table:
        con = self.engine.connect()
        try:
            entity = self.entity if isinstance(self.entity, pa.Table) else con.sql(self.entity).to_arrow_table()
            ts = check_entity(entity.schema, self.request)
            con.register(_KEYS, key_frame(entity, ts, self.request))
            features = con.sql(self.engine.point_in_time_sql(self.request)).to_arrow_table()
        finally:
            con.close()
        return assemble(entity, ts, features, self.request, self.full_feature_names)
