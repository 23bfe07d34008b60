"""Aggregation tiles in the PostgreSQL online store (repast.online.tiles_sql). A write is one
transaction holding the view's advisory lock, so concurrent pushes fold into a tile one after
the other (none lost) and a push's tiles and batch mark commit together or not at all."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa

from repast.aggregations.layout import Kind, TileLayout
from repast.aggregations.merge import TileRow
from repast.online.tiles_sql import BATCH_MARK, MARKS, TileSQL, added, grouped, tile_rows, tiles_table
from repast.sql_quoting import quote_ident

_TYPES: dict[Kind, str] = {"int": "BIGINT", "float": "DOUBLE PRECISION", "text": "TEXT"}


def dialect(schema: str) -> TileSQL:
    """The statements for tiles in `schema`."""
    return TileSQL("%s", _TYPES, "TEXT", f"{quote_ident(schema)}.{MARKS}")


def _prefix(view_table: str) -> str:
    """What every tile table of the view starts with, within PostgreSQL's 63-byte names."""
    prefix = f"{view_table}__tiles_"
    if len(prefix.encode()) > 52:
        prefix = f"t_{hashlib.sha1(view_table.encode()).hexdigest()[:20]}__tiles_"
    return prefix


def _raw(view_table: str, layout: TileLayout) -> str:
    return _prefix(view_table) + tiles_table("", layout).rpartition("__tiles_")[2]


def _name(schema: str, view_table: str, layout: TileLayout) -> str:
    return f"{quote_ident(schema)}.{quote_ident(_raw(view_table, layout))}"


def _tile_tables(conn: Any, schema: str, view_table: str) -> list[str]:
    pattern = _prefix(view_table).replace("_", "\\_") + "%"
    return [r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s AND tablename LIKE %s",
                                       (schema, pattern)).fetchall()]


def ensure(conn: Any, schema: str, view_table: str, layout: TileLayout) -> str:
    """The tile table, created when missing (inside the caller's transaction); other layouts' dropped."""
    name = _raw(view_table, layout)
    for other in _tile_tables(conn, schema, view_table):
        if other != name:
            conn.execute(f"DROP TABLE IF EXISTS {quote_ident(schema)}.{quote_ident(other)}")
    conn.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(schema)}")
    table = _name(schema, view_table, layout)
    for sql in dialect(schema).create(table, layout):
        conn.execute(sql)
    return table


def drop(conn: Any, schema: str, view_table: str) -> None:
    for other in _tile_tables(conn, schema, view_table):
        conn.execute(f"DROP TABLE IF EXISTS {quote_ident(schema)}.{quote_ident(other)}")


def write(conn: Any, schema: str, project: str, view: str, view_table: str, layout: TileLayout, tiles: pa.Table,
          add: bool, batch_id: str | None, marks: Mapping[str, str] | None, expire_through_us: int | None) -> int:
    rows = tile_rows(tiles, layout)
    sql = dialect(schema)
    with conn.transaction():
        conn.execute("SET LOCAL statement_timeout = 0")
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"repast-tiles:{schema}:{view_table}",))
        table = ensure(conn, schema, view_table, layout)
        mark = (project, view, BATCH_MARK + (batch_id or ""))
        if batch_id is not None and conn.execute(sql.batch_applied(), mark).fetchone():
            return 0
        if add and rows:
            rows = added(layout, _stored(conn, sql, table, layout, rows), rows)
        with conn.cursor() as cur:
            cur.executemany(sql.upsert(table, layout), rows)
            newest = max((r[1] for r in rows), default=None)
            entries = [(project, view, name, value, None) for name, value in (marks or {}).items()]
            if batch_id is not None:
                entries.append((project, view, BATCH_MARK + batch_id, "applied", newest))
            if entries:
                cur.executemany(sql.mark_upsert(), entries)
        if expire_through_us is not None:
            tiles_sql, marks_sql = sql.expire(table)
            conn.execute(tiles_sql, (expire_through_us,))
            conn.execute(marks_sql, (project, view, expire_through_us))
    return len(rows)


def _stored(conn: Any, sql: TileSQL, table: str, layout: TileLayout,
            rows: Sequence[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    keys = sorted({r[0] for r in rows})
    low, high = min(r[1] for r in rows) - 1, max(r[1] for r in rows)
    wanted = {(r[0], r[1]) for r in rows}
    found = conn.execute(sql.select(table, layout, len(keys)), (*keys, low, high)).fetchall()
    return [r for r in found if (r[0], r[1]) in wanted]


def read(conn: Any, schema: str, view_table: str, layout: TileLayout, keys: Sequence[str], after_us: int,
         through_us: int) -> list[list[TileRow]]:
    import psycopg

    sql = dialect(schema).select(_name(schema, view_table, layout), layout, len(keys))
    try:
        rows = conn.execute(sql, (*keys, after_us, through_us)).fetchall()
    except psycopg.errors.UndefinedTable:
        return [[] for _ in keys]
    return grouped(rows, keys)


def read_marks(conn: Any, schema: str, project: str, view: str, names: Sequence[str]) -> dict[str, str]:
    import psycopg

    try:
        found = conn.execute(dialect(schema).mark_select(len(names)), (project, view, *names)).fetchall()
    except psycopg.errors.UndefinedTable:
        return {}
    return dict(found)
