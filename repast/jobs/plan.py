"""Plan and apply definitions: the desired definitions (a repo's files, or objects passed to the
SDK) diffed against the registry, validated as a whole, then committed by repast.jobs.apply.commit
(registry and online storage, all or nothing). Every function takes the repo's Backends.
"""

from __future__ import annotations

import getpass
import os
import socket
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from repast.definitions import RepoContents
from repast.definitions.project import Project
from repast.definitions.registry_objects import NOT_FROM_FILES, kind_of
from repast.errors import DefinitionError, RegistryConflict
from repast.jobs.apply import OnlineEffect, commit, online_effects
from repast.jobs.repo_files import VERSIONED_KINDS, collect, diff, load_repo, version_changes
from repast.jobs.validation import validate
from repast.online.base import writable
from repast.registry import Change, Snapshot, contents_from_snapshot
from repast.registry.signing import sign_changes, unsigned_changes

if TYPE_CHECKING:
    from repast.jobs.backends import Backends

# A concurrent apply of named objects is retried on fresh state this many times.
APPLY_ATTEMPTS = 5


def applied_by() -> str:
    """Who an apply is recorded as: $REPAST_USER, else user@host."""
    if os.environ.get("REPAST_USER"):
        return os.environ["REPAST_USER"]
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def reported(changes: list[Change]) -> list[Change]:
    """What plan/apply report: new view versions are recorded (history, list-versions) but are told
    on their view's own add/update (`new_version`)."""
    versions = {c.spec["view"]: c.spec["version"] for c in changes if c.kind == "feature_view_version" and c.spec}
    return [replace(c, new_version=versions.get(c.name)) if c.kind in VERSIONED_KINDS else c
            for c in changes if c.kind != "feature_view_version"]


def check_project(objects: list[Any], project: str) -> None:
    """A Project in the definitions must carry feature_store.yaml's project name."""
    for obj in objects:
        if isinstance(obj, Project) and obj.name != project:
            raise DefinitionError(f"Project '{obj.name}' does not match feature_store.yaml's project '{project}'; "
                                  "rename one of them (a repo defines one project)")


def plan_repo(backends: Backends) -> tuple[list[Change], list[OnlineEffect]]:
    """The repo's files against the registry (deletes included), and which views would lose their
    online data (or have none) and be refilled."""
    desired = _load_repo(backends)
    snapshot = backends.registry.snapshot()
    effects = online_effects(contents_from_snapshot(snapshot), desired, backends.online_store, backends.project)
    return reported(_diff(backends, desired, snapshot, partial=False)), effects


def apply_repo(backends: Backends) -> tuple[list[Change], list[OnlineEffect]]:
    """Make the registry equal the repo's files (add, update, delete); what it did to online data.
    Fails on a concurrent apply."""
    backends.registry.check_writable("apply definitions")
    desired = _load_repo(backends)
    snapshot = backends.registry.snapshot()
    changes = _diff(backends, desired, snapshot, partial=False)
    before = contents_from_snapshot(snapshot)
    effects = online_effects(before, desired, backends.online_store, backends.project)
    _commit(backends, changes, snapshot.version, before, desired)
    return reported(changes), effects


def plan_objects(backends: Backends, objects: list[Any]) -> list[Change]:
    """What `apply_objects(objects)` would change."""
    return reported(_prepare(backends, objects, [])[0])


def apply_objects(backends: Backends, objects: Any, objects_to_delete: list[Any] | None = None,
                  partial: bool = True) -> list[Change]:
    """Add or update `objects` (and delete `objects_to_delete`); others stay registered. With
    `partial=False` the project is made to hold exactly `objects` (saved datasets stay). Validated
    against the whole project before anything is written; a concurrent apply is retried on fresh
    state, which is safe because only the named objects change."""
    backends.registry.check_writable("apply definitions")
    objects = objects if isinstance(objects, list) else [objects]
    check_project(objects, backends.project)
    for attempt in range(APPLY_ATTEMPTS):
        to_delete = list(objects_to_delete or []) if partial else _not_named(backends, objects)
        changes, version, before, after = _prepare(backends, objects, to_delete)
        try:
            _commit(backends, changes, version, before, after)
            return reported(changes)
        except RegistryConflict:
            if attempt == APPLY_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def teardown(backends: Backends) -> None:
    """Remove the project's online storage and every registry record of it."""
    registry = backends.registry
    registry.check_writable("tear down the project")
    contents = registry.refresh()
    writable(backends.online_store, "tear down online storage").teardown(backends.project,
                                                                         list(contents.feature_views.values()))
    registry.delete_project()
    registry.refresh()


def _diff(backends: Backends, desired: RepoContents, snapshot: Snapshot, partial: bool) -> list[Change]:
    """The definitions' diff with new view versions, plus on-demand functions to sign when a
    signing key is set."""
    changes = version_changes(diff(desired, snapshot, partial), snapshot)
    return changes + unsigned_changes(desired, snapshot, changes, backends.registry.signing_key)


def _load_repo(backends: Backends) -> RepoContents:
    """The repo's definitions, validated (errors name the file that defines each object)."""
    desired, origin = load_repo(backends.config.repo_path)
    check_project([o for _, o in desired.all_objects()], backends.project)
    validate(desired, backends.offline_engine, origin)
    return desired


def _not_named(backends: Backends, objects: list[Any]) -> list[Any]:
    """Registered definitions (saved datasets aside) that `objects` does not name: partial=False."""
    named = RepoContents()
    for obj in objects:
        collect(named, {}, obj, "the objects passed to apply()")
    current = contents_from_snapshot(backends.registry.snapshot())
    return [obj for kind, obj in current.all_objects()
            if kind not in NOT_FROM_FILES and obj.name not in named.by_kind(kind)]


def _prepare(backends: Backends, objects: list[Any],
             to_delete: list[Any]) -> tuple[list[Change], int, RepoContents, RepoContents]:
    snapshot = backends.registry.snapshot()
    before = contents_from_snapshot(snapshot)
    after = contents_from_snapshot(snapshot)
    # The named objects and the sources they carry, as a repo file would register them.
    desired = RepoContents()
    for obj in objects:
        collect(desired, {}, obj, "the objects passed to apply()")
    for _, obj in desired.all_objects():
        after.add(obj)
    for obj in to_delete:
        after.by_kind(kind_of(obj)).pop(obj.name, None)
    validate(after, backends.offline_engine)
    changes = _diff(backends, desired, snapshot, partial=True)
    changes += [Change("delete", kind_of(o), o.name) for o in to_delete
                if o.name in snapshot.specs.get(kind_of(o), {})]
    return changes, snapshot.version, before, after


def _commit(backends: Backends, changes: list[Change], version: int, before: RepoContents,
            after: RepoContents) -> None:
    changes = sign_changes(changes, backends.registry.signing_key)
    online = writable(backends.online_store, "create or drop online storage (apply)")
    commit(backends.registry, online, changes, version, before, after, applied_by())
    backends.registry.refresh()
