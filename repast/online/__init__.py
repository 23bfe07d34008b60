"""Online stores: the latest feature values per entity key, behind one interface."""

from __future__ import annotations

from typing import TYPE_CHECKING

from repast.online.base import OnlineReader, OnlineStore
from repast.plugins.table import ONLINE, PLUGINS, VECTOR, plugin_class

if TYPE_CHECKING:
    from repast.plugins.base_config import BackendConfig, RepoSettings

# online_store.type -> "module:Class": this kind's part of the one plugin table.
ONLINE_STORES = PLUGINS[ONLINE]

# online_store.type -> "module:Class" of its vector search capability (repast.vector.base).
VECTOR_SEARCH = PLUGINS[VECTOR]

__all__ = ["ONLINE_STORES", "VECTOR_SEARCH", "OnlineReader", "OnlineStore", "build_online_store"]


def build_online_store(section: BackendConfig, settings: RepoSettings) -> OnlineReader:
    """The store feature_store.yaml's `online_store` section names (its `type` in the plugin
    table): an OnlineStore, or a reader only (a thin client of the feature server)."""
    return plugin_class(ONLINE, section.type, OnlineReader)(section, settings)
