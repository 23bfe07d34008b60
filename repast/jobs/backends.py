"""Backends: one repo's collaborators as the operations, the feature server, the web UI and vector
retrieval take them: its configuration, its registry (cached definitions and what the registry
store keeps beside them) and its stores, each store built on first use.

FeatureStore wires one and delegates to the operations with it; the server and the UI are given
one and never see the facade.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

from repast.offline import build_offline_engine
from repast.online import build_online_store
from repast.registry import Registry, open_registry_store

if TYPE_CHECKING:
    from repast.config.repo_config import RepoConfig
    from repast.offline.base import OfflineEngine
    from repast.online.base import OnlineReader


class Backends:
    def __init__(self, config: RepoConfig) -> None:
        config.require_section("registry")
        self.config = config
        key = config.registry_config.signing_key
        self.registry = Registry(open_registry_store(config.registry_config, config), config.project,
                                 config.registry_config.cache_ttl_seconds,
                                 key.get_secret_value() if key is not None else None)

    @property
    def project(self) -> str:
        return self.config.project

    @cached_property
    def online_store(self) -> OnlineReader:
        self.config.require_section("online_store")
        return build_online_store(self.config.online_store, self.config)

    @cached_property
    def offline_engine(self) -> OfflineEngine:
        self.config.require_section("offline_store")
        return build_offline_engine(self.config.offline_store, self.config)

    def close(self) -> None:
        """Release every connection and pool opened (the stores that were built, the registry's).
        Everything stays usable: backends reconnect on next use."""
        for name in ("online_store", "offline_engine"):
            backend = self.__dict__.get(name)  # only backends that were built
            if backend is not None:
                backend.close()
        self.registry.close()
