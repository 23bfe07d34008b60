"""Vector search in the SQLite online store: an exact NumPy scan kept in step with writes.

A vector field's values are stored as little-endian float32 (float64 for Array(Float64)) BLOBs,
not JSON like other arrays: a 100k x 384 index then loads in one buffer copy, not 38M parsed floats.

Python's bundled sqlite3 cannot load extensions, and an exact float32 scan of 100k x 384 answers
a top-10 query in a few milliseconds (benchmarks/vector.py), so there is no extension: the
documents of a view live in an in-process `VectorMatrix` (repast.vector.semantics), loaded once, then
updated incrementally (their keyword terms only from the first keyword search on). Two triggers
on the view's table log every inserted or updated entity key to `repast_vector_changes`, in the
writing transaction itself, whichever process writes; before each search the index applies the
entries logged since its last look (re-reading only those rows), so an update, or a document
whose vector is set to null (removed), is reflected at once. A write made through this process's
store is caught up with in a background thread right after it commits (`_written`), so the next
search usually finds nothing left to read; it still catches up itself first, so the write is
visible to it either way. The search is one float32
matrix-vector product over the contiguous matrix (BLAS, on every core), a partition for the top
k and an exact re-ranking near the cut; when nothing was committed since the last search, keeping
in step costs one statement.
A table that was dropped and rebuilt has lost its triggers: they are re-created with a reset
entry, and every index of that table reloads it whole.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from repast.errors import InputError, RepastError, StoreUnavailable
from repast.online.sqlite import raw_table_name
from repast.sql_quoting import quote_ident
from repast.vector.base import Filters, VectorSearch
from repast.vector.metric import Metric, parse_metric
from repast.vector.semantics import VectorMatrix, text_fields, vector_fields
from repast.vector.sqlite_columns import item_type
from repast.vector.sqlite_hnsw import Graph, GraphFiles, GraphSettings, approximate, available
from repast.vector.sqlite_keeper import FieldIndex, GraphPolicy, exiting, keep_graph, note_changed, start_background

if TYPE_CHECKING:
    from repast.definitions import FeatureView, Field
    from repast.online.base import ReadRow
    from repast.online.sqlite import SqliteOnlineStore

CHANGES = "repast_vector_changes"
_PRUNE_AT = 1_000_000  # change entries kept before the oldest half is deleted
_LOAD_CHUNK = 2_000  # rows parsed at a time when an index is loaded
_STATE = "SELECT * FROM pragma_schema_version(), pragma_data_version()"


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


class SqliteVectorSearch(VectorSearch):
    store: SqliteOnlineStore

    def __init__(self, store: Any) -> None:
        super().__init__(store)
        self._indexes: dict[tuple[str, str, str], FieldIndex] = {}
        self._lock = threading.Lock()
        self._seen = threading.local()  # per thread (= per connection): the state each index was fresh at
        self._fields: dict[tuple[str, str, str], tuple[FeatureView, Field]] = {}  # each loaded index's definitions
        self._due: set[tuple[str, str, str]] = set()  # indexes the background catch-up is to bring up to date
        self._catching_up = False
        store.after_write.append(self._written)

    # ---- VectorSearch ---------------------------------------------------------------------------
    def nearest(self, project: str, view: FeatureView, field: Field, query: np.ndarray, metric: Metric,
                top_k: int, filters: Filters, exact: bool) -> list[tuple[str, float]]:
        index = self._fresh(project, view, field)
        if index is None:
            return []
        with index.lock:
            mask = _both(self._filter_mask(project, view, index.matrix, filters), _fresh_rows(view, index.matrix))
            if index.graph is None:  # built once enough documents are in (or a reload dropped it)
                self._keep_graph(view, field, index)
            graph = index.graph
            if graph is not None and not exact and metric is graph.metric:
                hits = approximate(index.matrix, graph, query, top_k, mask, index.pending_rows())
                if hits is not None:
                    return hits
            return index.matrix.nearest(query, metric, top_k, mask)

    def nearest_rows(self, project: str, view: FeatureView, field: Field, query: np.ndarray, metric: Metric,
                     top_k: int, filters: Filters, exact: bool, features: Sequence[str]) -> list[tuple[str, ReadRow]]:
        """`nearest`, then the hits' rows with their vectors as NumPy arrays over the stored bytes
        (repast.vector.documents computes the reported distances from them; a list of floats per
        hit, converted back to an array, cost more than the graph search)."""
        keys = [k for k, _ in self.nearest(project, view, field, query, metric, top_k, filters, exact)]
        rows = self.store.read_documents(project, view, keys, features) if keys else []
        return list(zip(keys, rows, strict=True))

    def keyword(self, project: str, view: FeatureView, query_string: str, top_k: int,
                filters: Filters) -> list[tuple[str, int]]:
        fields = vector_fields(view)
        if not fields:
            raise InputError(f"feature view '{view.name}' has no vector_index field; keyword search reads the "
                             "documents of a vector view")
        index = self._fresh(project, view, fields[0])
        if index is None:
            return []
        with index.lock:
            if not index.keywords:
                self._load_keywords(project, view, index)
            mask = self._filter_mask(project, view, index.matrix, filters)
            return index.matrix.keyword(query_string, top_k, mask)

    # ---- keeping the index in step ------------------------------------------------------------
    def _fresh(self, project: str, view: FeatureView, field: Field) -> FieldIndex | None:
        """The view's index with every logged change applied; None when the view has no table.

        When nothing was committed to the database since this thread's connection last brought
        the index up to date, that costs one statement: SQLite's schema_version (any schema change),
        data_version (a commit by any other connection) and the connection's own total_changes are
        all as they were then."""
        conn = self.store._conn()
        raw = raw_table_name(project, view.name)
        key = (project, view.name, field.name)
        seen: dict[tuple[str, str, str], tuple[sqlite3.Connection, tuple[int, ...]]] | None = \
            getattr(self._seen, "states", None)
        if seen is None:
            seen = self._seen.states = {}
        try:
            state = (*conn.execute(_STATE).fetchone(), conn.total_changes)
            index = self._indexes.get(key)
            last = seen.get(key)
            if index is not None and last is not None and last[0] is conn and last[1] == state \
                    and index.matrix.dimension == field.vector_length:
                return index
            index = self._catch_up_all(conn, raw, view, field, key)
        except sqlite3.Error as e:
            raise StoreUnavailable(f"SQLite online store '{self.store.path}': {e}") from None
        if index is not None:
            seen[key] = (conn, state)
        return index

    def _catch_up_all(self, conn: sqlite3.Connection, raw: str, view: FeatureView, field: Field,
                      key: tuple[str, str, str]) -> FieldIndex | None:
        if not self._has_table(conn, raw):
            return None
        if not self._has_triggers(conn, raw):
            self._create_triggers(conn, raw)
        with self._lock:
            index = self._indexes.get(key)
            if index is None or index.matrix.dimension != field.vector_length:
                index = self._indexes[key] = FieldIndex(VectorMatrix(field.vector_length), last_change=-1,
                                                    project=key[0])
            self._fields[key] = (view, field)
        with index.lock:
            self._catch_up(conn, raw, view, field, index)
        return index

    def _written(self, project: str, view_name: str) -> None:
        """After a write through this store: the view's loaded indexes catch up in a background
        thread, so the search after a large update does not read thousands of rows itself (120-185
        ms after 5,000 updates at 20k documents; the rows then wait, searched exactly, for the graph)."""
        with self._lock:
            due = [key for key in self._fields if key[0] == project and key[1] == view_name]
            if not due:
                return
            self._due.update(due)
            if self._catching_up:
                return
            self._catching_up = True
        start_background(self._catch_up_due, "repast-vector-catch-up")

    def _catch_up_due(self) -> None:
        conn: sqlite3.Connection | None = None
        try:
            while True:
                with self._lock:  # seen empty and marked done in one hold: a write meanwhile starts a thread
                    if not self._due or exiting():
                        self._catching_up = False
                        return
                    key = self._due.pop()
                    view, field = self._fields[key]
                if conn is None:  # its own connection: the store's are per thread
                    conn = sqlite3.connect(self.store.path, timeout=30, isolation_level=None, check_same_thread=False)
                try:
                    self._catch_up_all(conn, raw_table_name(key[0], key[1]), view, field, key)
                except (sqlite3.Error, RepastError):
                    pass  # the next search catches up itself, and reports what is wrong
        except BaseException:
            with self._lock:
                self._catching_up = False
            raise
        finally:
            if conn is not None:
                conn.close()

    @staticmethod
    def _has_table(conn: sqlite3.Connection, raw: str) -> bool:
        return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (raw,)).fetchone() \
            is not None

    @staticmethod
    def _has_triggers(conn: sqlite3.Connection, raw: str) -> bool:
        row = conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ? "
                           "AND name IN (?, ?)", (raw, f"{raw}__vec_ins", f"{raw}__vec_upd")).fetchone()
        return bool(row[0] == 2)

    @staticmethod
    def _create_triggers(conn: sqlite3.Connection, raw: str) -> None:
        table, log = quote_ident(raw), _literal(raw)
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(f"CREATE TABLE IF NOT EXISTS {CHANGES} (id INTEGER PRIMARY KEY AUTOINCREMENT, "
                         "tbl TEXT NOT NULL, key)")
            for suffix, event in (("ins", "INSERT"), ("upd", "UPDATE")):
                conn.execute(f"CREATE TRIGGER IF NOT EXISTS {quote_ident(f'{raw}__vec_{suffix}')} AFTER {event} "
                             f"ON {table} BEGIN INSERT INTO {CHANGES} (tbl, key) VALUES ({log}, new._entity_key); "
                             "END")
            # A reset entry: indexes loaded from this table before it was rebuilt reload it whole.
            conn.execute(f"INSERT INTO {CHANGES} (tbl, key) VALUES (?, NULL)", (raw,))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def _catch_up(self, conn: sqlite3.Connection, raw: str, view: FeatureView, field: Field,
                  index: FieldIndex) -> None:
        low, high = conn.execute(f"SELECT coalesce(min(id), 0), coalesce(max(id), 0) FROM {CHANGES}").fetchone()
        if high == index.last_change:
            return
        if index.last_change < 0 or low > index.last_change + 1:  # never loaded, or entries were pruned
            self._reload(conn, raw, view, field, index)
            return
        rows = self._changed_documents(conn, raw, view, field, index.last_change, high, index.keywords)
        if any(r[0] is None for r in rows):  # a reset: the table was rebuilt
            self._reload(conn, raw, view, field, index)
            return
        if rows:
            changed = self._apply(index.matrix, rows, field, [str(r[0]) for r in rows], index.keywords)
            note_changed(index, changed, self._policy(view, field, index.project))
        index.last_change = high
        self._keep_graph(view, field, index)
        if high - low > _PRUNE_AT:
            conn.execute(f"DELETE FROM {CHANGES} WHERE id <= ?", (high - _PRUNE_AT // 2,))

    @staticmethod
    def _changed_keys(conn: sqlite3.Connection, raw: str, after: int, upto: int) -> list[Any]:
        """The keys logged for `raw` in (after, upto]; None among them is a reset (the table was rebuilt)."""
        return [k for (k,) in conn.execute(f"SELECT DISTINCT key FROM {CHANGES} WHERE id > ? AND id <= ? AND tbl = ?",
                                           (after, upto, raw))]

    def _reload(self, conn: sqlite3.Connection, raw: str, view: FeatureView, field: Field, index: FieldIndex) -> None:
        """Load every document, a chunk at a time (so parsing never holds more than one chunk as
        Python objects), in one read snapshot together with the change id it corresponds to; adopt
        the persisted graph when the change log still holds every entry since it was saved."""
        conn.execute("BEGIN")
        try:
            low, high = conn.execute(f"SELECT coalesce(min(id), 0), coalesce(max(id), 0) FROM {CHANGES}").fetchone()
            (count,) = conn.execute(f"SELECT count(*) FROM {quote_ident(raw)}").fetchone()
            saved = self._files(index.project, view, field).load(
                field.vector_length, _declared(field), self._settings(), self.store.storage_id(index.project, view)) \
                if self._indexing() else None
            dirty: list[Any] = []
            if saved is not None:
                dirty = self._changed_keys(conn, raw, saved.generation, high)
                if saved.generation > high or low > saved.generation + 1 or None in dirty:
                    saved = None  # the log no longer says what changed since: rebuilt
            matrix = VectorMatrix(field.vector_length)
            matrix.reserve(max(count, len(saved.keys) if saved else 0))
            if saved is not None:
                matrix.seed(saved.keys)
            cursor = conn.execute(self._select(raw, view, field, index.keywords))
            while rows := cursor.fetchmany(_LOAD_CHUNK):
                self._apply(matrix, rows, field, [], index.keywords)
        finally:
            conn.execute("COMMIT")
        index.matrix, index.last_change, index.graph = matrix, high, None
        index.pending.clear()
        if saved is not None:  # the rows changed since it was saved are re-added, found by comparison
            index.graph = saved.graph
            note_changed(index, saved.graph.stale(matrix.matrix[:matrix.size], matrix.alive[:matrix.size]),
                         self._policy(view, field, index.project))
        self._keep_graph(view, field, index)

    def _policy(self, view: FeatureView, field: Field, project: str) -> GraphPolicy:
        def save(graph: Graph, generation: int, keys: list[str]) -> None:
            self._files(project, view, field).save(graph, generation, self.store.storage_id(project, view), keys)

        return GraphPolicy(field.vector_length, _declared(field), self._settings(),
                           self.store.config.vector_index_min_documents, save)

    def _keep_graph(self, view: FeatureView, field: Field, index: FieldIndex) -> None:
        if self._indexing():
            keep_graph(index, self._policy(view, field, index.project))

    def _indexing(self) -> bool:
        return bool(self.store.config.vector_index) and available()

    def _settings(self) -> GraphSettings:
        config = self.store.config
        return GraphSettings(config.vector_index_m, config.vector_index_ef_construction,
                             config.vector_index_ef_search, config.vector_index_cosine_dtype)

    def _files(self, project: str, view: FeatureView, field: Field) -> GraphFiles:
        return GraphFiles(str(self.store.path), project, view.name, field.name)

    @staticmethod
    def _select(raw: str, view: FeatureView, field: Field, texts: bool) -> str:
        cols = ", ".join(["_entity_key", quote_ident(field.name), "_event_ts",
                          *(quote_ident(t) for t in (text_fields(view) if texts else []))])
        return f"SELECT {cols} FROM {quote_ident(raw)}"

    @staticmethod
    def _changed_documents(conn: sqlite3.Connection, raw: str, view: FeatureView, field: Field, after: int,
                           upto: int, texts: bool) -> list[tuple[Any, ...]]:
        """(entity key, vector BLOB, event time, text...) of each key logged for `raw` in (after, upto],
        in one statement (NULLs for a key whose row is gone; a None key is a reset). One join, not
        the keys into Python and back as 5,000 parameters: that was half a catch-up's time."""
        cols = ", ".join(["c.key", f"t.{quote_ident(field.name)}", "t._event_ts",
                          *(f"t.{quote_ident(t)}" for t in (text_fields(view) if texts else []))])
        return conn.execute(f"SELECT {cols} FROM (SELECT DISTINCT key FROM {CHANGES} WHERE id > ? AND id <= ? "
                            f"AND tbl = ?) AS c LEFT JOIN {quote_ident(raw)} AS t ON t._entity_key = c.key",
                            (after, upto, raw)).fetchall()

    @staticmethod
    def _apply(matrix: VectorMatrix, rows: list[tuple[Any, ...]], field: Field, changed: list[str],
               with_texts: bool) -> np.ndarray:
        """Upsert the rows with a vector of the declared length; remove the other changed keys.
        The matrix rows touched (for the graph)."""
        size = field.vector_length * item_type(field).itemsize
        present = [r for r in rows if isinstance(r[1], bytes) and len(r[1]) == size]
        keys = [str(r[0]) for r in present]
        kept = set(keys)
        gone = [k for k in changed if k not in kept]
        touched = [matrix.row_of[k] for k in gone if k in matrix.row_of]
        if present:
            vectors = np.frombuffer(b"".join(r[1] for r in present), dtype=item_type(field))
            texts = [" ".join(t for t in r[3:] if t) for r in present] if with_texts else None
            matrix.upsert(keys, vectors.reshape(len(present), field.vector_length), texts,
                          np.fromiter((r[2] for r in present), dtype=np.int64, count=len(present)))
            touched += [matrix.row_of[k] for k in keys]
        matrix.remove(gone)
        return np.array(touched, dtype=np.int64)

    def _load_keywords(self, project: str, view: FeatureView, index: FieldIndex) -> None:
        """The keyword terms of the index's documents, read once, at the first keyword search (a
        process that only searches by vector never holds them); later catch-ups keep them."""
        texts = text_fields(view)
        if texts:
            cols = ", ".join(["_entity_key", *(quote_ident(t) for t in texts)])
            try:
                table = quote_ident(raw_table_name(project, view.name))
                cursor = self.store._conn().execute(f"SELECT {cols} FROM {table}")
                while rows := cursor.fetchmany(_LOAD_CHUNK):
                    index.matrix.set_texts([str(r[0]) for r in rows], [" ".join(t for t in r[1:] if t) for r in rows])
            except sqlite3.Error as e:
                raise StoreUnavailable(f"SQLite online store '{self.store.path}': {e}") from None
        index.keywords = True

    # ---- filters ----------------------------------------------------------------------------------
    def _filter_mask(self, project: str, view: FeatureView, matrix: VectorMatrix,
                     filters: Filters) -> np.ndarray | None:
        if not filters:
            return None
        where = " AND ".join(f"{quote_ident(name)} = ?" for name in filters)
        values = [int(v) if isinstance(v, bool) else v for v in filters.values()]
        conn = self.store._conn()
        try:
            table = quote_ident(raw_table_name(project, view.name))
            keys = conn.execute(f"SELECT _entity_key FROM {table} WHERE {where}",
                                values).fetchall()
        except sqlite3.Error as e:
            raise StoreUnavailable(f"SQLite online store '{self.store.path}': {e}") from None
        return matrix.mask_of(str(k) for (k,) in keys)


def _declared(field: Field) -> Metric:
    return parse_metric(field.vector_search_metric, field.name)


def _both(a: np.ndarray | None, b: np.ndarray | None) -> np.ndarray | None:
    return b if a is None else a if b is None else a & b


def _fresh_rows(view: FeatureView, matrix: VectorMatrix) -> np.ndarray | None:
    """Rows within the view's ttl (event time >= now - ttl), None when every row is (or no ttl):
    a document older than its ttl is not returned, as the offline documents as of now leave it out."""
    ttl_us = int(view.ttl.total_seconds() * 1_000_000) if view.ttl else 0
    if ttl_us <= 0 or matrix.size == 0:
        return None
    fresh = matrix.event_us[:matrix.size] >= time.time_ns() // 1000 - ttl_us
    return None if fresh.all() else fresh

