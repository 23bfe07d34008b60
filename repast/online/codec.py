"""Feature values to and from the representations of stores without typed arrays.

SQLite stores scalars natively (timestamps as UTC microseconds, booleans as 0/1) and arrays as
JSON; Redis stores every value as text (numbers in shortest round-trip form, so a float read back
is bit-identical). Arrays in JSON hold bytes as hex and timestamps as microseconds. Conversions
run column-wise in Arrow where Arrow can do them; only arrays and bytes need per-value Python.
"""

from __future__ import annotations

import decimal
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from repast.types import Array, FeatureType, Struct
from repast.types.columns import json_default

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


BYTES_TYPES = ("Bytes", "PdfBytes", "ImageBytes")
# Stored as text in every store without a native form: the value's text (str(Decimal), a UUID).
TEXT_TYPES = ("Uuid", "TimeUuid", "Decimal")


def _json_values(arr: pa.Array, dtype: Array) -> list[bytes | None]:
    values = _plain(arr).to_pylist()
    if dtype.base.name in BYTES_TYPES:
        return [None if v is None else orjson.dumps([None if b is None else b.hex() for b in v]) for v in values]
    return [None if v is None else orjson.dumps(v, default=json_default) for v in values]


def nested_json(arr: pa.Array, dtype: FeatureType) -> list[str | None]:
    """Map, Struct and Json values as JSON text (Json columns already are)."""
    if dtype.name == "Json":
        return arr.to_pylist()  # type: ignore[no-any-return]
    values = arr.to_pylist()
    if pa.types.is_map(arr.type):
        values = [None if v is None else dict(v) for v in values]
    return [None if v is None else orjson.dumps(v, default=json_default).decode() for v in values]


def is_nested(dtype: FeatureType) -> bool:
    return isinstance(dtype, Struct) or dtype.name in ("Map", "Json")


def sql_values(arr: pa.Array, dtype: FeatureType) -> list[Any]:
    """Python values for a SQLite column (Arrow type already the declared one)."""
    if isinstance(dtype, Array):
        return _json_values(arr, dtype)
    if is_nested(dtype):
        return nested_json(arr, dtype)
    if dtype.name in TEXT_TYPES:
        return [None if v is None else str(v) for v in arr.to_pylist()]
    return _plain(arr).to_pylist()  # type: ignore[no-any-return]


def text_values(arr: pa.Array, dtype: FeatureType) -> list[Any]:
    """str/bytes values (None for null) for a store that keeps text, e.g. Redis hash fields."""
    if isinstance(dtype, Array):
        return _json_values(arr, dtype)
    if is_nested(dtype):
        return nested_json(arr, dtype)
    name = dtype.name
    if name in BYTES_TYPES or name == "String":
        return arr.to_pylist()  # type: ignore[no-any-return]
    if name in TEXT_TYPES:
        return [None if v is None else str(v) for v in arr.to_pylist()]
    if name == "Bool":
        arr = pc.cast(arr, pa.int8())
    elif name == "Float32":
        # Stored as the float64 the float32 widens to, as the SQL stores hand it back.
        arr = pc.cast(arr, pa.float64())
    return pc.cast(_plain(arr), pa.string()).to_pylist()  # type: ignore[no-any-return]


def _element_decoder(name: str) -> Decoder | None:
    """How one JSON element of a list (or struct field) of type `name` becomes its Python value."""
    if name in BYTES_TYPES:
        return bytes.fromhex
    if name == "UnixTimestamp":
        return lambda x: datetime_from_us(x) if isinstance(x, int) else datetime.fromisoformat(x)
    if name in ("Uuid", "TimeUuid"):
        return uuid.UUID
    if name == "Decimal":
        return lambda x: decimal.Decimal(str(x))
    return None


def _array_decoder(dtype: Array) -> Decoder:
    """JSON text of a list -> its elements as Python values; a list already parsed (inside a struct)
    is taken as it is."""
    element = _element_decoder(dtype.base.name)

    def decode(v: Any) -> Any:
        values = v if isinstance(v, list) else orjson.loads(v)
        return values if element is None else [None if x is None else element(x) for x in values]
    return decode


def struct_fields_decoder(dtype: Struct) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """Parsed JSON of a struct -> its fields as their Python types (timestamps, bytes, ...)."""
    decoders: dict[str, Decoder] = {}
    for key, field_type in dtype.fields:
        if isinstance(field_type, Array):
            decoders[key] = _array_decoder(field_type)
        else:
            element = _element_decoder(field_type.name)
            if element is not None:
                decoders[key] = element
    return lambda d: {k: (decoders[k](v) if k in decoders and v is not None else v) for k, v in d.items()}


def nested_decoder(dtype: FeatureType) -> Decoder:
    """JSON text (str or bytes) of a Map, Struct or Json value -> the dict / parsed value."""
    if isinstance(dtype, Struct):
        fields = struct_fields_decoder(dtype)
        return lambda v: fields(orjson.loads(v))
    return orjson.loads


def _scalar_decoder(name: str) -> Decoder | None:
    if name in ("Uuid", "TimeUuid"):
        return lambda v: uuid.UUID(v if isinstance(v, str) else v.decode())
    if name == "Decimal":
        return lambda v: decimal.Decimal(v if isinstance(v, str) else v.decode())
    return None


def sql_decoder(dtype: FeatureType) -> Decoder | None:
    """How to turn a SQLite value of `dtype` into its Python value; None when it already is one."""
    if isinstance(dtype, Array):
        return _array_decoder(dtype)
    if is_nested(dtype):
        return nested_decoder(dtype)
    if dtype.name == "Bool":
        return bool
    if dtype.name == "UnixTimestamp":
        return datetime_from_us
    return _scalar_decoder(dtype.name)


def text_decoder(dtype: FeatureType) -> Decoder:
    """How to turn stored text (bytes) of `dtype` into its Python value."""
    if isinstance(dtype, Array):
        return _array_decoder(dtype)
    if is_nested(dtype):
        return nested_decoder(dtype)
    name = dtype.name
    scalar = _scalar_decoder(name)
    if scalar is not None:
        return scalar
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
