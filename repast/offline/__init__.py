"""Offline engines: point-in-time joins and reads for materialization, behind one interface."""

from __future__ import annotations

from typing import TYPE_CHECKING

from repast.offline.base import OfflineEngine, RetrievalJob
from repast.plugins.table import OFFLINE, PLUGINS, plugin_class

if TYPE_CHECKING:
    from repast.plugins.base_config import BackendConfig, RepoSettings

# offline_store.type -> "module:Class": this kind's part of the one plugin table.
OFFLINE_ENGINES = PLUGINS[OFFLINE]

__all__ = ["OFFLINE_ENGINES", "OfflineEngine", "RetrievalJob", "build_offline_engine"]


def build_offline_engine(section: BackendConfig, settings: RepoSettings) -> OfflineEngine:
    """The engine feature_store.yaml's `offline_store` section names (its `type` in the plugin table)."""
    return plugin_class(OFFLINE, section.type, OfflineEngine)(section, settings)
