"""The vector search capability of an online store: nearest documents and keyword matches.

A store declares the capability by a line in VECTOR_SEARCH (repast.online); a store without one
(Redis) refuses vector requests with VectorSearchUnsupported naming it. A capability returns
entity keys in rank order under the rules of repast.vector.semantics (distances, ties by entity key,
keyword terms); the caller reads the documents' features through the store's ordinary `read`,
computes the reported distances with repast.vector.semantics, and fuses hybrid rankings, so every store
answers in the same shape with the same numbers.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

    from repast.definitions import FeatureView, Field
    from repast.online.base import OnlineReader, ReadRow
    from repast.vector.metric import Metric

# feature name -> value: a document matches when each named feature equals its value.
Filters = dict[str, Any]


class VectorSearch(ABC):
    """Built as `Capability(store)` over one online store instance."""

    def __init__(self, store: OnlineReader) -> None:
        self.store = store

    @abstractmethod
    def nearest(self, project: str, view: FeatureView, field: Field, query: np.ndarray, metric: Metric,
                top_k: int, filters: Filters, exact: bool) -> list[tuple[str, float]]:
        """Up to top_k (entity key, distance) of the documents matching `filters`, nearest first.
        With `exact`, the ranking is exact even where the store has an approximate index."""

    def nearest_rows(self, project: str, view: FeatureView, field: Field, query: np.ndarray, metric: Metric,
                     top_k: int, filters: Filters, exact: bool, features: Sequence[str]) -> list[tuple[str, ReadRow]]:
        """`nearest`, each hit with its row as the store's `read` returns it (event time, then
        `features`); a store may answer both in one call. A hit removed since it was ranked has None."""
        keys = [k for k, _ in self.nearest(project, view, field, query, metric, top_k, filters, exact)]
        rows = self.store.read(project, view, keys, features) if keys else []
        return list(zip(keys, rows, strict=True))

    @abstractmethod
    def keyword(self, project: str, view: FeatureView, query_string: str, top_k: int,
                filters: Filters) -> list[tuple[str, int]]:
        """Up to top_k (entity key, matched terms) of the documents matching `filters`, best first."""
