"""The OnlineStore interface: per-view typed storage of the latest row per entity key."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from repast.config import BackendConfig, RepoConfig
    from repast.definitions import FeatureView


class OnlineStore(ABC):
    """Built as `Store(config, repo_config)` from the ONLINE_STORES table."""

    Config: type[BackendConfig]

    def __init__(self, config: Any, repo_config: RepoConfig) -> None:
        self.config = config
        self.repo_config = repo_config

    @abstractmethod
    def update(self, project: str, views_to_keep: list[FeatureView], views_to_delete: list[FeatureView]) -> None:
        """Create (or migrate, when the schema changed) storage for kept views; drop deleted ones."""

    @abstractmethod
    def teardown(self, project: str, views: list[FeatureView]) -> None:
        """Remove all storage of `views`."""
