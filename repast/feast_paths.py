"""Feast's public module paths, mirrored: `from repast.data_source import PushMode` works as
`from feast.data_source import PushMode` does, so a Feast repo ports by swapping the package name.

FEAST_PATHS is the one list: module path -> public name -> "our_module:attribute". The modules are
built from it on first import by a finder added at the end of `sys.meta_path` (after the normal
finders, so a real module of the same name always wins); each is a thin namespace of re-exports,
never new behaviour. tests/unit/test_feast_paths.py imports every name at every path from this
list. Paths whose last part is also a prefix of another path are packages.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from types import ModuleType

_DEFS = "repast.definitions"
FEAST_PATHS: dict[str, dict[str, str]] = {
    "repast.data_source": {
        "DataSource": f"{_DEFS}.sources:DataSource", "PushSource": f"{_DEFS}.sources:PushSource",
        "RequestSource": f"{_DEFS}.sources:RequestSource", "PushMode": "repast.jobs.push:PushMode",
        "KafkaSource": f"{_DEFS}.stream_sources:KafkaSource",
    },
    "repast.data_format": {"ParquetFormat": f"{_DEFS}.sources:ParquetFormat",
                           "CsvFormat": f"{_DEFS}.sources:CsvFormat",
                           "JsonFormat": f"{_DEFS}.stream_sources:JsonFormat",
                           "AvroFormat": f"{_DEFS}.stream_sources:AvroFormat",
                           "StreamFormat": f"{_DEFS}.stream_sources:StreamFormat"},
    "repast.entity": {"Entity": f"{_DEFS}.entity:Entity"},
    "repast.aggregation": {"Aggregation": f"{_DEFS}.aggregation:Aggregation"},
    "repast.field": {"Field": f"{_DEFS}.entity:Field"},
    "repast.value_type": {"ValueType": "repast.types:ValueType"},
    "repast.feature_view": {"FeatureView": f"{_DEFS}.feature_view:FeatureView"},
    "repast.stream_feature_view": {"StreamFeatureView": f"{_DEFS}.stream_view:StreamFeatureView"},
    "repast.batch_feature_view": {"BatchFeatureView": f"{_DEFS}.feature_view:BatchFeatureView"},
    "repast.feature_view_projection": {"FeatureViewProjection": f"{_DEFS}.feature_view:Projection"},
    "repast.on_demand_feature_view": {
        "OnDemandFeatureView": f"{_DEFS}.on_demand:OnDemandFeatureView",
        "on_demand_feature_view": f"{_DEFS}.on_demand:on_demand_feature_view",
    },
    "repast.label_view": {"LabelView": f"{_DEFS}.label_view:LabelView",
                          "ConflictPolicy": f"{_DEFS}.label_view:ConflictPolicy"},
    "repast.feature_service": {"FeatureService": f"{_DEFS}.feature_service:FeatureService"},
    "repast.project": {"Project": f"{_DEFS}.project:Project"},
    "repast.feature_logging": {
        "LoggingConfig": f"{_DEFS}.logging_config:LoggingConfig",
        "LoggingDestination": f"{_DEFS}.logging_config:LoggingDestination",
    },
    "repast.saved_dataset": {
        "SavedDataset": f"{_DEFS}.saved_dataset:SavedDataset",
        "SavedDatasetStorage": f"{_DEFS}.saved_dataset:SavedDatasetStorage",
    },
    "repast.feature_store": {"FeatureStore": "repast.store:FeatureStore"},
    "repast.repo_config": {"RepoConfig": "repast.config.repo_config:RepoConfig",
                           "RegistryConfig": "repast.config.repo_config:RegistryConfig"},
    "repast.online_response": {"OnlineResponse": "repast.jobs.online_read:OnlineResponse"},
    "repast.infra.offline_stores.offline_store": {"RetrievalJob": "repast.offline.base:RetrievalJob"},
    "repast.infra.offline_stores.file_source": {
        "FileSource": f"{_DEFS}.sources:FileSource",
        "FileLoggingDestination": f"{_DEFS}.logging_config:FileLoggingDestination",
        "SavedDatasetFileStorage": f"{_DEFS}.saved_dataset:SavedDatasetFileStorage",
    },
    "repast.infra.offline_stores.contrib.postgres_offline_store.postgres_source": {
        "PostgreSQLSource": f"{_DEFS}.sources:PostgreSQLSource",
    },
    "repast.infra.offline_stores.contrib.postgres_offline_store.postgres": {
        "PostgreSQLOfflineStoreConfig": "repast.offline.postgres:PostgresOfflineConfig",
    },
    "repast.infra.online_stores.sqlite": {"SqliteOnlineStoreConfig": "repast.online.sqlite:SqliteOnlineConfig"},
    "repast.infra.online_stores.redis": {"RedisOnlineStoreConfig": "repast.online.redis:RedisOnlineConfig"},
    "repast.infra.online_stores.postgres_online_store.postgres": {
        "PostgreSQLOnlineStoreConfig": "repast.online.postgres:PostgresOnlineConfig",
    },
}


def _packages() -> set[str]:
    """Every proper prefix of a mirrored path that is not a real module of ours."""
    prefixes: set[str] = set()
    for path in FEAST_PATHS:
        parts = path.split(".")
        prefixes.update(".".join(parts[:i]) for i in range(2, len(parts)))
    return prefixes


_PACKAGES = _packages()


class _FeastPathFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Builds the mirrored modules (and their parent packages) from FEAST_PATHS."""

    def find_spec(self, fullname: str, path: object = None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if fullname not in FEAST_PATHS and fullname not in _PACKAGES:
            return None
        return importlib.util.spec_from_loader(fullname, self, is_package=fullname in _PACKAGES)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return None

    def exec_module(self, module: ModuleType) -> None:
        names = FEAST_PATHS.get(module.__name__, {})
        for name, target in names.items():
            owner, _, attribute = target.partition(":")
            setattr(module, name, getattr(importlib.import_module(owner), attribute))
        module.__all__ = sorted(names)  # type: ignore[attr-defined]
        module.__doc__ = f"Feast's `{module.__name__.replace('repast', 'feast', 1)}`, re-exported from repast."


def install() -> None:
    """Add the finder once (idempotent: importing repast twice adds nothing)."""
    if not any(isinstance(f, _FeastPathFinder) for f in sys.meta_path):
        sys.meta_path.append(_FeastPathFinder())
