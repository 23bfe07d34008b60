"""Entity and Field: the keys features are attached to, and the typed columns of a view."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from repast.errors import DefinitionError
from repast.types import Array, FeatureType, ValueType, parse_type
from repast.vector.metric import parse_metric


@dataclass
class Field:
    """A named, typed column: `Field(name="conv_rate", dtype=Float32)`."""

    name: str
    dtype: FeatureType
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    # Vector retrieval (docs/vector.md): an Array(Float32|Float64) embedding searched by distance.
    vector_index: bool = False
    vector_length: int = 0
    vector_search_metric: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise DefinitionError(f"Field name must be a non-empty string, got {self.name!r}")
        if isinstance(self.dtype, str):
            self.dtype = parse_type(self.dtype)
        if not hasattr(self.dtype, "to_arrow"):
            raise DefinitionError(
                f"Field '{self.name}': dtype must be a repast type such as Int64, got {self.dtype!r}"
            )
        if self.vector_index or self.vector_length or self.vector_search_metric:
            _check_vector_field(self)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name, "dtype": str(self.dtype), "description": self.description,
                             "tags": dict(self.tags)}
        if self.vector_index:  # only then: registered specs of other fields stay as they were
            d.update(vector_index=True, vector_length=self.vector_length,
                     vector_search_metric=self.vector_search_metric)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Field:
        return cls(name=d["name"], dtype=parse_type(d["dtype"]),
                   description=d.get("description", ""), tags=d.get("tags", {}),
                   vector_index=d.get("vector_index", False), vector_length=d.get("vector_length", 0),
                   vector_search_metric=d.get("vector_search_metric"))


class Entity:
    """What features describe (a driver, a customer), identified by its join keys.

    `join_keys` defaults to `[name]` as in Feast; an explicit empty list is an error.
    """

    kind = "entity"

    def __init__(
        self,
        name: str | None = None,
        join_keys: list[str] | None = None,
        value_type: ValueType | None = None,
        description: str = "",
        tags: dict[str, str] | None = None,
        owner: str = "",
        *,
        join_key: str | None = None,
    ) -> None:
        if not name or not isinstance(name, str):
            raise DefinitionError(f"Entity needs a non-empty name, got {name!r}")
        self.name = name
        if join_keys is None:
            join_keys = [join_key] if join_key else [name]
        if not join_keys:
            raise DefinitionError(f"Entity '{name}': join_keys is empty; give at least one key")
        if not all(isinstance(k, str) and k for k in join_keys):
            raise DefinitionError(f"Entity '{name}': join_keys must be non-empty strings")
        self.join_keys = list(join_keys)
        self.value_type = value_type if value_type is not None else ValueType.UNKNOWN
        self.description = description
        self.tags = dict(tags or {})
        self.owner = owner

    @property
    def join_key(self) -> str:
        return self.join_keys[0]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "join_keys": self.join_keys, "value_type": self.value_type.name,
                "description": self.description, "tags": self.tags, "owner": self.owner}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Entity:
        return cls(name=d["name"], join_keys=d["join_keys"],
                   value_type=ValueType[d.get("value_type", "UNKNOWN")],
                   description=d.get("description", ""), tags=d.get("tags"), owner=d.get("owner", ""))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Entity) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(("entity", self.name))

    def __repr__(self) -> str:
        return f"Entity(name={self.name!r}, join_keys={self.join_keys!r})"


def _check_vector_field(field: Field) -> None:
    """An indexed vector is an Array(Float32|Float64) with a positive vector_length and a known metric.
    The metric is stored by its canonical name (L2, COSINE, INNER_PRODUCT); it defaults to L2."""
    what = f"Field '{field.name}'"
    if not field.vector_index:
        raise DefinitionError(f"{what}: vector_length and vector_search_metric need vector_index=True")
    if not isinstance(field.dtype, Array) or field.dtype.base.name not in ("Float32", "Float64"):
        raise DefinitionError(f"{what}: vector_index=True needs dtype Array(Float32) or Array(Float64), "
                              f"got {field.dtype}")
    if isinstance(field.vector_length, bool) or not isinstance(field.vector_length, int) or field.vector_length <= 0:
        raise DefinitionError(f"{what}: vector_index=True needs vector_length, a positive integer "
                              f"(the embedding's dimension), got {field.vector_length!r}")
    field.vector_search_metric = str(parse_metric(field.vector_search_metric, what))
