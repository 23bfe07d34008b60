"""Feature value types and their Arrow types.

Names follow Feast (`from feast.types import Float32, Int64, Array`) so feature repos port by
changing the import. A type serializes to its name (`"Int64"`, `"Array(Float32)"`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from repast.errors import DefinitionError

__all__ = [
    "PrimitiveType", "Array", "Set", "Struct", "FeatureType", "Int32", "Int64", "Float32", "Float64", "String",
    "Bytes", "Bool", "UnixTimestamp", "Uuid", "TimeUuid", "Decimal", "PdfBytes", "ImageBytes", "Json", "Map",
    "PRIMITIVES", "Invalid", "PrimitiveFeastType", "ComplexFeastType", "FeastType", "parse_type", "ValueType",
    "from_arrow", "is_compatible", "source_column_holds",
]


@dataclass(frozen=True)
class PrimitiveType:
    """A scalar feature type (Int64, Float32, String, ...): its name in the registry and its Arrow type."""

    name: str
    arrow: pa.DataType

    def __str__(self) -> str:
        return self.name

    def to_arrow(self) -> pa.DataType:
        """The Arrow type columns of this type have offline and in memory."""
        return self.arrow


@dataclass(frozen=True)
class Array:
    """A list of a primitive type, e.g. `Array(Float32)` for an embedding."""

    base: PrimitiveType

    def __post_init__(self) -> None:
        if not isinstance(self.base, PrimitiveType) or self.base.name in _NOT_IN_LISTS:
            raise DefinitionError(f"{type(self).__name__}() takes a scalar type such as Float32, got {self.base!r}")

    @property
    def name(self) -> str:
        return f"Array({self.base.name})"

    def __str__(self) -> str:
        return self.name

    def to_arrow(self) -> pa.DataType:
        return pa.list_(self.base.arrow)


@dataclass(frozen=True)
class Set(Array):
    """Unique values of a primitive type, e.g. `Set(String)`; a list in Arrow, duplicates dropped on
    write, returned online as a list in first-written order (JSON has no set)."""

    @property
    def name(self) -> str:
        return f"Set({self.base.name})"


@dataclass(frozen=True)
class Struct:
    """Named, typed fields: `Struct({"name": String, "age": Int64})`; a dict online, an Arrow struct
    offline."""

    fields: tuple[tuple[str, PrimitiveType | Array], ...]

    def __init__(self, fields: dict[str, Any] | tuple[tuple[str, Any], ...]) -> None:
        items = tuple(fields.items()) if isinstance(fields, dict) else tuple(fields)
        if not items:
            raise DefinitionError("Struct() needs at least one field")
        for key, dtype in items:
            if not isinstance(key, str) or not isinstance(dtype, PrimitiveType | Array):
                raise DefinitionError(f"Struct() fields map names to types such as String, got {key!r}: {dtype!r}")
        object.__setattr__(self, "fields", items)

    @property
    def name(self) -> str:
        return "Struct(" + ", ".join(f"{k}: {t.name}" for k, t in self.fields) + ")"

    def __str__(self) -> str:
        return self.name

    def to_arrow(self) -> pa.DataType:
        return pa.struct([pa.field(k, t.to_arrow()) for k, t in self.fields])


FeatureType = PrimitiveType | Array | Struct
"""Any feature type: a scalar, an `Array` (or `Set`) of a scalar, or a `Struct`."""

Int32 = PrimitiveType("Int32", pa.int32())
"""32-bit integer."""
Int64 = PrimitiveType("Int64", pa.int64())
"""64-bit integer."""
Float32 = PrimitiveType("Float32", pa.float32())
"""32-bit float."""
Float64 = PrimitiveType("Float64", pa.float64())
"""64-bit float."""
String = PrimitiveType("String", pa.string())
"""UTF-8 text."""
Bytes = PrimitiveType("Bytes", pa.binary())
"""Binary data."""
Bool = PrimitiveType("Bool", pa.bool_())
"""True or false."""
UnixTimestamp = PrimitiveType("UnixTimestamp", pa.timestamp("us", tz="UTC"))
"""A point in time, microseconds, UTC."""
# Feast's newer scalars. Uuid/TimeUuid are text in Arrow and uuid.UUID online; Decimal is
# decimal128(38, 18) offline and decimal.Decimal online; PdfBytes/ImageBytes are bytes.
Uuid = PrimitiveType("Uuid", pa.string())
"""A UUID: text in Arrow, `uuid.UUID` online."""
TimeUuid = PrimitiveType("TimeUuid", pa.string())
"""A time-based UUID: text in Arrow, `uuid.UUID` online."""
Decimal = PrimitiveType("Decimal", pa.decimal128(38, 18))
"""decimal128(38, 18) offline, `decimal.Decimal` online."""
PdfBytes = PrimitiveType("PdfBytes", pa.binary())
"""A PDF document's bytes."""
ImageBytes = PrimitiveType("ImageBytes", pa.binary())
"""An image's bytes."""
# Json: JSON text offline, the parsed value online. Map: string keys to values of any JSON type;
# declared as map<string, string>, a source's own map<string, X> is kept as it is offline, and
# online the dict keeps its values' types.
Json = PrimitiveType("Json", pa.string())
"""JSON text offline, the parsed value online."""
Map = PrimitiveType("Map", pa.map_(pa.string(), pa.string()))
"""String keys to values of any JSON type: a dict online."""
_NOT_IN_LISTS = ("Json", "Map")

PRIMITIVES: dict[str, PrimitiveType] = {
    t.name: t for t in (Int32, Int64, Float32, Float64, String, Bytes, Bool, UnixTimestamp, Uuid, TimeUuid,
                        Decimal, PdfBytes, ImageBytes, Json, Map)
}
"""Every scalar type by its name."""
# Names Feast's `types` module also exports, for `from repast.types import *` ports.
Invalid = None
"""Feast's placeholder for an unknown type: None."""
PrimitiveFeastType = PrimitiveType
"""Feast's name of `PrimitiveType`."""
ComplexFeastType = Array
"""Feast's name of `Array`."""
FeastType = FeatureType
"""Feast's name of `FeatureType`."""


def parse_type(name: str) -> FeatureType:
    """Inverse of `str(type)`: `"Int64"` -> Int64, `"Array(Float32)"`, `"Set(String)"`,
    `"Struct(name: String, age: Int64)"`."""
    if name in PRIMITIVES:
        return PRIMITIVES[name]
    for prefix, cls in (("Array(", Array), ("Set(", Set)):
        if name.startswith(prefix) and name.endswith(")") and name[len(prefix):-1] in PRIMITIVES:
            return cls(PRIMITIVES[name[len(prefix):-1]])
    if name.startswith("Struct(") and name.endswith(")"):
        fields = {}
        for part in _split_fields(name[7:-1]):
            key, _, dtype = part.partition(":")
            inner = parse_type(dtype.strip())
            if isinstance(inner, Struct):
                raise DefinitionError(f"unknown feature type '{name}': structs do not nest")
            fields[key.strip()] = inner
        return Struct(fields)
    raise DefinitionError(f"unknown feature type '{name}'; known: {', '.join(PRIMITIVES)}, Array(...), Set(...), "
                          "Struct({...})")


def _split_fields(text: str) -> list[str]:
    """`a: String, b: Array(Int64)` -> ["a: String", "b: Array(Int64)"] (commas inside parentheses kept)."""
    parts, depth, current = [], 0, ""
    for ch in text:
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    return [p for p in [*parts, current] if p.strip()]


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
    # Feast's later additions, by name (their numbers here are repast's own).
    MAP = 20
    MAP_LIST = 21
    BYTES_SET = 22
    STRING_SET = 23
    INT32_SET = 24
    INT64_SET = 25
    DOUBLE_SET = 26
    FLOAT_SET = 27
    BOOL_SET = 28
    UNIX_TIMESTAMP_SET = 29
    JSON = 30
    JSON_LIST = 31
    STRUCT = 32
    STRUCT_LIST = 33
    UUID = 34
    TIME_UUID = 35
    UUID_LIST = 36
    TIME_UUID_LIST = 37
    UUID_SET = 38
    TIME_UUID_SET = 39
    DECIMAL = 40
    DECIMAL_LIST = 41
    DECIMAL_SET = 42
    PDF_BYTES = 43
    IMAGE_BYTES = 44

    def to_feature_type(self) -> FeatureType | None:
        scalar = {
            "BYTES": Bytes, "STRING": String, "INT32": Int32, "INT64": Int64, "DOUBLE": Float64,
            "FLOAT": Float32, "BOOL": Bool, "UNIX_TIMESTAMP": UnixTimestamp, "UUID": Uuid, "TIME_UUID": TimeUuid,
            "DECIMAL": Decimal, "PDF_BYTES": PdfBytes, "IMAGE_BYTES": ImageBytes, "MAP": Map, "JSON": Json,
        }
        if self.name in scalar:
            return scalar[self.name]
        if self.name.endswith("_LIST") and self.name[:-5] in scalar and self.name[:-5] not in _NOT_IN_LISTS_VT:
            return Array(scalar[self.name[:-5]])
        if self.name.endswith("_SET") and self.name[:-4] in scalar:
            return Set(scalar[self.name[:-4]])
        return None


_NOT_IN_LISTS_VT = ("MAP", "JSON")


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
    if pa.types.is_map(arrow_type) and _text(arrow_type.key_type):
        return Map
    if pa.types.is_struct(arrow_type):
        fields = {f.name: from_arrow(f.type) for f in arrow_type}
        if fields and all(isinstance(t, PrimitiveType | Array) for t in fields.values()):
            return Struct(fields)
    return None


def is_compatible(declared: FeatureType, actual: pa.DataType) -> bool:
    """Can a source column of Arrow type `actual` feed a field declared as `declared`?

    Integers widen to any integer or float, floats to floats; timestamps of any unit/zone match.
    Json takes text or any nested column (written as JSON text); Map takes a map with string keys
    or a struct (a pandas column of dicts); Uuid takes text, Decimal numbers, PdfBytes bytes.
    """
    name = declared.name
    if isinstance(declared, PrimitiveType) and name in _LOOSE:
        return bool(_LOOSE[name](actual))
    if isinstance(declared, Struct):
        return pa.types.is_struct(actual) and {f.name for f in actual} <= {k for k, _ in declared.fields}
    inferred = from_arrow(actual)
    if inferred is None:
        return False
    if inferred == declared:
        return True
    numeric = {"Int32": 0, "Int64": 1, "Float32": 2, "Float64": 3}
    if isinstance(declared, PrimitiveType) and isinstance(inferred, PrimitiveType):
        return inferred.name in numeric and declared.name in numeric
    if isinstance(declared, Array) and isinstance(inferred, Array):
        if declared.base.name in _LOOSE:
            return bool(_LOOSE[declared.base.name](actual.value_type))
        return inferred.base == declared.base or (inferred.base.name in numeric and declared.base.name in numeric)
    return False


def source_column_holds(declared: FeatureType, actual: pa.DataType) -> bool:
    """Can a source column of type `actual` hold `declared` values without loss: is_compatible, and
    no float column (or list of floats) for an integer field, which would truncate."""
    base = actual.value_type if pa.types.is_list(actual) or pa.types.is_large_list(actual) else actual
    base_name = declared.base.name if isinstance(declared, Array) else declared.name
    truncating = pa.types.is_floating(base) and base_name in ("Int32", "Int64")
    return not truncating and is_compatible(declared, actual)


def _text(t: pa.DataType) -> bool:
    return bool(pa.types.is_string(t) or pa.types.is_large_string(t))


def _binary(t: pa.DataType) -> bool:
    return bool(pa.types.is_binary(t) or pa.types.is_large_binary(t))


_LOOSE: dict[str, Any] = {
    "Json": lambda t: _text(t) or pa.types.is_nested(t),
    "Map": lambda t: (pa.types.is_map(t) and _text(t.key_type)) or pa.types.is_struct(t),
    "Uuid": _text, "TimeUuid": _text, "PdfBytes": _binary, "ImageBytes": _binary,
    "Decimal": lambda t: pa.types.is_decimal(t) or pa.types.is_integer(t) or pa.types.is_floating(t) or _text(t),
}
