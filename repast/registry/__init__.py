"""The registry: a RegistryStore backend plus a cached, TTL-refreshed reader of its definitions."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

from repast.backends import load_class
from repast.definitions.registry_objects import KINDS, RepoContents, object_from_dict
from repast.registry.base import Change, HistoryEntry, MaterializationRecord, RegistryStore, Snapshot

if TYPE_CHECKING:
    from repast.config import RepoConfig

# registry_type -> "module:Class"; a class is built from the RepoConfig by its `from_config`.
REGISTRY_STORES = {
    "sql": "repast.registry.sql:SQLRegistryStore",
    "file": "repast.registry.sql:SQLRegistryStore",
    "remote": "repast.registry.remote:RemoteRegistryStore",
}

__all__ = ["REGISTRY_STORES", "Change", "HistoryEntry", "MaterializationRecord", "Registry",
           "RegistryStore", "Snapshot", "contents_from_snapshot", "open_registry_store"]


def open_registry_store(config: RepoConfig) -> RegistryStore:
    kind = config.registry_config.registry_type
    cls = load_class(REGISTRY_STORES[kind])
    if hasattr(cls, "from_config"):
        return cls.from_config(config)  # type: ignore[no-any-return]
    return cls(config.registry_url())  # type: ignore[no-any-return]


def contents_from_snapshot(snapshot: Snapshot, signing_key: str | None = None) -> RepoContents:
    """The definitions of a snapshot. Stored on-demand functions stay serialized until run; with
    `signing_key` their signature is checked then."""
    contents = RepoContents()
    for kind in KINDS:
        for spec in snapshot.specs.get(kind, {}).values():
            contents.add(object_from_dict(kind, spec))
    for odfv in contents.on_demand_feature_views.values():
        odfv.signing_key = signing_key
    return contents.bind()


class Registry:
    """Reads definitions of one project, cached; re-reads after `cache_ttl_seconds` if changed.

    A serving process therefore sees an applied change within the TTL without a restart. The
    check after the TTL is one cheap version query; definitions are re-parsed only on change.
    """

    def __init__(self, store: RegistryStore, project: str, cache_ttl_seconds: float,
                 signing_key: str | None = None) -> None:
        self.store = store
        self.signing_key = signing_key
        self.project = project
        self.ttl = cache_ttl_seconds
        self._lock = threading.Lock()
        self._contents: RepoContents | None = None
        self._version = -1
        self._checked_at = 0.0

    @property
    def version(self) -> int:
        self.contents()
        return self._version

    def contents(self) -> RepoContents:
        """The current definitions (cached). Callers must not mutate them."""
        now = time.monotonic()
        if self._contents is not None and now - self._checked_at < self.ttl:
            return self._contents
        with self._lock:
            if self._contents is None or time.monotonic() - self._checked_at >= self.ttl:
                self._reload()
        assert self._contents is not None
        return self._contents

    def _reload(self) -> None:
        if self._contents is not None and self.store.version(self.project) == self._version:
            self._checked_at = time.monotonic()
            return
        snapshot = self.store.read(self.project)
        self._contents = contents_from_snapshot(snapshot, self.signing_key)
        self._version = snapshot.version
        self._checked_at = time.monotonic()

    def refresh(self) -> RepoContents:
        """Re-read now, whatever the TTL."""
        with self._lock:
            self._checked_at = 0.0
            self._reload()
        assert self._contents is not None
        return self._contents
