"""The one plugin table: for each kind of backend, its `type:` names and where the class lives.

Kinds: offline engines, online stores, registry stores, data sources (by the `type` a source
records in the registry) and the vector search capability of an online store (by the store's
type). Every backend of the first three is a class with a pydantic `Config`, built the same way:
`Class(config, repo_config)`, where `config` is its section of feature_store.yaml. The table holds
"module:Class" strings, so looking a type up imports only the backend that is used (and its
driver), never the others; `plugin_class` checks that what it imports is of the kind asked for, so
callers get a typed class, never Any.

This module sits at the bottom of the package: it imports nothing of repast's, so every layer may
look a backend up here, and the modules it names are imported only when used.
"""

from __future__ import annotations

import importlib
from typing import TypeVar

OFFLINE = "offline_store"
ONLINE = "online_store"
REGISTRY = "registry"
SOURCE = "data_source"
VECTOR = "vector_search"

PLUGINS: dict[str, dict[str, str]] = {
    # `file` and `dask` are Feast's names for embedded engines.
    OFFLINE: {
        "duckdb": "repast.offline.duckdb:DuckDBOfflineEngine",
        "file": "repast.offline.duckdb:DuckDBOfflineEngine",
        "dask": "repast.offline.duckdb:DuckDBOfflineEngine",  # Feast's other embedded engine: same files, same joins
        "postgres": "repast.offline.postgres:PostgresOfflineEngine",
        "spark": "repast.offline.spark:SparkOfflineEngine",
        "remote": "repast.offline.remote:RemoteOfflineEngine",  # a client of `repast serve-offline`
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
    # The `type` a source records in the registry -> its class (rebuilt with `from_dict`).
    SOURCE: {
        "file": "repast.definitions.sources:FileSource",
        "postgres": "repast.definitions.sources:PostgreSQLSource",
        "push": "repast.definitions.sources:PushSource",
        "request": "repast.definitions.sources:RequestSource",
        "spark": "repast.definitions.spark_source:SparkSource",
        "kafka": "repast.definitions.stream_sources:KafkaSource",
    },
    # A capability, not a backend: online_store.type -> its vector search (repast.vector.base),
    # built as `Class(online_store)`; a store type missing here cannot search vectors.
    VECTOR: {
        "sqlite": "repast.vector.sqlite:SqliteVectorSearch",
        "postgres": "repast.vector.postgres:PostgresVectorSearch",
    },
}

T = TypeVar("T")


def plugin_class(kind: str, type_name: str, base: type[T]) -> type[T]:
    """The class registered for `type_name` under `kind`, imported on first use; KeyError for a
    type the table does not know, TypeError when the table names a class that is not a `base`."""
    module, _, name = PLUGINS[kind][type_name].partition(":")
    found = getattr(importlib.import_module(module), name)
    if not (isinstance(found, type) and issubclass(found, base)):
        raise TypeError(f"plugin table: {kind} '{type_name}' names {found!r}, which is not a {base.__name__}")
    return found
