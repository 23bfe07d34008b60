"""The OfflineEngine interface. Engines take definitions and do the I/O; Arrow is the currency."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any

import pyarrow as pa

if TYPE_CHECKING:
    import pandas as pd

    from repast.config import BackendConfig, RepoConfig
    from repast.definitions import DataSource


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
