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


def stored_as_vector(field: Field) -> bool:
    """A Float32 vector field is stored once, as a `vector(n)` column under its own name (pgvector
    keeps float32, so nothing is lost); an Array(Float64) one keeps its exact float8[] values and a
    generated `_vec__<field> vector(n)` beside them."""
    base = getattr(field.dtype, "base", None)
    return bool(field.vector_index) and (base is None or base.name != "Float64")


def vector_column(field: Field) -> str:
    """The column searched: the feature column itself, or the generated one of an Array(Float64) field."""
    return field.name if stored_as_vector(field) else _name(_PREFIX + field.name)


def stage_column(field: Field) -> str:
    """How a write's staging table declares the field: an array, which binary COPY writes and
    pgvector's assignment cast turns into `vector(n)` on the insert into the table."""
    column = quote_ident(field.name)
    return f"{column}::real[] AS {column}" if stored_as_vector(field) else column


def read_column(field: Field, alias: str = "") -> str:
    """How a read selects a field stored as vector(n): as float8[] (the exact float32 values)."""
    return f"{alias}{quote_ident(field.name)}::real[]::float8[]"


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
    """In the apply's transaction: each vector field of `view` stored as `vector_column` says, with
    its HNSW index, replacing an earlier declaration's; DefinitionError without pgvector.

    Tables from before the embedding was stored once (a real[] column plus a generated
    `_vec__<field>` copy) are converted in place: the copy is dropped and the column becomes
    `vector(n)` (one table rewrite, in the apply's transaction, with the table locked meanwhile;
    if any stored embedding cannot convert, the apply fails and nothing changes)."""
    fields = vector_fields(view)
    columns = _column_types(conn, schema, table)
    vectors = {name for name, type_name in columns.items() if type_name.startswith("vector(")}
    if not fields and not vectors:
        return
    if fields:
        _require_pgvector(conn, view, fields[0], f"{conn.info.host}:{conn.info.port}/{conn.info.dbname}")
    qualified = f"{quote_ident(schema)}.{quote_ident(table)}"
    wanted = {vector_column(f): f"vector({f.vector_length})" for f in fields}
    dtypes = {f.name: f.dtype for f in view.features}
    for column in sorted(vectors):
        if wanted.get(column) == columns[column]:
            continue
        if column.startswith(_PREFIX):  # a generated copy no field needs now
            conn.execute(f"ALTER TABLE {qualified} DROP COLUMN {quote_ident(column)}")
        elif column in dtypes:  # no longer a vector field: back to its array
            base = getattr(dtypes[column], "base", None)
            array = "double precision[]" if base is not None and base.name == "Float64" else "real[]"
            conn.execute(f"ALTER TABLE {qualified} ALTER COLUMN {quote_ident(column)} TYPE {array} "
                         f"USING {quote_ident(column)}::real[]")
    for f in fields:
        column = vector_column(f)
        if columns.get(column) != wanted[column]:
            _store_vector(conn, qualified, view, f, column, wanted[column], column in columns)
        _ensure_index(conn, schema, qualified, table, f, hnsw)


def _store_vector(conn: Any, qualified: str, view: FeatureView, field: Field, column: str, type_name: str,
                  exists: bool) -> None:
    name = quote_ident(field.name)
    if column == field.name:  # stored once: the column itself becomes vector(n)
        source = f"{name}::real[]" if exists else name
        sql = f"ALTER TABLE {qualified} ALTER COLUMN {name} TYPE {type_name} USING {source}::{type_name}"
    else:
        sql = (f"ALTER TABLE {qualified} ADD COLUMN {quote_ident(column)} {type_name} "
               f"GENERATED ALWAYS AS ({name}::{type_name}) STORED")
    try:
        with conn.transaction():
            conn.execute(sql)
    except Exception as e:  # a stored array of another length cannot become vector(n)
        raise DefinitionError(f"feature view '{view.name}': vector field '{field.name}' cannot be indexed: "
                              f"{str(e).splitlines()[0]}") from None


def _column_types(conn: Any, schema: str, table: str) -> dict[str, str]:
    rows = conn.execute(
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
        "JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped",
        (schema, table)).fetchall()
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
    column = vector_column(field)  # PostgreSQL writes it quoted in indexdef only where it must
    others = conn.execute(
        "SELECT indexname FROM pg_indexes WHERE schemaname = %s AND tablename = %s AND indexdef LIKE '%%USING hnsw%%' "
        "AND (indexdef LIKE %s OR indexdef LIKE %s) AND indexname <> %s",
        (schema, table, f"%({column} %", f"%({quote_ident(column)} %", name)).fetchall()
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
