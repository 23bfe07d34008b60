"""Feature value types and their Arrow types.

Names follow Feast (`from feast.types import Float32, Int64, Array`) so feature repos port by
changing the import. A type serializes to its name (`"Int64"`, `"Array(Float32)"`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import pyarrow as pa

from repast.errors import DefinitionError


@dataclass(frozen=True)
class PrimitiveType:
    name: str
    arrow: pa.DataType

    def __str__(self) -> str:
        return self.name

    def to_arrow(self) -> pa.DataType:
        return self.arrow


@dataclass(frozen=True)
class Array:
    """A list of a primitive type, e.g. `Array(Float32)` for an embedding."""

    base: PrimitiveType

    def __post_init__(self) -> None:
        if not isinstance(self.base, PrimitiveType):
            raise DefinitionError(f"Array() takes a scalar type such as Float32, got {self.base!r}")

    @property
    def name(self) -> str:
        return f"Array({self.base.name})"

    def __str__(self) -> str:
        return self.name

    def to_arrow(self) -> pa.DataType:
        return pa.list_(self.base.arrow)


FeatureType = PrimitiveType | Array

Int32 = PrimitiveType("Int32", pa.int32())
Int64 = PrimitiveType("Int64", pa.int64())
Float32 = PrimitiveType("Float32", pa.float32())
Float64 = PrimitiveType("Float64", pa.float64())
String = PrimitiveType("String", pa.string())
Bytes = PrimitiveType("Bytes", pa.binary())
Bool = PrimitiveType("Bool", pa.bool_())
UnixTimestamp = PrimitiveType("UnixTimestamp", pa.timestamp("us", tz="UTC"))

PRIMITIVES: dict[str, PrimitiveType] = {
    t.name: t for t in (Int32, Int64, Float32, Float64, String, Bytes, Bool, UnixTimestamp)
}


def parse_type(name: str) -> FeatureType:
    """Inverse of `str(type)`: `"Int64"` -> Int64, `"Array(Float32)"` -> Array(Float32)."""
    if name in PRIMITIVES:
        return PRIMITIVES[name]
    if name.startswith("Array(") and name.endswith(")") and name[6:-1] in PRIMITIVES:
        return Array(PRIMITIVES[name[6:-1]])
    raise DefinitionError(f"unknown feature type '{name}'; known: {', '.join(PRIMITIVES)}, Array(...)")


class ValueType(enum.Enum):
    """Feast's entity value types, accepted on `Entity(value_type=...)`."""

    UNKNOWN = 0
    BYTES = 1
    STRING = 2
    INT32 = 3
    INT64 = 4
    DOUBLE = 5
    FLOAT = 6
    BOOL = 7
    UNIX_TIMESTAMP = 8
    BYTES_LIST = 11
    STRING_LIST = 12
    INT32_LIST = 13
    INT64_LIST = 14
    DOUBLE_LIST = 15
    FLOAT_LIST = 16
    BOOL_LIST = 17
    UNIX_TIMESTAMP_LIST = 18
    NULL = 19

    def to_feature_type(self) -> FeatureType | None:
        scalar = {
            "BYTES": Bytes, "STRING": String, "INT32": Int32, "INT64": Int64, "DOUBLE": Float64,
            "FLOAT": Float32, "BOOL": Bool, "UNIX_TIMESTAMP": UnixTimestamp,
        }
        if self.name in scalar:
            return scalar[self.name]
        if self.name.endswith("_LIST") and self.name[:-5] in scalar:
            return Array(scalar[self.name[:-5]])
        return None


def from_arrow(arrow_type: pa.DataType) -> FeatureType | None:
    """The feature type for an Arrow column type (used to infer schemas from sources)."""
    if pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type):
        base = from_arrow(arrow_type.value_type)
        return Array(base) if isinstance(base, PrimitiveType) else None
    if pa.types.is_timestamp(arrow_type) or pa.types.is_date(arrow_type):
        return UnixTimestamp
    if pa.types.is_int8(arrow_type) or pa.types.is_int16(arrow_type) or pa.types.is_int32(arrow_type):
        return Int32
    if pa.types.is_integer(arrow_type):
        return Int64
    if pa.types.is_float16(arrow_type) or pa.types.is_float32(arrow_type):
        return Float32
    if pa.types.is_floating(arrow_type) or pa.types.is_decimal(arrow_type):
        return Float64
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return String
    if pa.types.is_binary(arrow_type) or pa.types.is_large_binary(arrow_type):
        return Bytes
    if pa.types.is_boolean(arrow_type):
        return Bool
    if pa.types.is_dictionary(arrow_type):
        return from_arrow(arrow_type.value_type)
    return None


def is_compatible(declared: FeatureType, actual: pa.DataType) -> bool:
    """Can a source column of Arrow type `actual` feed a field declared as `declared`?

    Integers widen to any integer or float, floats to floats; timestamps of any unit/zone match.
    """
    inferred = from_arrow(actual)
    if inferred is None:
        return False
    if inferred == declared:
        return True
    numeric = {"Int32": 0, "Int64": 1, "Float32": 2, "Float64": 3}
    if isinstance(declared, PrimitiveType) and isinstance(inferred, PrimitiveType):
        return inferred.name in numeric and declared.name in numeric
    if isinstance(declared, Array) and isinstance(inferred, Array):
        return inferred.base.name in numeric and declared.base.name in numeric
    return False
