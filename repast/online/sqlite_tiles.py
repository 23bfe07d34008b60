"""Aggregation tiles in the SQLite online store (repast.online.tiles_sql): each write is one
BEGIN IMMEDIATE transaction, so a push's read-fold-write of its tiles and its batch mark are
atomic against concurrent writers, and a killed writer leaves the tiles as they were.

Version tokens (repast.online.base.TileVersionReader) live in `repast_online_tile_versions`:
per view table, a random token per entity key, set anew in the transaction of every write of
the key's tiles, and a view row (key '') set anew whenever tiles of any key may go (expiry, a
layout change); a key's token is the pair. Random, so a dropped and re-created view never
repeats one."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

import pyarrow as pa

from repast.aggregations.layout import TileLayout
from repast.aggregations.merge import TileRow
from repast.online.tiles_sql import BATCH_MARK, TileSQL, added, grouped, tile_rows, tiles_table
from repast.sql_quoting import quote_ident

# WITHOUT ROWID: the rows are stored in key order, so a read's window of tiles is one range of pages.
SQL = TileSQL("?", {"int": "INTEGER", "float": "REAL", "text": "TEXT"}, "TEXT", table_options=" WITHOUT ROWID")
_MAX_KEYS = 10_000
VERSIONS = "repast_online_tile_versions"
_VIEW_ROW = ""  # the key of a view's own version row
_NEW_VERSION = (f"INSERT INTO {VERSIONS} VALUES (?, ?, random()) ON CONFLICT (view_table, key) "
                "DO UPDATE SET token = excluded.token")


def ensure(conn: sqlite3.Connection, view_table: str, layout: TileLayout) -> str:
    """The quoted tile table of `layout`; the tables of every level of the view are created when
    missing, tile tables of other layouts dropped."""
    names = {tiles_table(view_table, level): level for level in layout.levels()}
    conn.execute(f"CREATE TABLE IF NOT EXISTS {VERSIONS} (view_table TEXT NOT NULL, key TEXT NOT NULL, "
                 "token INTEGER NOT NULL, PRIMARY KEY (view_table, key)) WITHOUT ROWID")
    for (other,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall():
        if other not in names and other.startswith(view_table + "__tiles_"):
            conn.execute(f"DROP TABLE {quote_ident(other)}")
            conn.execute(_NEW_VERSION, (view_table, _VIEW_ROW))
    conn.execute(f"INSERT OR IGNORE INTO {VERSIONS} VALUES (?, ?, random())", (view_table, _VIEW_ROW))
    for name, level in names.items():
        for sql in SQL.create(quote_ident(name), level):
            conn.execute(sql)
    return quote_ident(tiles_table(view_table, layout))


def drop(conn: sqlite3.Connection, view_table: str) -> None:
    for (other,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall():
        if other.startswith(view_table + "__tiles_"):
            conn.execute(f"DROP TABLE {quote_ident(other)}")
    if conn.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (VERSIONS,)).fetchone():
        conn.execute(f"DELETE FROM {VERSIONS} WHERE view_table = ?", (view_table,))


def write(conn: sqlite3.Connection, project: str, view: str, view_table: str, layout: TileLayout, tiles: pa.Table,
          add: bool, batch_id: str | None, marks: Mapping[str, str] | None, expire_through_us: int | None) -> int:
    rows = tile_rows(tiles, layout)
    conn.execute("BEGIN IMMEDIATE")
    try:
        table = ensure(conn, view_table, layout)
        mark = (project, view, BATCH_MARK + (batch_id or ""))
        if batch_id is not None and conn.execute(SQL.batch_applied(), mark).fetchone():
            conn.execute("ROLLBACK")
            return 0
        if add and rows:
            rows = added(layout, _stored(conn, table, layout, rows), rows)
        conn.executemany(SQL.upsert(table, layout), rows)
        conn.executemany(_NEW_VERSION, [(view_table, key) for key in {r[0] for r in rows}])
        newest = max((r[1] for r in rows), default=None)
        entries = [(project, view, name, value, None) for name, value in (marks or {}).items()]
        if batch_id is not None:
            entries.append((project, view, BATCH_MARK + batch_id, "applied", newest))
        conn.executemany(SQL.mark_upsert(), entries)
        if expire_through_us is not None:
            tiles_sql, marks_sql = SQL.expire(table)
            conn.execute(tiles_sql, (expire_through_us,))
            conn.execute(marks_sql, (project, view, expire_through_us))
            conn.execute(_NEW_VERSION, (view_table, _VIEW_ROW))
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return len(rows)


def _stored(conn: sqlite3.Connection, table: str, layout: TileLayout,
            rows: Sequence[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """The stored tile rows among the (key, end) pairs of `rows`."""
    keys = sorted({r[0] for r in rows})
    low, high = min(r[1] for r in rows) - 1, max(r[1] for r in rows)
    wanted = {(r[0], r[1]) for r in rows}
    out: list[tuple[Any, ...]] = []
    for i in range(0, len(keys), _MAX_KEYS):
        chunk = keys[i:i + _MAX_KEYS]
        out += [r for r in conn.execute(SQL.select(table, layout, len(chunk)), (*chunk, low, high))
                if (r[0], r[1]) in wanted]
    return out


def read(conn: sqlite3.Connection, view_table: str, layout: TileLayout, keys: Sequence[str], after_us: int,
         through_us: int) -> list[list[TileRow]]:
    table = quote_ident(tiles_table(view_table, layout))
    rows: list[tuple[Any, ...]] = []
    try:
        for i in range(0, len(keys), _MAX_KEYS):
            chunk = list(keys[i:i + _MAX_KEYS])
            rows += conn.execute(SQL.select(table, layout, len(chunk)), (*chunk, after_us, through_us)).fetchall()
    except sqlite3.OperationalError as e:
        if "no such table" in str(e):
            return [[] for _ in keys]  # no tile was ever written for this view
        raise
    return grouped(rows, keys)


def versions(conn: sqlite3.Connection, view_table: str, keys: Sequence[str]) -> list[tuple[int, int | None] | None]:
    """Per key, (view token, key token or None when its tiles were never written); None for every
    key when the view's tiles were never written (nothing to keep)."""
    found: dict[str, int] = {}
    try:
        for i in range(0, len(keys), _MAX_KEYS):
            chunk = list(keys[i:i + _MAX_KEYS])
            found.update(conn.execute(_versions_sql(len(chunk)), (view_table, _VIEW_ROW, *chunk)).fetchall())
    except sqlite3.OperationalError as e:
        if "no such table" in str(e):
            return [None] * len(keys)
        raise
    view_token = found.get(_VIEW_ROW)
    if view_token is None:
        return [None] * len(keys)
    return [(view_token, found.get(k)) for k in keys]


@lru_cache(maxsize=256)
def _versions_sql(n_keys: int) -> str:
    return f"SELECT key, token FROM {VERSIONS} WHERE view_table = ? AND key IN (?{', ?' * n_keys})"


def read_marks(conn: sqlite3.Connection, project: str, view: str, names: Sequence[str]) -> dict[str, str]:
    try:
        found = conn.execute(SQL.mark_select(len(names)), (project, view, *names)).fetchall()
    except sqlite3.OperationalError as e:
        if "no such table" in str(e):
            return {}
        raise
    return dict(found)
