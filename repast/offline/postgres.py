"""PostgresOfflineEngine: PostgreSQLSource tables and queries, the join pushed down into SQL.

Dialect code only (the shared structure is repast/offline/sql_base.py). Data moves as CSV
through COPY in both directions and is parsed by Arrow, so no Python runs per row (except for
array and bytea values, decoded per value). The point-in-time join needs no index: entity rows and
view rows are interleaved in one ordered window per view, and each entity row takes the last view
row before it (see `_view_cte`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import pyarrow as pa

from repast.definitions import DataSource, PostgreSQLSource
from repast.errors import DefinitionError, InputError, StoreUnavailable, require_module
from repast.offline.pg_arrow import arrow_to_csv, pg_type, read_query, schema_of
from repast.offline.sql_base import KEYS_TABLE, ROW, TS, SQLOfflineEngine, SQLRetrievalJob
from repast.offline.window_aggregates import EVENT_ALIAS, aggregate_view_sql
from repast.plugins.base_config import PostgresConnectionConfig
from repast.sql_quoting import quote_ident, quote_literal
from repast.types.timestamps import as_utc

if TYPE_CHECKING:
    import psycopg

    from repast.definitions.feature_refs import FeatureRequest, ViewRequest

q = quote_ident


class PostgresOfflineConfig(PostgresConnectionConfig):
    type: Literal["postgres"] = "postgres"
    work_mem: str = "256MB"  # per retrieval session: the join sorts in memory up to this much


class PostgresRetrievalJob(SQLRetrievalJob):
    """Runs the join when a `to_*` method is called; `to_table(name)` stores the result in PostgreSQL."""

    engine: PostgresOfflineEngine

    def to_table(self, name: str) -> str:
        """Write the result to a new PostgreSQL table `name` (schema-qualified or not); returns it."""
        result = self.to_arrow()
        with self.engine.connect() as conn:
            self.engine.upload(conn, ".".join(q(p) for p in name.split(".")), result, temporary=False)
        return name


class PostgresOfflineEngine(SQLOfflineEngine):
    Config = PostgresOfflineConfig
    dialect = "PostgreSQL"
    type_name = "postgres"
    source_kinds: ClassVar[tuple[type[DataSource], ...]] = (PostgreSQLSource,)
    job_class = PostgresRetrievalJob
    spine_union = "UNION ALL"

    def __init__(self, config: Any, repo_config: Any) -> None:
        require_module("psycopg", "postgres")  # before any method imports it: the pip hint, not a traceback
        super().__init__(config, repo_config)

    def connect(self) -> psycopg.Connection[Any]:
        """A new connection with the session zone UTC and `db_schema` first on the search path."""
        require_module("psycopg", "postgres")
        import psycopg

        c = self.config
        try:
            conn = psycopg.connect(c.conninfo())
        except psycopg.OperationalError as e:
            raise StoreUnavailable(f"postgres offline store: cannot connect: {e}") from None
        conn.execute("SET TIME ZONE 'UTC'")
        conn.execute(f"SET search_path TO {q(c.db_schema)}, public")
        conn.execute(f"SET work_mem = {quote_literal(c.work_mem)}")
        return conn

    def _pg_source(self, source: DataSource) -> PostgreSQLSource:
        self.check_source(source)
        assert isinstance(source, PostgreSQLSource)
        return source

    def source_schema(self, source: DataSource) -> pa.Schema:
        import psycopg

        sql = f"SELECT * FROM {self.relation(source)}"
        with self.connect() as conn:
            try:
                return schema_of(conn, sql)
            except psycopg.Error as e:
                raise DefinitionError(f"PostgreSQLSource '{source.name}': cannot read it: {e}".strip()) from None

    def write_rows(self, source: DataSource, table: pa.Table) -> None:
        src = self._pg_source(source)
        if not src.table:
            raise DefinitionError(f"PostgreSQLSource '{src.name}' is a query; rows can only be written to a table")
        columns = self.source_schema(src).names
        missing = [c for c in columns if c not in table.column_names]
        extra = [c for c in table.column_names if c not in columns]
        if missing or extra:
            raise InputError(f"rows for PostgreSQLSource '{src.name}' must have exactly its columns {columns}; "
                             f"missing {missing}, unknown {extra}")
        with self.connect() as conn:
            self.copy_in(conn, src.table, table.select(columns))

    def upload(self, conn: psycopg.Connection[Any], name: str, table: pa.Table, temporary: bool) -> None:
        """Create table `name` typed after `table` and COPY the rows in."""
        columns = ", ".join(f"{q(f.name)} {pg_type(f.type)}" for f in table.schema)
        conn.execute(f"CREATE {'TEMP ' if temporary else ''}TABLE {name} ({columns})")
        self.copy_in(conn, name, table)

    def copy_in(self, conn: psycopg.Connection[Any], name: str, table: pa.Table) -> None:
        names = ", ".join(q(n) for n in table.column_names)
        with conn.cursor().copy(f"COPY {name} ({names}) FROM STDIN (FORMAT csv)") as copy:
            copy.write(arrow_to_csv(table))

    # ---- dialect hooks -----------------------------------------------------------------------
    def relation(self, source: DataSource, window: tuple[datetime, datetime] | None = None) -> str:
        return f"{self._pg_source(source).from_clause()} AS __src"

    def timestamp(self, column: str) -> str:
        return f"{q(column)}::timestamptz"

    def timestamp_literal(self, value: datetime) -> str:
        return f"{quote_literal(as_utc(value).isoformat())}::timestamptz"

    def source_place(self, source: DataSource) -> str:
        """A table's physical order (ctid: insertion order while rows are only appended); a query
        has no order, so its rows are compared by their text form."""
        return "__src.ctid" if self._pg_source(source).table else "__src::text"

    def _place_type(self, source: DataSource) -> str:
        return "tid" if self._pg_source(source).table else "text"

    def latest_per_key_sql(self, rows: str, keys: list[str], columns: list[str]) -> str:
        by = ", ".join(q(k) for k in keys)
        return (f"SELECT DISTINCT ON ({by}) {', '.join(q(c) for c in columns)} FROM ({rows}) AS __range "
                f"ORDER BY {by}, event_timestamp DESC, created_timestamp DESC NULLS LAST, __place DESC")

    def spine_key_columns(self, vr: ViewRequest, request: FeatureRequest) -> list[str]:
        # UNION ALL matches by position: every part lists every key column, typed NULL where the
        # view has no such key.
        types: dict[str, str] = {}
        for other in request.views:
            src = other.view.batch_source
            schema = self.source_schema(src)
            for key, col in zip(other.view.join_keys, other.request_columns(), strict=True):
                types.setdefault(col, pg_type(schema.field(src.source_column(key)).type))
        src = vr.view.batch_source
        own = dict(zip(vr.request_columns(), vr.view.join_keys, strict=True))
        return [f"{q(src.source_column(own[c]))} AS {q(c)}" if c in own else f"NULL::{types[c]} AS {q(c)}"
                for c in request.entity_columns()]

    def point_in_time_sql(self, request: FeatureRequest) -> str:
        ctes, selects, joins = [], [], []
        for i, vr in enumerate(request.views):
            ctes += self._view_cte(i, vr)
            selects += [f"r{i}.{q(vr.output_name(f, True))}" for f in vr.read_features]
            joins.append(f"JOIN r{i} ON r{i}.__row = k.{ROW}")
        return (f"WITH {', '.join(ctes)} SELECT {', '.join(selects)} FROM {KEYS_TABLE} k {' '.join(joins)} "
                f"ORDER BY k.{ROW}")

    def minus_micros(self, timestamp: str, micros: int | str) -> str:
        return f"{timestamp} - interval '1 microsecond' * {micros}"

    def epoch_micros_sql(self, timestamp: str) -> str:
        # EXTRACT gives numeric seconds (exact) on PostgreSQL 14+, a double before: round, not truncate.
        return f"round(EXTRACT(EPOCH FROM {timestamp}) * 1000000)::bigint"

    def ordered_aggregate_sql(self, kind: str, value: str, n: int, text: bool) -> str:
        a = EVENT_ALIAS
        collate = ' COLLATE "C"' if text else ""  # code point order, as the tiles and the other engines
        up = f"{a}.__ts, {a}.__created NULLS FIRST, ({value}){collate}"
        down = f"{a}.__ts DESC, {a}.__created DESC NULLS LAST, ({value}){collate} DESC"
        if kind == "last_n":  # PostgreSQL computes the repeated identical aggregate once
            ordered = f"(array_agg({value} ORDER BY {up}) FILTER (WHERE {value} IS NOT NULL))"
            return f"{ordered}[greatest(cardinality({ordered}) - {n} + 1, 1):]"
        order = down if kind == "last" else up
        return f"(array_agg({value} ORDER BY {order}) FILTER (WHERE {value} IS NOT NULL))[1]"

    def _view_cte(self, i: int, vr: ViewRequest) -> list[str]:
        """Three CTEs for one view: u (view rows and entity rows), g (running count of view rows
        in (keys, ts, kind, created, place) order: an entity row shares it with the last view row at
        or before it) and r (that row's features, if within ttl)."""
        if vr.view.aggregations:
            return [f"r{i} AS ({aggregate_view_sql(self, vr, KEYS_TABLE)})"]
        src = vr.view.batch_source
        keys = [f"__k{j}" for j in range(len(vr.view.join_keys))]
        feats = [f"__f{j}" for j in range(len(vr.read_features))]
        created = self.timestamp(src.created_timestamp_column) if src.created_timestamp_column \
            else "NULL::timestamptz"
        view_rows = ", ".join([*(f"{q(src.source_column(k))} AS {n}" for k, n in zip(vr.view.join_keys, keys,
                                                                                     strict=True)),
                               f"{self.timestamp(src.timestamp_field)} AS __ts", f"{created} AS __created",
                               "0 AS __kind", "NULL::int8 AS __row", f"{self.source_place(src)} AS __place",
                               *(f"{q(src.source_column(f))} AS {n}" for f, n in zip(vr.read_features, feats,
                                                                                     strict=True))])
        entity_rows = ", ".join([*(f"{q(c)}" for c in vr.request_columns()), TS, "NULL", "1", ROW,
                                 f"NULL::{self._place_type(src)}", *("NULL" for _ in feats)])
        partition = ", ".join(keys)
        on = " AND ".join([*(f"s.{k} = e.{k}" for k in keys), "s.__grp = e.__grp", "s.__kind = 0"])
        ttl_us = int(vr.view.ttl.total_seconds() * 1_000_000)
        if ttl_us > 0:
            on += f" AND s.__ts >= e.__ts - interval '1 microsecond' * {ttl_us}"
        out = ", ".join(f"s.{n} AS {q(vr.output_name(f, True))}" for f, n in zip(vr.read_features, feats,
                                                                                 strict=True))
        return [
            f"u{i} AS (SELECT {view_rows} FROM {self.relation(src)} UNION ALL SELECT {entity_rows} "
            f"FROM {KEYS_TABLE})",
            f"g{i} AS MATERIALIZED (SELECT *, sum(1 - __kind) OVER (PARTITION BY {partition} ORDER BY __ts, __kind, "
            f"__created NULLS FIRST, __place NULLS FIRST ROWS UNBOUNDED PRECEDING) AS __grp FROM u{i})",
            f"r{i} AS (SELECT e.__row, {out} FROM g{i} e LEFT JOIN g{i} s ON {on} WHERE e.__kind = 1)",
        ]

    @contextmanager
    def session(self) -> Iterator[psycopg.Connection[Any]]:
        with self.connect() as conn:
            yield conn
            conn.rollback()  # the temporary key table goes with the transaction

    def interrupt(self, conn: Any) -> None:
        conn.cancel_safe()  # the server stops the statement; the session's next read raises

    def read_arrow(self, conn: Any, sql: str) -> pa.Table:
        return pa.Table.from_batches(list(read_query(conn, sql)), schema=schema_of(conn, sql))

    def read_batches(self, conn: Any, sql: str, batch_rows: int) -> Iterator[pa.RecordBatch]:
        """COPY's rows as Arrow parses them, one block at a time: the result is never whole here
        (a reader that stops early ends the COPY: psycopg cancels it)."""
        yield from read_query(conn, sql, batch_rows)

    def stream_arrow(self, sql: str, batch_size: int,
                     deferred: dict[str, Callable[[], Any]]) -> Iterator[pa.RecordBatch]:
        with self.connect() as conn:
            yield from read_query(conn, sql, batch_size)

    def load_keys(self, conn: Any, keys: pa.Table) -> None:
        self.upload(conn, KEYS_TABLE, keys, temporary=True)
        conn.execute(f"ANALYZE {KEYS_TABLE}")

    def query_schema(self, sql: str) -> pa.Schema:
        with self.connect() as conn:
            return schema_of(conn, sql)
