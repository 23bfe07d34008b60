"""Online stores: the latest feature values per entity key, behind one interface."""

from repast.online.base import OnlineStore
from repast.plugins import ONLINE, PLUGINS

# online_store.type -> "module:Class": this kind's part of the one plugin table.
ONLINE_STORES = PLUGINS[ONLINE]

__all__ = ["ONLINE_STORES", "OnlineStore"]
