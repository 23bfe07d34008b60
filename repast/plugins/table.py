"""The one plugin table: for each kind of backend, its `type:` names and where the class lives.

Every backend, whatever its kind, is a class with a pydantic `Config` (offline and online
stores) and is built the same way: `Class(config, repo_config)`, where `config` is its section of
feature_store.yaml. The table holds "module:Class" strings, so looking a type up imports only the
backend that is used (and its driver), never the others.
"""

from __future__ import annotations

import importlib
from typing import Any

OFFLINE = "offline_store"
ONLINE = "online_store"
REGISTRY = "registry"
VECTOR = "vector_search"

PLUGINS: dict[str, dict[str, str]] = {
    # `file` and `dask` are Feast's names for embedded engines.
    OFFLINE: {
        "duckdb": "repast.offline.duckdb:DuckDBOfflineEngine",
        "file": "repast.offline.duckdb:DuckDBOfflineEngine",
        "dask": "repast.offline.duckdb:DuckDBOfflineEngine",  # Feast's other embedded engine: same files, same joins
        "postgres": "repast.offline.postgres:PostgresOfflineEngine",
        "spark": "repast.offline.spark:SparkOfflineEngine",
    },
    ONLINE: {
        "sqlite": "repast.online.sqlite:SqliteOnlineStore",
        "redis": "repast.online.redis:RedisOnlineStore",
        "postgres": "repast.online.postgres:PostgresOnlineStore",
        "remote": "repast.online.remote:RemoteOnlineStore",
    },
    # registry.registry_type; `file` is Feast's name for a local registry file.
    REGISTRY: {
        "sql": "repast.registry.sql:SQLRegistryStore",
        "file": "repast.registry.sql:SQLRegistryStore",
        "remote": "repast.registry.remote:RemoteRegistryStore",
        "object": "repast.registry.object_store:ObjectRegistryStore",  # s3:// and gs:// paths
    },
    # A capability, not a backend: online_store.type -> its vector search (repast.vector.base),
    # built as `Class(online_store)`; a store type missing here cannot search vectors.
    VECTOR: {
        "sqlite": "repast.vector.sqlite:SqliteVectorSearch",
        "postgres": "repast.vector.postgres:PostgresVectorSearch",
    },
}


def plugin_class(kind: str, type_name: str) -> Any:
    """The class registered for `type_name` under `kind`, imported on first use."""
    module, _, name = PLUGINS[kind][type_name].partition(":")
    return getattr(importlib.import_module(module), name)


def build_plugin(kind: str, config: Any, repo_config: Any) -> Any:
    """A backend of `kind` for its section `config` of feature_store.yaml: `Class(config, repo_config)`."""
    return plugin_class(kind, config.type if kind != REGISTRY else config.registry_type)(config, repo_config)
