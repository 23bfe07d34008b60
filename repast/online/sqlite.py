"""SqliteOnlineStore: the embedded default online store (placeholder until the online issue lands)."""

from __future__ import annotations

from typing import Literal

from repast.config import BackendConfig
from repast.definitions import FeatureView
from repast.online.base import OnlineStore


class SqliteOnlineConfig(BackendConfig):
    type: Literal["sqlite"] = "sqlite"
    path: str = "data/online.db"


class SqliteOnlineStore(OnlineStore):
    Config = SqliteOnlineConfig

    def update(self, project: str, views_to_keep: list[FeatureView], views_to_delete: list[FeatureView]) -> None:
        pass

    def teardown(self, project: str, views: list[FeatureView]) -> None:
        pass
