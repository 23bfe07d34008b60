"""Windowed aggregations for training data, exactly from the raw events, in the engine's SQL.

For each entity row (keys k, time t) and each aggregation of window W, the value aggregates the
view's events with keys k and t - W < event_timestamp <= t (the window rule of
repast/definitions/aggregation.py, which the online tiles follow too). The query is one range join
of the key frame to the view's rows on the keys and the widest window, grouped by entity row; a
narrower window keeps its events with a CASE inside its aggregate. Every event counts (no dedup
by event or created time); nulls are ignored; an empty window gives null (count: 0). last, first
and last_n order events by (event time, created time (null first), place in the source): the
tie rule of point-in-time joins, so `last` is the value a point-in-time join would pick.

The dialects differ only where SQL does: `minus_micros` (timestamp arithmetic), `float_type`, and
`ordered_aggregate_sql` (last / first / last_n).
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
EVENT_ALIAS = "__a"  # the view's rows in the join; ordered_aggregate_sql reads __ts, __created, __place


def aggregate_view_sql(engine: SQLOfflineEngine, vr: ViewRequest, keys_table: str) -> str:
    """One row per entity row of `keys_table`: ROW as `__row`, then each requested aggregation
    named `vr.output_name(feature, True)`."""
    view, src = vr.view, vr.view.batch_source
    by_name = {a.feature_name: a for a in view.aggregations}
    wanted = [by_name[f] for f in vr.read_features]
    inputs = list(dict.fromkeys(a.column for a in wanted))
    widest = max(a.window_us for a in wanted)
    ts = engine.timestamp(src.timestamp_field)
    columns = [f"{q(src.source_column(k))} AS __k{j}" for j, k in enumerate(view.join_keys)]
    columns += [f"{q(src.source_column(c))} AS __c{j}" for j, c in enumerate(inputs)]
    columns.append(f"{ts} AS __ts")
    if any(a.kind in ORDERED_KINDS for a in wanted):
        created = engine.timestamp(src.created_timestamp_column) if src.created_timestamp_column \
            else engine.null_timestamp
        columns += [f"{created} AS __created", f"{engine.source_place(src)} AS __place"]
    a = EVENT_ALIAS
    on = [f"k.{q(c)} = {a}.__k{j}" for j, c in enumerate(vr.request_columns())]
    on += [f"{a}.__ts > {engine.minus_micros(f'k.{TS}', widest)}", f"{a}.__ts <= k.{TS}"]
    selects = [f"k.{ROW} AS __row"]
    types = {f.name: f.dtype.name for f in view.features}
    for agg in wanted:
        value = f"{a}.__c{inputs.index(agg.column)}"
        if agg.window_us < widest:
            value = f"CASE WHEN {a}.__ts > {engine.minus_micros(f'k.{TS}', agg.window_us)} THEN {value} END"
        output = q(vr.output_name(agg.feature_name, True))
        selects.append(f"{aggregate_sql(engine, agg, value, types[agg.feature_name])} AS {output}")
    rows = f"SELECT {', '.join(columns)} FROM {engine.relation(src)} WHERE {ts} IS NOT NULL"
    return (f"SELECT {', '.join(selects)} FROM {keys_table} k LEFT JOIN ({rows}) {a} ON {' AND '.join(on)} "
            f"GROUP BY k.{ROW}")


def aggregate_sql(engine: SQLOfflineEngine, agg: Aggregation, value: str, output_type: str) -> str:
    """The SQL aggregate of `value` (NULL outside the aggregation's window) for one aggregation
    whose feature is of type `output_type`."""
    kind, double = agg.kind, engine.float_type
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
    return engine.ordered_aggregate_sql(kind, value, agg.n or 1)

