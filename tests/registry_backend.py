"""The RegistryStore behind a FeatureStore, for tests of the registry backends themselves (the
store's own code reaches it only through its Registry)."""

from __future__ import annotations

from repast.registry import RegistryStore, open_registry_store
from repast.store import FeatureStore


def registry_backend(store: FeatureStore) -> RegistryStore:
    """A RegistryStore of the same kind over the same registry as `store` (a new connection)."""
    return open_registry_store(store.config.registry_config, store.config)
