"""Vector search in the PostgreSQL online store, with pgvector.

A Float32 vector field is stored once, as a `vector(n)` column under its own name (reads cast it
to an array); an Array(Float64) one keeps its float8[] column and gains a stored generated column
`_vec__<field> vector(n)` (repast.vector.postgres_columns). Each has an HNSW index for the declared
metric (vector_l2_ops, vector_cosine_ops, vector_ip_ops), in step with every write in the writing
transaction; an update or a null vector (a removed document) shows at once.
pgvector's operators already follow repast's rule (a distance, lower is closer): `<->` euclidean,
`<=>` 1 - cosine similarity, `<#>` the negative inner product.

Searches use the index (approximate; hnsw.ef_search is the store's `vector_ef_search`, raised to
top_k + 10 for a deeper request) unless the request is exact, has filters or names another metric;
those scan exactly, as keyword matching always does. A search is one prepared statement on an
autocommit connection (one round trip) returning the hits with the features asked for. The index of
an empty table is built by its first write, after the rows are in: building an HNSW graph in bulk is
many times faster than inserting into it row by row.
A server without pgvector keeps serving every other view: a vector field there is refused at apply
with a DefinitionError.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from repast.errors import InputError
from repast.sql_quoting import quote_ident
from repast.vector.base import Filters, VectorSearch
from repast.vector.metric import Metric
from repast.vector.postgres_columns import HNSW_MAX_DIMENSIONS, OPERATORS, stored_as_vector, vector_column
from repast.vector.semantics import terms, text_fields, vector_fields

if TYPE_CHECKING:
    from repast.definitions import FeatureView, Field
    from repast.online.base import ReadRow
    from repast.online.postgres import PostgresOnlineStore

class _VectorParam:
    """A query vector sent in pgvector's binary form (int16 dimension, int16 0, big-endian float4s):
    3 us, where its text (384 shortest float reprs, parsed again by the server) took about 0.3 ms.
    Its type is the statement's `::vector` cast (the dumper gives no OID), read by vector_recv."""

    __slots__ = ("data",)

    def __init__(self, query: np.ndarray) -> None:
        self.data = struct.pack(">HH", len(query), 0) + np.asarray(query, dtype=">f4").tobytes()


def _vector_dumper() -> type:
    from psycopg.adapt import Dumper
    from psycopg.pq import Format

    class VectorDumper(Dumper):
        format = Format.BINARY

        def dump(self, obj: Any) -> bytes:
            return obj.data  # type: ignore[no-any-return]

    return VectorDumper


class PostgresVectorSearch(VectorSearch):
    """A search is one statement (one round trip, prepared): the hits with the features asked for."""

    store: PostgresOnlineStore

    def __init__(self, store: Any) -> None:
        super().__init__(store)
        self._dumper = _vector_dumper()

    def nearest(self, project: str, view: FeatureView, field: Field, query: np.ndarray, metric: Metric,
                top_k: int, filters: Filters, exact: bool) -> list[tuple[str, float]]:
        return [(k, d) for k, d, _ in self._nearest(project, view, field, query, metric, top_k, filters, exact, None)]

    def nearest_rows(self, project: str, view: FeatureView, field: Field, query: np.ndarray, metric: Metric,
                     top_k: int, filters: Filters, exact: bool, features: Sequence[str]) -> list[tuple[str, ReadRow]]:
        return [(k, row) for k, _, row in self._nearest(project, view, field, query, metric, top_k, filters, exact,
                                                        features)]

    def _nearest(self, project: str, view: FeatureView, field: Field, query: np.ndarray, metric: Metric,
                 top_k: int, filters: Filters, exact: bool, features: Sequence[str] | None
                 ) -> list[tuple[str, float, ReadRow]]:
        table = self.store._table(project, view.name)
        column = quote_ident(vector_column(field))
        distance = f"{column} {OPERATORS[metric]} %(q)s::vector"
        indexed = not (exact or filters) and metric.value == field.vector_search_metric \
            and field.vector_length <= HNSW_MAX_DIMENSIONS
        where, params = _where(filters, view)
        decode = None
        if indexed:
            # The index serves `ORDER BY distance LIMIT n` only; ties are then ordered outside it.
            # The features are read by the index scan itself, for its n rows only.
            named = outer = ""
            if features is not None:
                cols, decode = _search_columns(self.store, view, field, features)
                named = "".join(f", {c} AS c{i}" for i, c in enumerate(cols))
                outer = "".join(f", c{i}" for i in range(len(cols)))
            fresh = f" WHERE {where[5:]}" if where else ""  # the ttl alone (an indexed search has no filters)
            sql = (f"SELECT k, d{outer} FROM (SELECT _entity_key AS k, {distance} AS d{named} FROM {table}{fresh} "
                   f"ORDER BY {distance} LIMIT %(n)s) s WHERE d IS NOT NULL ORDER BY d, k COLLATE \"C\" LIMIT %(k)s")
        else:
            # OFFSET 0 keeps the scan exact: without it the planner may read the HNSW index in
            # distance order (an incremental sort by (distance, key)), which is approximate. The
            # features are read afterwards, for the k hits only.
            sql = (f"SELECT k, d FROM (SELECT _entity_key AS k, {distance} AS d FROM {table} "
                   f"WHERE {column} IS NOT NULL{where} OFFSET 0) s ORDER BY d, k COLLATE \"C\" LIMIT %(k)s")
            if features is not None:
                cols, decode = _search_columns(self.store, view, field, features, "t.")
                sql = (f"SELECT h.k, h.d, {', '.join(cols)} FROM ({sql}) h JOIN {table} t ON t._entity_key = h.k "
                       f"ORDER BY h.d, h.k COLLATE \"C\"")
        args: dict[str, Any] = {"q": _VectorParam(query), "n": top_k + 10, "k": top_k, **params}
        ef_search = self.store.config.vector_ef_search
        # pgvector's HNSW scan returns at most ef_search rows: a deeper request raises it for itself.
        deeper = indexed and top_k + 10 > ef_search
        rows = self._query(view, sql, args, ef_search=top_k + 10 if deeper else None)
        return [(r[0], float(r[1]), None if decode is None else decode(r[2:])) for r in rows]

    def keyword(self, project: str, view: FeatureView, query_string: str, top_k: int,
                filters: Filters) -> list[tuple[str, int]]:
        fields = vector_fields(view)
        texts = text_fields(view)
        words = sorted(terms(query_string))
        if not fields or not texts or not words:
            return []
        document = "lower(concat_ws(' ', " + ", ".join(quote_ident(t) for t in texts) + "))"
        score = " + ".join(f"({document} ~ %(w{i})s)::int" for i in range(len(words)))
        where, params = _where(filters, view)
        sql = (f"SELECT k, s FROM (SELECT _entity_key AS k, {score} AS s FROM {self.store._table(project, view.name)} "
               f"WHERE {quote_ident(vector_column(fields[0]))} IS NOT NULL{where}) m WHERE s > 0 "
               f"ORDER BY s DESC, k COLLATE \"C\" LIMIT %(k)s")
        args = {**{f"w{i}": f"(^|[^a-z0-9]){w}([^a-z0-9]|$)" for i, w in enumerate(words)},
                **params, "k": top_k}
        return [(k, int(s)) for k, s in self._query(view, sql, args)]

    def _query(self, view: FeatureView, sql: str, args: dict[str, Any], ef_search: int | None = None) -> list[Any]:
        import psycopg

        dumper = self._dumper

        def run(conn: Any) -> list[Any]:
            conn.adapters.register_dumper(_VectorParam, dumper)  # ~2 us; whichever pooled connection this is
            # Binary results: an embedding's floats are not parsed from text (halves a search's time).
            if ef_search is None:  # autocommit: the statement alone, prepared on first use
                return conn.execute(sql, args, prepare=True, binary=True).fetchall()  # type: ignore[no-any-return]
            # A deeper request raises ef_search for itself: BEGIN, SET LOCAL, the search and COMMIT
            # sent together in one pipelined exchange (one round trip), not four.
            with conn.pipeline():
                conn.execute("BEGIN")
                conn.execute(f"SET LOCAL hnsw.ef_search = {int(ef_search)}")
                cursor = conn.execute(sql, args, prepare=True, binary=True)
                conn.execute("COMMIT")
            return cursor.fetchall()  # type: ignore[no-any-return]

        try:
            return self.store._run(run)  # type: ignore[no-any-return]
        except psycopg.errors.UndefinedTable:
            return []  # nothing was ever stored for this view
        except (psycopg.errors.UndefinedColumn, psycopg.errors.UndefinedObject,
                psycopg.errors.UndefinedFunction) as e:  # e.g. a table from before apply converted it
            raise InputError(f"feature view '{view.name}' has no vector storage in the PostgreSQL online store "
                             f"({str(e).splitlines()[0]}); run `repast apply` with this online store") from None


def _search_columns(store: PostgresOnlineStore, view: FeatureView, field: Field, features: Sequence[str],
                    alias: str = "") -> tuple[list[str], Any]:
    """The store's `read_columns`, except the searched field when stored as vector(n): selected as it
    is, its binary form (int16 dimension, int16 0, big-endian float4s) becomes a float32 array in one
    copy. Read as float8[] (as `read` does), 20 hits x 384 were 7,680 Python floats: about 1 ms, most
    of the store's cost over the index scan. A requested vector feature is answered as a list."""
    cols, decode = store.read_columns(view, features, alias)
    if field.name not in features or not stored_as_vector(field):
        return cols, decode
    at = 1 + list(features).index(field.name)  # after _event_ts
    cols[at] = f"{alias}{quote_ident(field.name)}"

    def decode_raw(row: Sequence[Any]) -> tuple[Any, ...]:
        out = decode(row)
        raw = out[at]
        vector = None if raw is None else np.frombuffer(raw, dtype=">f4", offset=4).astype(np.float32)
        return (*out[:at], vector, *out[at + 1:])

    return cols, decode_raw


def _where(filters: Filters, view: FeatureView) -> tuple[str, dict[str, Any]]:
    """The filters' `AND column = %(fN)s` conditions and their named parameters, and the view's
    ttl as `AND _event_ts >= now - ttl`: a document older than its ttl is not returned."""
    where = "".join(f" AND {quote_ident(name)} = %(f{i})s" for i, name in enumerate(filters))
    params: dict[str, Any] = {f"f{i}": v for i, v in enumerate(filters.values())}
    ttl_us = int(view.ttl.total_seconds() * 1_000_000) if view.ttl else 0
    if ttl_us > 0:
        where += " AND _event_ts >= %(fresh)s"
        params["fresh"] = time.time_ns() // 1000 - ttl_us
    return where, params
