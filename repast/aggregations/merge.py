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
from collections.abc import Mapping, Sequence
from typing import Any

from repast.aggregations.layout import InputPartials, TileLayout
from repast.aggregations.spec import TiledAggregation, window_start_us
from repast.definitions.aggregation import tile_end

TileRow = tuple[Any, ...]  # (tile end, *layout columns)


def _present(values: Sequence[Any]) -> list[Any]:
    return [v for v in values if v is not None]


def fold_input(inp: InputPartials, cols: Mapping[str, Sequence[Any]]) -> dict[str, Any]:
    """One input's partials over several tiles (columns of equal length) as one partial."""
    c = inp.column
    ns = cols[f"{c}__n"]
    out: dict[str, Any] = {f"{c}__n": sum(n for n in ns if n)}
    p = inp.partials
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
            e, cr, v = pick(entries) if entries else (None, None, None)
            out.update({f"{c}__{m}": v, f"{c}__{m}_e": e, f"{c}__{m}_c": cr})
    if "last_n" in p:
        entries = [tuple(x) for t in cols[f"{c}__last_n"] if t for x in json.loads(t)]
        out[f"{c}__last_n"] = json.dumps([list(x) for x in heapq.nlargest(inp.last_n, entries)])
    if "distinct" in p:
        values = {x for t in cols[f"{c}__distinct"] if t for x in json.loads(t)}
        out[f"{c}__distinct"] = json.dumps(sorted(values))
    return out


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
    return (rows[0][0], *(out[n] for n in names))


def finalize(agg: TiledAggregation, folded: dict[str, Any]) -> Any:
    """The aggregation's value from its input's folded partials."""
    c, f = agg.column, agg.function
    n = folded[f"{c}__n"]
    if f == "count":
        return n
    if f == "count_distinct":
        return len(json.loads(folded[f"{c}__distinct"]))
    if f == "last_n":  # null, not [], without a value (as every function but the counts)
        return None if not n else [x[2] for x in reversed(json.loads(folded[f"{c}__last_n"])[:agg.n])]  # oldest first
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


def values_at(layout: TileLayout, rows: Sequence[TileRow], t_us: int,
              aggregations: Sequence[TiledAggregation]) -> tuple[list[Any], list[int | None]]:
    """Per aggregation, (value, newest event time in its window or None when the window has no
    event) at t, from one key's tile rows sorted by tile end. Tiles after t's own hold only events
    later than t (pushed ahead of time): they are left out."""
    names = layout.column_names
    index = {name: i + 1 for i, name in enumerate(names)}
    ends = [r[0] for r in rows]
    end = bisect.bisect_right(ends, tile_end(t_us, layout.tile_us))
    values: list[Any] = []
    newest: list[int | None] = []
    for agg in aggregations:
        window = rows[bisect.bisect_right(ends, window_start_us(t_us, agg.window_us, agg.tile_us), 0, end):end]
        inp = layout.inputs[agg.column]
        cols = {name: [r[index[name]] for r in window] for name, _ in inp.columns()}
        values.append(finalize(agg, fold_input(inp, cols)))
        times = [r[index["_max_ets"]] for r in window if r[index["_events"]]]
        newest.append(max(times) if times else None)
    return values, newest
