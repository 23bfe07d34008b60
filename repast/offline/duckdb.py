"""DuckDBOfflineEngine: the embedded engine over Parquet and CSV files, scanned in place."""

from __future__ import annotations

import glob
import os
from typing import Literal

import pyarrow as pa

from repast.config import BackendConfig
from repast.definitions import DataSource, FileSource
from repast.errors import DefinitionError
from repast.offline.base import OfflineEngine


class DuckDBOfflineConfig(BackendConfig):
    type: Literal["duckdb", "file"] = "duckdb"
    memory_limit: str | None = None
    threads: int | None = None


def resolve_files(source: FileSource, repo_path: str) -> list[str]:
    """The files a FileSource names (a file, a directory of part files, or a glob), absolute."""
    path = source.path if os.path.isabs(source.path) else os.path.join(repo_path, source.path)
    if any(ch in path for ch in "*?["):
        files = sorted(glob.glob(path, recursive=True))
    elif os.path.isdir(path):
        ext = "." + source.file_format
        files = sorted(os.path.join(d, f) for d, _, fs in os.walk(path) for f in fs if f.endswith(ext))
    else:
        files = [path] if os.path.exists(path) else []
    if not files:
        raise DefinitionError(f"FileSource '{source.name}': no {source.file_format} files at '{source.path}'")
    return files


class DuckDBOfflineEngine(OfflineEngine):
    Config = DuckDBOfflineConfig

    def source_schema(self, source: DataSource) -> pa.Schema:
        if not isinstance(source, FileSource):
            raise DefinitionError(
                f"data source '{source.name}' ({type(source).__name__}) cannot be read by the duckdb "
                "offline engine; use a FileSource or set offline_store.type to match the source")
        files = resolve_files(source, str(self.repo_config.repo_path))
        if source.file_format == "csv":
            import pyarrow.csv as pcsv

            with pcsv.open_csv(files[0]) as reader:
                return reader.schema
        import pyarrow.parquet as pq

        return pq.read_schema(files[0])
