"""Tiles computed from events: DuckDB groups an Arrow table of events by (entity key, tile start)
and computes every partial of the layout in one query (no per-row Python).

Events are in the engine column contract (join keys, input columns, event_timestamp,
created_timestamp). Ordering among events, used by first, last and last_n, is by (event_ts,
created_ts, value) with a missing created_ts below every other: one total order, so exact ties
resolve the same way here, in the read-time merge and offline.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from repast.aggregations.layout import EVENTS, KEY, MAX_ETS, TILE, InputPartials, Kind, TileLayout
from repast.online.keys import CREATED_TS, EVENT_TS, serialize_key_columns
from repast.sql_quoting import quote_ident
from repast.types.timestamps import normalize_timestamps

if TYPE_CHECKING:
    from repast.definitions import FeatureView

NO_CREATED = -(2**63)  # a missing created timestamp: below every other
_CAST: dict[Kind, Callable[[str], Any]] = {"int": int, "float": float, "text": str}


def _us(column: pa.ChunkedArray | pa.Array, n: int) -> pa.Array:
    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if pa.types.is_null(arr.type):
        return pa.nulls(n, pa.int64())
    return pc.cast(normalize_timestamps(arr), pa.int64())


def event_frame(view: FeatureView, layout: TileLayout, events: pa.Table) -> pa.Table:
    """The events as the tile query reads them: key, e, cr (microseconds) and the input columns."""
    n = events.num_rows
    keys = serialize_key_columns([events.column(k).combine_chunks() for k in view.join_keys])
    created = _us(events.column(CREATED_TS), n) if CREATED_TS in events.column_names else pa.nulls(n, pa.int64())
    cols = {KEY: keys, "e": _us(events.column(EVENT_TS), n), "cr": created}
    for name, inp in layout.inputs.items():
        cols[f"in_{name}"] = pc.cast(events.column(name), pa.int64() if inp.kind == "int"
                                     else pa.float64() if inp.kind == "float" else pa.string())
    frame = pa.table(cols)
    valid = pc.and_(pc.is_valid(frame.column(KEY)), pc.is_valid(frame.column("e")))
    return frame if pc.all(valid).as_py() is not False else frame.filter(valid)


def _input_sql(inp: InputPartials) -> tuple[list[str], list[str]]:
    """(aggregate expressions, outer selections) of one input's partials."""
    v = quote_ident(f"in_{inp.column}")
    c = inp.column
    nn = f"FILTER (WHERE {v} IS NOT NULL)"
    entry = f"{{'e': e, 'c': coalesce(cr, {NO_CREATED}), 'v': {v}}}"
    inner = [f"count({v}) AS {quote_ident(c + '__n')}"]
    outer = [quote_ident(c + "__n")]
    p = inp.partials
    if "sum" in p:
        inner.append(f"sum({v})::DOUBLE AS {quote_ident(c + '__sum')}")
        outer.append(quote_ident(c + "__sum"))
    if "m2" in p:
        inner.append(f"coalesce(var_pop({v}::DOUBLE) * count({v}), 0)::DOUBLE AS {quote_ident(c + '__m2')}")
        outer.append(quote_ident(c + "__m2"))
    for m in ("min", "max"):
        if m in p:
            inner.append(f"{m}({v}) AS {quote_ident(f'{c}__{m}')}")
            outer.append(quote_ident(f"{c}__{m}"))
    for m, agg in (("first", "min"), ("last", "max")):
        if m in p:
            s = quote_ident(f"{c}__{m}_s")
            inner.append(f"{agg}({entry}) {nn} AS {s}")
            outer += [f"{s}.v AS {quote_ident(f'{c}__{m}')}", f"{s}.e AS {quote_ident(f'{c}__{m}_e')}",
                      f"{s}.c AS {quote_ident(f'{c}__{m}_c')}"]
    if "last_n" in p:
        order = f"e DESC, coalesce(cr, {NO_CREATED}) DESC, {v} DESC"
        inner.append(f"to_json(list([e::VARCHAR, coalesce(cr, {NO_CREATED})::VARCHAR, {v}::VARCHAR] "
                     f"ORDER BY {order}) {nn})::VARCHAR AS {quote_ident(c + '__last_n_all')}")
        outer.append(f"{quote_ident(c + '__last_n_all')} AS {quote_ident(c + '__last_n')}")
    if "distinct" in p:
        inner.append(f"to_json(list(DISTINCT {v} ORDER BY {v}) {nn})::VARCHAR AS {quote_ident(c + '__distinct')}")
        outer.append(quote_ident(c + "__distinct"))
    return inner, outer


def tiles_sql(layout: TileLayout, min_tile_us: int | None) -> str:
    """The query from the `events` relation (event_frame) to tile rows in layout order."""
    g = layout.tile_us
    # The tile's end, ceil(e / g) * g: tiles are (end - g, end] (definitions.aggregation.tile_end);
    # right whether % truncates or floors.
    inner = [f"{KEY}", f"(e + (({g} - e % {g}) % {g})) AS {TILE}", f"count(*) AS {EVENTS}", f"max(e) AS {MAX_ETS}"]
    outer = [KEY, TILE, EVENTS, MAX_ETS]
    for inp in layout.inputs.values():
        i, o = _input_sql(inp)
        inner += i
        outer += o
    where = f"WHERE {TILE} >= {min_tile_us}" if min_tile_us is not None else ""
    return (f"SELECT {', '.join(outer)} FROM (SELECT {', '.join(inner)} FROM events GROUP BY ALL) {where} "
            f"ORDER BY {KEY}, {TILE}")


def compute_tiles(view: FeatureView, layout: TileLayout, events: pa.Table,
                  min_tile_us: int | None = None) -> pa.Table:
    """Tile rows (key, tile start, layout columns) of `events`, tiles ending at or after `min_tile_us`."""
    import duckdb

    frame = event_frame(view, layout, events)  # noqa: F841 - read by name in the query
    conn = duckdb.connect()
    try:
        conn.register("events", frame)
        table = conn.sql(tiles_sql(layout, min_tile_us)).to_arrow_table()
    finally:
        conn.close()
    return _cap_last_n(layout, table)


def _cap_last_n(layout: TileLayout, table: pa.Table) -> pa.Table:
    """last_n lists cut to k entries (JSON text); an empty list for no values."""
    import json

    for inp in layout.inputs.values():
        if "last_n" not in inp.partials:
            continue
        name = f"{inp.column}__last_n"
        idx = table.column_names.index(name)
        texts = table.column(name).to_pylist()
        # Cut per tile: a bounded list, k at most (a Python pass over tiles, not over events).
        cast = _CAST[inp.kind]
        cut = [json.dumps([[int(e), int(c), cast(v)] for e, c, v in json.loads(t)[:inp.last_n]]) if t else "[]"
               for t in texts]
        table = table.set_column(idx, name, pa.array(cut, pa.string()))
    return table


def empty_tiles(layout: TileLayout) -> pa.Table:
    """No tile rows, in the layout's columns."""
    types = {"int": pa.int64(), "float": pa.float64(), "text": pa.string()}
    return pa.table({KEY: pa.array([], pa.string()), TILE: pa.array([], pa.int64()),
                     **{n: pa.array([], types[k]) for n, k in layout.columns}})
