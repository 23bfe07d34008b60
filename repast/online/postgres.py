"""PostgresOnlineStore: per view a typed table `<project>__<view>` in the configured schema.

Writes COPY a batch into a temporary staging table (CSV rendered by Arrow, so no per-value Python
for scalar views) and upsert from it in the same transaction; the upsert's WHERE keeps the latest
row by (event_ts, created_ts). Reads are one `WHERE _entity_key = ANY(%s)` per view. Connections
come from a psycopg_pool pool; the session time zone is UTC.
"""

from __future__ import annotations

import hashlib
import io
import struct
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field

from repast.aggregations.layout import tile_layout
from repast.definitions import FeatureView
from repast.errors import EntityKeyError, InputError, StoreUnavailable, require_module
from repast.online import postgres_tiles
from repast.online.base import (
    OnlineStore,
    ReadRow,
    StreamOffsets,
    caller_bounds_waits,
    new_storage_record,
    parse_storage_record,
    view_signature,
)
from repast.online.codec import BYTES_TYPES, is_nested, nested_json, struct_fields_decoder
from repast.online.keys import WriteRows, write_rows
from repast.plugins.base_config import PostgresConnectionConfig
from repast.plugins.capabilities import Capabilities
from repast.sql_quoting import quote_ident
from repast.types import Array, FeatureType, Struct
from repast.vector.postgres_columns import (
    Hnsw,
    build_vector_indexes,
    ensure_vector_storage,
    read_column,
    stage_column,
    stored_as_vector,
    unbuilt_vector_indexes,
)

if TYPE_CHECKING:
    from repast.aggregations.layout import TileLayout
    from repast.aggregations.merge import TileRow

_MIN_TS = -(2**63)
_PG_TYPES = {"Int32": "INTEGER", "Int64": "BIGINT", "Float32": "REAL", "Float64": "DOUBLE PRECISION",
             "String": "TEXT", "Bytes": "BYTEA", "Bool": "BOOLEAN", "UnixTimestamp": "TIMESTAMPTZ",
             # Feast's newer types, in PostgreSQL's own: psycopg returns uuid.UUID, Decimal and parsed JSON.
             "Uuid": "UUID", "TimeUuid": "UUID", "Decimal": "NUMERIC", "PdfBytes": "BYTEA", "ImageBytes": "BYTEA",
             "Json": "JSONB", "Map": "JSONB"}


class PostgresOnlineConfig(PostgresConnectionConfig):
    type: Literal["postgres"] = "postgres"
    conn_type: Literal["pool", "singleton"] = "pool"  # Feast's key; a pool is always used
    min_conn: int = Field(default=1, ge=0)
    max_conn: int = Field(default=10, ge=1)
    # How long a request waits for a pooled connection (libpq's own connect timeout is at least
    # 2 s), and the longest a read may run (statement_timeout; writes are not bounded).
    connect_timeout_seconds: float = Field(default=0.5, gt=0)
    read_timeout_seconds: float = Field(default=0.5, gt=0)
    vector_enabled: bool = False  # Feast's vector keys: accepted here, used by vector retrieval
    vector_len: int | None = None
    # HNSW candidates kept while searching (pgvector's hnsw.ef_search, at least top_k + 10): more
    # is slower and closer to exact. 64, not pgvector's 40: 40 gave recall@10 0.93-0.945 on the
    # contract's clustered test data; 64 gives 1.000 on benchmarks/vector.py's clustered 100k x 384
    # (docs/vector.md: harder data needs more).
    vector_ef_search: int = Field(default=64, ge=1, le=1000)
    # The HNSW index's build parameters (pgvector's m and ef_construction; its defaults). Changing
    # them replaces the index at the next apply (built from the table's rows).
    vector_index_m: int = Field(default=16, ge=2, le=100)
    vector_index_ef_construction: int = Field(default=64, ge=4, le=1000)

    def hnsw(self) -> Hnsw:
        return Hnsw(self.vector_index_m, self.vector_index_ef_construction)


def _table_name(project: str, view: str) -> str:
    name = f"{project}__{view}"
    if len(name.encode()) > 63:  # PostgreSQL truncates identifiers at 63 bytes: keep them unique
        name = name[:48] + "_" + hashlib.sha1(name.encode()).hexdigest()[:12]
    return name


def _select(name: str, dtype: FeatureType, alias: str = "") -> str:
    # float4 prints its shortest decimal; read as float8 it is the exact value the other stores return.
    base = dtype.base.name if isinstance(dtype, Array) else dtype.name
    column = alias + quote_ident(name)
    if base == "Float32":
        return f"{column}::float8[]" if isinstance(dtype, Array) else f"{column}::float8"
    return column


def _pg_type(dtype: FeatureType) -> str:
    if isinstance(dtype, Struct):
        return "JSONB"
    return _PG_TYPES[dtype.base.name] + "[]" if isinstance(dtype, Array) else _PG_TYPES[dtype.name]


def _read_decoder(dtype: FeatureType) -> Any:
    """JSONB comes back parsed; a struct's timestamp/bytes fields still need their Python types."""
    return struct_fields_decoder(dtype) if isinstance(dtype, Struct) else None


def read_columns(view: FeatureView, features: Sequence[str], alias: str = "") -> tuple[list[str], Any]:
    """The select list `_event_ts, <features>` of a read (columns of table `alias`, e.g. "t."), and
    how one selected row (those columns, in that order) becomes its ReadRow."""
    dtypes = {f.name: f.dtype for f in view.features}
    vectors = {f.name: f for f in view.features if stored_as_vector(f)}
    cols = [f"{alias}_event_ts", *(read_column(vectors[f], alias) if f in vectors else _select(f, dtypes[f], alias)
                                   for f in features)]
    decoders = [_read_decoder(dtypes[f]) for f in features]
    if not any(decoders):
        return cols, tuple

    def decode(row: Sequence[Any]) -> tuple[Any, ...]:
        return (row[0], *[v if d is None or v is None else d(v) for v, d in zip(row[1:], decoders, strict=True)])

    return cols, decode


class PostgresOnlineStore(OnlineStore):
    Config = PostgresOnlineConfig
    # Reads on its own threads (_bounded); pgvector's HNSW index; aggregation tiles.
    capabilities = Capabilities(reads_on_own_thread=True, approximate_vector_index=True, tiles=True)

    def __init__(self, config: PostgresOnlineConfig, repo_config: Any) -> None:
        super().__init__(config, repo_config)
        self._pool: Any = None
        self._readers: ThreadPoolExecutor | None = None
        self.schema = quote_ident(config.db_schema)

    def _bounded(self, fn: Any, *args: Any) -> Any:
        """`_run(fn, *args)` within the connect and read timeouts. psycopg has no client-side read
        timeout (statement_timeout needs a server that answers), so a frozen server would hold the
        caller forever: the call runs on a reader thread, and the caller stops waiting at the bound
        (the thread finishes, or fails, when the server wakes up or the connection drops). A caller
        that bounds its own wait (the feature server's store threads) is not given a second hop."""
        if caller_bounds_waits():
            return self._run(fn, *args)
        if self._readers is None:
            self._readers = ThreadPoolExecutor(max(self.config.max_conn, 1), thread_name_prefix="repast-pg-read")
        future = self._readers.submit(self._run, fn, *args)
        bound = self.config.connect_timeout_seconds + self.config.read_timeout_seconds
        try:
            return future.result(timeout=bound)
        except FutureTimeout:
            raise StoreUnavailable(f"PostgreSQL online store did not answer within {bound:g} s "
                                   "(online_store.connect_timeout_seconds + read_timeout_seconds)") from None

    def _table(self, project: str, view: str) -> str:
        return f"{self.schema}.{quote_ident(_table_name(project, view))}"

    def _connection(self) -> Any:
        """A pooled connection (context manager); failures to connect raise StoreUnavailable."""
        if self._pool is None:
            require_module("psycopg", "postgres")
            require_module("psycopg_pool", "postgres")
            from psycopg_pool import ConnectionPool

            read_ms = int(self.config.read_timeout_seconds * 1000)

            ef_search = int(self.config.vector_ef_search)

            def configure(conn: Any) -> None:
                conn.execute("SET TIME ZONE 'UTC'")
                conn.execute(f"SET statement_timeout = {read_ms}")
                # A placeholder until pgvector is loaded in this session (harmless without it).
                conn.execute(f"SET hnsw.ef_search = {ef_search}")

            # Autocommit: a read is one round trip (no BEGIN before it, no COMMIT when the pool takes
            # the connection back); writes and applies open their transactions explicitly.
            self._pool = ConnectionPool(
                self.config.conninfo(), min_size=self.config.min_conn,
                max_size=max(self.config.max_conn, self.config.min_conn), open=True, configure=configure,
                timeout=self.config.connect_timeout_seconds, name="repast-online",
                kwargs={"connect_timeout": max(2, round(self.config.connect_timeout_seconds)), "autocommit": True})
        return self._pool.connection()

    def _run(self, fn: Any, *args: Any) -> Any:
        import psycopg
        from psycopg_pool import PoolTimeout

        for attempt in (1, 2):
            try:
                with self._connection() as conn:
                    return fn(conn, *args)
            except psycopg.errors.QueryCanceled:
                raise StoreUnavailable("PostgreSQL online store did not answer within "
                                       f"online_store.read_timeout_seconds ({self.config.read_timeout_seconds} s)"
                                       ) from None
            except (psycopg.OperationalError, PoolTimeout) as e:
                # One immediate retry when a pooled connection died (a restarted server); the pool
                # drops the broken connection, so the retry gets a fresh one or a PoolTimeout.
                if attempt == 2 or isinstance(e, PoolTimeout):
                    raise StoreUnavailable("PostgreSQL online store cannot be reached: "
                                           f"{' '.join(str(e).split())}") from None
        raise AssertionError("unreachable")

    def update(self, project: str, views_to_keep: list[FeatureView], views_to_delete: list[FeatureView]) -> None:
        self._run(self._update, project, views_to_keep, views_to_delete)

    def _update(self, conn: Any, project: str, keep: list[FeatureView], delete: list[FeatureView]) -> None:
        meta = f"{self.schema}.repast_online_views"
        with conn.transaction():
            conn.execute("SET LOCAL statement_timeout = 0")  # DDL waits for readers' locks
            # Serializes concurrent applies on this schema: both would otherwise race on DDL.
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (self.config.db_schema,))
            conn.execute(f"CREATE SCHEMA IF NOT EXISTS {self.schema}")
            conn.execute(f"CREATE TABLE IF NOT EXISTS {meta} (project TEXT, view TEXT, signature TEXT, "
                         "PRIMARY KEY (project, view))")
            conn.execute(f"CREATE TABLE IF NOT EXISTS {self._offsets} (project TEXT, view TEXT, topic TEXT, "
                         "partition INTEGER, next_offset BIGINT, PRIMARY KEY (project, view, topic, partition))")
            stored = dict(conn.execute(f"SELECT view, signature FROM {meta} WHERE project = %s",
                                       (project,)).fetchall())
            for view in keep:
                signature = view_signature(view)
                layout, storage = parse_storage_record(stored.get(view.name))
                if layout == signature and storage is not None:
                    continue
                if layout == signature:  # made before storage ids: adopt it as it is
                    conn.execute(f"UPDATE {meta} SET signature = %s WHERE project = %s AND view = %s",
                                 (new_storage_record(signature), project, view.name))
                    continue
                # Layout changed (or new): rebuild; values come back with the next materialization.
                features = "".join(f", {quote_ident(f.name)} {_pg_type(f.dtype)}" for f in view.features)
                conn.execute(f"DROP TABLE IF EXISTS {self._table(project, view.name)}")
                conn.execute(f"DELETE FROM {self._offsets} WHERE project = %s AND view = %s", (project, view.name))
                conn.execute(f"CREATE TABLE {self._table(project, view.name)} (_entity_key TEXT PRIMARY KEY, "
                             f"_event_ts BIGINT NOT NULL, _created_ts BIGINT{features})")
                conn.execute(f"INSERT INTO {meta} VALUES (%s, %s, %s) ON CONFLICT (project, view) "
                             "DO UPDATE SET signature = excluded.signature",
                             (project, view.name, new_storage_record(signature)))
            for view in keep:  # vector settings are not part of the signature: checked every apply
                ensure_vector_storage(conn, self.config.db_schema, _table_name(project, view.name), view,
                                      self.config.hnsw())
                if (tiles := tile_layout(view)) is not None:
                    postgres_tiles.ensure(conn, self.config.db_schema, _table_name(project, view.name), tiles)
            for view in delete:
                postgres_tiles.drop(conn, self.config.db_schema, _table_name(project, view.name))
                conn.execute(f"DROP TABLE IF EXISTS {self._table(project, view.name)}")
                conn.execute(f"DELETE FROM {meta} WHERE project = %s AND view = %s", (project, view.name))
                conn.execute(f"DELETE FROM {self._offsets} WHERE project = %s AND view = %s", (project, view.name))

    def storage_id(self, project: str, view: FeatureView) -> str | None:
        return self._run(self._storage_id, project, view)  # type: ignore[no-any-return]

    def _storage_id(self, conn: Any, project: str, view: FeatureView) -> str | None:
        import psycopg

        try:
            row = conn.execute(f"SELECT signature FROM {self.schema}.repast_online_views "
                               "WHERE project = %s AND view = %s", (project, view.name)).fetchone()
        except psycopg.errors.UndefinedTable:
            return None
        layout, storage = parse_storage_record(row[0] if row else None)
        return storage if layout == view_signature(view) else None

    def teardown(self, project: str, views: list[FeatureView]) -> None:
        self.update(project, [], views)

    @property
    def _offsets(self) -> str:
        return f"{self.schema}.repast_stream_offsets"  # StreamOffsetStore: set in the rows' transaction

    def write_batch(self, project: str, view: FeatureView, batch: pa.RecordBatch | pa.Table) -> int:
        return self.write_batch_at_offsets(project, view, batch, None)

    def write_batch_at_offsets(self, project: str, view: FeatureView, batch: pa.RecordBatch | pa.Table | None,
                               offsets: StreamOffsets | None) -> int:
        """write_batch; with `offsets` (StreamOffsetStore), set them in the same transaction."""
        if batch is None:
            assert offsets is not None
            self._run(self._write_offsets, project, view, offsets)
            return 0
        rows = write_rows(view, batch)
        if len(rows) == 0 and offsets is None:
            return 0
        import psycopg

        try:
            self._run(self._write, project, view, rows, offsets)
        except psycopg.DataError as e:
            raise _nul_error(e, view, rows.keys.to_pylist(), "written") from None
        except psycopg.errors.UndefinedTable:
            # Storage was never created here (e.g. applied with another online store): create it.
            self.update(project, [view], [])
            self._run(self._write, project, view, rows, offsets)
        return len(rows)

    def stream_offsets(self, project: str, view_name: str) -> dict[tuple[str, int], int]:
        import psycopg

        def read(conn: Any) -> list[tuple[str, int, int]]:
            try:
                return conn.execute(f"SELECT topic, partition, next_offset FROM {self._offsets} "  # type: ignore[no-any-return]
                                    "WHERE project = %s AND view = %s", (project, view_name)).fetchall()
            except psycopg.errors.UndefinedTable:
                return []
        return {(topic, int(p)): int(o) for topic, p, o in self._run(read)}

    def _write(self, conn: Any, project: str, view: FeatureView, rows: WriteRows,
               offsets: StreamOffsets | None = None) -> None:
        table = self._table(project, view.name)
        cols = ["_entity_key", "_event_ts", "_created_ts", *(quote_ident(f) for f in view.feature_names())]
        collist = ", ".join(cols)
        updates = ", ".join(f"{c} = excluded.{c}" for c in cols[1:])
        with conn.transaction():
            conn.execute("SET LOCAL statement_timeout = 0")  # a large batch may take longer than a read
            # A vector field's HNSW index is built after the first write, not kept up row by row
            # (bulk building is many times faster); readers are not blocked while it builds.
            unbuilt = unbuilt_vector_indexes(conn, self.config.db_schema, _table_name(project, view.name), view,
                                             self.config.hnsw())
            staged = ", ".join(["_entity_key", "_event_ts", "_created_ts", *(stage_column(f) for f in view.features)])
            conn.execute(f"CREATE TEMP TABLE _repast_stage ON COMMIT DROP AS SELECT {staged} FROM {table} "
                         "WITH NO DATA")
            _copy_rows(conn, f"COPY _repast_stage ({collist}) FROM STDIN", view, rows)
            # ON CONFLICT may touch a row only once per statement: with duplicate keys in the batch,
            # keep per key the latest, and on a full tie the later row (ctid).
            unique = pc.count_distinct(rows.keys).as_py() == len(rows)
            distinct = "" if unique else "DISTINCT ON (_entity_key) "
            order = "" if unique else \
                " ORDER BY _entity_key, _event_ts DESC, _created_ts DESC NULLS LAST, ctid DESC"
            conn.execute(
                f"INSERT INTO {table} AS t ({collist}) SELECT {distinct}{collist} FROM _repast_stage{order} "
                f"ON CONFLICT (_entity_key) DO UPDATE SET {updates} "
                f"WHERE (excluded._event_ts, coalesce(excluded._created_ts, {_MIN_TS})) >= "
                f"(t._event_ts, coalesce(t._created_ts, {_MIN_TS}))")
            build_vector_indexes(conn, self.config.db_schema, _table_name(project, view.name), unbuilt,
                                     self.config.hnsw())
            if offsets:
                self._write_offsets(conn, project, view, offsets)

    def _write_offsets(self, conn: Any, project: str, view: FeatureView, offsets: StreamOffsets) -> None:
        with conn.transaction():  # nested in the rows' transaction: a savepoint of it
            conn.cursor().executemany(
                f"INSERT INTO {self._offsets} VALUES (%s, %s, %s, %s, %s) ON CONFLICT (project, view, topic, "
                "partition) DO UPDATE SET next_offset = excluded.next_offset",
                [(project, view.name, t, p, o) for (t, p), o in offsets.items()])

    @staticmethod
    def read_columns(view: FeatureView, features: Sequence[str], alias: str = "") -> tuple[list[str], Any]:
        """`read_columns` of this module (for the vector search, which reads as `read` does)."""
        return read_columns(view, features, alias)

    def read(self, project: str, view: FeatureView, keys: Sequence[str], features: Sequence[str]) -> list[ReadRow]:
        import psycopg

        cols, decode = read_columns(view, features)
        table = self._table(project, view.name)
        sql = f"SELECT _entity_key, {', '.join(cols)} FROM {table} WHERE _entity_key = ANY(%s)"
        try:
            found = {r[0]: r[1:] for r in self._bounded(lambda conn: conn.execute(sql, (list(keys),)).fetchall())}
        except psycopg.errors.UndefinedTable:
            return [None] * len(keys)  # nothing was ever stored for this view
        except psycopg.DataError as e:
            raise _nul_error(e, view, keys, "read") from None
        return [None if (r := found.get(k)) is None else decode(r) for k in keys]

    def write_tiles(self, project: str, view: FeatureView, layout: TileLayout, tiles: pa.Table, *, add: bool,
                    batch_id: str | None = None, marks: Mapping[str, str] | None = None,
                    expire_through_us: int | None = None) -> int:
        """TileStorage: see repast.online.postgres_tiles."""
        return self._run(postgres_tiles.write, self.config.db_schema, project, view.name,  # type: ignore[no-any-return]
                         _table_name(project, view.name), layout, tiles, add, batch_id, marks, expire_through_us)

    def read_tiles(self, project: str, view: FeatureView, layout: TileLayout, keys: Sequence[str],
                   after_us: int, through_us: int) -> list[list[TileRow]]:
        return self._bounded(postgres_tiles.read, self.config.db_schema,  # type: ignore[no-any-return]
                             _table_name(project, view.name), layout, keys, after_us, through_us)

    def read_tile_ranges(self, project: str, view: FeatureView, keys: Sequence[str],
                         ranges: Sequence[tuple[TileLayout, int, int]]) -> list[list[list[TileRow]]]:
        """TileStorage: one query per range."""
        return [self.read_tiles(project, view, layout, keys, after, through) for layout, after, through in ranges]

    def read_marks(self, project: str, view: FeatureView, names: Sequence[str]) -> dict[str, str]:
        return self._run(postgres_tiles.read_marks, self.config.db_schema, project,  # type: ignore[no-any-return]
                         view.name, names)

    def ping(self) -> None:
        self._bounded(lambda conn: conn.execute("SELECT 1").fetchone())

    def close(self) -> None:
        if self._readers is not None:
            self._readers.shutdown(wait=False, cancel_futures=True)
            self._readers = None
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def newest_event_time(self, project: str, view_name: str) -> datetime | None:
        """NewestValueReader: the latest stored event time of the view (None when empty)."""
        import psycopg

        sql = f"SELECT MAX(_event_ts) FROM {self._table(project, view_name)}"
        try:
            value = self._run(lambda conn: conn.execute(sql).fetchone()[0])
        except psycopg.errors.UndefinedTable:
            return None
        return None if value is None else datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=int(value))


def _nul_error(e: Exception, view: FeatureView, keys: Sequence[str], action: str) -> Exception:
    """PostgreSQL text cannot hold NUL: name the key (or say it is a feature value) instead of a 500."""
    from repast.online.keys import SEPARATOR

    bad = next((k for k in keys if k is not None and "\x00" in k), None)
    if bad is not None:
        shown = bad.replace(SEPARATOR, ", ")
        return EntityKeyError(f"feature view '{view.name}': entity key {shown!r} contains a NUL character, which "
                              f"the PostgreSQL online store cannot store; it cannot be {action}")
    return InputError(f"feature view '{view.name}': rows cannot be {action} by the PostgreSQL online store: "
                      f"{' '.join(str(e).split())}")


def _copy_rows(conn: Any, copy_sql: str, view: FeatureView, rows: WriteRows) -> None:
    columns = [rows.keys, rows.event_us, rows.created_us]
    if any(isinstance(f.dtype, Array) for f in view.features):
        binary = _binary_copy(view, rows)
        if binary is not None:  # numeric lists (embeddings): no text for millions of floats
            with conn.cursor().copy(copy_sql.replace("FROM STDIN", "FROM STDIN (FORMAT binary)")) as copy:
                for chunk in binary:
                    copy.write(chunk)
            return
        # Arrow cannot render arrays as CSV: let psycopg adapt Python values, row by row.
        values = [c.to_pylist() for c in columns] + [
            nested_json(rows.features[f.name], f.dtype) if is_nested(f.dtype) else rows.features[f.name].to_pylist()
            for f in view.features]
        with conn.cursor().copy(copy_sql) as copy:
            for row in zip(*values, strict=True):
                copy.write_row(row)
        return
    for f in view.features:
        arr = rows.features[f.name]
        if f.dtype.name in BYTES_TYPES:  # bytea's text form: \x and hex digits
            arr = pa.array([None if v is None else "\\x" + v.hex() for v in arr.to_pylist()], pa.string())
        elif is_nested(f.dtype):
            arr = pa.array(nested_json(arr, f.dtype), pa.string())
        columns.append(arr)
    import pyarrow.csv as pacsv

    buf = io.BytesIO()
    names = [str(i) for i in range(len(columns))]
    pacsv.write_csv(pa.table(columns, names=names), buf, pacsv.WriteOptions(include_header=False))
    with conn.cursor().copy(copy_sql.replace("FROM STDIN", "FROM STDIN (FORMAT csv)")) as copy:
        copy.write(buf.getbuffer())


# ---- binary COPY (views whose features are text, numbers, booleans and lists of numbers) ----------

_SCALAR_BINARY = {"Int32": ">i4", "Int64": ">i8", "Float32": ">f4", "Float64": ">f8"}
_ARRAY_OIDS = {"Int32": 23, "Int64": 20, "Float32": 700, "Float64": 701}  # element type oids
_COPY_ROWS = 2_000  # rows per chunk handed to COPY


def _binary_copy(view: FeatureView, rows: WriteRows) -> Iterator[bytes] | None:
    """The rows in COPY's binary format, a chunk at a time; None when a feature's type (or a null
    inside a list) has no binary form here: the caller then uses the general row-by-row path."""
    fields: list[list[bytes | None]] = [_text_binary(rows.keys), _scalar_binary(rows.event_us, ">i8"),
                                        _scalar_binary(rows.created_us, ">i8")]
    for f in view.features:
        arr = rows.features[f.name]
        arr = arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
        if isinstance(f.dtype, Array) and f.dtype.base.name in _ARRAY_OIDS:
            encoded = _array_binary(arr, f.dtype.base.name)
        elif isinstance(f.dtype, Array | Struct):
            encoded = None
        elif f.dtype.name in _SCALAR_BINARY:
            encoded = _scalar_binary(arr, _SCALAR_BINARY[f.dtype.name])
        elif f.dtype.name == "String":
            encoded = _text_binary(arr)
        elif f.dtype.name == "Bool":
            encoded = [None if v is None else (b"\x01" if v else b"\x00") for v in arr.to_pylist()]
        else:
            encoded = None
        if encoded is None:
            return None
        fields.append(encoded)
    return _binary_chunks(fields, len(rows))


def _binary_chunks(fields: list[list[bytes | None]], n: int) -> Iterator[bytes]:
    count = struct.pack(">h", len(fields))
    null = struct.pack(">i", -1)
    out = [b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)]
    for i in range(n):
        out.append(count)
        for column in fields:
            value = column[i]
            if value is None:
                out.append(null)
            else:
                out.append(struct.pack(">i", len(value)))
                out.append(value)
        if i % _COPY_ROWS == _COPY_ROWS - 1:
            yield b"".join(out)
            out = []
    out.append(struct.pack(">h", -1))
    yield b"".join(out)


def _text_binary(arr: pa.Array) -> list[bytes | None]:
    return [None if v is None else v.encode() for v in arr.to_pylist()]


def _scalar_binary(arr: pa.Array, code: str) -> list[bytes | None]:
    import numpy as np

    item = np.dtype(code)
    data = np.asarray(arr.fill_null(0).to_numpy(zero_copy_only=False), dtype=item).tobytes()
    valid = pc.is_valid(arr).to_numpy(zero_copy_only=False).tolist()
    size = item.itemsize
    return [data[i * size:(i + 1) * size] if ok else None for i, ok in enumerate(valid)]


def _array_binary(arr: pa.Array, base: str) -> list[bytes | None] | None:
    """One-dimensional arrays in PostgreSQL's binary array format (None: a list holds a null)."""
    import numpy as np

    values = pc.list_flatten(arr)
    if values.null_count:
        return None
    code = _SCALAR_BINARY[base]
    size = np.dtype(code).itemsize
    # Each element is its length, then its value: one interleaved buffer for the whole column.
    elements = np.empty(len(values), dtype=[("length", ">i4"), ("value", code)])
    elements["length"] = size
    elements["value"] = values.to_numpy(zero_copy_only=False)
    data = elements.tobytes()
    lengths = pc.list_value_length(arr).fill_null(0).to_numpy(zero_copy_only=False).tolist()
    valid = pc.is_valid(arr).to_numpy(zero_copy_only=False).tolist()
    oid = _ARRAY_OIDS[base]
    empty = struct.pack(">iii", 0, 0, oid)
    out: list[bytes | None] = []
    start = 0
    step = 4 + size
    for length, ok in zip(lengths, valid, strict=True):
        if not ok:
            out.append(None)
        elif length == 0:
            out.append(empty)
        else:
            out.append(struct.pack(">iiiii", 1, 0, oid, length, 1) + data[start * step:(start + length) * step])
        start += length
    return out
