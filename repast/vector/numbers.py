"""The numbers vector search accepts (docs/vector.md, "Numbers"): stored vectors checked on write
(and offline), query vectors checked and made representable in float32, the type every store
searches in, without changing their ranking. One rule for every store and the offline path."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from repast.errors import InputError
from repast.vector.metric import Metric, parse_metric

if TYPE_CHECKING:
    from repast.definitions import Field


def check_vector_column(arr: pa.Array, field: Field, view: str, keys: pa.Array | None = None) -> None:
    """Refuse (InputError naming the row) a vector of the wrong length, with a null or non-finite
    element, or, under COSINE, a zero vector (it has no direction). A null vector is allowed: the
    document then has no embedding and is not searched."""
    length = int(getattr(field, "vector_length", 0) or 0)
    arr = arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
    if not (pa.types.is_list(arr.type) or pa.types.is_large_list(arr.type)):
        raise InputError(f"feature view '{view}': vector field '{field.name}' must hold lists of floats, "
                         f"got {arr.type}")
    lengths = pc.list_value_length(arr)
    bad = pc.and_(pc.is_valid(arr), pc.not_equal(lengths, length)) if length else None
    if bad is not None and pc.any(bad).as_py():
        row = _first(bad)
        raise InputError(f"feature view '{view}': row {row}{_key_of(keys, row)}: vector field '{field.name}' "
                         f"has {lengths[row].as_py()} values, but vector_length is {length}")
    flat = pc.list_flatten(arr)
    # float32 stays float32 (zero copy); a null element reads as NaN.
    values = np.asarray(flat.to_numpy(zero_copy_only=False),
                        dtype=np.float32 if pa.types.is_float32(flat.type) else np.float64)
    if not len(values):
        return
    rows = values.reshape(-1, length) if length else values.reshape(1, -1)
    largest = _largest_finite(arr, rows, field, view, keys)
    if not length:
        return
    beyond = largest > _FLOAT32_MAX
    if beyond.any():
        at = int(np.flatnonzero(beyond)[0])
        row = _row_of_value(arr, at * length)
        raise InputError(f"feature view '{view}': row {row}{_key_of(keys, row)}: vector field '{field.name}' "
                         f"holds a value of magnitude {largest[at]:g}, beyond float32's range (|x| <= "
                         f"{_FLOAT32_MAX:.7g}), the type vector search computes in; scale the embedding down")
    _check_lengths(arr, rows, largest, field, view, keys)
    if getattr(field, "vector_search_metric", None) and parse_metric(field.vector_search_metric, view) \
            is Metric.COSINE:
        zero = largest.astype(np.float32) == 0
        if zero.any():
            row = _row_of_value(arr, int(np.flatnonzero(zero)[0]) * length)
            raise InputError(f"feature view '{view}': row {row}{_key_of(keys, row)}: vector field "
                             f"'{field.name}' is all zeros in float32 (the type vector search computes in; "
                             "values below 1.4e-45 round to 0), which has no COSINE direction")


def _largest_finite(arr: pa.Array, rows: np.ndarray, field: Field, view: str, keys: pa.Array | None) -> np.ndarray:
    """Per row its largest magnitude (float64), refusing a null, NaN or infinite value: from each
    row's maximum and minimum (they show NaN and infinities), two passes where element-wise
    checks would take several over the whole batch."""
    high, low = rows.max(axis=1), rows.min(axis=1)
    broken = ~(np.isfinite(high) & np.isfinite(low))
    if broken.any():
        at = int(np.flatnonzero(broken)[0])
        row = _row_of_value(arr, at * rows.shape[1] + int(np.flatnonzero(~np.isfinite(rows[at]))[0]))
        cast = " (a value beyond float32's range, |x| > 3.4e38, becomes one)" \
            if pa.types.is_float32(arr.type.value_type) else ""
        raise InputError(f"feature view '{view}': row {row}{_key_of(keys, row)}: vector field '{field.name}' "
                         f"holds a null, NaN or infinite value{cast}")
    return np.maximum(high, -low).astype(np.float64)  # type: ignore[no-any-return]


def vector_lengths(rows: np.ndarray) -> np.ndarray:
    """Each row's euclidean length in float64, scaled by its largest magnitude first (no overflow or underflow)."""
    largest = np.abs(rows).max(axis=1) if rows.shape[1] else np.zeros(len(rows))
    safe = np.where(largest > 0, largest, 1.0)
    return largest * np.linalg.norm(rows / safe[:, None], axis=1)  # type: ignore[no-any-return]


def _check_lengths(arr: pa.Array, rows: np.ndarray, largest: np.ndarray, field: Field, view: str,
                   keys: pa.Array | None) -> None:
    """Refuse a non-zero vector whose length lies outside [MIN_LENGTH, MAX_LENGTH] (docs/vector.md,
    "Numbers"). A length lies between the largest magnitude and sqrt(d) times it, so only rows
    whose bounds straddle a limit have their length computed."""
    top = largest * np.sqrt(rows.shape[1])
    near = np.flatnonzero((largest > 0) & ((largest < MIN_LENGTH) | (top > MAX_LENGTH)))
    if not len(near):
        return
    lengths = vector_lengths(rows[near].astype(np.float32).astype(np.float64))
    outside = (lengths > 0) & ((lengths < MIN_LENGTH) | (lengths > MAX_LENGTH))
    if outside.any():
        at = int(np.flatnonzero(outside)[0])
        row = _row_of_value(arr, int(near[at]) * rows.shape[1])
        raise InputError(f"feature view '{view}': row {row}{_key_of(keys, row)}: vector field '{field.name}' has "
                         f"length {lengths[at]:g}, outside {MIN_LENGTH:g}..{MAX_LENGTH:g}, where float32 (the type "
                         "vector search computes in) ranks exactly; scale the embeddings")


def _first(mask: pa.Array) -> int:
    return int(np.flatnonzero(mask.to_numpy(zero_copy_only=False))[0])


def _row_of_value(arr: pa.Array, value_index: int) -> int:
    """The row holding the `value_index`-th flattened value (null rows hold none)."""
    lengths = np.asarray(pc.list_value_length(arr).fill_null(0).to_numpy(zero_copy_only=False))
    return int(np.searchsorted(np.cumsum(lengths), value_index, side="right"))


def _key_of(keys: pa.Array | None, row: int) -> str:
    return "" if keys is None else f" (entity key {keys[row].as_py()!r})"


_FLOAT32_MAX = float(np.finfo(np.float32).max)
# The lengths a stored vector (and an L2 / inner-product query) may have: their products and
# squares then stay far inside float32's normal range, in every store's arithmetic (pgvector too).
MIN_LENGTH, MAX_LENGTH = 1e-15, 1e15


def query_vector(query: Any, field: Field, view: str, metric: Metric = Metric.L2) -> np.ndarray:
    """A request's query embedding, checked against the field's declared length, and made
    representable in float32 (the type stores search in) without changing its ranking:

    - COSINE: only the direction counts, so the query is scaled by its largest magnitude, then
      normalized to length 1, in float64: a finite query of any scale (1e300, 1e-320) ranks as its
      direction does;
    - L2, INNER_PRODUCT: the scale counts, so a query with a value beyond float32's range
      (|x| > 3.4e38), a non-zero query all of whose values round to 0 in float32, a query longer
      than MAX_LENGTH, or an INNER_PRODUCT query shorter than MIN_LENGTH is refused naming the
      field (InputError, a 400 from the server).
    """
    try:
        q = np.asarray(query, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"query must be a list of numbers, got {type(query).__name__}") from None
    name = f"'{view}:{field.name}'"
    length = int(getattr(field, "vector_length", 0) or 0)
    if q.ndim != 1:
        raise InputError(f"query must be a 1-D list of numbers (one vector), got an array of shape {q.shape} "
                         f"for vector field {name}")
    if length and len(q) != length:
        raise InputError(f"query has {q.size} values, but vector field {name} has vector_length {length}")
    if not np.isfinite(q).all():
        raise InputError("query holds a NaN or infinite value")
    largest = float(np.abs(q).max()) if q.size else 0.0
    if metric is Metric.COSINE:
        if largest == 0.0:
            return q
        scaled = q / largest
        return scaled / np.linalg.norm(scaled)
    if largest > _FLOAT32_MAX:
        raise InputError(f"query value {largest:g} is beyond float32's range (|x| <= {_FLOAT32_MAX:.7g}), the "
                         f"type vector field {name} is searched in under {metric}; scale the query down")
    if largest > 0.0 and not q.astype(np.float32).any():
        raise InputError(f"every query value rounds to 0 in float32 (largest |x| = {largest:g}), the type vector "
                         f"field {name} is searched in under {metric}; scale the query up")
    size = float(vector_lengths(q.astype(np.float32).astype(np.float64)[None, :])[0])
    if size > MAX_LENGTH or (metric is Metric.INNER_PRODUCT and 0.0 < size < MIN_LENGTH):
        raise InputError(f"query length {size:g} is outside {MIN_LENGTH:g}..{MAX_LENGTH:g}, where float32 (the "
                         f"type vector field {name} is searched in under {metric}) ranks exactly; scale the query")
    return q
