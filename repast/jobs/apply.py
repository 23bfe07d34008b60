"""Apply: the registry and the online store take the new definitions, all or nothing.

The order makes an apply that does not commit change nothing anywhere:
1. storage is created for views that are new in this apply (new and empty, so harmless);
2. the registry commits the changes in one transaction (optimistic version check);
3. only then the destructive changes: storage of a view whose layout changed is rebuilt (empty),
   storage of a deleted view is dropped.
A failure before the commit drops the storage made in step 1 again (unless the registry names that
view by then: a concurrent apply registered it). A failure or kill after the commit leaves the new
definitions registered; step 3 runs on every apply, also one with no changes, and before every
materialization, so the next one completes the job. Offline files are never touched by apply.

A rebuilt, re-created or newly configured online storage gets a new storage id, and watermarks are
kept per storage id (see repast/jobs/materialize.py): `online_effects` says which views lose their
online data and are refilled by the next `materialize-incremental`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal

from repast.errors import RepastError

if TYPE_CHECKING:
    from repast.definitions import FeatureView, RepoContents
    from repast.online.base import OnlineReader, OnlineStore
    from repast.registry import Registry
    from repast.registry.base import Change

# Tests set this to inject a failure at a named point of an apply ("before_commit", "after_commit").
checkpoint_hook: Callable[[str], None] | None = None


def _checkpoint(name: str) -> None:
    if checkpoint_hook is not None:
        checkpoint_hook(name)


@dataclass(frozen=True)
class OnlineEffect:
    """What an apply does to the online data of one view.

    `rebuilt`: its storage layout changes, stored values are dropped; `missing`: the configured online
    store holds no data for it (another store configured, or storage removed); both are refilled by the
    next materialize-incremental from `refill_from`. `dropped`: the view is deleted with its data."""

    view: str
    kind: Literal["rebuilt", "missing", "dropped"]
    refill_from: datetime | None = None


def refill_start(view: FeatureView, now: datetime) -> datetime:
    """Where materialize-incremental starts a view without a watermark: now - ttl, or the epoch."""
    from repast.jobs.materialize import BEGINNING_OF_TIME

    return now - view.ttl if view.ttl.total_seconds() > 0 else BEGINNING_OF_TIME


def online_effects(before: RepoContents, after: RepoContents, online_store: OnlineReader,
                   project: str) -> list[OnlineEffect]:
    """The views whose online data an apply from `before` to `after` drops, or that have none."""
    now = datetime.now(UTC)
    effects = []
    for name, view in after.feature_views.items():
        old = before.feature_views.get(name)
        if not view.online or old is None or not old.online:
            continue
        if online_store.storage_id(project, old) is None:
            effects.append(OnlineEffect(name, "missing", refill_start(view, now)))
        elif online_store.storage_id(project, view) is None:
            effects.append(OnlineEffect(name, "rebuilt", refill_start(view, now)))
    effects += [OnlineEffect(name, "dropped") for name, view in before.feature_views.items()
                if name not in after.feature_views and view.online]
    return effects


def commit(registry: Registry, online_store: OnlineStore, changes: list[Change],
           version: int, before: RepoContents, after: RepoContents, applied_by: str) -> None:
    """Commit `changes` (read at `version`) and bring the online storage in line, in the safe order.
    Write-time on-demand views (`write_to_online_store=True`) have storage like feature views."""
    from repast.ondemand.storage import storage_views

    stored_before, stored_after = storage_views(before), storage_views(after)
    online = [v for v in after.feature_views.values() if v.online] + stored_after
    had_storage = set(before.feature_views) | {v.name for v in stored_before}
    project = registry.project
    if changes:
        new = [v for v in online if v.name not in had_storage and online_store.storage_id(project, v) is None]
        online_store.update(project, new, [])
        try:
            _checkpoint("before_commit")
            registry.apply(changes, version, applied_by)
        except BaseException:
            _drop_unregistered(registry, online_store, new)
            raise
        _checkpoint("after_commit")
    deleted = [v for name, v in before.feature_views.items() if name not in after.feature_views]
    deleted += [v for v in stored_before if v.name not in {s.name for s in stored_after}]
    online_store.update(project, online, deleted)


def _drop_unregistered(registry: Registry, online_store: OnlineStore, created: list[FeatureView]) -> None:
    """Undo step 1 of a failed apply; best effort: the caller re-raises the apply's own error."""
    if not created:
        return
    try:
        registered = registry.snapshot().specs.get("feature_view", {})
        online_store.update(registry.project, [], [v for v in created if v.name not in registered])
    except RepastError:
        pass  # what stays is empty storage no registered view uses; a later apply reuses or rebuilds it
