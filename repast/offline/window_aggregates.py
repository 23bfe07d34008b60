"""Windowed aggregations for training data, exactly from the raw events, in the engine's SQL.

For each entity row (keys k, time t) and each aggregation of window W and tile interval S, the
value aggregates the view's events with keys k and  E - W < event_timestamp <= t,  E the end of
the epoch-aligned tile holding t: THE window rule of repast/definitions/aggregation.py
(`window_start_us`), which the online tiles merge exactly. In SQL the start is
t - (W - (S - epoch_us(t) % S) % S), right whether % truncates (negative epochs) or not. The
query is one range join of the key frame to the view's rows on the keys and a window containing
every requested one (t - widest W, or the exact start when all share one (W, S)), grouped by entity
row; an aggregation whose start is not the join's keeps its events with a CASE inside its
aggregate, which needs no FILTER, so it is portable. Every event counts (no dedup by event or
created time); nulls are ignored; an empty window gives null (count: 0). last, first and last_n
order events by (event time, created time (null first), value), as the tiles do.

The dialects differ only where SQL does: `minus_micros` and `epoch_micros_sql` (timestamp
arithmetic), `double_type`, and `ordered_aggregate_sql` (last / first / last_n).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from repast.offline.point_in_time import ROW, TS
from repast.sql_quoting import quote_ident

if TYPE_CHECKING:
    from repast.definitions.aggregation import Aggregation
    from repast.definitions.feature_refs import ViewRequest
    from repast.offline.sql_base import SQLOfflineEngine

q = quote_ident
ORDERED_KINDS = ("last", "first", "last_n")
EVENT_ALIAS = "__a"  # the view's rows in the join; ordered_aggregate_sql reads __ts, __created


def aggregate_view_sql(engine: SQLOfflineEngine, vr: ViewRequest, keys_table: str) -> str:
    """One row per entity row of `keys_table`: ROW as `__row`, then each requested aggregation
    named `vr.output_name(feature, True)`."""
    view, src = vr.view, vr.view.batch_source
    by_name = {a.feature_name: a for a in view.aggregations}
    wanted = [by_name[f] for f in vr.read_features]
    inputs = list(dict.fromkeys(a.column for a in wanted))
    ts = engine.timestamp(src.timestamp_field)
    columns = [f"{q(src.source_column(k))} AS __k{j}" for j, k in enumerate(view.join_keys)]
    columns += [f"{q(src.source_column(c))} AS __c{j}" for j, c in enumerate(inputs)]
    columns.append(f"{ts} AS __ts")
    if any(a.kind in ORDERED_KINDS for a in wanted):
        created = engine.timestamp(src.created_timestamp_column) if src.created_timestamp_column \
            else engine.null_timestamp
        columns.append(f"{created} AS __created")
    a = EVENT_ALIAS
    shapes = {(agg.window_us, agg.tile_us) for agg in wanted}
    # The join's start contains every window: the exact one when all share it, else t - widest W.
    joined = window_start_sql(engine, *next(iter(shapes))) if len(shapes) == 1 \
        else engine.minus_micros(f"k.{TS}", max(w for w, _ in shapes))
    on = [f"k.{q(c)} = {a}.__k{j}" for j, c in enumerate(vr.request_columns())]
    on += [f"{a}.__ts > {joined}", f"{a}.__ts <= k.{TS}"]
    selects = [f"k.{ROW} AS __row"]
    types = {f.name: f.dtype.name for f in view.features}
    for agg in wanted:
        value = f"{a}.__c{inputs.index(agg.column)}"
        if len(shapes) > 1:
            value = f"CASE WHEN {a}.__ts > {window_start_sql(engine, agg.window_us, agg.tile_us)} " \
                    f"THEN {value} END"
        output = q(vr.output_name(agg.feature_name, True))
        selects.append(f"{aggregate_sql(engine, agg, value, types[agg.feature_name])} AS {output}")
    rows = f"SELECT {', '.join(columns)} FROM {engine.relation(src)} WHERE {ts} IS NOT NULL"
    return (f"SELECT {', '.join(selects)} FROM {keys_table} k LEFT JOIN ({rows}) {a} ON {' AND '.join(on)} "
            f"GROUP BY k.{ROW}")


def window_start_sql(engine: SQLOfflineEngine, window_us: int, tile_us: int) -> str:
    """The excluded start of the window at the entity row's time k.TS: window_start_us in SQL,
    tile_end(t) - W = t - (W - (S - t % S) % S) with t in epoch microseconds."""
    epoch = engine.epoch_micros_sql(f"k.{TS}")
    return engine.minus_micros(f"k.{TS}", f"({window_us} - ({tile_us} - {epoch} % {tile_us}) % {tile_us})")


def aggregate_sql(engine: SQLOfflineEngine, agg: Aggregation, value: str, output_type: str) -> str:
    """The SQL aggregate of `value` (NULL outside the aggregation's window) for one aggregation
    whose feature is of type `output_type`."""
    kind, double = agg.kind, engine.double_type
    if kind == "count":
        return f"COUNT({value})"
    if kind == "count_distinct":
        return f"COUNT(DISTINCT {value})"
    if kind == "sum":
        return f"CAST(SUM({value}) AS {'BIGINT' if output_type == 'Int64' else double})"
    if kind in ("mean", "stddev", "variance"):
        function = {"mean": "AVG", "stddev": "STDDEV_SAMP", "variance": "VAR_SAMP"}[kind]
        return f"CAST({function}(CAST({value} AS {double})) AS {double})"
    if kind in ("min", "max"):
        return f"{kind.upper()}({value})"
    return engine.ordered_aggregate_sql(kind, value, agg.n or 1, text=output_type in ("String", "Array(String)"))

