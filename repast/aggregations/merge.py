"""Tile rows folded into one partial (a push adding to a stored tile, or a read over a window),
and the value of each aggregation at time t from its window's tiles.

One fold serves both uses, so a pushed tile and a read agree by construction. Tile rows are
tuples in layout order after (tile start): see layout.py.
"""

from __future__ import annotations

import bisect
import heapq
import json
import math
from collections.abc import Collection, Mapping, Sequence
from itertools import compress
from typing import Any

from repast.aggregations.layout import InputPartials, TileLayout
from repast.aggregations.spec import PARTIALS, TiledAggregation
from repast.definitions.aggregation import tile_end, window_start_us

TileRow = tuple[Any, ...]  # (tile end, *layout columns)


def _present(values: Sequence[Any]) -> list[Any]:
    return [v for v in values if v is not None]


def fold_input(inp: InputPartials, cols: Mapping[str, Sequence[Any]], partials: Collection[str] | None = None,
               in_time_order: bool = False) -> dict[str, Any]:
    """One input's partials over several tile rows (columns of equal length) as one partial; last_n
    and distinct as Python lists. `partials`: only these (default: all the input keeps).
    `in_time_order`: the rows are distinct tiles, oldest first (a read's window), so first, last
    and last_n are found in the oldest / newest tiles with values without looking at the rest."""
    c = inp.column
    ns = cols[f"{c}__n"]
    out: dict[str, Any] = {f"{c}__n": sum(filter(None, ns))}
    p = inp.partials if partials is None else partials
    if "sum" in p:
        sums = _present(cols[f"{c}__sum"])
        out[f"{c}__sum"] = sum(sums) if sums else None
    if "m2" in p:
        out[f"{c}__m2"] = _m2(ns, cols[f"{c}__sum"], cols[f"{c}__m2"])
    for m, pick in (("min", min), ("max", max)):
        if m in p:
            vals = _present(cols[f"{c}__{m}"])
            out[f"{c}__{m}"] = pick(vals) if vals else None
    for m, pick in (("first", min), ("last", max)):
        if m in p:
            entries = [(e, cr, v) for v, e, cr in zip(cols[f"{c}__{m}"], cols[f"{c}__{m}_e"], cols[f"{c}__{m}_c"],
                                                      strict=True) if v is not None]
            if in_time_order and entries:
                entries = [entries[0] if m == "first" else entries[-1]]
            e, cr, v = pick(entries) if entries else (None, None, None)
            out.update({f"{c}__{m}": v, f"{c}__{m}_e": e, f"{c}__{m}_c": cr})
    if "last_n" in p:
        out[f"{c}__last_n"] = _last_n(cols[f"{c}__last_n"], inp.last_n, in_time_order)
    if "distinct" in p:
        out[f"{c}__distinct"] = sorted({x for t in cols[f"{c}__distinct"] if t for x in json.loads(t)})
    return out


def _last_n(lists: Sequence[str | None], k: int, in_time_order: bool) -> list[list[Any]]:
    """The k greatest [event, created, value] of the tiles' lists (each newest first); in time
    order, from the newest tiles only, until k are found."""
    entries: list[tuple[Any, ...]] = []
    for text in (reversed(lists) if in_time_order else lists):
        if text:
            entries += [tuple(x) for x in json.loads(text)]
            if in_time_order and len(entries) >= k:
                break
    return [list(x) for x in heapq.nlargest(k, entries)]


def _m2(ns: Sequence[Any], sums: Sequence[Any], m2s: Sequence[Any]) -> float:
    """Chan et al.: the sum of squared deviations of the union from the tiles' (n, sum, m2)."""
    parts = [(n, s, m) for n, s, m in zip(ns, sums, m2s, strict=True) if n]
    if not parts:
        return 0.0
    total = sum(n for n, _, _ in parts)
    mean = sum(s for _, s, _ in parts) / total
    return math.fsum(m + n * (s / n - mean) ** 2 for n, s, m in parts)


def fold_rows(layout: TileLayout, rows: Sequence[TileRow]) -> TileRow:
    """Several rows of ONE tile (a stored tile and a pushed one) as one row, tile end kept."""
    names = layout.column_names
    cols = {name: [r[i + 1] for r in rows] for i, name in enumerate(names)}
    out: dict[str, Any] = {"_events": sum(cols["_events"]), "_max_ets": max(cols["_max_ets"])}
    for inp in layout.inputs.values():
        out.update(fold_input(inp, cols))
    return (rows[0][0], *(json.dumps(out[n]) if isinstance(out[n], list) else out[n] for n in names))


def finalize(agg: TiledAggregation, folded: dict[str, Any]) -> Any:
    """The aggregation's value from its input's folded partials."""
    c, f = agg.column, agg.function
    n = folded[f"{c}__n"]
    if f == "count":
        return n
    if f == "count_distinct":
        return len(folded[f"{c}__distinct"])
    if f == "last_n":  # null, not [], without a value (as every function but the counts); oldest first
        return None if not n else [x[2] for x in reversed(folded[f"{c}__last_n"][:agg.n])]
    if f in ("min", "max", "first", "last"):
        return folded[f"{c}__{f}"]
    if f == "sum":
        return folded[f"{c}__sum"] if n else None
    if f == "mean":
        return folded[f"{c}__sum"] / n if n else None
    if n < 2:  # sample variance and stddev
        return None
    variance = folded[f"{c}__m2"] / (n - 1)
    return variance if f == "variance" else math.sqrt(variance)


def window_bounds(layout: TileLayout, start_us: int, end_us: int) -> tuple[int, int]:
    """(L, R) of the window (start, end] (end a fine tile end): fine tiles cover (start, L] and
    (R, end], coarse tiles (L, R]; L == R when the window holds no whole coarse tile."""
    c = layout.coarse_us
    if not c:
        return end_us, end_us
    left = min(tile_end(start_us, c), end_us)
    return left, max(left, end_us - end_us % c)


def values_at(layout: TileLayout, rows: Sequence[TileRow], t_us: int, aggregations: Sequence[TiledAggregation],
              coarse: Sequence[TileRow] = ()) -> tuple[list[Any], list[int | None]]:
    """Per aggregation, (value, newest event time in its window or None when the window has no
    event) at t, from one key's fine tile rows and coarse tile rows (when the layout keeps them),
    each sorted by tile end. Tiles after t's own hold only events later than t (pushed ahead of
    time): they are left out. Aggregations of one column over one window share one fold."""
    index = {name: i + 1 for i, name in enumerate(layout.column_names)}
    ends, coarse_ends = [r[0] for r in rows], [r[0] for r in coarse]
    end_us = tile_end(t_us, layout.tile_us)
    folds: dict[tuple[str, int], tuple[dict[str, Any], int | None]] = {}
    values: list[Any] = []
    newest: list[int | None] = []
    for agg in aggregations:
        start = window_start_us(t_us, agg.window_us, agg.tile_us)
        key = (agg.column, start)
        if key not in folds:
            left, right = window_bounds(layout, start, end_us)
            window = [*rows[bisect.bisect_right(ends, start):bisect.bisect_right(ends, left)],
                      *coarse[bisect.bisect_right(coarse_ends, left):bisect.bisect_right(coarse_ends, right)],
                      *rows[bisect.bisect_right(ends, right):bisect.bisect_right(ends, end_us)]]
            folds[key] = _fold_window(layout, index, window, agg.column, aggregations)
        folded, time = folds[key]
        values.append(finalize(agg, folded))
        newest.append(time)
    return values, newest


def _fold_window(layout: TileLayout, index: Mapping[str, int], window: Sequence[TileRow], column: str,
                 aggregations: Sequence[TiledAggregation]) -> tuple[dict[str, Any], int | None]:
    """The folded partials of `column` that the requested aggregations need, and the window's newest event time."""
    inp = layout.inputs[column]
    needed = {p for a in aggregations if a.column == column for p in PARTIALS[a.function]}
    if not window:
        return fold_input(inp, {n: () for n, _ in inp.columns(needed)}, needed, in_time_order=True), None
    columns = list(zip(*window, strict=True))  # one transposition in C, then columns by position
    cols = {n: columns[index[n]] for n, _ in inp.columns(needed)}
    latest = max(compress(columns[index["_max_ets"]], columns[index["_events"]]), default=None)
    return fold_input(inp, cols, needed, in_time_order=True), latest
