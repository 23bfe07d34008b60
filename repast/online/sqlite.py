"""SqliteOnlineStore: the embedded default online store, one SQLite file.

Per view one table `<project>_<view>` (Feast's name for it: tutorials query the file directly) keyed by
the serialized entity key, with one typed column per feature. Files written before used
`<project>__<view>`; their tables are renamed when the store first opens the file (the rows and the
storage record stay, so watermarks stay valid: the layout is the same, only the name changed).
Two views whose names collide under Feast's naming (project `a_b` view `c`, project `a` view `b_c`)
cannot share one file: the second is refused at apply.
A view with one join key declared Int32/Int64 is keyed by the integer itself, as the table's
INTEGER PRIMARY KEY (the rowid: no separate key index to update, so a materialization,
whose rows come in key order, writes about 30% faster).
Pragmas: WAL journal (readers never wait for a materialization, and a killed writer
leaves the file consistent: its transaction is rolled back), synchronous=NORMAL (in WAL mode a
power loss can lose the last commits but never corrupts; lost writes are re-done by re-running
the materialization, which is idempotent). Every write batch is one transaction with executemany.
Each thread uses its own connection, so the HTTP server's worker threads read in parallel.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Hashable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pyarrow as pa
import pyarrow.compute as pc

from repast.aggregations.layout import tile_layout
from repast.definitions import FeatureView
from repast.errors import DefinitionError, RepastError, StoreUnavailable
from repast.online import sqlite_tiles
from repast.online.base import (
    OnlineStore,
    ReadRow,
    StreamOffsets,
    new_storage_record,
    parse_storage_record,
    view_signature,
)
from repast.online.codec import Decoder, sql_decoder, sql_values
from repast.online.keys import integer_key, write_rows
from repast.plugins.base_config import BackendConfig
from repast.plugins.capabilities import Capabilities
from repast.sql_quoting import quote_ident
from repast.types import Array, FeatureType, Struct
from repast.vector.sqlite_columns import vector_decoders, vector_encoder, vector_layout

if TYPE_CHECKING:
    from repast.aggregations.layout import TileLayout
    from repast.aggregations.merge import TileRow

_META = "repast_online_views"
_OFFSETS = "repast_stream_offsets"  # StreamOffsetStore: written in the rows' own transaction
_MIN_TS = -(2**63)
_MAX_INT = 2**63 - 1
_MAX_PARAMS = 30_000  # below SQLite's limit of host parameters per statement
_CHUNK = 10_000  # rows converted to Python at a time while the previous chunk is inserted
_CONVERTER: ThreadPoolExecutor | None = None


def _converter() -> ThreadPoolExecutor:
    global _CONVERTER
    if _CONVERTER is None:
        _CONVERTER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="repast-sqlite-rows")
    return _CONVERTER
_SQL_TYPES = {"Int32": "INTEGER", "Int64": "INTEGER", "Bool": "INTEGER", "UnixTimestamp": "INTEGER",
              "Float32": "REAL", "Float64": "REAL", "String": "TEXT", "Bytes": "BLOB",
              # Feast's newer types: text (a UUID, a decimal, JSON) or bytes.
              "Uuid": "TEXT", "TimeUuid": "TEXT", "Decimal": "TEXT", "Json": "TEXT", "Map": "TEXT",
              "PdfBytes": "BLOB", "ImageBytes": "BLOB"}


class SqliteOnlineConfig(BackendConfig):
    type: Literal["sqlite"] = "sqlite"
    path: str = "data/online.db"  # relative to the feature repo
    vector_enabled: bool = False  # Feast's vector keys: accepted here, used by vector retrieval
    vector_len: int | None = None
    # The approximate (HNSW) index of vector fields, with the `vector` extra (usearch) installed:
    # built once a field has vector_index_min_documents documents; below that, or without usearch,
    # or with vector_index: false, search scans exactly (docs/vector.md, "Approximate index").
    vector_index: bool = True
    vector_index_min_documents: int = 10_000
    vector_index_m: int = 16  # graph connectivity (HNSW M)
    vector_index_ef_construction: int = 64  # pgvector's default (and the PostgreSQL store's)
    vector_index_ef_search: int = 64
    # A COSINE field's graph keeps each vector in 8 bits ("i8") or 32 ("f32"); answers are re-ranked
    # from the stored vectors either way (docs/vector.md, "Approximate index").
    vector_index_cosine_dtype: Literal["i8", "f32"] = "i8"


def raw_table_name(project: str, view: str) -> str:
    """The view's table, named as Feast names it: `<project>_<view>`."""
    return f"{project}_{view}"


def table_name(project: str, view: str) -> str:
    return quote_ident(raw_table_name(project, view))


def _migrate_table_names(conn: sqlite3.Connection) -> None:
    """Rename the tables of views recorded in the file from the earlier `<project>__<view>`."""
    existing = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    legacy = [(p, v) for p, v in conn.execute(f"SELECT project, view FROM {_META}")
              if f"{p}__{v}" in existing and f"{p}_{v}" not in existing]
    if not legacy:
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        for project, view in legacy:
            old = f"{project}__{view}"
            # Vector search's change-logging triggers are named after the table: dropped with the old
            # name (they log under it), made again under the new one by the next search.
            for suffix in ("ins", "upd"):
                conn.execute(f"DROP TRIGGER IF EXISTS {quote_ident(f'{old}__vec_{suffix}')}")
            conn.execute(f"ALTER TABLE {quote_ident(old)} RENAME TO {table_name(project, view)}")
        conn.execute("COMMIT")
    except sqlite3.Error:
        conn.execute("ROLLBACK")
        raise


def _sql_type(dtype: FeatureType) -> str:
    if isinstance(dtype, Struct):
        return "TEXT"
    return "BLOB" if isinstance(dtype, Array) else _SQL_TYPES[dtype.name]


def _signature(view: FeatureView, integer: bool) -> str:
    # The key column's kind is part of this store's layout; a text key adds nothing, so tables made
    # before integer keys existed keep their signature and are not rebuilt.
    return view_signature(view) + (";key=integer" if integer else "") + vector_layout(view)


def _rowids(keys: Sequence[str]) -> list[int | None]:
    """Serialized integer keys as rowids; a key that is not a 64-bit integer can never be stored: None."""
    try:
        ints = [int(k) for k in keys]
        if _MIN_TS <= min(ints) and max(ints) <= _MAX_INT:
            return ints  # type: ignore[return-value]
    except ValueError:
        pass
    return [_rowid(k) for k in keys]


def _rowid(key: str) -> int | None:
    try:
        i = int(key)
    except ValueError:
        return None
    return i if _MIN_TS <= i <= _MAX_INT else None


def _upsert_sql(project: str, view: FeatureView) -> str:
    cols = ["_entity_key", "_event_ts", "_created_ts", *(quote_ident(f) for f in view.feature_names())]
    updates = ", ".join(f"{c} = excluded.{c}" for c in cols[1:])
    t = table_name(project, view.name)
    # The WHERE makes the store itself keep the latest row: an older write is a no-op.
    return (f"INSERT INTO {t} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))}) "
            f"ON CONFLICT(_entity_key) DO UPDATE SET {updates} "
            f"WHERE excluded._event_ts > {t}._event_ts OR (excluded._event_ts = {t}._event_ts AND "
            f"coalesce(excluded._created_ts, {_MIN_TS}) >= coalesce({t}._created_ts, {_MIN_TS}))")


class _ReadSpec:
    """Per (view, features): the SELECT prefix and the value decoders, built once."""

    __slots__ = ("view", "integer", "select", "one", "decoders")

    def __init__(self, project: str, view: FeatureView, features: Sequence[str], arrays: bool = False) -> None:
        dtypes = {f.name: f.dtype for f in view.features}
        cols = ", ".join(["_entity_key", "_event_ts", *(quote_ident(f) for f in features)])
        self.view = view
        self.integer = integer_key(view)
        self.select = f"SELECT {cols} FROM {table_name(project, view.name)} WHERE _entity_key IN "
        self.one = f"SELECT {cols} FROM {table_name(project, view.name)} WHERE _entity_key = ?"
        vectors = vector_decoders(view, arrays)
        decoders = [vectors.get(f) or sql_decoder(dtypes[f]) for f in features]
        self.decoders: list[Decoder | None] | None = decoders if any(decoders) else None


def _decode(row: tuple[Any, ...], decoders: list[Decoder | None]) -> tuple[Any, ...]:
    out = [row[0]]
    for v, d in zip(row[1:], decoders, strict=True):
        out.append(v if d is None or v is None else d(v))
    return tuple(out)


_KEPT_TOKENS = 65_536  # tile version tokens a connection keeps between commits


class SqliteOnlineStore(OnlineStore):
    Config = SqliteOnlineConfig
    # An HNSW graph per vector field with the `vector` extra (usearch); the exact scan without it.
    capabilities = Capabilities(approximate_vector_index=True, tiles=True, tile_versions=True)

    def __init__(self, config: SqliteOnlineConfig, repo_config: Any) -> None:
        super().__init__(config, repo_config)
        self.path = repo_config.resolve_path(config.path) if repo_config is not None else config.path
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._specs: dict[tuple[str, str, tuple[str, ...], bool], _ReadSpec] = {}
        # Tile writes through this object: with a connection's `PRAGMA data_version` (commits by
        # every OTHER connection), whether anything was committed since tile tokens were read.
        self._tile_writes = 0
        # Called with (project, view name) after each committed write of rows (the vector index
        # catches up with them off the query path: repast.vector.sqlite).
        self.after_write: list[Callable[[str, str], None]] = []

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        try:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False,
                                   cached_statements=512)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            # 64 MB page cache (the default is 2 MB): a large materialization rewrites the key
            # index across the whole key space in every batch.
            conn.execute("PRAGMA cache_size=-65536")
            conn.execute(f"CREATE TABLE IF NOT EXISTS {_META} (project TEXT, view TEXT, signature TEXT, "
                         "PRIMARY KEY (project, view))")
            conn.execute(f"CREATE TABLE IF NOT EXISTS {_OFFSETS} (project TEXT, view TEXT, topic TEXT, "
                         "partition INTEGER, next_offset INTEGER, PRIMARY KEY (project, view, topic, partition))")
            _migrate_table_names(conn)
        except (sqlite3.Error, OSError) as e:
            raise StoreUnavailable(f"SQLite online store '{self.path}' cannot be opened: {e}") from None
        self._local.conn = conn
        with self._lock:
            self._all.append(conn)
        return conn

    def update(self, project: str, views_to_keep: list[FeatureView], views_to_delete: list[FeatureView]) -> None:
        conn = self._conn()
        try:
            conn.execute("BEGIN IMMEDIATE")
            for view in views_to_keep:
                self._ensure_table(conn, project, view)
                layout = tile_layout(view)
                if layout is not None:
                    sqlite_tiles.ensure(conn, raw_table_name(project, view.name), layout)
            for view in views_to_delete:
                self._drop_table(conn, project, view.name)
                sqlite_tiles.drop(conn, raw_table_name(project, view.name))
            conn.execute("COMMIT")
        except (sqlite3.Error, RepastError) as e:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if isinstance(e, RepastError):
                raise
            raise StoreUnavailable(f"SQLite online store '{self.path}': {e}") from None
        finally:
            self._tile_writes += 1
        self._specs.clear()

    def _ensure_table(self, conn: sqlite3.Connection, project: str, view: FeatureView) -> None:
        integer = integer_key(view)
        signature = _signature(view, integer)
        row = conn.execute(f"SELECT signature FROM {_META} WHERE project = ? AND view = ?",
                           (project, view.name)).fetchone()
        layout, storage = parse_storage_record(row[0] if row else None)
        if layout == signature:
            if storage is None:  # made before storage ids: adopt it as it is
                conn.execute(f"UPDATE {_META} SET signature = ? WHERE project = ? AND view = ?",
                             (new_storage_record(signature), project, view.name))
            return
        # Layout changed (or new): rebuild; the values come back with the next materialization.
        self._check_name_is_free(conn, project, view.name)
        self._drop_table(conn, project, view.name)
        features = ", ".join(f"{quote_ident(f.name)} {_sql_type(f.dtype)}" for f in view.features)
        # A rowid table plus a unique key index, rather than WITHOUT ROWID: rows are appended and
        # only the small index takes random inserts, which materializes a large view much faster.
        # An integer key is the rowid itself, so there is no index at all.
        key = "INTEGER PRIMARY KEY" if integer else "TEXT NOT NULL UNIQUE"
        conn.execute(f"CREATE TABLE {table_name(project, view.name)} (_entity_key {key}, "
                     f"_event_ts INTEGER NOT NULL, _created_ts INTEGER, {features})")
        conn.execute(f"INSERT INTO {_META} VALUES (?, ?, ?)", (project, view.name, new_storage_record(signature)))

    def _check_name_is_free(self, conn: sqlite3.Connection, project: str, view: str) -> None:
        name = f"{project}_{view}"
        for other_project, other_view in conn.execute(f"SELECT project, view FROM {_META}"):
            if f"{other_project}_{other_view}" == name and (other_project, other_view) != (project, view):
                raise DefinitionError(
                    f"feature view '{view}' of project '{project}' would be stored in table '{name}' of the SQLite "
                    f"online store '{self.path}', which holds view '{other_view}' of project '{other_project}'; "
                    "rename one of the views, or give the projects separate online_store paths")

    @staticmethod
    def _drop_table(conn: sqlite3.Connection, project: str, view: str) -> None:
        conn.execute(f"DROP TABLE IF EXISTS {table_name(project, view)}")
        conn.execute(f"DELETE FROM {_META} WHERE project = ? AND view = ?", (project, view))
        conn.execute(f"DELETE FROM {_OFFSETS} WHERE project = ? AND view = ?", (project, view))

    def storage_id(self, project: str, view: FeatureView) -> str | None:
        try:
            row = self._conn().execute(f"SELECT signature FROM {_META} WHERE project = ? AND view = ?",
                                       (project, view.name)).fetchone()
        except sqlite3.Error as e:
            raise StoreUnavailable(f"SQLite online store '{self.path}': {e}") from None
        layout, storage = parse_storage_record(row[0] if row else None)
        return storage if layout == _signature(view, integer_key(view)) else None

    def teardown(self, project: str, views: list[FeatureView]) -> None:
        self.update(project, [], views)

    def write_batch(self, project: str, view: FeatureView, batch: pa.RecordBatch | pa.Table) -> int:
        return self._write_batch(project, view, batch, None)

    def write_batch_at_offsets(self, project: str, view: FeatureView, batch: pa.RecordBatch | pa.Table | None,
                               offsets: StreamOffsets) -> int:
        """StreamOffsetStore: the rows and the offsets in one SQLite transaction."""
        rows = [(project, view.name, topic, partition, offset) for (topic, partition), offset in offsets.items()]
        return self._write_batch(project, view, batch,
                                 lambda conn: conn.executemany(f"INSERT OR REPLACE INTO {_OFFSETS} VALUES "
                                                               "(?, ?, ?, ?, ?)", rows))

    def stream_offsets(self, project: str, view_name: str) -> dict[tuple[str, int], int]:
        try:
            found = self._conn().execute(f"SELECT topic, partition, next_offset FROM {_OFFSETS} "
                                         "WHERE project = ? AND view = ?", (project, view_name)).fetchall()
        except sqlite3.Error as e:
            raise StoreUnavailable(f"SQLite online store '{self.path}': {e}") from None
        return {(topic, int(partition)): int(offset) for topic, partition, offset in found}

    def _write_batch(self, project: str, view: FeatureView, batch: pa.RecordBatch | pa.Table | None,
                     also: Callable[[sqlite3.Connection], Any] | None) -> int:
        if batch is None:
            assert also is not None
            conn = self._conn()
            conn.execute("BEGIN IMMEDIATE")
            try:
                also(conn)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            return 0
        rows = write_rows(view, batch, integer_keys=integer_key(view))
        n = len(rows)
        if n == 0 and also is None:
            return 0
        # Key order makes the inserts walk the key index (or the rowid B-tree) once instead of jumping
        # at random. The sort is stable, so among one key's duplicates the last row still wins.
        table = pa.table([rows.keys, rows.event_us, rows.created_us, *rows.features.values()],
                         names=["k", "e", "c", *rows.features]).take(pc.sort_indices(rows.keys))
        dtypes: list[FeatureType | None] = [None, None, None, *(f.dtype for f in view.features)]
        vectors = [None, None, None, *(vector_encoder(f) for f in view.features)]

        def python_rows(start: int) -> list[tuple[Any, ...]]:
            part = table.slice(start, _CHUNK)
            return list(zip(*[c.to_pylist() if d is None else v(c) if v is not None else sql_values(c, d)
                              for c, d, v in zip(part.columns, dtypes, vectors, strict=True)], strict=True))

        sql = _upsert_sql(project, view)
        conn = self._conn()
        try:
            self._write(conn, sql, python_rows, n, also)
        except sqlite3.OperationalError as e:
            if "no such table" not in str(e):
                raise StoreUnavailable(f"SQLite online store '{self.path}': {e}") from None
            # Storage was never created here (e.g. applied with another online store): create it.
            self.update(project, [view], [])
            self._write(conn, sql, python_rows, n, also)
        for listener in self.after_write:
            listener(project, view.name)
        return n

    @staticmethod
    def _write(conn: sqlite3.Connection, sql: str, python_rows: Callable[[int], list[tuple[Any, ...]]],
               n: int, also: Callable[[sqlite3.Connection], Any] | None = None) -> None:
        """One transaction; chunk i+1 is converted to Python rows in a helper thread while chunk i
        is inserted (sqlite3 releases the GIL while SQLite works, so the two overlap)."""
        conn.execute("BEGIN IMMEDIATE")
        try:
            pending = _converter().submit(python_rows, 0)
            for start in range(0, n, _CHUNK):
                chunk = pending.result()
                if start + _CHUNK < n:
                    pending = _converter().submit(python_rows, start + _CHUNK)
                conn.executemany(sql, chunk)
            if also is not None:
                also(conn)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def _spec(self, project: str, view: FeatureView, features: Sequence[str], arrays: bool = False) -> _ReadSpec:
        key = (project, view.name, features if type(features) is tuple else tuple(features), arrays)
        spec = self._specs.get(key)
        if spec is None or spec.view is not view:
            if len(self._specs) > 4096:
                self._specs.clear()
            spec = self._specs[key] = _ReadSpec(project, view, features, arrays)
        return spec

    def read(self, project: str, view: FeatureView, keys: Sequence[str], features: Sequence[str]) -> list[ReadRow]:
        return self._read(self._spec(project, view, features), keys)

    def read_documents(self, project: str, view: FeatureView, keys: Sequence[str],
                       features: Sequence[str]) -> list[ReadRow]:
        """`read`, with each vector field as a read-only NumPy array over its stored bytes instead
        of a list of floats (vector search reads the hits' vectors only to compute distances)."""
        return self._read(self._spec(project, view, features, arrays=True), keys)

    def _read(self, spec: _ReadSpec, keys: Sequence[str]) -> list[ReadRow]:
        conn = self._conn()
        try:
            if len(keys) == 1:  # the common case, kept short: one prepared statement, one row
                key: str | int | None = keys[0]
                if spec.integer:
                    key = _rowid(key)  # type: ignore[arg-type]
                row = conn.execute(spec.one, (key,)).fetchone()
                rows = [row[1:]] if row is not None else [None]
            else:
                rows = self._read_many(conn, spec, _rowids(keys) if spec.integer and keys else keys)
        except sqlite3.OperationalError as e:
            if "no such table" in str(e):
                return [None] * len(keys)  # nothing was ever stored for this view
            raise StoreUnavailable(f"SQLite online store '{self.path}': {e}") from None
        if spec.decoders is not None:
            rows = [None if r is None else _decode(r, spec.decoders) for r in rows]
        return rows

    @staticmethod
    def _read_many(conn: sqlite3.Connection, spec: _ReadSpec, params: Sequence[str | int | None]) -> list[ReadRow]:
        found = {}
        for i in range(0, len(params), _MAX_PARAMS):
            chunk = params[i:i + _MAX_PARAMS]
            sql = spec.select + "(" + ",".join("?" * len(chunk)) + ")"
            found.update({r[0]: r[1:] for r in conn.execute(sql, chunk).fetchall()})
        return [found.get(k) for k in params]

    def write_tiles(self, project: str, view: FeatureView, layout: TileLayout, tiles: pa.Table, *, add: bool,
                    batch_id: str | None = None, marks: Mapping[str, str] | None = None,
                    expire_through_us: int | None = None) -> int:
        """TileStorage: see repast.online.sqlite_tiles."""
        try:
            return sqlite_tiles.write(self._conn(), project, view.name, raw_table_name(project, view.name), layout,
                                      tiles, add, batch_id, marks, expire_through_us)
        except sqlite3.Error as e:
            raise StoreUnavailable(f"SQLite online store '{self.path}': {e}") from None
        finally:
            self._tile_writes += 1

    def tile_versions(self, project: str, view: FeatureView, layout: TileLayout,
                      keys: Sequence[str]) -> list[Hashable | None]:
        """TileVersionReader: the keys' tokens, written in the transactions of their tiles
        (repast.online.sqlite_tiles). Tokens read before are used again while nothing at all was
        committed since (`PRAGMA data_version` and this object's own writes), else read anew in
        one query."""
        table = raw_table_name(project, view.name)
        try:
            conn = self._conn()
            state = (conn.execute("PRAGMA data_version").fetchone()[0], self._tile_writes)
            local = self._local
            if state != getattr(local, "tile_state", None) or len(local.tile_tokens) > _KEPT_TOKENS:
                local.tile_state, local.tile_tokens = state, {}
            known: dict[tuple[str, str], Hashable | None] = local.tile_tokens
            missing = [k for k in keys if (table, k) not in known]
            if missing:
                known.update(((table, k), token) for k, token in
                             zip(missing, sqlite_tiles.versions(conn, table, missing), strict=True))
        except sqlite3.Error as e:
            raise StoreUnavailable(f"SQLite online store '{self.path}': {e}") from None
        return [known[(table, k)] for k in keys]

    def read_tiles(self, project: str, view: FeatureView, layout: TileLayout, keys: Sequence[str],
                   after_us: int, through_us: int) -> list[list[TileRow]]:
        try:
            return sqlite_tiles.read(self._conn(), raw_table_name(project, view.name), layout, keys, after_us,
                                     through_us)
        except sqlite3.Error as e:
            raise StoreUnavailable(f"SQLite online store '{self.path}': {e}") from None

    def read_tile_ranges(self, project: str, view: FeatureView, keys: Sequence[str],
                         ranges: Sequence[tuple[TileLayout, int, int]]) -> list[list[list[TileRow]]]:
        """TileStorage: one query per range (a query on a local file is no round trip)."""
        return [self.read_tiles(project, view, layout, keys, after, through) for layout, after, through in ranges]

    def read_marks(self, project: str, view: FeatureView, names: Sequence[str]) -> dict[str, str]:
        try:
            return sqlite_tiles.read_marks(self._conn(), project, view.name, names)
        except sqlite3.Error as e:
            raise StoreUnavailable(f"SQLite online store '{self.path}': {e}") from None

    def ping(self) -> None:
        try:
            self._conn().execute("SELECT 1").fetchone()
        except sqlite3.Error as e:
            raise StoreUnavailable(f"SQLite online store '{self.path}': {e}") from None

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
        self._local = threading.local()

    def newest_event_time(self, project: str, view_name: str) -> datetime | None:
        """NewestValueReader: the latest stored event time of the view (None when empty)."""
        try:
            row = self._conn().execute(f"SELECT MAX(_event_ts) FROM {table_name(project, view_name)}").fetchone()
        except sqlite3.OperationalError as e:
            if "no such table" in str(e):
                return None
            raise StoreUnavailable(f"SQLite online store '{self.path}': {e}") from None
        return None if row[0] is None else datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=int(row[0]))
