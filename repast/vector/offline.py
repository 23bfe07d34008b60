"""retrieve_documents: point-in-time document retrieval from the offline store.

The documents as they were at `as_of`: per entity, the latest row (by event, then created
timestamp) with event_ts <= as_of and, when the view has a ttl T, event_ts >= as_of - T — the
rows materialization would have loaded online at that time. They are ranked exactly, by the same
VectorMatrix and the same rules (repast.vector.semantics) as the SQLite online store, so with as_of = now and
the view materialized, the hits equal the online store's. An evaluation run can therefore ask what
a RAG system would have retrieved on a past date, without leaking later documents.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from repast.definitions import FeatureView, Field
from repast.errors import InputError
from repast.online.base import ReadRow
from repast.online.keys import EVENT_TS, serialize_key_columns
from repast.types.timestamps import as_utc
from repast.vector.base import Filters
from repast.vector.documents import DocumentQuery, parse_request, retrieve
from repast.vector.metric import Metric
from repast.vector.numbers import check_vector_column
from repast.vector.semantics import VectorMatrix, text_fields

if TYPE_CHECKING:
    from repast.jobs.backends import Backends
    from repast.jobs.online_read import OnlineResponse

_BEGINNING = datetime(1970, 1, 1, tzinfo=UTC)


def documents_as_of(store: Backends, view: FeatureView, as_of: datetime) -> pa.Table:
    """Per entity, the latest row of the view's source at or before `as_of` (ttl applied)."""
    start = as_of - view.ttl if view.ttl > timedelta(0) else _BEGINNING
    batches = list(store.offline_engine.read_latest(view, start, as_of + timedelta(microseconds=1)))
    if not batches:
        return pa.table({})
    return pa.Table.from_batches(batches).combine_chunks()


class OfflineDocuments:
    """The documents of one view as of a time, as a DocumentSource."""

    def __init__(self, view: FeatureView, field: Field, table: pa.Table) -> None:
        self.table = table
        n = table.num_rows
        self.keys: list[str] = serialize_key_columns(
            [table.column(k).combine_chunks() for k in view.join_keys]).to_pylist() if n else []
        self.position = {k: i for i, k in enumerate(self.keys)}
        self.matrix = VectorMatrix(field.vector_length)
        if n:
            # The checks a write online makes (length aside: other lengths are not documents), so a
            # source row online search would refuse is named, not ranked as NaN or infinity.
            column = table.column(field.name)
            lengths = pc.list_value_length(column)
            sized = pc.filter(column, pc.fill_null(pc.equal(lengths, field.vector_length), True))
            sized_keys = pc.filter(table.column(view.join_keys[0]), pc.fill_null(
                pc.equal(lengths, field.vector_length), True)) if view.join_keys else None
            try:
                check_vector_column(sized, field, view.name, sized_keys)
            except InputError as e:
                raise InputError("offline documents: " + re.sub(r": row \d+ \(", ": (", str(e), count=1)) from None
            vectors = column.to_pylist()
            texts = [" ".join(v for v in parts if v) for parts in
                     zip(*[table.column(t).to_pylist() for t in text_fields(view)], strict=True)] \
                if text_fields(view) else [""] * n
            keep = [i for i, v in enumerate(vectors) if v is not None and len(v) == field.vector_length]
            if keep:
                self.matrix.upsert([self.keys[i] for i in keep], np.array([vectors[i] for i in keep]),
                                   [texts[i] for i in keep])

    def _mask(self, filters: Filters) -> np.ndarray | None:
        if not filters:
            return None
        selected = pa.array([True] * self.table.num_rows)
        for name, value in filters.items():
            selected = pc.and_(selected, pc.fill_null(pc.equal(self.table.column(name), value), False))
        return self.matrix.mask_of(k for k, s in zip(self.keys, selected.to_pylist(), strict=True) if s)

    def nearest(self, view: FeatureView, field: Field, query: np.ndarray, metric: Metric, top_k: int,
                filters: Filters, exact: bool) -> list[tuple[str, float]]:
        return self.matrix.nearest(query, metric, top_k, self._mask(filters))

    def keyword(self, view: FeatureView, query_string: str, top_k: int, filters: Filters) -> list[tuple[str, int]]:
        return self.matrix.keyword(query_string, top_k, self._mask(filters))

    def read(self, view: FeatureView, keys: Sequence[str], features: Sequence[str]) -> list[ReadRow]:
        if not keys:  # no hit: the table may be empty, without even its columns (no rows as of then)
            return []
        rows = [self.position.get(k) for k in keys]
        taken = self.table.take(pa.array([r for r in rows if r is not None], pa.int64()))
        event_us = pc.cast(taken.column(EVENT_TS), pa.int64()).to_pylist()
        columns = [taken.column(f).to_pylist() for f in features]
        found = iter(zip(event_us, *columns, strict=True))
        return [None if r is None else next(found) for r in rows]


def retrieve_documents(store: Backends, features: Sequence[str], query: Any, top_k: int,
                       as_of: datetime | None, distance_metric: str | None, query_string: str | None,
                       filters: dict[str, Any] | None) -> OnlineResponse:
    """The top_k documents as of `as_of` (default now): the online response shape, from the offline store."""
    if as_of is not None and not isinstance(as_of, datetime):
        raise InputError(f"as_of must be a datetime, got {as_of!r}")
    when = as_utc(as_of) if as_of is not None else datetime.now(UTC)
    req: DocumentQuery = parse_request(lambda name: store.registry.contents().get("feature_view", name), features,
                                       query, top_k, distance_metric, query_string, filters, exact=True)
    table = documents_as_of(store, req.view, when)
    return retrieve(OfflineDocuments(req.view, req.field, table), req)


