"""How the SQLite online store keeps vector fields: little-endian float32 (float64 for
Array(Float64)) BLOBs instead of JSON, so an index loads a view's vectors in one buffer copy
(repast.vector.sqlite searches them; repast.online.sqlite writes and reads them through these)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from repast.vector.semantics import vector_fields

if TYPE_CHECKING:
    from repast.definitions import FeatureView, Field


def item_type(field: Field) -> np.dtype[Any]:
    base = getattr(field.dtype, "base", None)
    return np.dtype("<f8" if base is not None and base.name == "Float64" else "<f4")


def vector_layout(view: FeatureView) -> str:
    """The store-layout signature part of vector fields (stored as binary, unlike other arrays)."""
    names = [f.name for f in vector_fields(view)]
    return f";vectors=binary:{','.join(names)}" if names else ""


def vector_encoder(field: Field) -> Callable[[pa.Array], list[bytes | None]] | None:
    """How a vector field's Arrow column becomes BLOBs (None for other fields)."""
    if not field.vector_index:
        return None
    item = item_type(field)

    def encode(arr: pa.Array) -> list[bytes | None]:
        arr = arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
        flat = np.asarray(pc.list_flatten(arr).to_numpy(zero_copy_only=False), dtype=item).tobytes()
        lengths = pc.list_value_length(arr).fill_null(0).to_numpy(zero_copy_only=False)
        ends = np.cumsum(lengths) * item.itemsize
        starts = ends - lengths * item.itemsize
        valid = pc.is_valid(arr).to_numpy(zero_copy_only=False)
        return [flat[a:b] if ok else None for a, b, ok in zip(starts.tolist(), ends.tolist(), valid.tolist(),
                                                              strict=True)]

    return encode


def vector_decoders(view: FeatureView, arrays: bool = False) -> dict[str, Callable[[Any], Any]]:
    """Per vector field, how a stored BLOB becomes its list of floats (`arrays`: a NumPy array over
    the BLOB's bytes, no copy)."""
    return {f.name: _decoder(item_type(f), arrays) for f in vector_fields(view)}


def _decoder(item: np.dtype[Any], arrays: bool) -> Callable[[Any], Any]:
    if arrays:
        return lambda blob: np.frombuffer(blob, dtype=item)
    return lambda blob: np.frombuffer(blob, dtype=item).tolist()
