"""Entity keys and write batches, shared by every online store.

An entity key is one text value: the join key values in the view's key order, each rendered as
text (integers in decimal, strings as they are, bytes in hex), joined by U+001F. The same
function of the values is computed vectorized from Arrow columns (writes) and per request from
Python values (reads), so both sides always meet. Consequences worth knowing: when a key's type is
not declared (no `value_type` on the entity, no key field in the view schema), the integer 1001
and the string "1001" name the same entity; and a string key containing U+001F is ambiguous.
A view with one join key declared Int32/Int64 (`integer_key`) may be keyed by the integer itself
in a store where that is faster (SQLite: the rowid); its serialized keys are then decimal integers.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from repast.errors import EntityKeyError, InputError
from repast.types import Array, FeatureType, Set
from repast.types.columns import ColumnTypeError, to_declared
from repast.types.timestamps import normalize_timestamps

if TYPE_CHECKING:
    from repast.definitions import FeatureView

SEPARATOR = "\x1f"
EVENT_TS = "event_timestamp"
CREATED_TS = "created_timestamp"
_INT_TYPES = ("Int32", "Int64")
# A key outside its type's range would be stored under a key no write of that type can make.
_INT_RANGES = {"Int32": (-(2**31), 2**31 - 1), "Int64": (-(2**63), 2**63 - 1)}
_INT64_LOW, _INT64_HIGH = _INT_RANGES["Int64"]


def key_types(view: FeatureView) -> list[FeatureType | None]:
    """The declared type of each join key: a key field in the schema, else the entity's value_type."""
    declared: dict[str, FeatureType | None] = {f.name: f.dtype for f in view.entity_columns}
    for entity in view.entity_objects:
        vt = entity.value_type.to_feature_type()
        for k in entity.join_keys:
            declared.setdefault(k, vt)
    return [declared.get(k) for k in view.join_keys]


def integer_key(view: FeatureView) -> bool:
    """Whether the view has exactly one join key and it is declared Int32/Int64: a store may then key
    its rows by the integer itself (write_rows(integer_keys=True)) instead of the entity key text."""
    if len(view.join_keys) != 1:
        return False
    [dtype] = key_types(view)
    return dtype is not None and dtype.name in _INT_TYPES


def _key_integers(arr: pa.Array, view: str, name: str) -> pa.Array:
    t = arr.type
    if pa.types.is_integer(t) or pa.types.is_string(t) or pa.types.is_large_string(t):
        try:
            return pc.cast(arr, pa.int64())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
            raise InputError(f"feature view '{view}': join key '{name}' is declared an integer, but its "
                             f"{t} column holds a value that is not a 64-bit integer ({e}); fix the data "
                             "or declare the key's type as String") from None
    raise InputError(f"feature view '{view}': join key '{name}' is declared an integer, but its column "
                     f"has type {t}")


def _key_text(arr: pa.Array) -> pa.Array:
    t = arr.type
    if pa.types.is_integer(t) or pa.types.is_string(t) or pa.types.is_large_string(t):
        return pc.cast(arr, pa.string())
    if pa.types.is_binary(t) or pa.types.is_large_binary(t):
        return pa.array([None if v is None else v.hex() for v in arr.to_pylist()], pa.string())
    raise InputError(f"join key column of type {t} is not supported; use an integer, string or bytes key")


def serialize_key_columns(columns: list[pa.Array]) -> pa.Array:
    """Entity keys (a string array) of Arrow key columns, in key order."""
    texts = [_key_text(c) for c in columns]
    if len(texts) == 1:
        return texts[0]
    return pc.binary_join_element_wise(*texts, SEPARATOR)


def _one_key(value: Any, name: str, dtype: FeatureType | None) -> str:
    t = type(value)
    if t is int and (dtype is None or dtype.name in _INT_TYPES):
        return str(_in_range(value, name, dtype))
    if t is str and (dtype is None or dtype.name == "String"):
        return value  # type: ignore[no-any-return]
    if (t is bytes) and (dtype is None or dtype.name == "Bytes"):
        return value.hex()  # type: ignore[no-any-return]
    # numpy integers and other Integral types (not bool) from DataFrames.
    if isinstance(value, numbers.Integral) and t is not bool and (dtype is None or dtype.name in _INT_TYPES):
        return str(_in_range(int(value), name, dtype))
    expected = dtype.name if dtype is not None else "an integer, string or bytes"
    raise EntityKeyError(f"join key '{name}' must be {expected}, got {_shown(value)} ({t.__name__})")


def _in_range(value: int, name: str, dtype: FeatureType | None) -> int:
    low, high = _INT_RANGES[dtype.name if dtype is not None else "Int64"]
    if not low <= value <= high:
        kind = dtype.name if dtype is not None else "a 64-bit integer"
        raise EntityKeyError(f"join key '{name}' must be {kind}, got {value}, outside its range [{low}, {high}]")
    return value


def _shown(value: Any) -> str:
    """A refused value for an error message: short, and never a recursion (a list nested
    hundreds deep in a JSON body)."""
    if isinstance(value, list | dict | tuple):
        return f"a {'JSON object' if isinstance(value, dict) else 'list'} of {len(value)} item(s)"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def serialize_request_keys(columns: list[list[Any]], names: list[str],
                           dtypes: list[FeatureType | None]) -> list[str]:
    """Entity keys of request values (one list per join key, equal lengths); checks the types."""
    if len(columns) == 1:
        values, name, dtype = columns[0], names[0], dtypes[0]
        if dtype is not None and dtype.name == "Int64":  # the common request: integer keys in range
            if len(values) == 1 and type(values[0]) is int and _INT64_LOW <= values[0] <= _INT64_HIGH:
                return [str(values[0])]
            if all(type(v) is int and _INT64_LOW <= v <= _INT64_HIGH for v in values):
                return [str(v) for v in values]
        return [_one_key(v, name, dtype) for v in values]
    parts = [[_one_key(v, n, d) for v in col] for col, n, d in zip(columns, names, dtypes, strict=True)]
    return [SEPARATOR.join(p) for p in zip(*parts, strict=True)]


@dataclass
class WriteRows:
    """A write batch made ready for a store: keys, timestamps (UTC microseconds) and typed features."""

    keys: pa.Array  # string entity keys; int64 join key values when written with integer_keys=True
    event_us: pa.Array  # int64
    created_us: pa.Array  # int64, null when the source has no created column
    features: dict[str, pa.Array]  # feature name -> column cast to the declared Arrow type

    def __len__(self) -> int:
        return len(self.keys)


def _timestamp_us(arr: pa.Array) -> pa.Array:
    if pa.types.is_null(arr.type):
        return pa.nulls(len(arr), pa.int64())
    if not (pa.types.is_timestamp(arr.type) or pa.types.is_date(arr.type)):
        raise InputError(f"timestamp column has type {arr.type}, expected a timestamp")
    return pc.cast(normalize_timestamps(arr), pa.int64())


def write_rows(view: FeatureView, batch: pa.RecordBatch | pa.Table, integer_keys: bool = False) -> WriteRows:
    """Check and convert a batch in the engine column contract (join keys, features, event_timestamp,
    created_timestamp); rows with a null key or event timestamp are dropped (they can never be read).
    With `integer_keys` (only when integer_key(view)), the keys are the join key's int64 values."""
    table = pa.Table.from_batches([batch]) if isinstance(batch, pa.RecordBatch) else batch
    missing = [c for c in [*view.join_keys, *view.feature_names(), EVENT_TS] if c not in table.column_names]
    if missing:
        raise InputError(f"rows written to feature view '{view.name}' lack column(s) {missing}; "
                         f"they have {table.column_names}")
    table = table.combine_chunks()
    valid = pc.is_valid(table.column(EVENT_TS))
    for k in view.join_keys:
        valid = pc.and_(valid, pc.is_valid(table.column(k)))
    if not pc.all(valid).as_py():
        table = table.filter(valid)
    cols = {name: table.column(name).combine_chunks() for name in table.column_names}
    created = _timestamp_us(cols[CREATED_TS]) if CREATED_TS in cols else pa.nulls(table.num_rows, pa.int64())
    features = {f.name: _cast_feature(cols[f.name], f.dtype, view.name, f.name) for f in view.features}
    for f in view.features:
        if f.vector_index:  # wrong lengths, NaN, nulls: refused naming the row, before anything is written
            from repast.vector.numbers import check_vector_column

            check_vector_column(features[f.name], f, view.name, cols[view.join_keys[0]] if view.join_keys else None)
    if integer_keys:
        keys = _key_integers(cols[view.join_keys[0]], view.name, view.join_keys[0])
    else:
        keys = serialize_key_columns([cols[k] for k in view.join_keys])
    return WriteRows(keys, _timestamp_us(cols[EVENT_TS]), created, features)


def _cast_feature(arr: pa.Array, dtype: FeatureType, view: str, name: str) -> pa.Array:
    target = dtype.to_arrow()
    if arr.type == target and not isinstance(dtype, Set) and dtype.name != "Json":
        return arr
    try:
        return to_declared(arr, dtype)
    except ColumnTypeError as e:
        kind = "array" if isinstance(dtype, Array) else "value"
        raise InputError(f"feature view '{view}': column '{name}' of type {arr.type} cannot hold "
                         f"{dtype} {kind}s: {e}") from None
