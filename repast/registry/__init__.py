"""The registry: a RegistryStore backend plus a cached, TTL-refreshed reader of its definitions."""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

from repast.definitions.registry_objects import KINDS, RepoContents, object_from_dict
from repast.definitions.stream_view import StreamFeatureView
from repast.errors import StoreUnavailable
from repast.log_limit import FailureLog
from repast.plugins.table import PLUGINS, REGISTRY, plugin_class
from repast.registry.base import (
    Change,
    HistoryEntry,
    MaterializationRecord,
    MaterializationRun,
    MonitoringRecord,
    RegistryStore,
    Snapshot,
)

if TYPE_CHECKING:
    from datetime import datetime

    from repast.plugins.base_config import RegistryConfig, RepoSettings
    from repast.plugins.capabilities import Capabilities

# registry_type -> "module:Class": this kind's part of the one plugin table.
REGISTRY_STORES = PLUGINS[REGISTRY]

__all__ = ["REGISTRY_STORES", "Change", "HistoryEntry", "MaterializationRecord", "MonitoringRecord", "Registry",
           "RegistryStore", "Snapshot", "contents_from_snapshot", "open_registry_store"]


def open_registry_store(section: RegistryConfig, settings: RepoSettings) -> RegistryStore:
    """The registry store feature_store.yaml's `registry` section names (its registry_type in the plugin table)."""
    return plugin_class(REGISTRY, section.registry_type, RegistryStore)(section, settings)


def contents_from_snapshot(snapshot: Snapshot, signing_key: str | None = None) -> RepoContents:
    """The definitions of a snapshot. Stored functions (on-demand views', stream views' udfs) stay
    serialized until run; with `signing_key` their signature is checked then."""
    contents = RepoContents()
    for kind in KINDS:
        for spec in snapshot.specs.get(kind, {}).values():
            contents.add(object_from_dict(kind, spec))
    for odfv in contents.on_demand_feature_views.values():
        odfv.signing_key = signing_key
    for view in contents.feature_views.values():
        if isinstance(view, StreamFeatureView):
            view.signing_key = signing_key
    return contents.bind()


_failures = FailureLog(logging.getLogger("repast.registry"))

# While the registry cannot be read, cached definitions are served and a re-check is tried at most
# this often (or every TTL when shorter, but at most once a second): an outage costs one connection
# attempt per interval.
STALE_RETRY_SECONDS = 5.0
# A serving process waits at most this long for a re-check (see Registry.check_off_the_caller).
CHECK_WAIT_SECONDS = 0.1


class Registry:
    """Reads definitions of one project, cached; re-reads after `cache_ttl_seconds` if changed.

    A serving process therefore sees an applied change within the TTL without a restart. The
    check after the TTL is one cheap version query; definitions are re-parsed only on change.
    When the registry cannot be reached and definitions were read before, those are served (stale
    but correct: they were the registry's at `version`) and `stale_since` says since when; only a
    process that never read them fails. One caller re-checks while the others keep the cache.
    """

    def __init__(self, store: RegistryStore, project: str, cache_ttl_seconds: float,
                 signing_key: str | None = None) -> None:
        self._store = store
        self.signing_key = signing_key
        self.project = project
        self.ttl = cache_ttl_seconds
        self._lock = threading.Lock()
        self._contents: RepoContents | None = None
        self._version = -1
        self._checked_at = 0.0
        self.stale_since: float | None = None  # wall-clock time of the first failed re-check
        self.stale_reason = ""
        self._check_wait: float | None = None  # set by check_off_the_caller

    def check_off_the_caller(self, wait_seconds: float = CHECK_WAIT_SECONDS) -> None:
        """Once definitions are cached, re-check on a background thread: the caller that starts a
        re-check waits for it at most `wait_seconds`, then gets the cached definitions while the
        check goes on. A serving process sets this, so a registry that is frozen or slow (an
        object store that accepts connections and never answers) never holds its event loop;
        a check that answers in time is seen at once, as without it."""
        self._check_wait = wait_seconds

    @property
    def version(self) -> int:
        self.contents()
        return self._version

    @property
    def cached_version(self) -> int:
        """The version of the definitions in the cache, without a re-check (-1 before the first read)."""
        return self._version

    def contents(self) -> RepoContents:
        """The current definitions (cached). Callers must not mutate them."""
        now = time.monotonic()
        if self._contents is not None and now - self._checked_at < self.ttl:
            return self._contents
        if self._contents is not None:
            if not self._lock.acquire(blocking=False):
                return self._contents  # another caller is re-checking: serve the cache meanwhile
            if self._check_wait is not None:
                return self._checked_off_the_caller(self._check_wait)
        else:
            self._lock.acquire()
        try:
            if self._contents is None or time.monotonic() - self._checked_at >= self.ttl:
                self._reload_or_serve_cached()
        finally:
            self._lock.release()
        assert self._contents is not None
        return self._contents

    def _checked_off_the_caller(self, wait_seconds: float) -> RepoContents:
        """Re-check on a thread (the lock is held and released by it); wait for it a little."""
        def check() -> None:
            try:
                if time.monotonic() - self._checked_at >= self.ttl:
                    self._reload()
            except Exception as e:  # noqa: BLE001 - a thread's failure has no caller to reach: say it
                self._serve_cached(e)
            finally:
                self._lock.release()

        thread = threading.Thread(target=check, name="repast-registry-check", daemon=True)
        thread.start()
        thread.join(wait_seconds)
        assert self._contents is not None
        return self._contents

    def _reload_or_serve_cached(self) -> None:
        try:
            self._reload()
        except StoreUnavailable as e:
            if self._contents is None:
                raise
            self._serve_cached(e)

    def _serve_cached(self, e: Exception) -> None:
        """The registry could not be read: keep the cached definitions, say so, re-check later."""
        if self.stale_since is None:
            self.stale_since = time.time()
        self.stale_reason = str(e)
        # Re-check after the retry interval, not on every call.
        retry = max(1.0, min(self.ttl, STALE_RETRY_SECONDS))
        self._checked_at = time.monotonic() - self.ttl + retry
        _failures.report("registry-unavailable", f"registry cannot be read; serving the cached definitions "
                         f"of project '{self.project}' (version {self._version}): {e}", level=logging.WARNING)

    def _reload(self) -> None:
        if self._contents is None or self._store.version(self.project) != self._version:
            snapshot = self._store.read(self.project)
            self._contents = contents_from_snapshot(snapshot, self.signing_key)
            self._version = snapshot.version
        self._checked_at = time.monotonic()
        if self.stale_since is not None:
            _failures.logger.warning("registry answers again; definitions of project '%s' are current",
                                     self.project)
            self.stale_since = None
            self.stale_reason = ""

    def refresh(self) -> RepoContents:
        """Re-read now, whatever the TTL."""
        with self._lock:
            self._checked_at = 0.0
            self._reload()
        assert self._contents is not None
        return self._contents

    # ---- what the registry store keeps beside definitions, for this project unless named ----------
    @property
    def capabilities(self) -> Capabilities:
        return self._store.capabilities

    def check_writable(self, action: str) -> None:
        """Raise ConfigError naming `action` when the registry cannot be written (a thin client)."""
        self._store.check_writable(action)

    def snapshot(self, project: str | None = None) -> Snapshot:
        """Every spec of the project as stored now, with its version (not cached)."""
        return self._store.read(project or self.project)

    def stored_version(self, project: str | None = None) -> int:
        """The project's version as stored now (not cached; 0 when never applied)."""
        return self._store.version(project or self.project)

    def apply(self, changes: list[Change], expected_version: int, applied_by: str) -> int:
        """Write `changes` if the project is still at `expected_version` (RegistryConflict otherwise)."""
        return self._store.apply(self.project, changes, expected_version, applied_by)

    def history(self, limit: int = 50, project: str | None = None) -> list[HistoryEntry]:
        return self._store.history(project or self.project, limit)

    def materializations(self, project: str | None = None) -> dict[str, MaterializationRecord]:
        """Per view, its watermark: where its last materialization ended, for which storage."""
        return self._store.materializations(project or self.project)

    def last_runs(self, project: str | None = None) -> dict[str, MaterializationRun]:
        return self._store.last_runs(project or self.project)

    def record_materialization(self, view: str, start: datetime, end: datetime, storage: str) -> None:
        self._store.record_materialization(self.project, view, start, end, storage)

    def record_run(self, run: MaterializationRun) -> None:
        self._store.record_run(self.project, run)

    def project_names(self) -> list[str]:
        return self._store.project_names()

    def record_monitoring(self, records: list[MonitoringRecord]) -> None:
        """Keep statistics / drift / skew results (each replaces the stored one with its key)."""
        self._store.record_monitoring(self.project, records)

    def monitoring_records(self, kind: str, project: str | None = None) -> list[MonitoringRecord]:
        return self._store.monitoring_records(project or self.project, kind)

    def delete_project(self) -> None:
        self._store.delete_project(self.project)

    def close(self) -> None:
        """Release the registry store's connections; it reconnects on next use."""
        self._store.close()
