"""Offline engines: point-in-time joins and reads for materialization, behind one interface."""

from repast.offline.base import OfflineEngine, RetrievalJob

# offline_store.type -> "module:Class". `file` is Feast's name for the embedded engine.
OFFLINE_ENGINES = {
    "duckdb": "repast.offline.duckdb:DuckDBOfflineEngine",
    "file": "repast.offline.duckdb:DuckDBOfflineEngine",
    "postgres": "repast.offline.postgres:PostgresOfflineEngine",
}

__all__ = ["OFFLINE_ENGINES", "OfflineEngine", "RetrievalJob"]
