"""Online stores: the latest feature values per entity key, behind one interface."""

from repast.online.base import OnlineStore

# online_store.type -> "module:Class".
ONLINE_STORES = {
    "sqlite": "repast.online.sqlite:SqliteOnlineStore",
    "redis": "repast.online.redis:RedisOnlineStore",
    "postgres": "repast.online.postgres:PostgresOnlineStore",
    "remote": "repast.online.remote:RemoteOnlineStore",
}

__all__ = ["ONLINE_STORES", "OnlineStore"]
