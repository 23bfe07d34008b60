"""Arrow columns made to hold a declared feature type, for every write and read path.

Scalars and arrays are plain Arrow casts. The nested types need more than a cast, and this is the
one place that knows how: Json is JSON text (nested columns are serialized, text is checked to
parse), Map keeps a source's own map<string, X> (a pandas column of dicts arrives as a struct and
becomes a map), Struct fields are cast one by one (a missing field is null), and Set drops
duplicates within each value.
"""

from __future__ import annotations

from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from repast.types import Array, FeatureType, Set, Struct


class ColumnTypeError(ValueError):
    """The column cannot hold the declared type; the message says why (callers add where)."""


def json_default(value: Any) -> Any:
    """orjson fallback for values JSON has no form for: bytes as hex, Decimal and others as text."""
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def to_declared(arr: pa.Array, dtype: FeatureType) -> pa.Array:
    """`arr` as the Arrow form of `dtype` (see the module docstring); raises ColumnTypeError."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if pa.types.is_null(arr.type):
        return pa.nulls(len(arr), dtype.to_arrow())
    try:
        if isinstance(dtype, Struct):
            return _struct(arr, dtype)
        if dtype.name == "Json":
            return _json_text(arr)
        if dtype.name == "Map":
            return _map(arr)
        target = dtype.to_arrow()
        out = arr if arr.type == target else pc.cast(arr, target, safe=dtype.name != "UnixTimestamp")
        if isinstance(dtype, Set):
            out = _unique_per_row(out, target)
        return out
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError, orjson.JSONDecodeError) as e:
        raise ColumnTypeError(str(e)) from None


def _json_text(arr: pa.Array) -> pa.Array:
    if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
        for v in arr.to_pylist():
            if v is not None:
                orjson.loads(v)  # invalid JSON text is refused before it is stored
        return pc.cast(arr, pa.string())
    values = _plain_python(arr)
    return pa.array([None if v is None else orjson.dumps(v, default=json_default).decode() for v in values],
                    pa.string())


def _plain_python(arr: pa.Array) -> list[Any]:
    """Python values with Arrow maps as dicts (Arrow gives them as lists of pairs)."""
    values = arr.to_pylist()
    if pa.types.is_map(arr.type):
        return [None if v is None else dict(v) for v in values]
    return values  # type: ignore[no-any-return]


def _map(arr: pa.Array) -> pa.Array:
    if pa.types.is_map(arr.type):
        return arr
    if not pa.types.is_struct(arr.type):
        raise ColumnTypeError(f"a Map feature needs a map or a column of dicts, got {arr.type}")
    rows = [None if d is None else [(k, v) for k, v in d.items() if v is not None] for d in arr.to_pylist()]
    values = [v for row in rows if row for _, v in row]
    value_type = pa.array(values).type if values else pa.string()
    return pa.array(rows, pa.map_(pa.string(), value_type))


def _struct(arr: pa.Array, dtype: Struct) -> pa.Array:
    if not pa.types.is_struct(arr.type):
        raise ColumnTypeError(f"a Struct feature needs a struct column (or dicts), got {arr.type}")
    present = {arr.type.field(i).name: i for i in range(arr.type.num_fields)}
    unknown = sorted(set(present) - {k for k, _ in dtype.fields})
    if unknown:
        raise ColumnTypeError(f"fields {unknown} are not declared in {dtype}")
    children = []
    for key, field_type in dtype.fields:
        if key in present:
            children.append(to_declared(arr.field(present[key]), field_type))
        else:
            children.append(pa.nulls(len(arr), field_type.to_arrow()))
    return pa.StructArray.from_arrays(children, fields=list(dtype.to_arrow()), mask=arr.is_null())


def _unique_per_row(arr: pa.Array, target: pa.DataType) -> pa.Array:
    rows = arr.to_pylist()
    return pa.array([None if r is None else list(dict.fromkeys(r)) for r in rows], target)


def offline_column(column: pa.ChunkedArray, dtype: FeatureType) -> pa.ChunkedArray | pa.Array:
    """A training-data column in its declared type; a Map keeps the source's own map<string, X>."""
    if dtype.name == "Map" and pa.types.is_map(column.type):
        return column
    if column.type == dtype.to_arrow() and not isinstance(dtype, Set):
        return column
    if isinstance(dtype, Array | Struct) or dtype.name in ("Json", "Map", "Decimal"):
        return to_declared(column.combine_chunks(), dtype)
    return column.cast(dtype.to_arrow(), safe=False)
