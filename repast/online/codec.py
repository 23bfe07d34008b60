"""Feature values to and from the representations of stores without typed arrays.

SQLite stores scalars natively (timestamps as UTC microseconds, booleans as 0/1) and arrays as
JSON; Redis stores every value as text (numbers in shortest round-trip form, so a float read back
is bit-identical). Arrays in JSON hold bytes as hex and timestamps as microseconds. Conversions
run column-wise in Arrow where Arrow can do them; only arrays and bytes need per-value Python.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from repast.types import Array, FeatureType

Decoder = Callable[[Any], Any]
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def datetime_from_us(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)


def _plain(arr: pa.Array) -> pa.Array:
    """Timestamps (also inside lists) as int64 microseconds: the form every store keeps."""
    t = arr.type
    if pa.types.is_timestamp(t):
        return pc.cast(arr, pa.int64())
    if pa.types.is_list(t) and pa.types.is_timestamp(t.value_type):
        return pc.cast(arr, pa.list_(pa.int64()))
    return arr


def _json_values(arr: pa.Array, dtype: Array) -> list[bytes | None]:
    values = _plain(arr).to_pylist()
    if dtype.base.name == "Bytes":
        return [None if v is None else orjson.dumps([None if b is None else b.hex() for b in v]) for v in values]
    return [None if v is None else orjson.dumps(v) for v in values]


def sql_values(arr: pa.Array, dtype: FeatureType) -> list[Any]:
    """Python values for a SQLite column (Arrow type already the declared one)."""
    if isinstance(dtype, Array):
        return _json_values(arr, dtype)
    return _plain(arr).to_pylist()  # type: ignore[no-any-return]


def text_values(arr: pa.Array, dtype: FeatureType) -> list[Any]:
    """str/bytes values (None for null) for a store that keeps text, e.g. Redis hash fields."""
    if isinstance(dtype, Array):
        return _json_values(arr, dtype)
    name = dtype.name
    if name == "Bytes" or name == "String":
        return arr.to_pylist()  # type: ignore[no-any-return]
    if name == "Bool":
        arr = pc.cast(arr, pa.int8())
    elif name == "Float32":
        # Stored as the float64 the float32 widens to, as the SQL stores hand it back.
        arr = pc.cast(arr, pa.float64())
    return pc.cast(_plain(arr), pa.string()).to_pylist()  # type: ignore[no-any-return]


def _array_decoder(dtype: Array) -> Decoder:
    base = dtype.base.name
    if base == "Bytes":
        return lambda v: [None if b is None else bytes.fromhex(b) for b in orjson.loads(v)]
    if base == "UnixTimestamp":
        return lambda v: [None if x is None else datetime_from_us(x) for x in orjson.loads(v)]
    return orjson.loads


def sql_decoder(dtype: FeatureType) -> Decoder | None:
    """How to turn a SQLite value of `dtype` into its Python value; None when it already is one."""
    if isinstance(dtype, Array):
        return _array_decoder(dtype)
    if dtype.name == "Bool":
        return bool
    if dtype.name == "UnixTimestamp":
        return datetime_from_us
    return None


def text_decoder(dtype: FeatureType) -> Decoder:
    """How to turn stored text (bytes) of `dtype` into its Python value."""
    if isinstance(dtype, Array):
        return _array_decoder(dtype)
    name = dtype.name
    if name in ("Int32", "Int64"):
        return int
    if name in ("Float32", "Float64"):
        return float
    if name == "String":
        return lambda v: v.decode()
    if name == "Bool":
        return lambda v: v == b"1"
    if name == "UnixTimestamp":
        return lambda v: datetime_from_us(int(v))
    return bytes
