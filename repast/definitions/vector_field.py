"""The rules of a vector field declaration (`Field(vector_index=True, ...)`), checked when it is made."""

from __future__ import annotations

from typing import TYPE_CHECKING

from repast.errors import DefinitionError
from repast.types import Array

if TYPE_CHECKING:
    from repast.definitions.entity import Field


def check_vector_field(field: Field) -> None:
    """An indexed vector is an Array(Float32|Float64) with a positive vector_length and a known metric.
    The metric is stored by its canonical name (L2, COSINE, INNER_PRODUCT); it defaults to L2."""
    from repast.vector.semantics import parse_metric

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
