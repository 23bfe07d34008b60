"""Tile storage in a SQL online store (SQLite, PostgreSQL): one table per view and tile layout.

Table `<view table>__tiles_<layout hash>`, primary key (_entity_key, _tile_end), one typed
column per partial (repast.aggregations.layout); a changed layout is a new table, and the old
one is dropped at the next apply. Applied push batches and callers' marks (a stream consumer's
offsets) live in `repast_online_tile_marks`, written in the same transaction as the tiles.

Idempotence: materialization REPLACES whole tiles it recomputed from the offline source; a push
ADDS its partials to the stored tiles (read, fold, write, under the view's write lock) and records
its batch id, so the same batch applied again is a no-op.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from repast.aggregations.layout import KEY, TILE, Kind, TileLayout
from repast.aggregations.merge import TileRow, fold_rows
from repast.sql_quoting import quote_ident

MARKS = "repast_online_tile_marks"
BATCH_MARK = "batch:"


def tiles_table(view_table: str, layout: TileLayout) -> str:
    """The unquoted tile table name of a view's table and layout."""
    digest = hashlib.sha1(layout.signature().encode()).hexdigest()[:10]
    return f"{view_table}__tiles_{digest}"


def tile_rows(tiles: pa.Table, layout: TileLayout) -> list[tuple[Any, ...]]:
    """(key, tile end, *partials) per tile row, as Python values for executemany."""
    cols = [tiles.column(c).to_pylist() for c in (KEY, TILE, *layout.column_names)]
    return list(zip(*cols, strict=True))


@dataclass(frozen=True)
class TileSQL:
    """The statements of one store's dialect: `p` is its parameter marker."""

    p: str
    types: Mapping[Kind, str]
    key_type: str
    marks: str = MARKS  # the (quoted, qualified) marks table

    def create(self, table: str, layout: TileLayout) -> list[str]:
        cols = "".join(f", {quote_ident(n)} {self.types[k]}" for n, k in layout.columns)
        return [f"CREATE TABLE IF NOT EXISTS {table} ({KEY} {self.key_type} NOT NULL, {TILE} BIGINT NOT NULL"
                f"{cols}, PRIMARY KEY ({KEY}, {TILE}))",
                f"CREATE TABLE IF NOT EXISTS {self.marks} (project TEXT NOT NULL, view TEXT NOT NULL, "
                f"name TEXT NOT NULL, value TEXT, tile_end BIGINT, PRIMARY KEY (project, view, name))"]

    def upsert(self, table: str, layout: TileLayout) -> str:
        names = [KEY, TILE, *(quote_ident(n) for n in layout.column_names)]
        sets = ", ".join(f"{n} = excluded.{n}" for n in names[2:])
        return (f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join([self.p] * len(names))}) "
                f"ON CONFLICT ({KEY}, {TILE}) DO UPDATE SET {sets}")

    def select(self, table: str, layout: TileLayout, n_keys: int) -> str:
        cols = ", ".join([KEY, TILE, *(quote_ident(n) for n in layout.column_names)])
        keys = ", ".join([self.p] * n_keys)
        return (f"SELECT {cols} FROM {table} WHERE {KEY} IN ({keys}) AND {TILE} > {self.p} AND {TILE} <= {self.p} "
                f"ORDER BY {KEY}, {TILE}")

    def mark_upsert(self) -> str:
        return (f"INSERT INTO {self.marks} VALUES ({', '.join([self.p] * 5)}) ON CONFLICT (project, view, name) "
                "DO UPDATE SET value = excluded.value, tile_end = excluded.tile_end")

    def batch_applied(self) -> str:
        return f"SELECT 1 FROM {self.marks} WHERE project = {self.p} AND view = {self.p} AND name = {self.p}"

    def mark_select(self, n: int) -> str:
        return f"SELECT name, value FROM {self.marks} WHERE project = {self.p} AND view = {self.p} AND name IN " \
               f"({', '.join([self.p] * n)})"

    def expire(self, table: str) -> list[str]:
        """Tiles ending at or before a time, and batch marks of no later tile: outside every window
        (caller marks carry no tile end and stay)."""
        return [f"DELETE FROM {table} WHERE {TILE} <= {self.p}",
                f"DELETE FROM {self.marks} WHERE project = {self.p} AND view = {self.p} AND tile_end <= {self.p}"]


Row = tuple[Any, ...]  # (key, tile end, *partials)


def added(layout: TileLayout, stored: Sequence[Row], new: Sequence[Row]) -> list[Row]:
    """The rows to write when `new` tile rows (key, end, ...) are added to the `stored` ones."""
    by_tile: dict[tuple[Any, Any], list[TileRow]] = {}
    for row in (*stored, *new):
        by_tile.setdefault((row[0], row[1]), []).append(row[1:])
    return [(key, *fold_rows(layout, rows)) if len(rows) > 1 else (key, *rows[0])
            for (key, _), rows in by_tile.items()]


def grouped(rows: Sequence[tuple[Any, ...]], keys: Sequence[str]) -> list[list[TileRow]]:
    """Rows (key, end, ...) sorted by key then end, as each requested key's tile rows, in order."""
    found: dict[Any, list[TileRow]] = {}
    for row in rows:
        found.setdefault(row[0], []).append(row[1:])
    return [found.get(k, []) for k in keys]
