"""The OfflineEngine interface. Engines take definitions and do the I/O; Arrow is the currency."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pyarrow as pa

if TYPE_CHECKING:
    import pandas as pd

    from repast.config import BackendConfig, RepoConfig
    from repast.definitions import DataSource, FeatureView


class RetrievalJob(ABC):
    """A lazy result: nothing runs until one of the `to_*` methods is called."""

    @abstractmethod
    def to_arrow(self) -> pa.Table: ...

    def to_df(self) -> pd.DataFrame:
        return self.to_arrow().to_pandas()

    def to_parquet(self, path: str) -> None:
        import pyarrow.parquet as pq

        pq.write_table(self.to_arrow(), path)


class OfflineEngine(ABC):
    """Reads sources of one kind. Built as `Engine(config, repo_config)` from the OFFLINE_ENGINES table."""

    Config: type[BackendConfig]

    def __init__(self, config: Any, repo_config: RepoConfig) -> None:
        self.config = config
        self.repo_config = repo_config

    @abstractmethod
    def source_schema(self, source: DataSource) -> pa.Schema:
        """The columns of `source` (read from file metadata or the table), without reading rows.

        Raises DefinitionError naming the source when this engine cannot read it or it is missing.
        """

    # Materialization and offline push. Column contract of every batch/table returned below:
    # the view's join keys and features under their *feature-view* names (field_mapping applied),
    # then `event_timestamp` (timestamp[us, UTC]) and `created_timestamp` (timestamp[us, UTC],
    # null when the source has no created column).

    @abstractmethod
    def read_latest(self, view: FeatureView, start: datetime, end: datetime,
                    batch_size: int = 100_000) -> Iterator[pa.RecordBatch]:
        """Per entity key, the latest row (by event, then created timestamp) with start <= event_ts < end."""

    @abstractmethod
    def read_range(self, view: FeatureView, start: datetime, end: datetime) -> pa.Table:
        """Every row of the view's source with start <= event_ts < end."""

    @abstractmethod
    def write_rows(self, source: DataSource, table: pa.Table) -> None:
        """Append rows (source column names) to a batch source: offline push."""
