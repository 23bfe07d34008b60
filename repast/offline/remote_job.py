"""RemoteRetrievalJob: a point-in-time join run by the offline server, read back batch by batch.

Nothing runs until a `to_*` method is called. `to_parquet` (to a local path), `to_batches` and
`to_record_batch_reader` hold one batch at a time; `to_arrow` and `to_df` hold the whole result, as
they must. The server answers every read feature under its full name (`view__feature`); on-demand
views run here on each batch, then the columns are named and ordered as the local engines name them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import pyarrow as pa

from repast.offline.base import RetrievalJob

if TYPE_CHECKING:
    from repast.definitions.feature_refs import FeatureRequest

# Runs the join on the server: the answer's schema, and its batches as they arrive.
Answer = Callable[[], tuple[pa.Schema, Iterator[pa.RecordBatch]]]


class RemoteRetrievalJob(RetrievalJob):
    def __init__(self, answer: Answer, repo_path: str, request: FeatureRequest, full_feature_names: bool) -> None:
        self.answer = answer
        self._repo_path = repo_path
        self.request = request
        self.full_feature_names = full_feature_names

    def repo_path(self) -> str | None:
        return self._repo_path

    def _stream(self) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
        schema, batches = self.answer()
        internal = {vr.output_name(f, True) for vr in self.request.views for f in vr.read_features}
        entity_columns = [n for n in schema.names if n not in internal]
        return schema, (self._finish(b, entity_columns) for b in batches)

    def _finish(self, batch: pa.RecordBatch, entity_columns: list[str]) -> pa.RecordBatch:
        """The server's batch as the local job's rows: on-demand features added, hidden ones dropped."""
        from repast.ondemand.transform import apply_on_demand

        joined = pa.Table.from_batches([batch])
        outputs: dict[str, str] = {}
        for vr in self.request.views:
            for feature in vr.features:
                outputs[vr.output_name(feature, self.full_feature_names)] = vr.output_name(feature, True)
        if self.request.on_demand:
            joined = apply_on_demand(joined, self.request.on_demand, self.full_feature_names)
            outputs.update({o: o for o in self.request.output_names if o not in outputs})
        names = entity_columns + self.request.output_names
        columns = [joined.column(c) for c in entity_columns] + [joined.column(outputs[o])
                                                               for o in self.request.output_names]
        return _one_batch(pa.Table.from_arrays(columns, names=names))

    def to_batches(self, batch_rows: int = 65_536) -> Iterator[pa.RecordBatch]:
        """The result's record batches as the server sends them (in the server's --batch-rows, whatever
        `batch_rows` says); stop iterating to end the call."""
        return self._stream()[1]

    def to_record_batch_reader(self) -> pa.RecordBatchReader:
        """The result as a pyarrow RecordBatchReader (one batch in memory at a time)."""
        first, batches = self._peek()
        return pa.RecordBatchReader.from_batches(first.schema, _chain(first, batches))

    def _peek(self) -> tuple[pa.RecordBatch, Iterator[pa.RecordBatch]]:
        """The first finished batch (an empty one when the answer has none) and the rest."""
        schema, batches = self._stream()
        for first in batches:
            return first, batches
        empty = pa.RecordBatch.from_pylist([], schema=schema)
        entity_columns = [n for n in schema.names
                          if n not in {vr.output_name(f, True) for vr in self.request.views
                                       for f in vr.read_features}]
        return self._finish(empty, entity_columns), iter(())

    def to_arrow(self) -> pa.Table:
        first, batches = self._peek()
        return pa.Table.from_batches(list(_chain(first, batches)), schema=first.schema)

    def to_parquet(self, path: str, endpoint_override: str | None = None) -> None:
        """As RetrievalJob.to_parquet; a local path is written batch by batch as the server sends them."""
        import os

        import pyarrow.parquet as pq

        from repast.offline.storage_paths import is_remote

        if is_remote(path):
            super().to_parquet(path, endpoint_override)
            return
        local = path.removeprefix("file://")
        partial = f"{local}.partial"
        first, batches = self._peek()
        try:
            with pq.ParquetWriter(partial, first.schema) as writer:
                for batch in _chain(first, batches):
                    writer.write_batch(batch)
            os.replace(partial, local)
        finally:
            if os.path.exists(partial):
                os.remove(partial)


def _chain(first: pa.RecordBatch, rest: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    yield first
    yield from rest


def _one_batch(table: pa.Table) -> pa.RecordBatch:
    combined = table.combine_chunks()
    batches = combined.to_batches()
    return batches[0] if batches else pa.RecordBatch.from_pylist([], schema=table.schema)
