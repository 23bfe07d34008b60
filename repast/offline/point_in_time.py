"""Engine-neutral point-in-time planning: what every offline engine checks, joins and returns.

An engine gets an entity input and a FeatureRequest. It checks the entity frame's columns here
(`check_entity`), joins a narrow key frame (`key_frame`: join keys, the timestamp as TS, the row
number as ROW) in its own dialect, and hands one feature column per requested view feature back
to `assemble`, which appends them to the untouched entity columns and runs on-demand views. Every
engine shares these steps, so they name, type and order the output identically.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from repast.errors import EntityKeyError, InputError
from repast.ondemand.transform import apply_on_demand
from repast.types import is_compatible
from repast.types.columns import offline_column
from repast.types.timestamps import normalize_timestamps

if TYPE_CHECKING:
    from repast.definitions import DataSource
    from repast.definitions.feature_refs import FeatureRequest

ROW = "__repast_row"  # entity row number: joins restore the entity frame's order with it
TS = "__repast_ts"  # the entity timestamp as timestamp[us, UTC]
TIMESTAMP_COLUMN = "event_timestamp"


def spine_columns(request: FeatureRequest) -> list[str]:
    """The columns of a spine built from view rows: every join-key column, then the timestamp."""
    return [*request.entity_columns(), TIMESTAMP_COLUMN]


def entity_timestamp_column(schema: pa.Schema) -> str:
    """`event_timestamp` if present; otherwise the one timestamp column (as Feast infers it)."""
    if TIMESTAMP_COLUMN in schema.names:
        return TIMESTAMP_COLUMN
    candidates = [f.name for f in schema if pa.types.is_timestamp(f.type)]
    if len(candidates) != 1:
        raise InputError(f"entity frame has no '{TIMESTAMP_COLUMN}' column and "
                         f"{f'several timestamp columns {candidates}' if candidates else 'no timestamp column'}: "
                         f"add an '{TIMESTAMP_COLUMN}' column of timestamps (columns: {schema.names})")
    return str(candidates[0])


def _kind(t: pa.DataType) -> str:
    """The family of a key type: keys of the same family compare (int32 with int64, ...)."""
    if pa.types.is_dictionary(t):
        return _kind(t.value_type)
    for name, test in (("integer", pa.types.is_integer), ("float", pa.types.is_floating),
                       ("string", lambda x: pa.types.is_string(x) or pa.types.is_large_string(x)),
                       ("binary", lambda x: pa.types.is_binary(x) or pa.types.is_large_binary(x)),
                       ("timestamp", pa.types.is_timestamp), ("boolean", pa.types.is_boolean)):
        if test(t):
            return name
    return str(t)


def check_entity(schema: pa.Schema, request: FeatureRequest,
                 source_schema: Callable[[DataSource], pa.Schema] | None = None) -> str:
    """Check an entity frame's columns against the request; returns its timestamp column.

    With `source_schema`, join key types are compared with the sources' too.
    """
    ts = entity_timestamp_column(schema)
    ts_type = schema.field(ts).type
    if not (pa.types.is_timestamp(ts_type) or pa.types.is_date(ts_type)):
        raise InputError(f"entity frame column '{ts}' has type {ts_type}; it must hold timestamps "
                         "(convert it, e.g. with pandas.to_datetime)")
    for vr in request.views:
        src_schema = source_schema(vr.view.batch_source) if source_schema else None
        for key, col in zip(vr.view.join_keys, vr.request_columns(), strict=True):
            if col not in schema.names:
                raise EntityKeyError(f"entity frame has no column '{col}', the join key '{key}' of feature "
                                     f"view '{vr.name}' (columns: {schema.names})")
            src_col = vr.view.batch_source.source_column(key)
            if src_schema is not None and src_col in src_schema.names:
                mine, theirs = schema.field(col).type, src_schema.field(src_col).type
                if _kind(mine) != _kind(theirs):
                    raise EntityKeyError(f"entity frame column '{col}' is {mine} but join key '{key}' of feature "
                                         f"view '{vr.name}' is {theirs} in its source")
    declared = {f.name: (rs.name, f.dtype) for odr in request.on_demand
                for rs in odr.view.request_sources for f in rs.schema}
    for col in request.request_columns:
        if col not in schema.names:
            raise InputError(f"entity frame has no column '{col}', a request field an on-demand view needs "
                             f"(columns: {schema.names})")
        rs_name, dtype = declared[col]
        col_type = schema.field(col).type
        if dtype.name != "UnixTimestamp" and not pa.types.is_null(col_type) and not is_compatible(dtype, col_type):
            raise InputError(f"entity frame column '{col}' has type {col_type}, but request source '{rs_name}' "
                             f"declares it {dtype.name}")
    for name in request.output_names:
        if name in schema.names:
            raise InputError(f"feature output column '{name}' is also a column of the entity frame; rename "
                             "that column or pass full_feature_names=True")
    return ts


def _plain(column: pa.ChunkedArray) -> pa.ChunkedArray:
    return column.cast(column.type.value_type) if pa.types.is_dictionary(column.type) else column


def key_frame(entity: pa.Table, ts: str, request: FeatureRequest) -> pa.Table:
    """What the engine joins: the join-key columns, TS (timestamp[us, UTC]) and ROW (0..n-1)."""
    columns = {c: _plain(entity.column(c)) for c in request.entity_columns()}
    columns[TS] = normalize_timestamps(entity.column(ts))
    columns[ROW] = pa.array(np.arange(entity.num_rows, dtype=np.int64))
    return pa.table(columns)


def assemble(entity: pa.Table, ts: str, features: pa.Table, request: FeatureRequest,
             full_feature_names: bool) -> pa.Table:
    """The output frame: entity columns, then each requested feature under its output name.

    `features` holds one row per entity row, in entity order, each view feature (hidden ones
    too) named `projection__feature`. Features are cast to their declared types, on-demand views
    run, and hidden features are dropped.
    """
    entity = entity.set_column(entity.schema.get_field_index(ts), ts, normalize_timestamps(entity.column(ts)))
    joined = entity
    outputs: dict[str, str] = {}  # output name -> column of `joined`
    for vr in request.views:
        types = {f.name: f.dtype for f in vr.view.features}
        for feature in vr.read_features:
            internal = vr.output_name(feature, True)
            column = offline_column(features.column(internal), types[feature])
            joined = joined.append_column(internal, column)
            if feature in vr.features:
                outputs[vr.output_name(feature, full_feature_names)] = internal
    if request.on_demand:
        joined = apply_on_demand(joined, request.on_demand, full_feature_names)
        outputs.update({o: o for o in request.output_names if o not in outputs})
    names = entity.column_names + request.output_names
    arrays = entity.columns + [joined.column(outputs[o]) for o in request.output_names]
    return pa.Table.from_arrays(arrays, names=names)

