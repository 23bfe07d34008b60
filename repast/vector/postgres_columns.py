"""How the PostgreSQL online store keeps vector fields with pgvector: a stored generated column
`_vec__<field> vector(n)` beside the ordinary array column, with an HNSW index for the declared
metric, built by the first write of an empty table (repast.online.postgres calls these;
repast.vector.postgres searches them).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from repast.errors import DefinitionError
from repast.sql_quoting import quote_ident
from repast.vector.metric import Metric
from repast.vector.semantics import vector_fields

if TYPE_CHECKING:
    from repast.definitions import FeatureView, Field

OPERATORS = {Metric.L2: "<->", Metric.COSINE: "<=>", Metric.INNER_PRODUCT: "<#>"}
OPCLASSES = {Metric.L2: "vector_l2_ops", Metric.COSINE: "vector_cosine_ops", Metric.INNER_PRODUCT: "vector_ip_ops"}
HNSW_MAX_DIMENSIONS = 2000  # pgvector's limit for an HNSW index on `vector`
_PREFIX = "_vec__"


def _name(text: str) -> str:
    """An identifier of at most 63 bytes (PostgreSQL truncates longer ones)."""
    if len(text.encode()) <= 63:
        return text
    return text[:48] + "_" + hashlib.sha1(text.encode()).hexdigest()[:12]


def vector_column(field: Field) -> str:
    return _name(_PREFIX + field.name)


@dataclass(frozen=True)
class Hnsw:
    """pgvector's HNSW build parameters (the store's vector_index_m / vector_index_ef_construction)."""

    m: int = 16
    ef_construction: int = 64


DEFAULT_HNSW = Hnsw()  # pgvector's defaults: the index keeps the name it had before they were settable


def index_name(table: str, field: Field, hnsw: Hnsw = DEFAULT_HNSW) -> str:
    """Named by its parameters too, so an apply with other parameters replaces the index."""
    built = "" if hnsw == DEFAULT_HNSW else f"__m{hnsw.m}_ef{hnsw.ef_construction}"
    return _name(f"{table}__{field.name}__{field.vector_search_metric}{built}".lower())


def ensure_vector_storage(conn: Any, schema: str, table: str, view: FeatureView, hnsw: Hnsw = DEFAULT_HNSW) -> None:
    """In the apply's transaction: the generated vector column and HNSW index of each vector field
    of `view`, replacing those of an earlier declaration; DefinitionError without pgvector."""
    fields = vector_fields(view)
    existing = _vector_columns(conn, schema, table)
    if not fields and not existing:
        return
    if fields:
        _require_pgvector(conn, view, fields[0], f"{conn.info.host}:{conn.info.port}/{conn.info.dbname}")
    qualified = f"{quote_ident(schema)}.{quote_ident(table)}"
    wanted = {vector_column(f): f"vector({f.vector_length})" for f in fields}
    for column, type_name in existing.items():
        if wanted.get(column) != type_name:
            conn.execute(f"ALTER TABLE {qualified} DROP COLUMN {quote_ident(column)}")
    for f in fields:
        column = vector_column(f)
        if existing.get(column) != wanted[column]:
            try:
                with conn.transaction():
                    conn.execute(f"ALTER TABLE {qualified} ADD COLUMN {quote_ident(column)} {wanted[column]} "
                                 f"GENERATED ALWAYS AS ({quote_ident(f.name)}::{wanted[column]}) STORED")
            except Exception as e:  # a stored array of another length cannot become vector(n)
                raise DefinitionError(f"feature view '{view.name}': vector field '{f.name}' cannot be indexed: "
                                      f"{str(e).splitlines()[0]}") from None
        _ensure_index(conn, schema, qualified, table, f, hnsw)


def _vector_columns(conn: Any, schema: str, table: str) -> dict[str, str]:
    rows = conn.execute(
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
        "JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped "
        "AND a.attname LIKE %s", (schema, table, _PREFIX.replace("_", r"\_") + "%")).fetchall()
    return dict(rows)


def _require_pgvector(conn: Any, view: FeatureView, field: Field, where: str) -> None:
    if conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'vector'").fetchone():
        return
    try:
        with conn.transaction():
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    except Exception as e:
        raise DefinitionError(
            f"feature view '{view.name}': vector field '{field.name}' needs the pgvector extension, which the "
            f"PostgreSQL online store at {where} does not have ({str(e).splitlines()[0]}); install pgvector "
            "there, or use the sqlite online store") from None


def _ensure_index(conn: Any, schema: str, qualified: str, table: str, field: Field, hnsw: Hnsw) -> None:
    name = index_name(table, field, hnsw)
    others = conn.execute(
        "SELECT indexname FROM pg_indexes WHERE schemaname = %s AND tablename = %s AND indexdef LIKE %s "
        "AND indexname <> %s", (schema, table, f"%({quote_ident(vector_column(field))} %", name)).fetchall()
    for (other,) in others:  # the index of a previously declared metric
        conn.execute(f"DROP INDEX {quote_ident(schema)}.{quote_ident(other)}")
    # An empty table gets its index from its first write, built in bulk (build_vector_indexes).
    if field.vector_length <= HNSW_MAX_DIMENSIONS and conn.execute(f"SELECT EXISTS (SELECT FROM {qualified})"
                                                                   ).fetchone()[0]:
        _create_index(conn, qualified, table, field, hnsw)


def _create_index(conn: Any, qualified: str, table: str, field: Field, hnsw: Hnsw) -> None:
    metric = Metric(str(field.vector_search_metric))
    conn.execute(f"CREATE INDEX IF NOT EXISTS {quote_ident(index_name(table, field, hnsw))} ON {qualified} "
                 f"USING hnsw ({quote_ident(vector_column(field))} {OPCLASSES[metric]}) "
                 f"WITH (m = {int(hnsw.m)}, ef_construction = {int(hnsw.ef_construction)})")


def unbuilt_vector_indexes(conn: Any, schema: str, table: str, view: FeatureView,
                           hnsw: Hnsw = DEFAULT_HNSW) -> list[Field]:
    """In a write's transaction, before it writes: the vector fields of `view` whose HNSW index is
    not built yet (the table was empty at apply). The table is then locked against other writers
    (not readers) until the write's end, when build_vector_indexes builds them over all its rows."""
    fields = [f for f in vector_fields(view) if f.vector_length <= HNSW_MAX_DIMENSIONS]
    if not fields:
        return []

    def missing() -> list[Field]:
        names = [f"{quote_ident(schema)}.{quote_ident(index_name(table, f, hnsw))}" for f in fields]
        found = conn.execute("SELECT " + ", ".join(["to_regclass(%s) IS NOT NULL"] * len(names)), names).fetchone()
        return [f for f, there in zip(fields, found, strict=True) if not there]

    if not missing():
        return []
    # SHARE ROW EXCLUSIVE: one writer at a time builds; readers (ACCESS SHARE) go on.
    conn.execute(f"LOCK TABLE {quote_ident(schema)}.{quote_ident(table)} IN SHARE ROW EXCLUSIVE MODE")
    return missing()


def build_vector_indexes(conn: Any, schema: str, table: str, fields: list[Field], hnsw: Hnsw = DEFAULT_HNSW) -> None:
    for f in fields:
        _create_index(conn, f"{quote_ident(schema)}.{quote_ident(table)}", table, f, hnsw)
