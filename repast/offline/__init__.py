"""Offline engines: point-in-time joins and reads for materialization, behind one interface."""

from __future__ import annotations

from typing import TYPE_CHECKING

from repast.offline.base import OfflineEngine, RetrievalJob
from repast.plugins.table import OFFLINE, PLUGINS, plugin_class

if TYPE_CHECKING:
    from repast.config.repo_config import RepoConfig

# offline_store.type -> "module:Class": this kind's part of the one plugin table.
OFFLINE_ENGINES = PLUGINS[OFFLINE]

__all__ = ["OFFLINE_ENGINES", "OfflineEngine", "RetrievalJob", "build_offline_engine"]


def build_offline_engine(config: RepoConfig) -> OfflineEngine:
    """The engine feature_store.yaml's `offline_store` names (its `type` in the plugin table)."""
    section = config.offline_store
    return plugin_class(OFFLINE, section.type, OfflineEngine)(section, config)
