"""Online stores: the latest feature values per entity key, behind one interface."""

from repast.online.base import OnlineStore
from repast.plugins.table import ONLINE, PLUGINS, VECTOR

# online_store.type -> "module:Class": this kind's part of the one plugin table.
ONLINE_STORES = PLUGINS[ONLINE]

# online_store.type -> "module:Class" of its vector search capability (repast.vector.base).
VECTOR_SEARCH = PLUGINS[VECTOR]

__all__ = ["ONLINE_STORES", "VECTOR_SEARCH", "OnlineStore"]
