"""Online stores: the latest feature values per entity key, behind one interface."""

from repast.online.base import OnlineStore

# online_store.type -> "module:Class".
ONLINE_STORES = {
    "sqlite": "repast.online.sqlite:SqliteOnlineStore",
    "redis": "repast.online.redis:RedisOnlineStore",
    "postgres": "repast.online.postgres:PostgresOnlineStore",
    "remote": "repast.online.remote:RemoteOnlineStore",
}

# online_store.type -> "module:Class" of its vector search capability (repast.online.vector_base);
# a store type missing here cannot search vectors.
VECTOR_SEARCH = {
    "sqlite": "repast.online.vector_sqlite:SqliteVectorSearch",
    "postgres": "repast.online.vector_postgres:PostgresVectorSearch",
}

__all__ = ["ONLINE_STORES", "VECTOR_SEARCH", "OnlineStore"]
