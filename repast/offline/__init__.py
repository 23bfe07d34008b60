"""Offline engines: point-in-time joins and reads for materialization, behind one interface."""

from repast.offline.base import OfflineEngine, RetrievalJob

# offline_store.type -> "module:Class". `file` and `dask` are Feast's names for embedded engines.
OFFLINE_ENGINES = {
    "duckdb": "repast.offline.duckdb:DuckDBOfflineEngine",
    "file": "repast.offline.duckdb:DuckDBOfflineEngine",
    "dask": "repast.offline.duckdb:DuckDBOfflineEngine",  # Feast's other embedded engine: same files, same joins
    "postgres": "repast.offline.postgres:PostgresOfflineEngine",
}

__all__ = ["OFFLINE_ENGINES", "OfflineEngine", "RetrievalJob"]
