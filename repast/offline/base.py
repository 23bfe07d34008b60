"""The OfflineEngine interface. Engines take definitions and do the I/O; Arrow is the currency."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, TypeAlias

import pyarrow as pa

from repast.plugins.capabilities import Capabilities

if TYPE_CHECKING:
    import pandas as pd

    from repast.definitions import DataSource, FeatureView
    from repast.definitions.feature_refs import FeatureRequest
    from repast.plugins.base_config import BackendConfig, RepoSettings


class RetrievalJob(ABC):
    """A lazy result: nothing runs until one of the `to_*` methods is called."""

    @abstractmethod
    def to_arrow(self) -> pa.Table: ...

    def to_batches(self, batch_rows: int = 65_536) -> Iterator[pa.RecordBatch]:
        """The rows as record batches; a job that can read its result lazily holds one batch at a time
        (by default the whole result is read, then split)."""
        yield from self.to_arrow().to_batches(batch_rows)

    def cancel(self) -> None:  # noqa: B027
        """Stop the engine's work for this job's running `to_*` call, from another thread (the
        offline server calls it when its client goes away); the call then raises. By default nothing
        can be stopped and the call runs to its end."""

    def to_df(self) -> pd.DataFrame:
        frame: pd.DataFrame = self.to_arrow().to_pandas()
        return frame

    def to_parquet(self, path: str, endpoint_override: str | None = None) -> None:
        """Write the result as one Parquet file: a local path, file://, s3:// or gs:// (credentials
        and endpoint as for FileSource paths, see docs/offline.md)."""
        import pyarrow.parquet as pq

        from repast.offline.leftovers import write_whole
        from repast.offline.storage_paths import explain, filesystem_for, is_remote

        fs, inner = filesystem_for(path, endpoint_override)
        if not is_remote(path):
            pq.write_table(self.to_arrow(), inner, filesystem=fs)
            return
        table = self.to_arrow()
        try:
            write_whole(path, fs, inner, lambda out: pq.write_table(table, out), endpoint_override)
        except OSError as e:
            raise explain(e, path, f"to_parquet('{path}')") from None

    def repo_path(self) -> str | None:
        """Where relative storage paths resolve (the feature repo), when the job knows it."""
        return None

    def persist(self, storage: Any, allow_overwrite: bool = False, timeout: int | None = None) -> None:
        """Write the rows to `storage` (SavedDatasetFileStorage: one Parquet file), all or nothing:
        written beside the target, then renamed over it (on s3:// or gs://, one PUT, which is
        atomic there). An existing file is an InputError unless `allow_overwrite`. `timeout` is
        accepted for Feast compatibility."""
        import os
        import uuid

        import pyarrow.fs as pafs
        import pyarrow.parquet as pq

        from repast.errors import InputError
        from repast.offline.storage_paths import explain, filesystem_for, is_remote

        path = storage.to_dict()["path"]
        base = self.repo_path()
        if "://" not in path and not os.path.isabs(path) and base is not None:
            path = os.path.join(base, path)
        endpoint = getattr(storage, "s3_endpoint_override", None)
        fs, inner = filesystem_for(path, endpoint)
        try:
            found = fs.get_file_info(inner).type
        except OSError as e:
            if not is_remote(path):
                raise
            raise explain(e, path, f"saved dataset storage '{path}'") from None
        if found != pafs.FileType.NotFound and not allow_overwrite:
            raise InputError(f"saved dataset storage '{path}' already exists; pass allow_overwrite=True to replace it")
        if is_remote(path):
            self.to_parquet(path, endpoint)
            return
        os.makedirs(os.path.dirname(inner) or ".", exist_ok=True)
        partial = f"{inner}.{uuid.uuid4().hex}.partial"
        try:
            pq.write_table(self.to_arrow(), partial)
            os.replace(partial, inner)
        finally:
            if os.path.exists(partial):
                os.remove(partial)


@dataclass(frozen=True)
class SpineRange:
    """Retrieval without an entity frame: the spine is one row per entity (join keys) seen in the
    requested views' rows with start <= event_ts <= end (both tz-aware UTC), at its latest event
    time there, so each view contributes its latest row per entity in the window (as Feast)."""

    start: datetime
    end: datetime


# What an engine joins features onto: an Arrow table, an SQL query in the engine's dialect, or a
# time range whose view rows form the spine.
EntityInput: TypeAlias = pa.Table | str | SpineRange


class OfflineEngine(ABC):
    """Reads sources of one kind. Built as `Engine(config, repo_config)` from the OFFLINE_ENGINES table."""

    Config: type[BackendConfig]
    # Capabilities as data (repast/plugins/capabilities.py), e.g. write_online_in_place.
    capabilities: ClassVar[Capabilities] = Capabilities()

    def __init__(self, config: Any, repo_config: RepoSettings) -> None:
        self.config = config
        self.repo_config = repo_config
        bounds = getattr(repo_config, "object_storage", None)  # absent from a model_construct()ed config
        if bounds is not None:
            from repast.offline.storage_paths import use_timeouts

            use_timeouts(bounds.connect_timeout_seconds, bounds.read_timeout_seconds)

    @abstractmethod
    def source_schema(self, source: DataSource) -> pa.Schema:
        """The columns of `source` (read from file metadata or the table), without reading rows.

        Raises DefinitionError naming the source when this engine cannot read it or it is missing.
        """

    def schema_for_apply(self, source: DataSource) -> pa.Schema | None:
        """The columns `plan` and `apply` check a view against; None when they cannot be had without
        starting a heavy runtime (the Spark engine's tables and queries: a JVM), so the check waits
        for the first read. By default `source_schema`."""
        return self.source_schema(source)

    @abstractmethod
    def get_historical_features(self, entity: EntityInput, request: FeatureRequest,
                                full_feature_names: bool) -> RetrievalJob:
        """The point-in-time join of DESIGN.md, as a lazy job.

        The output has the entity rows in order with all their columns (the event timestamp
        column as timestamp[us, UTC]), then `request.output_names`, typed as declared. Bad input
        (no timestamp column, a missing or mistyped join key, a name clash) raises InputError or
        EntityKeyError here, before any join runs.
        """

    # Materialization and offline push. Column contract of every batch/table returned below:
    # the view's join keys and features under their *feature-view* names (field_mapping applied),
    # then `event_timestamp` (timestamp[us, UTC]) and `created_timestamp` (timestamp[us, UTC],
    # null when the source has no created column).

    @abstractmethod
    def read_latest(self, view: FeatureView, start: datetime, end: datetime,
                    batch_size: int = 100_000) -> Iterator[pa.RecordBatch]:
        """Per entity key, the latest row (by event, then created timestamp) with start <= event_ts < end,
        in join key order (an online store keyed by the key then writes its key space in one sweep)."""

    @abstractmethod
    def read_range(self, view: FeatureView, start: datetime, end: datetime) -> pa.Table:
        """Every row of the view's source with start <= event_ts < end."""

    def read_range_by_key(self, view: FeatureView, start: datetime, end: datetime,
                          batch_size: int = 100_000) -> Iterator[pa.RecordBatch]:
        """The rows of read_range in batches of at most `batch_size`, ordered by the join keys (one
        key's rows consecutive, across batches). This default reads the range whole; an engine that
        can sort and stream its result overrides it, so memory holds a batch at a time."""
        table = self.read_range(view, start, end)
        yield from table.sort_by([(k, "ascending") for k in view.join_keys]).to_batches(batch_size)

    def close(self) -> None:  # noqa: B027 - an engine that holds no connection has nothing to release
        """Release held connections; the engine reconnects on next use."""

    @abstractmethod
    def write_rows(self, source: DataSource, table: pa.Table) -> None:
        """Append rows (source column names) to a batch source: offline push.

        Atomic and safe under concurrent writers: the rows are all stored once, or none are."""


def cast_to_view_types(batch: Any, view: FeatureView) -> Any:
    """A RecordBatch or Table with its feature columns in the types the view declares."""
    from repast.types.columns import offline_column

    declared = {f.name: f.dtype for f in view.features}
    target = pa.schema([pa.field(f.name, declared[f.name].to_arrow() if f.name in declared else f.type)
                        for f in batch.schema])
    if target == batch.schema:
        return batch
    columns = [offline_column(pa.chunked_array([batch.column(i)]) if isinstance(batch, pa.RecordBatch)
                              else batch.column(i), declared[n]) if n in declared else batch.column(i)
               for i, n in enumerate(batch.schema.names)]
    if isinstance(batch, pa.RecordBatch):
        return pa.RecordBatch.from_arrays([c.combine_chunks() if isinstance(c, pa.ChunkedArray) else c
                                           for c in columns], names=batch.schema.names)
    return pa.table(columns, names=batch.schema.names)
