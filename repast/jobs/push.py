"""push and write_to_online_store: fresh rows straight into the online store and/or the batch source.

Frames use the batch source's column names (as the source files do: field_mapping is applied
here). Every column every target needs is checked, by name and type, before anything is written;
a failure names the column. Online writes are latest-wins, so a push never overwrites a newer row.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from repast.aggregations.spec import events_view
from repast.definitions import DataSource, FeatureView, PushSource
from repast.errors import FeatureNotFound, InputError
from repast.jobs.row_validation import check_rows
from repast.jobs.tile_writes import push_tiles
from repast.ondemand.writes import refresh_after_write
from repast.online.base import writable
from repast.online.keys import CREATED_TS, EVENT_TS, key_types
from repast.types import Array, FeatureType, is_compatible
from repast.types.columns import ColumnTypeError, to_declared
from repast.types.timestamps import UTC_US, normalize_timestamps

if TYPE_CHECKING:
    from repast.offline.base import OfflineEngine
    from repast.online.base import OnlineReader, OnlineStore
    from repast.registry import Registry



class PushMode(enum.Enum):
    """Where `push` writes: the online store, the push source's batch source, or both."""

    ONLINE = "online"
    OFFLINE = "offline"
    ONLINE_AND_OFFLINE = "online_and_offline"


def push_mode(to: PushMode | str | None) -> PushMode:
    """A PushMode from itself, its name or value in any case ("online_and_offline"); None is ONLINE."""
    if to is None:
        return PushMode.ONLINE
    if isinstance(to, PushMode):
        return to
    text = str(to).lower()
    for mode in PushMode:
        if text in (mode.value, mode.name.lower(), f"pushmode.{mode.name.lower()}"):
            return mode
    raise InputError(f"push: to={to!r} is not one of {[m.name for m in PushMode]}")


def as_arrow(df: Any, what: str) -> pa.Table:
    """A pandas DataFrame, Arrow table/batch or dict of lists as an Arrow table."""
    if isinstance(df, pa.Table):
        return df
    if isinstance(df, pa.RecordBatch):
        return pa.Table.from_batches([df])
    if isinstance(df, dict):
        return pa.table(df)
    if hasattr(df, "columns") and hasattr(df, "dtypes"):
        try:
            return pa.Table.from_pandas(df, preserve_index=False)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
            raise InputError(f"{what}: {_unconvertible(df, e)}") from None
    raise InputError(f"{what}: expected a pandas DataFrame or an Arrow table, got {type(df).__name__}")


def _unconvertible(df: Any, error: Exception) -> str:
    """Which column and row of a DataFrame Arrow cannot convert (e.g. text inside an embedding)."""
    for name in df.columns:
        try:
            pa.array(df[name], from_pandas=True)
            continue
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            pass
        first: pa.DataType | None = None
        for row, value in enumerate(df[name]):
            try:
                arrow_type = pa.array([value], from_pandas=True).type
            except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
                return f"column '{name}', row {row}: value {value!r} cannot be converted ({e})"
            empty = pa.types.is_list(arrow_type) and pa.types.is_null(arrow_type.value_type)
            if pa.types.is_null(arrow_type) or empty:
                continue
            first = first or arrow_type
            if arrow_type != first and not (pa.types.is_integer(arrow_type) or pa.types.is_integer(first)):
                return f"column '{name}', row {row}: value {value!r} has type {arrow_type}, earlier rows {first}"
    return f"the frame cannot be converted to Arrow: {error}"


def _column(table: pa.Table, name: str, what: str) -> pa.Array:
    if name not in table.column_names:
        raise InputError(f"{what}: the frame has no column '{name}'; it has {table.column_names}")
    return table.column(name).combine_chunks()


def _feature(table: pa.Table, col: str, dtype: FeatureType, what: str) -> pa.Array:
    arr = _column(table, col, what)
    if pa.types.is_null(arr.type):
        return pa.nulls(len(arr), dtype.to_arrow())
    if not is_compatible(dtype, arr.type):
        raise InputError(f"{what}: column '{col}' has type {arr.type}, but the feature is declared {dtype}")
    try:
        return to_declared(arr, dtype)
    except ColumnTypeError as e:
        raise InputError(f"{what}: column '{col}' cannot be converted to {dtype}: {e}") from None


def _timestamp(table: pa.Table, col: str, what: str) -> pa.Array:
    arr = _column(table, col, what)
    if pa.types.is_timestamp(arr.type) or pa.types.is_date(arr.type):
        return normalize_timestamps(arr)
    raise InputError(f"{what}: column '{col}' has type {arr.type}, expected a timestamp")


def _key(table: pa.Table, col: str, dtype: FeatureType | None, what: str) -> pa.Array:
    arr = _column(table, col, what)
    t = arr.type
    ok = pa.types.is_integer(t) if dtype is not None and dtype.name in ("Int32", "Int64") else \
        pa.types.is_string(t) or pa.types.is_large_string(t) if dtype is not None and dtype.name == "String" else \
        pa.types.is_integer(t) or pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_binary(t)
    if not ok:
        expected = dtype.name if dtype is not None else "an integer, string or bytes"
        raise InputError(f"{what}: join key column '{col}' has type {t}, expected {expected}")
    if arr.null_count:
        raise InputError(f"{what}: join key column '{col}' has {arr.null_count} null value(s)")
    return arr


def view_rows(view: FeatureView, table: pa.Table, what: str) -> pa.Table:
    """Frame (batch source column names) -> the engine column contract the online stores take
    (for a view with aggregations: its events, the aggregation inputs)."""
    view = events_view(view)
    source = view.batch_source
    what = f"{what} (feature view '{view.name}')"
    cols: dict[str, pa.Array] = {}
    for key, dtype in zip(view.join_keys, key_types(view), strict=True):
        cols[key] = _key(table, source.source_column(key), dtype, what)
    for f in view.features:
        cols[f.name] = _feature(table, source.source_column(f.name), f.dtype, what)
        if f.vector_index:
            from repast.vector.semantics import check_vector_column

            check_vector_column(cols[f.name], f, view.name, cols[view.join_keys[0]] if view.join_keys else None)
    cols[EVENT_TS] = _timestamp(table, source.timestamp_field, what)
    created = source.created_timestamp_column
    cols[CREATED_TS] = _timestamp(table, created, what) if created and created in table.column_names \
        else pa.nulls(table.num_rows, UTC_US)
    rows = pa.table(cols)
    if view.enable_validation:
        check_rows(view, rows, what)
    return rows


def offline_rows(source: DataSource, views: list[FeatureView], table: pa.Table, what: str,
                 source_columns: list[str] | None = None) -> pa.Table:
    """Frame -> the rows appended to the batch source: its own column names, declared types.

    Columns of the frame that the source has (`source_columns`) but no view declares are kept
    as they are: Feast pushes whole source rows. Frame columns the source does not have are dropped."""
    cols: dict[str, pa.Array] = {}
    for view in map(events_view, views):
        for key, dtype in zip(view.join_keys, key_types(view), strict=True):
            col = source.source_column(key)
            cols[col] = _key(table, col, dtype, what)
            if dtype is not None and not isinstance(dtype, Array):
                cols[col] = pc.cast(cols[col], dtype.to_arrow())
        for f in view.features:
            cols[source.source_column(f.name)] = _feature(table, source.source_column(f.name), f.dtype, what)
            if f.vector_index:
                from repast.vector.semantics import check_vector_column

                check_vector_column(cols[source.source_column(f.name)], f, view.name, None)
    cols[source.timestamp_field] = _timestamp(table, source.timestamp_field, what)
    if source.created_timestamp_column:
        created = source.created_timestamp_column
        cols[created] = _timestamp(table, created, what) if created in table.column_names \
            else pa.nulls(table.num_rows, UTC_US)
    for name in source_columns or []:
        if name not in cols and name in table.column_names:
            cols[name] = table.column(name)
    return pa.table(cols)


def write_offline(engine: OfflineEngine, source: DataSource, views: list[FeatureView], table: pa.Table,
                  what: str) -> None:
    """Add the rows to the batch source as one new immutable part (see repast/offline/file_sources.py)."""
    rows = offline_rows(source, views, table, what, engine.source_schema(source).names)
    engine.write_rows(source, rows)


def push(registry: Registry, engine: OfflineEngine, online_store: OnlineReader, push_source_name: str, df: Any,
         to: PushMode | str | None = None) -> None:
    """Write rows of a push source to the online store (every online view reading it), its batch
    source, or both. Raises FeatureNotFound for an unknown source and InputError for a frame that does
    not match, before anything is written."""
    mode = push_mode(to)
    what = f"push to '{push_source_name}'"
    contents = registry.contents()
    source = contents.get("data_source", push_source_name)
    if not isinstance(source, PushSource):
        raise FeatureNotFound(f"data source '{push_source_name}' is a {type(source).__name__}, not a PushSource")
    views = [v for v in contents.feature_views.values()
             if isinstance(v.source, PushSource) and v.source.name == push_source_name]
    if not views:
        raise FeatureNotFound(f"no feature view reads push source '{push_source_name}'")
    table = as_arrow(df, what)
    writer = writable(online_store, f"{what} (online)") if mode is not PushMode.OFFLINE else None
    online = [(v, view_rows(v, table, what)) for v in views if v.online] \
        if writer is not None and mode in (PushMode.ONLINE, PushMode.ONLINE_AND_OFFLINE) else []
    if mode in (PushMode.OFFLINE, PushMode.ONLINE_AND_OFFLINE):
        # History first: if the online write then fails, a re-materialization still restores it.
        write_offline(engine, source.batch_source, views, table, what)
    for view, rows in online:
        assert writer is not None  # `online` is empty without one
        write_online(registry, writer, view, rows)


def write_to_online_store(registry: Registry, online_store: OnlineReader, feature_view_name: str, df: Any) -> None:
    """Write rows of one feature view (batch source column names) to the online store, checked first."""
    view = registry.contents().get("feature_view", feature_view_name)
    what = f"write_to_online_store('{feature_view_name}')"
    writer = writable(online_store, what)
    rows = view_rows(view, as_arrow(df, what), what)
    write_online(registry, writer, view, rows)


def write_online(registry: Registry, writer: OnlineStore, view: FeatureView, rows: pa.Table) -> None:
    """Checked rows into the online store: the latest row per key, or for a view with aggregations,
    its events added to the tiles (once per batch: repast.jobs.tile_writes)."""
    if view.aggregations:
        push_tiles(registry.project, writer, view, rows)
        return
    writer.write_batch(registry.project, view, rows)
    refresh_after_write(registry, writer, view, rows)


def write_to_offline_store(registry: Registry, engine: OfflineEngine, feature_view_name: str, df: Any,
                           allow_registry_cache: bool = True) -> None:
    """Append rows of one feature view (batch source column names) to its batch source, checked first."""
    contents = registry.contents() if allow_registry_cache else registry.refresh()
    view = contents.get("feature_view", feature_view_name)
    what = f"write_to_offline_store('{feature_view_name}')"
    write_offline(engine, view.batch_source, [view], as_arrow(df, what), what)
