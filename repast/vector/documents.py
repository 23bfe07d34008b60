"""retrieve_online_documents(_v2) and retrieve_documents: the top-k documents of one view.

One path for every source of documents: a `DocumentSource` ranks entity keys (an online store's
vector search capability, or the offline documents as of a time) and reads their rows; this module
checks the request, fuses hybrid rankings, computes the reported distances with repast.vector.semantics and
builds the response, so the online stores and the offline path answer alike.

Response (an OnlineResponse, one row per hit, best first): the view's join key columns, the
requested features in request order, then `distance` (when a query vector is given) and
`text_rank` (when a query string is given).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pyarrow as pa

from repast.definitions import FeatureView, Field
from repast.errors import FeatureNotFound, InputError, VectorSearchUnsupported
from repast.online.base import ReadRow
from repast.online.codec import datetime_from_us
from repast.online.keys import SEPARATOR, key_types
from repast.vector.base import Filters, VectorSearch
from repast.vector.metric import Metric, parse_metric
from repast.vector.numbers import query_vector
from repast.vector.semantics import exact_distances, fuse, fusion_depth, order_hits

if TYPE_CHECKING:
    from repast.jobs.backends import Backends
    from repast.jobs.online_read import OnlineResponse


class DocumentSource(Protocol):
    def nearest(self, view: FeatureView, field: Field, query: np.ndarray, metric: Metric, top_k: int,
                filters: Filters, exact: bool) -> list[tuple[str, float]]: ...

    def keyword(self, view: FeatureView, query_string: str, top_k: int, filters: Filters) -> list[tuple[str, int]]: ...

    def read(self, view: FeatureView, keys: Sequence[str], features: Sequence[str]) -> list[ReadRow]: ...


@dataclass
class DocumentQuery:
    """A checked request: the view, its vector field, what to return and how to rank."""

    view: FeatureView
    field: Field
    features: list[str]  # requested, in order
    query: np.ndarray | None
    metric: Metric
    top_k: int
    query_string: str | None
    filters: Filters
    exact: bool


def parse_request(view_of: Any, features: Sequence[str], query: Any, top_k: int, distance_metric: str | None,
                  query_string: str | None, filters: dict[str, Any] | None, exact: bool = False) -> DocumentQuery:
    """Check a request before any store is touched; `view_of(name)` returns a registered view."""
    if isinstance(features, str) or not features or not all(isinstance(f, str) and ":" in f for f in features):
        raise InputError(f"features must be a non-empty list of 'view:feature' references, got {features!r}")
    views = {f.split(":", 1)[0] for f in features}
    if len(views) > 1:
        raise InputError(f"every feature of a document retrieval must come from one view; got views {sorted(views)}")
    view: FeatureView = view_of(views.pop())
    names = [f.split(":", 1)[1] for f in features]
    unknown = [n for n in names if n not in view.feature_names()]
    if unknown:
        raise FeatureNotFound(f"feature view '{view.name}' has no feature {unknown[0]!r}; "
                              f"it has {view.feature_names()}")
    field = _vector_field(view, names)
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k <= 0:
        raise InputError(f"top_k must be a positive integer, got {top_k!r}")
    if query is None and not query_string:
        raise InputError("give a query vector, a query_string, or both")
    if query_string is not None and not isinstance(query_string, str):
        raise InputError(f"query_string must be text, got {type(query_string).__name__}")
    metric = parse_metric(distance_metric or field.vector_search_metric, "distance_metric")
    q = None if query is None else query_vector(query, field, view.name, metric)
    if q is not None and metric is Metric.COSINE and not q.any():
        raise InputError("the query vector is all zeros, which has no COSINE distance to anything")
    return DocumentQuery(view, field, names, q, metric, top_k, query_string or None,
                         _check_filters(view, filters or {}), exact)


def _vector_field(view: FeatureView, requested: list[str]) -> Field:
    fields = [f for f in view.features if f.vector_index]
    if not fields:
        raise InputError(f"feature view '{view.name}' has no field declared with vector_index=True")
    chosen = [f for f in fields if f.name in requested] or fields
    if len(chosen) > 1:
        raise InputError(f"feature view '{view.name}' has several vector fields {[f.name for f in chosen]}; "
                         "request exactly one of them")
    return chosen[0]


def _check_filters(view: FeatureView, filters: dict[str, Any]) -> Filters:
    if not isinstance(filters, dict):
        raise InputError(f"filters must map feature names to values, got {type(filters).__name__}")
    dtypes = {f.name: f.dtype for f in view.features}
    for name, value in filters.items():
        if name not in dtypes:
            raise InputError(f"filter on '{name}': feature view '{view.name}' has no such feature; "
                             f"it has {view.feature_names()}")
        if getattr(dtypes[name], "base", None) is not None or dtypes[name].name in ("Bytes", "UnixTimestamp"):
            raise InputError(f"filter on '{name}': only Int, Float, String and Bool features can be filtered "
                             f"by equality, not {dtypes[name]}")
        if not isinstance(value, str | int | float | bool):
            raise InputError(f"filter on '{name}': the value must be a number, text or boolean, got {value!r}")
    return dict(filters)


def retrieve(source: DocumentSource, req: DocumentQuery) -> OnlineResponse:
    """Rank, read, report: the response shape of the module docstring."""
    read = list(dict.fromkeys([*req.features, req.field.name]))
    text_hits: list[tuple[str, int]] = []
    nearest_rows = getattr(source, "nearest_rows", None)
    if req.query is not None and not req.query_string and nearest_rows is not None:
        # The hits and their rows in one call (one round trip to a remote store).
        hits = nearest_rows(req.view, req.field, req.query, req.metric, req.top_k, req.filters, req.exact, read)
        keys, rows = [k for k, _ in hits], [r for _, r in hits]
    else:
        depth = req.top_k if req.query_string is None or req.query is None else fusion_depth(req.top_k)
        vector_hits = source.nearest(req.view, req.field, req.query, req.metric, depth, req.filters, req.exact) \
            if req.query is not None else []
        text_hits = source.keyword(req.view, req.query_string, depth, req.filters) if req.query_string else []
        if req.query is not None and req.query_string:
            keys = fuse([k for k, _ in vector_hits], [k for k, _ in text_hits], req.top_k)
        else:
            keys = [k for k, _ in (vector_hits or text_hits)][:req.top_k]
        rows = source.read(req.view, keys, read)
    found = [(k, r) for k, r in zip(keys, rows, strict=True) if r is not None]  # removed since ranked
    distances: list[float] = []
    if req.query is not None:
        j = read.index(req.field.name) + 1
        vectors = [r[j] for _, r in found]
        usable = [i for i, v in enumerate(vectors) if v is not None and len(v) == len(req.query)]
        found = [found[i] for i in usable]
        computed = exact_distances(np.array([vectors[i] for i in usable], dtype=np.float64).reshape(
            len(usable), len(req.query)), req.query, req.metric)
        # A zero vector has no COSINE distance (possible when the request overrides an L2 field's metric).
        defined = np.flatnonzero(np.isfinite(computed)).tolist()
        found, distances = [found[i] for i in defined], computed[defined].tolist()
        if not req.query_string:  # one definition of the order: the distances reported here
            order = order_hits([k for k, _ in found], distances)
            found, distances = [found[i] for i in order], [distances[i] for i in order]
    ranks = dict(text_hits)
    return _response(req, read, found, distances, [ranks.get(k, 0) for k, _ in found])


def _response(req: DocumentQuery, read: list[str], found: list[tuple[str, Any]], distances: list[float],
              text_ranks: list[int]) -> OnlineResponse:
    from repast.jobs.online_read import FieldStatus, OnlineResponse

    view = req.view
    values: dict[str, list[Any]] = entity_columns(view, [k for k, _ in found])
    types: dict[str, pa.DataType] = {}
    dtypes = {f.name: f.dtype for f in view.features}
    for name in req.features:
        j = read.index(name) + 1
        # A store may give vectors as NumPy arrays (repast.vector.sqlite): answered as lists.
        values[name] = [r[j].tolist() if isinstance(r[j], np.ndarray) else r[j] for _, r in found]
        types[name] = dtypes[name].to_arrow()
    if req.query is not None:
        values["distance"], types["distance"] = distances, pa.float64()
    if req.query_string:
        values["text_rank"], types["text_rank"] = text_ranks, pa.int64()
    stamps = [datetime_from_us(r[0]) if r[0] is not None else None for _, r in found]
    statuses = {name: [FieldStatus.NULL_VALUE if v is None else FieldStatus.PRESENT for v in column]
                for name, column in values.items()}
    event_timestamps: dict[str, list[datetime | None]] = {
        name: stamps if name in req.features else [None] * len(found) for name in values}
    return OnlineResponse(values, statuses, event_timestamps, arrow_types=types)


def entity_columns(view: FeatureView, keys: Sequence[str]) -> dict[str, list[Any]]:
    """The join key values behind serialized entity keys, typed as the view declares them."""
    names = view.join_keys
    parts = [k.split(SEPARATOR) if len(names) > 1 else [k] for k in keys]
    columns: dict[str, list[Any]] = {}
    for i, (name, dtype) in enumerate(zip(names, key_types(view), strict=True)):
        kind = dtype.name if dtype is not None else None
        convert: Any = int if kind in ("Int32", "Int64") else bytes.fromhex if kind == "Bytes" else str
        columns[name] = [convert(p[i]) for p in parts]
    return columns


class OnlineDocuments:
    """The online store as a DocumentSource: its vector search capability and its reads."""

    def __init__(self, store: Backends) -> None:
        self.project = store.project
        self.online = store.online_store
        self.search = vector_search_of(store)

    def nearest(self, view: FeatureView, field: Field, query: np.ndarray, metric: Metric, top_k: int,
                filters: Filters, exact: bool) -> list[tuple[str, float]]:
        return self.search.nearest(self.project, view, field, query, metric, top_k, filters, exact)

    def nearest_rows(self, view: FeatureView, field: Field, query: np.ndarray, metric: Metric, top_k: int,
                     filters: Filters, exact: bool, features: Sequence[str]) -> list[tuple[str, ReadRow]]:
        return self.search.nearest_rows(self.project, view, field, query, metric, top_k, filters, exact, features)

    def keyword(self, view: FeatureView, query_string: str, top_k: int, filters: Filters) -> list[tuple[str, int]]:
        return self.search.keyword(self.project, view, query_string, top_k, filters)

    def read(self, view: FeatureView, keys: Sequence[str], features: Sequence[str]) -> list[ReadRow]:
        return self.online.read(self.project, view, keys, features) if keys else []


def vector_search_of(store: Backends) -> VectorSearch:
    """The online store's vector search capability (built once per store object)."""
    from repast.plugins.table import PLUGINS, VECTOR, plugin_class
    from repast.vector.base import VectorSearch

    online = store.online_store
    capability: VectorSearch | None = getattr(online, "_repast_vector_search", None)
    if capability is not None:
        return capability
    kind = store.config.online_store.type
    if kind not in PLUGINS[VECTOR]:
        raise VectorSearchUnsupported(
            f"online store '{kind}' ({type(online).__name__}) does not support vector search; "
            f"use one of: {', '.join(sorted(PLUGINS[VECTOR]))}")
    capability = plugin_class(VECTOR, kind, VectorSearch)(online)
    online._repast_vector_search = capability  # type: ignore[attr-defined]
    return capability


def retrieve_online_documents_v2(store: Backends, features: Sequence[str], query: Any = None, top_k: int = 10,
                                 distance_metric: str | None = None, query_string: str | None = None,
                                 filters: dict[str, Any] | None = None, exact: bool = False) -> OnlineResponse:
    """The top_k documents of one view from the online store (see the module docstring)."""
    source = OnlineDocuments(store)  # first: a store without the capability says so, whatever the request
    req = parse_request(lambda name: store.registry.contents().get("feature_view", name), features, query, top_k,
                        distance_metric, query_string, filters, exact)
    return retrieve(source, req)
