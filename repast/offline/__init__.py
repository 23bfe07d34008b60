"""Offline engines: point-in-time joins and reads for materialization, behind one interface."""

from repast.offline.base import OfflineEngine, RetrievalJob
from repast.plugins.table import OFFLINE, PLUGINS

# offline_store.type -> "module:Class": this kind's part of the one plugin table.
OFFLINE_ENGINES = PLUGINS[OFFLINE]

__all__ = ["OFFLINE_ENGINES", "OfflineEngine", "RetrievalJob"]
