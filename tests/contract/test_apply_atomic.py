"""Apply is all-or-nothing in the registry and the online store, on every online store.

A failure is injected before the registry commit (a test hook at the commit point, a real
concurrent apply, a real lock held on the SQLite registry) and after it. An apply that did not
commit changed nothing anywhere; one that committed is completed by the next apply.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import repast.jobs.apply
from repast import FeatureStore
from repast.errors import RegistryConflict, StoreUnavailable
from tests.contract.test_online_features import store  # noqa: F401  (every online store)

VIEW = "driver_hourly_stats"
DRIVERS = [1001, 1002]
NOW = datetime.now(UTC)
NEW_VIEW = '''
new_stats = FeatureView(name="new_stats", entities=[driver], ttl=timedelta(days=1),
                        schema=[Field(name="conv_rate", dtype=Float32)], source=driver_stats_source)
'''


class InjectedFailure(Exception):
    pass


@pytest.fixture
def fail_at() -> Iterator[list[str]]:
    """Names of apply checkpoints that raise InjectedFailure (see repast.jobs.apply)."""
    points: list[str] = []

    def hook(name: str) -> None:
        if name in points:
            raise InjectedFailure(name)

    repast.jobs.apply.checkpoint_hook = hook
    yield points
    repast.jobs.apply.checkpoint_hook = None


def change_repo(repo: Path) -> None:
    """Drop acc_rate from driver_hourly_stats (its online table is rebuilt) and add a view."""
    definitions = repo / "example_repo.py"
    text = definitions.read_text().replace('        Field(name="acc_rate", dtype=Float32),\n', "", 1)
    definitions.write_text(text + NEW_VIEW)


def materialized(store: FeatureStore) -> FeatureStore:  # noqa: F811
    store.materialize_incremental(NOW)
    return store


def statuses(store: FeatureStore) -> set[str]:  # noqa: F811
    response = store.get_online_features([f"{VIEW}:conv_rate"], {"driver_id": DRIVERS})
    return {s.name for s in response.statuses()["conv_rate"]}


def storage_of(store: FeatureStore, name: str) -> str | None:  # noqa: F811
    from repast.jobs.repo_files import load_repo

    contents, _ = load_repo(store.repo_path)
    view = contents.feature_views[name]
    view.resolve_entities(contents.entities)
    return store.online_store.storage_id(store.project, view)


def test_apply_failing_before_commit_changes_nothing(store: FeatureStore, fail_at: list[str]) -> None:  # noqa: F811
    materialized(store)
    version = store.registry.refresh() and store.registry.version
    before = store.online_store.storage_id(store.project, store.get_feature_view(VIEW))
    change_repo(store.repo_path)
    fail_at.append("before_commit")
    with pytest.raises(InjectedFailure):
        store.apply_repo()
    assert store.registry.refresh() and store.registry.version == version
    assert statuses(store) == {"PRESENT"}
    assert store.online_store.storage_id(store.project, store.get_feature_view(VIEW)) == before
    assert storage_of(store, "new_stats") is None  # the storage made for it was dropped again


def test_apply_failing_after_commit_is_completed_by_the_next_apply(store: FeatureStore,  # noqa: F811
                                                                   fail_at: list[str]) -> None:
    materialized(store)
    change_repo(store.repo_path)
    fail_at.append("after_commit")
    with pytest.raises(InjectedFailure):
        store.apply_repo()
    assert store.plan_repo() == []  # the registry has the new definitions
    fail_at.clear()
    store.apply_repo()
    assert storage_of(store, VIEW) is not None and storage_of(store, "new_stats") is not None
    assert statuses(store) == {"NOT_FOUND"}  # rebuilt for the new layout, and the watermark follows it:
    store.materialize_incremental(NOW + timedelta(minutes=1))
    assert statuses(store) == {"PRESENT"}


def test_apply_refused_by_a_concurrent_apply_leaves_no_storage_behind(store: FeatureStore) -> None:  # noqa: F811
    materialized(store)
    change_repo(store.repo_path)
    other = FeatureStore(store.repo_path)
    entity = other.get_entity("driver")

    def concurrent_apply(name: str) -> None:
        if name == "before_commit":
            repast.jobs.apply.checkpoint_hook = None
            entity.description = "changed by another apply"
            other.apply([entity])

    repast.jobs.apply.checkpoint_hook = concurrent_apply
    try:
        with pytest.raises(RegistryConflict):
            store.apply_repo()
    finally:
        repast.jobs.apply.checkpoint_hook = None
        other.online_store.close()
    assert storage_of(store, "new_stats") is None
    store.registry.refresh()
    assert statuses(store) == {"PRESENT"}


def test_locked_registry_is_a_clear_error_and_changes_nothing(sample_repo: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    config = sample_repo / "feature_store.yaml"
    config.write_text(config.read_text().replace(
        "registry: data/registry.db", "registry: {path: data/registry.db, lock_timeout_seconds: 0.5}"))
    store = FeatureStore(sample_repo)  # noqa: F811
    store.apply_repo()
    materialized(store)
    change_repo(sample_repo)
    lock = sqlite3.connect(sample_repo / "data" / "registry.db", isolation_level=None)
    lock.execute("BEGIN IMMEDIATE")  # what another process's apply holds while it writes
    try:
        with pytest.raises(StoreUnavailable, match=r"locked.*nothing was applied"):
            store.apply_repo()
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    assert statuses(store) == {"PRESENT"}
    assert len(store.plan_repo()) == 3  # still to apply: the changed view, its on-demand view, the new view


_KILLED_APPLY = """
import os, sys
import repast.jobs.apply
from repast import FeatureStore
point = sys.argv[2]
repast.jobs.apply.checkpoint_hook = lambda name: os.kill(os.getpid(), 9) if name == point else None
FeatureStore(sys.argv[1]).apply_repo()
"""


@pytest.mark.parametrize("point", ["before_commit", "after_commit"])
def test_an_apply_killed_at_any_point_is_completed_by_the_next(sample_repo: Path, point: str) -> None:
    import subprocess
    import sys

    store = FeatureStore(sample_repo)  # noqa: F811
    store.apply_repo()
    materialized(store)
    change_repo(sample_repo)
    killed = subprocess.run([sys.executable, "-c", _KILLED_APPLY, str(sample_repo), point], timeout=120)
    assert killed.returncode == -9
    if point == "before_commit":
        assert statuses(FeatureStore(sample_repo)) == {"PRESENT"}  # nothing changed
    FeatureStore(sample_repo).apply_repo()
    store = FeatureStore(sample_repo)
    assert store.plan_repo() == [] and storage_of(store, "new_stats") is not None
    store.materialize_incremental(NOW + timedelta(minutes=1))
    assert statuses(store) == {"PRESENT"}
