"""Materialization watermarks follow what the online store holds (the numbered cases of issue 9).

The watermark belongs to (view, its online storage): it only moves forward, and storage that was
rebuilt, re-created or is in another online store is refilled by the next materialize-incremental.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from repast import FeatureStore
from tests.e2e.test_server_harness import run_repast

VIEW = "driver_hourly_stats"
FRESH = "driver_hourly_stats_fresh"
DRIVERS = [1001, 1002, 1003, 1004, 1005]
NOW = datetime.now(UTC)


@pytest.fixture
def store(sample_repo: Path) -> FeatureStore:
    fs = FeatureStore(sample_repo)
    fs.apply_repo()
    fs.materialize_incremental(NOW)
    return fs


def statuses(store: FeatureStore, view: str = VIEW) -> list[str]:
    response = store.get_online_features([f"{view}:conv_rate"], {"driver_id": DRIVERS})
    return [s.name for s in response.statuses()["conv_rate"]]


def watermark(store: FeatureStore, view: str = VIEW) -> datetime:
    return store.registry.materializations()[view].end


def drop_field(repo: Path, field: str) -> None:
    """Remove the first declaration of `field` from the sample repo: driver_hourly_stats's."""
    definitions = repo / "example_repo.py"
    line = f'        Field(name="{field}", dtype=Float32),\n'
    text = definitions.read_text()
    definitions.write_text(text.replace(line, "", 1))


def test_backfill_never_moves_the_watermark_back(store: FeatureStore) -> None:
    store.materialize(datetime(2020, 1, 1, tzinfo=UTC), datetime(2020, 2, 1, tzinfo=UTC), [VIEW])
    assert watermark(store) == NOW
    [stats] = store.materialize_incremental(NOW + timedelta(minutes=1), [VIEW])
    assert stats.start == NOW


def test_schema_change_rebuilds_storage_and_incremental_refills_it(store: FeatureStore) -> None:
    drop_field(store.repo_path, "acc_rate")
    store.apply_repo()
    assert set(statuses(store)) == {"NOT_FOUND"}  # the rebuilt table is empty
    [stats] = store.materialize_incremental(NOW + timedelta(minutes=1), [VIEW])
    assert stats.start == NOW + timedelta(minutes=1) - timedelta(days=1) and stats.rows == 5
    assert set(statuses(store)) == {"PRESENT"}


def test_plan_says_which_views_lose_online_data_and_are_refilled(store: FeatureStore) -> None:
    drop_field(store.repo_path, "acc_rate")
    result = run_repast(store.repo_path, "plan")
    assert result.returncode == 0, result.stderr
    assert f"Online data of feature view {VIEW}: its storage layout changes, its online data will be dropped; " \
           "the next materialize-incremental refills it from" in " ".join(result.stdout.split())
    assert FRESH not in result.stdout.split("Plan:")[1]


def test_a_view_deleted_and_added_again_is_refilled(store: FeatureStore) -> None:
    fresh = store.get_feature_view(FRESH)
    store.apply([], objects_to_delete=[fresh])
    store.apply([fresh])
    [stats] = store.materialize_incremental(NOW + timedelta(minutes=1), [FRESH])
    assert stats.rows == 5
    assert set(statuses(store, FRESH)) == {"PRESENT"}


def test_another_online_store_is_refilled(store: FeatureStore, redis_url: str, unique_name: str) -> None:
    config = store.repo_path / "feature_store.yaml"
    text = config.read_text().replace("project: sample", f"project: {unique_name}")
    config.write_text(text)
    FeatureStore(store.repo_path).apply_repo()
    FeatureStore(store.repo_path).materialize_incremental(NOW)
    config.write_text(text.replace("type: sqlite          # embedded; also: redis, postgres\n  path: data/online.db",
                                   f"type: redis\n  connection_string: {redis_url}"))
    plan = run_repast(store.repo_path, "plan")
    assert f"Online data of feature view {VIEW}: the configured online store holds no materialized data" \
        in " ".join(plan.stdout.split())
    redis_store = FeatureStore(store.repo_path)
    try:
        results = {r.view: r for r in redis_store.materialize_incremental(NOW + timedelta(minutes=1))}
        assert results[VIEW].rows == 5
        assert set(statuses(redis_store)) == {"PRESENT"}
    finally:
        redis_store.teardown()


def test_incremental_end_before_the_watermark_is_an_error(store: FeatureStore) -> None:
    result = run_repast(store.repo_path, "materialize-incremental", (NOW - timedelta(days=2)).isoformat())
    assert result.returncode == 1
    assert "is before the watermark of feature view(s)" in result.stderr and "Traceback" not in result.stderr
    assert watermark(store) == NOW


def test_incremental_with_nothing_applied_is_an_error(sample_repo: Path) -> None:
    result = run_repast(sample_repo, "materialize-incremental")
    assert result.returncode == 1
    assert "no feature views registered" in result.stderr and "repast apply" in result.stderr
