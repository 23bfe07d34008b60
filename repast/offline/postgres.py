"""PostgresOfflineEngine: PostgreSQLSource tables and queries, the join pushed down into SQL.

Data moves as CSV through COPY in both directions and is parsed by Arrow, so no Python runs
per row (except for array and bytea values, decoded per value). The point-in-time join needs
no index: entity rows and view rows are interleaved in one ordered window per view, and each
entity row takes the last view row before it (see `_view_cte`).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

import pyarrow as pa

from repast.config import PostgresConnectionConfig
from repast.definitions import DataSource, FeatureView, PostgreSQLSource
from repast.errors import DefinitionError, InputError, StoreUnavailable, require_module
from repast.offline.base import (
    EntityInput,
    JoinRetrievalJob,
    OfflineEngine,
    RetrievalJob,
    SpineRange,
    cast_to_view_types,
)
from repast.offline.pg_arrow import arrow_to_csv, pg_type, read_query, schema_of
from repast.retrieval import ROW, TIMESTAMP_COLUMN, TS, assemble, check_entity, key_frame
from repast.sql_quoting import quote_ident, quote_literal
from repast.timestamps import as_utc

if TYPE_CHECKING:
    import psycopg

    from repast.feature_refs import FeatureRequest, ViewRequest

q = quote_ident
_KEYS = "__repast_keys"


class PostgresOfflineConfig(PostgresConnectionConfig):
    type: Literal["postgres"] = "postgres"
    work_mem: str = "256MB"  # per retrieval session: the join sorts in memory up to this much


def _ts(column: str) -> str:
    # The session zone is UTC, so a zone-less timestamp is read as UTC.
    return f"{q(column)}::timestamptz"


def _ts_literal(value: datetime) -> str:
    return f"{quote_literal(as_utc(value).isoformat())}::timestamptz"


class PostgresOfflineEngine(OfflineEngine):
    Config = PostgresOfflineConfig

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
        if not isinstance(source, PostgreSQLSource):
            raise DefinitionError(
                f"data source '{source.name}' ({type(source).__name__}) cannot be read by the postgres "
                "offline engine; use a PostgreSQLSource or set offline_store.type to match the source")
        return source

    def _from(self, source: DataSource) -> str:
        return f"{self._pg_source(source).from_clause()} AS __src"

    def source_schema(self, source: DataSource) -> pa.Schema:
        import psycopg

        sql = f"SELECT * FROM {self._from(source)}"
        with self.connect() as conn:
            try:
                return schema_of(conn, sql)
            except psycopg.Error as e:
                raise DefinitionError(f"PostgreSQLSource '{source.name}': cannot read it: {e}".strip()) from None

    # ---- training data ---------------------------------------------------------------------
    def get_historical_features(self, entity: EntityInput, request: FeatureRequest,
                                full_feature_names: bool) -> RetrievalJob:
        schemas = {vr.view.batch_source.name: self.source_schema(vr.view.batch_source) for vr in request.views}
        if isinstance(entity, SpineRange):
            return PostgresRetrievalJob(self, self._spine_sql(request, entity, schemas), request, full_feature_names)
        if isinstance(entity, str):
            import psycopg

            with self.connect() as conn:
                try:
                    schema = schema_of(conn, entity)
                except psycopg.Error as e:
                    first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                    raise InputError(f"entity_df query failed in PostgreSQL: {first}") from None
        else:
            schema = entity.schema
        check_entity(schema, request, lambda s: schemas[s.name])
        return PostgresRetrievalJob(self, entity, request, full_feature_names)

    def _spine_sql(self, request: FeatureRequest, spine: SpineRange, schemas: dict[str, pa.Schema]) -> str:
        types: dict[str, str] = {}
        for vr in request.views:
            src = vr.view.batch_source
            for key, col in zip(vr.view.join_keys, vr.request_columns(), strict=True):
                types.setdefault(col, pg_type(schemas[src.name].field(src.source_column(key)).type))
        parts = []
        for vr in request.views:
            src = vr.view.batch_source
            own = dict(zip(vr.request_columns(), vr.view.join_keys, strict=True))
            cols = [f"{q(src.source_column(own[c]))} AS {q(c)}" if c in own else f"NULL::{types[c]} AS {q(c)}"
                    for c in request.entity_columns()]
            parts.append(f"SELECT {', '.join(cols)}, {_ts(src.timestamp_field)} AS {TIMESTAMP_COLUMN} "
                         f"FROM {self._from(src)} WHERE {_ts(src.timestamp_field)} "
                         f"BETWEEN {_ts_literal(spine.start)} AND {_ts_literal(spine.end)}")
        order = ", ".join(f"{q(c)} NULLS FIRST" for c in [TIMESTAMP_COLUMN, *request.entity_columns()])
        keys = ", ".join(q(c) for c in request.entity_columns())
        # As Feast: one row per entity, at its latest event time in the window.
        return (f"SELECT {keys}, max({TIMESTAMP_COLUMN}) AS {TIMESTAMP_COLUMN} "
                f"FROM ({' UNION ALL '.join(parts)}) AS __spine GROUP BY {keys} ORDER BY {order}")

    def point_in_time_sql(self, request: FeatureRequest) -> str:
        """The join of the uploaded key frame to every view: one row per entity row, in order."""
        ctes, selects, joins = [], [], []
        for i, vr in enumerate(request.views):
            ctes += self._view_cte(i, vr)
            selects += [f"r{i}.{q(vr.output_name(f, True))}" for f in vr.read_features]
            joins.append(f"JOIN r{i} ON r{i}.__row = k.{ROW}")
        return (f"WITH {', '.join(ctes)} SELECT {', '.join(selects)} FROM {_KEYS} k {' '.join(joins)} "
                f"ORDER BY k.{ROW}")

    def _view_cte(self, i: int, vr: ViewRequest) -> list[str]:
        """Three CTEs for one view: u (view rows and entity rows), g (running count of view rows
        in (keys, ts, kind, created, place) order: an entity row shares it with the last view row at
        or before it) and r (that row's features, if within ttl)."""
        src = vr.view.batch_source
        keys = [f"__k{j}" for j in range(len(vr.view.join_keys))]
        feats = [f"__f{j}" for j in range(len(vr.read_features))]
        created = _ts(src.created_timestamp_column) if src.created_timestamp_column else "NULL::timestamptz"
        place, place_type = self.source_place(src)
        view_rows = ", ".join([*(f"{q(src.source_column(k))} AS {n}" for k, n in zip(vr.view.join_keys, keys,
                                                                                     strict=True)),
                               f"{_ts(src.timestamp_field)} AS __ts", f"{created} AS __created",
                               "0 AS __kind", "NULL::int8 AS __row", f"{place} AS __place",
                               *(f"{q(src.source_column(f))} AS {n}" for f, n in zip(vr.read_features, feats,
                                                                                     strict=True))])
        entity_rows = ", ".join([*(f"{q(c)}" for c in vr.request_columns()), TS, "NULL", "1", ROW,
                                 f"NULL::{place_type}", *("NULL" for _ in feats)])
        partition = ", ".join(keys)
        on = " AND ".join([*(f"s.{k} = e.{k}" for k in keys), "s.__grp = e.__grp", "s.__kind = 0"])
        ttl_us = int(vr.view.ttl.total_seconds() * 1_000_000)
        if ttl_us > 0:
            on += f" AND s.__ts >= e.__ts - interval '1 microsecond' * {ttl_us}"
        out = ", ".join(f"s.{n} AS {q(vr.output_name(f, True))}" for f, n in zip(vr.read_features, feats,
                                                                                 strict=True))
        return [
            f"u{i} AS (SELECT {view_rows} FROM {self._from(src)} UNION ALL SELECT {entity_rows} FROM {_KEYS})",
            f"g{i} AS MATERIALIZED (SELECT *, sum(1 - __kind) OVER (PARTITION BY {partition} ORDER BY __ts, __kind, "
            f"__created NULLS FIRST, __place NULLS FIRST ROWS UNBOUNDED PRECEDING) AS __grp FROM u{i})",
            f"r{i} AS (SELECT e.__row, {out} FROM g{i} e LEFT JOIN g{i} s ON {on} WHERE e.__kind = 1)",
        ]

    def upload(self, conn: psycopg.Connection[Any], name: str, table: pa.Table, temporary: bool) -> None:
        """Create table `name` typed after `table` and COPY the rows in."""
        columns = ", ".join(f"{q(f.name)} {pg_type(f.type)}" for f in table.schema)
        conn.execute(f"CREATE {'TEMP ' if temporary else ''}TABLE {name} ({columns})")
        self.copy_in(conn, name, table)

    def copy_in(self, conn: psycopg.Connection[Any], name: str, table: pa.Table) -> None:
        names = ", ".join(q(n) for n in table.column_names)
        with conn.cursor().copy(f"COPY {name} ({names}) FROM STDIN (FORMAT csv)") as copy:
            copy.write(arrow_to_csv(table))

    def source_place(self, source: DataSource) -> tuple[str, str]:
        """SQL for a row's place in the source, and its type: it breaks exact (event, created) ties,
        the greatest winning. A table's physical order (ctid: insertion order while rows are only
        appended); a query has no order, so its rows are compared by their text form."""
        return ("__src.ctid", "tid") if self._pg_source(source).table else ("__src::text", "text")

    # ---- materialization and push ------------------------------------------------------------
    def view_rows_sql(self, view: FeatureView, with_place: bool = False) -> str:
        """The view's rows under the read_* column contract, before any time filter (and with
        `with_place`, their place in the source as `__place`)."""
        src = view.batch_source
        columns = [f"{q(src.source_column(k))} AS {q(k)}" for k in view.join_keys]
        columns += [f"{q(src.source_column(f))} AS {q(f)}" for f in view.feature_names()]
        created = _ts(src.created_timestamp_column) if src.created_timestamp_column else "NULL::timestamptz"
        columns += [f"{_ts(src.timestamp_field)} AS event_timestamp", f"{created} AS created_timestamp"]
        if with_place:
            columns.append(f"{self.source_place(src)[0]} AS __place")
        return f"SELECT {', '.join(columns)} FROM {self._from(src)}"

    def _in_range(self, view: FeatureView, start: datetime, end: datetime) -> str:
        return (f"SELECT * FROM ({self.view_rows_sql(view)}) AS __rows WHERE event_timestamp >= "
                f"{_ts_literal(start)} AND event_timestamp < {_ts_literal(end)}")

    def read_latest(self, view: FeatureView, start: datetime, end: datetime,
                    batch_size: int = 100_000) -> Iterator[pa.RecordBatch]:
        keys = ", ".join(q(k) for k in view.join_keys)
        columns = ", ".join(q(c) for c in [*view.join_keys, *view.feature_names(), "event_timestamp",
                                           "created_timestamp"])
        in_range = (f"SELECT * FROM ({self.view_rows_sql(view, with_place=True)}) AS __rows WHERE event_timestamp >= "
                    f"{_ts_literal(start)} AND event_timestamp < {_ts_literal(end)}")
        sql = (f"SELECT DISTINCT ON ({keys}) {columns} FROM ({in_range}) AS __range "
               f"ORDER BY {keys}, event_timestamp DESC, created_timestamp DESC NULLS LAST, __place DESC")
        with self.connect() as conn:
            for batch in read_query(conn, sql, batch_size):
                yield cast_to_view_types(batch, view)

    def read_range(self, view: FeatureView, start: datetime, end: datetime) -> pa.Table:
        with self.connect() as conn:
            batches = list(read_query(conn, self._in_range(view, start, end)))
            schema = schema_of(conn, self._in_range(view, start, end))
        return cast_to_view_types(pa.Table.from_batches(batches, schema=schema), view)

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


class PostgresRetrievalJob(JoinRetrievalJob):
    """Runs the join when a `to_*` method is called; `to_table(name)` stores the result in PostgreSQL."""

    engine: PostgresOfflineEngine

    def to_arrow(self) -> pa.Table:
        with self.engine.connect() as conn:
            entity = self.entity if isinstance(self.entity, pa.Table) else _read_table(conn, self.entity)
            ts = check_entity(entity.schema, self.request)
            self.engine.upload(conn, _KEYS, key_frame(entity, ts, self.request), temporary=True)
            conn.execute(f"ANALYZE {_KEYS}")
            features = _read_table(conn, self.engine.point_in_time_sql(self.request))
            conn.rollback()  # the temporary key table goes with the transaction
        return assemble(entity, ts, features, self.request, self.full_feature_names)

    def to_table(self, name: str) -> str:
        """Write the result to a new PostgreSQL table `name` (schema-qualified or not); returns it."""
        result = self.to_arrow()
        with self.engine.connect() as conn:
            self.engine.upload(conn, ".".join(q(p) for p in name.split(".")), result, temporary=False)
        return name


def _read_table(conn: psycopg.Connection[Any], sql: str) -> pa.Table:
    return pa.Table.from_batches(list(read_query(conn, sql)), schema=schema_of(conn, sql))

