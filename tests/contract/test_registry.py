"""The registry contract, run unchanged against every registry store (SQLite file, PostgreSQL).

Definitions go in through the SDK (`FeatureStore.apply`) and the repo path (`apply_repo`) as users
do; concurrency is tested with real processes released together on a barrier.
"""

from __future__ import annotations

import multiprocessing
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from repast import Entity, FeatureService, FeatureView, Field, FileSource
from repast.cli.scaffold import generate_driver_stats
from repast.config.repo_config import RepoConfig
from repast.errors import DefinitionError, FeatureNotFound, RegistryConflict
from repast.plugins.table import REGISTRY
from repast.registry.base import Change
from repast.store import FeatureStore
from repast.types import Float32, Int64
from tests.contract.plugins import harness_for, suite_params
from tests.registry_backend import registry_backend

REGISTRY_STORES = suite_params(REGISTRY)


def _object_registry(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    server = request.getfixturevalue(f"{request.param}_server")
    return str(server.url("s3" if request.param == "s3" else "gs", uuid.uuid4().hex[:12], "registry.json"))


# variant -> what `registry.path` says in feature_store.yaml for it.
REGISTRY_HARNESSES: dict[str, Callable[[pytest.FixtureRequest, Path], str]] = {
    "sqlite": lambda request, tmp_path: str(tmp_path / "registry.db"),
    "postgres": lambda request, tmp_path: request.getfixturevalue("postgres_url").replace(
        "postgresql://", "postgresql+psycopg://", 1),
    "s3": _object_registry,
    "gcs": _object_registry,
}


@pytest.fixture(params=REGISTRY_STORES)
def registry_path(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """What `registry.path` says in feature_store.yaml for each store."""
    return harness_for(REGISTRY_HARNESSES, request.param, "REGISTRY_HARNESSES in tests/contract/test_registry.py")(
        request, tmp_path)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "repo"
    generate_driver_stats(path / "data" / "stats.parquet", drivers=3, days=1)
    return path


@pytest.fixture
def make_store(registry_path: str, repo: Path, unique_name: str) -> Callable[..., FeatureStore]:
    """A FeatureStore on the shared registry; every store of a test sees the same project by default."""

    def make(project: str = unique_name, cache_ttl_seconds: float = 0) -> FeatureStore:
        return FeatureStore(config=config_for(registry_path, project, repo, cache_ttl_seconds))

    return make


def config_for(registry_path: str, project: str, repo: Path, cache_ttl_seconds: float = 0) -> RepoConfig:
    return RepoConfig(project=project, repo_path=repo,
                      registry={"path": registry_path, "cache_ttl_seconds": cache_ttl_seconds},
                      online_store={"type": "sqlite", "path": f"data/online_{project}.db"})


driver = Entity(name="driver", join_keys=["driver_id"])
source = FileSource(name="stats_source", path="data/stats.parquet", timestamp_field="event_timestamp",
                    created_timestamp_column="created")


def stats_view(name: str = "stats", ttl: timedelta = timedelta(days=1), features: tuple[str, ...] = ("conv_rate",),
               ) -> FeatureView:
    types = {"conv_rate": Float32, "acc_rate": Float32, "avg_daily_trips": Int64}
    return FeatureView(name=name, entities=[driver], ttl=ttl, source=source,
                       schema=[Field(name=f, dtype=types[f]) for f in features])


# ---- apply, update, delete ----------------------------------------------------------------------

def test_applied_definitions_are_read_back_by_another_store(make_store: Callable[..., FeatureStore]) -> None:
    make_store().apply([driver, stats_view()])
    other = make_store()
    assert other.get_entity("driver") == driver
    assert other.get_feature_view("stats").feature_names() == ["conv_rate"]
    assert [s.name for s in other.list_data_sources()] == ["stats_source"]


def test_reapplying_the_same_definitions_changes_nothing(make_store: Callable[..., FeatureStore]) -> None:
    store = make_store()
    store.apply([driver, stats_view()])
    assert store.apply([driver, stats_view()]) == []
    assert len(store.history()) == 1


def test_update_replaces_a_definition_and_names_the_changed_fields(
        make_store: Callable[..., FeatureStore]) -> None:
    store = make_store()
    store.apply([driver, stats_view()])
    changes = store.apply(stats_view(ttl=timedelta(hours=3), features=("conv_rate", "acc_rate")))
    assert [(c.op, c.name, c.fields) for c in changes] == [("update", "stats", ("schema", "ttl_seconds"))]
    fv = make_store().get_feature_view("stats")
    assert (fv.ttl, fv.feature_names()) == (timedelta(hours=3), ["conv_rate", "acc_rate"])


def test_plan_shows_changes_without_writing_them(make_store: Callable[..., FeatureStore]) -> None:
    store = make_store()
    store.apply([driver])
    assert [(c.op, c.name) for c in store.plan([stats_view()])] == [("add", "stats_source"), ("add", "stats")]
    with pytest.raises(FeatureNotFound, match="FeatureView 'stats' is not registered"):
        make_store().get_feature_view("stats")


def test_delete_removes_only_the_named_definitions(make_store: Callable[..., FeatureStore]) -> None:
    store = make_store()
    store.apply([driver, stats_view("a"), stats_view("b")])
    store.apply([], objects_to_delete=[stats_view("a")])
    assert [v.name for v in make_store().list_feature_views()] == ["b"]


def test_apply_repo_deletes_what_the_repo_no_longer_defines(
        make_store: Callable[..., FeatureStore], repo: Path) -> None:
    store = make_store()
    store.apply([driver, stats_view("a"), stats_view("removed")])
    write_repo_file(repo, views=("a",))
    changes = store.apply_repo()
    assert [(c.op, c.name) for c in changes] == [("delete", "removed")]
    assert store.plan_repo() == []


def test_an_invalid_apply_writes_nothing(make_store: Callable[..., FeatureStore]) -> None:
    store = make_store()
    store.apply([driver, stats_view()])
    bad_service = FeatureService(name="svc", features=[stats_view(features=("conv_rate", "acc_rate"))])
    with pytest.raises(DefinitionError, match="FeatureService 'svc': features: view 'stats' has no feature 'acc_rate'"):
        store.apply([stats_view("other"), bad_service])
    assert [v.name for v in make_store().list_feature_views()] == ["stats"]
    assert len(store.history()) == 1


def test_a_view_whose_entity_is_not_registered_is_rejected(make_store: Callable[..., FeatureStore]) -> None:
    with pytest.raises(DefinitionError, match="entity 'driver' is not defined"):
        make_store().apply([stats_view()])


def test_apply_against_a_stale_version_raises_a_conflict_and_writes_nothing(
        make_store: Callable[..., FeatureStore], unique_name: str) -> None:
    backend = registry_backend(make_store())
    backend.apply(unique_name, [Change("add", "entity", "driver", driver.to_dict())], 0, "first")
    with pytest.raises(RegistryConflict, match=rf"project '{unique_name}' was changed by another apply since "
                                               r"version 0 was read \(version 1, applied by first"):
        backend.apply(unique_name, [Change("add", "entity", "rider", Entity(name="rider").to_dict())], 0, "late")
    assert list(backend.read(unique_name).specs["entity"]) == ["driver"]
    assert backend.version(unique_name) == 1


def test_definitions_are_stored_as_readable_json(make_store: Callable[..., FeatureStore], unique_name: str) -> None:
    store = make_store()
    store.apply([driver, stats_view()])
    snapshot = registry_backend(store).read(unique_name)
    assert snapshot.specs["entity"]["driver"]["join_keys"] == ["driver_id"]
    assert snapshot.specs["feature_view"]["stats"]["ttl_seconds"] == 86400


# ---- history --------------------------------------------------------------------------------------

def test_history_records_who_applied_what_and_when(make_store: Callable[..., FeatureStore],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    store = make_store()
    before = datetime.now(UTC)
    monkeypatch.setenv("REPAST_USER", "alice")
    store.apply([driver, stats_view()])
    monkeypatch.setenv("REPAST_USER", "bob")
    store.apply(stats_view(ttl=timedelta(hours=1)))
    after = datetime.now(UTC)
    latest, first = store.history()
    assert (first.version, first.applied_by, latest.version, latest.applied_by) == (1, "alice", 2, "bob")
    assert before - timedelta(seconds=1) <= first.applied_at <= latest.applied_at <= after + timedelta(seconds=1)
    assert [(c["op"], c["kind"], c["name"]) for c in first.changes] == [
        ("add", "entity", "driver"), ("add", "data_source", "stats_source"), ("add", "feature_view", "stats"),
        ("add", "feature_view_version", "stats@v1")]
    assert latest.changes == [{"op": "update", "kind": "feature_view", "name": "stats", "fields": ["ttl_seconds"]}]


def test_history_is_newest_first_and_limited(make_store: Callable[..., FeatureStore]) -> None:
    store = make_store()
    for hours in range(1, 5):
        store.apply([driver, stats_view(ttl=timedelta(hours=hours))])
    assert [e.version for e in store.history(limit=2)] == [4, 3]


# ---- projects -------------------------------------------------------------------------------------

def test_projects_sharing_a_registry_do_not_see_each_other(make_store: Callable[..., FeatureStore],
                                                           unique_name: str) -> None:
    mine, theirs = make_store(unique_name), make_store(unique_name + "_other")
    mine.apply([driver, stats_view("mine")])
    theirs.apply([driver, stats_view("theirs")])
    assert [v.name for v in mine.list_feature_views()] == ["mine"]
    assert [v.name for v in theirs.list_feature_views()] == ["theirs"]
    assert len(mine.history()) == len(theirs.history()) == 1


def test_teardown_removes_its_project_only(make_store: Callable[..., FeatureStore], unique_name: str) -> None:
    mine, theirs = make_store(unique_name), make_store(unique_name + "_other")
    mine.apply([driver, stats_view()])
    theirs.apply([driver, stats_view()])
    registry_backend(mine).record_materialization(unique_name, "stats", datetime(2024, 1, 1, tzinfo=UTC),
                                               datetime(2024, 1, 2, tzinfo=UTC))
    mine.teardown()
    assert mine.list_feature_views() == [] and mine.history() == []
    assert registry_backend(mine).materializations(unique_name) == {}
    assert [v.name for v in make_store(unique_name + "_other").list_feature_views()] == ["stats"]


def test_materialization_watermarks_keep_the_latest_run_per_view(
        make_store: Callable[..., FeatureStore], unique_name: str) -> None:
    backend = registry_backend(make_store())
    day = datetime(2024, 1, 1, tzinfo=UTC)
    backend.record_materialization(unique_name, "stats", day, day + timedelta(days=1))
    backend.record_materialization(unique_name, "stats", day + timedelta(days=1), day + timedelta(days=2))
    record = backend.materializations(unique_name)["stats"]
    assert (record.start, record.end) == (day + timedelta(days=1), day + timedelta(days=2))


# ---- readers' cache -------------------------------------------------------------------------------

def test_a_reader_sees_an_applied_change_after_its_cache_ttl_without_restart(
        make_store: Callable[..., FeatureStore]) -> None:
    writer = make_store()
    writer.apply([driver, stats_view()])
    reader = make_store(cache_ttl_seconds=1)
    assert reader.get_feature_view("stats").ttl == timedelta(days=1)
    writer.apply(stats_view(ttl=timedelta(hours=5)))
    assert reader.get_feature_view("stats").ttl == timedelta(days=1)  # still cached
    time.sleep(1.1)
    assert reader.get_feature_view("stats").ttl == timedelta(hours=5)


def test_refresh_registry_sees_a_change_immediately(make_store: Callable[..., FeatureStore]) -> None:
    writer = make_store()
    writer.apply([driver])
    reader = make_store(cache_ttl_seconds=3600)
    assert reader.list_feature_views() == []
    writer.apply(stats_view())
    reader.refresh_registry()
    assert [v.name for v in reader.list_feature_views()] == ["stats"]


# ---- two processes applying at the same moment ----------------------------------------------------

def write_repo_file(repo: Path, views: tuple[str, ...]) -> None:
    lines = ["from datetime import timedelta",
             "from repast import Entity, FeatureView, Field, FileSource",
             "from repast.types import Float32",
             'driver = Entity(name="driver", join_keys=["driver_id"])',
             'source = FileSource(name="stats_source", path="data/stats.parquet", timestamp_field="event_timestamp",'
             ' created_timestamp_column="created")']
    lines += [f'{v} = FeatureView(name="{v}", entities=[driver], ttl=timedelta(days=1), source=source, '
              f'schema=[Field(name="conv_rate", dtype=Float32)])' for v in views]
    (repo / "definitions.py").write_text("\n".join(lines) + "\n")


def _apply_in_process(registry_path: str, project: str, repo: str, view: str, full_repo: bool,
                      barrier: Any, results: Any) -> None:
    """Child process: read and validate, meet the other process, then both commit at once."""
    import repast.jobs.plan as plan

    store = FeatureStore(config=config_for(registry_path, project, Path(repo)))
    commit = plan._commit
    met = False

    def commit_together(*args: Any) -> None:
        nonlocal met
        if not met:  # a retry after a conflict commits straight away
            met = True
            barrier.wait(timeout=60)
        commit(*args)

    plan._commit = commit_together  # this child process's commits meet the other's
    try:
        if full_repo:
            store.apply_repo()
        else:
            store.apply(stats_view(view))
        results.put((view, "ok", ""))
    except Exception as e:  # reported to the parent, which asserts on it
        results.put((view, type(e).__name__, str(e)))


def run_two_applies(registry_path: str, project: str, repos: list[Path], full_repo: bool) -> dict[str, tuple]:
    if registry_path.startswith("gs://"):
        pytest.skip("not implemented on the GCS emulator, because gcp-storage-emulator ignores ifGenerationMatch "
                    "(real GCS honours it); the same conditional-write code is covered on S3")
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_apply_in_process,
                         args=(registry_path, project, str(r), view, full_repo, barrier, results))
             for r, view in zip(repos, ("view_a", "view_b"), strict=True)]
    for p in procs:
        p.start()
    outcomes = {}
    for _ in procs:
        view, status, message = results.get(timeout=120)
        outcomes[view] = (status, message)
    for p in procs:
        p.join(timeout=60)
    return outcomes


def _open_in_process(registry_path: str, project: str, repo: str, barrier: Any, results: Any) -> None:
    """Child process: meet the others, then read a registry that nobody has created yet."""
    store = FeatureStore(config=config_for(registry_path, project, Path(repo)))
    barrier.wait(timeout=60)
    try:
        results.put(("ok", [v.name for v in store.list_feature_views()]))
    except Exception as e:  # reported to the parent, which asserts on it
        results.put((type(e).__name__, str(e)))


def test_processes_opening_a_new_registry_at_the_same_moment_all_succeed(
        registry_path: str, repo: Path, unique_name: str) -> None:
    # Each creates the registry's tables on first use; the losers of that race must not fail
    # ("table ... already exists"), as a fresh repo's first `repast apply` and `serve` would.
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(4), ctx.Queue()
    procs = [ctx.Process(target=_open_in_process, args=(registry_path, unique_name, str(repo), barrier, results))
             for _ in range(4)]
    for p in procs:
        p.start()
    outcomes = [results.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    assert outcomes == [("ok", [])] * 4


def test_two_processes_applying_at_once_both_succeed_without_losing_an_update(
        make_store: Callable[..., FeatureStore], registry_path: str, repo: Path, unique_name: str) -> None:
    make_store().apply([driver])
    outcomes = run_two_applies(registry_path, unique_name, [repo, repo], full_repo=False)
    assert outcomes == {"view_a": ("ok", ""), "view_b": ("ok", "")}
    store = make_store()
    assert sorted(v.name for v in store.list_feature_views()) == ["view_a", "view_b"]
    assert [e.version for e in store.history()] == [3, 2, 1]


def test_two_processes_applying_whole_repos_at_once_one_fails_with_a_conflict(
        make_store: Callable[..., FeatureStore], registry_path: str, repo: Path, tmp_path: Path,
        unique_name: str) -> None:
    other = tmp_path / "other_repo"
    generate_driver_stats(other / "data" / "stats.parquet", drivers=3, days=1)
    write_repo_file(repo, ("view_a",))
    write_repo_file(other, ("view_b",))
    outcomes = run_two_applies(registry_path, unique_name, [repo, other], full_repo=True)
    statuses = sorted(status for status, _ in outcomes.values())
    assert statuses == ["RegistryConflict", "ok"], outcomes
    winner = next(v for v, (status, _) in outcomes.items() if status == "ok")
    message = next(m for status, m in outcomes.values() if status == "RegistryConflict")
    assert "was changed by another apply" in message and "run `repast plan`" in message
    store = make_store()
    assert [v.name for v in store.list_feature_views()] == [winner]
    assert len(store.history()) == 1


def test_an_unreachable_registry_database_is_a_one_line_store_unavailable() -> None:
    pytest.importorskip("psycopg")
    from repast.errors import StoreUnavailable
    from repast.registry.sql import SQLRegistryStore

    with pytest.raises(StoreUnavailable, match=r"registry database .* cannot be used: ") as info:
        SQLRegistryStore.for_url("postgresql+psycopg://postgres@127.0.0.1:1/test").read("p")
    assert "\n" not in str(info.value)


# ---- what the web UI reads: specs in history, runs, project names --------------------------------

def test_history_keeps_the_spec_each_apply_wrote(make_store: Callable[..., FeatureStore]) -> None:
    store = make_store()
    store.apply([driver, stats_view()])
    store.apply(stats_view(ttl=timedelta(hours=1)))
    latest, first = store.history()
    assert latest.specs["feature_view/stats"]["ttl_seconds"] == 3600  # type: ignore[index]
    assert first.specs["feature_view/stats"]["ttl_seconds"] == 86400  # type: ignore[index]
    assert first.specs["entity/driver"]["join_keys"] == ["driver_id"]  # type: ignore[index]


def test_history_of_a_delete_keeps_no_spec(make_store: Callable[..., FeatureStore]) -> None:
    store = make_store()
    store.apply([driver, stats_view()])
    store.apply([], objects_to_delete=[stats_view()])
    assert store.history()[0].specs == {"feature_view/stats": None}


def test_the_last_materialization_run_of_each_view_keeps_rows_written(
        make_store: Callable[..., FeatureStore], unique_name: str) -> None:
    from repast.registry.base import MaterializationRun

    registry = registry_backend(make_store())
    day = datetime(2026, 1, 1, tzinfo=UTC)
    registry.record_run(unique_name, MaterializationRun("stats", day, day + timedelta(days=1), day, 10))
    registry.record_run(unique_name, MaterializationRun("stats", day, day + timedelta(days=2), day, 7))
    (run,) = registry.last_runs(unique_name).values()
    assert (run.view, run.end, run.rows) == ("stats", day + timedelta(days=2), 7)


def test_project_names_lists_every_applied_project(make_store: Callable[..., FeatureStore], unique_name: str) -> None:
    make_store().apply(driver)
    make_store(unique_name + "_b").apply(driver)
    names = registry_backend(make_store()).project_names()
    assert {unique_name, unique_name + "_b"} <= set(names)
    make_store(unique_name + "_b").teardown()


def test_a_watermark_never_moves_back_for_the_same_storage(
        make_store: Callable[..., FeatureStore], unique_name: str) -> None:
    backend = registry_backend(make_store())
    day = datetime(2024, 1, 1, tzinfo=UTC)
    backend.record_materialization(unique_name, "stats", day, day + timedelta(days=10), "s1")
    backend.record_materialization(unique_name, "stats", day, day + timedelta(days=1), "s1")  # a backfill
    assert backend.materializations(unique_name)["stats"].end == day + timedelta(days=10)


def test_a_watermark_of_new_storage_replaces_the_old_one(
        make_store: Callable[..., FeatureStore], unique_name: str) -> None:
    backend = registry_backend(make_store())
    day = datetime(2024, 1, 1, tzinfo=UTC)
    backend.record_materialization(unique_name, "stats", day, day + timedelta(days=10), "s1")
    backend.record_materialization(unique_name, "stats", day, day + timedelta(days=1), "s2")
    record = backend.materializations(unique_name)["stats"]
    assert (record.storage, record.end) == ("s2", day + timedelta(days=1))


def test_monitoring_results_are_kept_by_key_and_a_rerun_replaces_its_day(
        make_store: Callable[..., FeatureStore], unique_name: str) -> None:
    from repast.registry.base import MonitoringRecord

    registry = registry_backend(make_store())
    day = datetime(2026, 1, 1, tzinfo=UTC)

    def record(feature: str, date: str, rows: int) -> MonitoringRecord:
        return MonitoringRecord("statistics", "source", "stats", feature, date, day, day + timedelta(hours=23), rows,
                                {"count": rows, "histogram": {"counts": [rows, 0]}}, day)

    registry.record_monitoring(unique_name, [record("a", "2026-01-01", 5), record("a", "2026-01-02", 6),
                                             record("b", "2026-01-01", 7)])
    registry.record_monitoring(unique_name, [record("a", "2026-01-02", 9)])
    kept = registry.monitoring_records(unique_name, "statistics")
    assert [(r.feature, r.day, r.rows, r.values["histogram"]["counts"]) for r in kept] == [
        ("a", "2026-01-01", 5, [5, 0]), ("a", "2026-01-02", 9, [9, 0]), ("b", "2026-01-01", 7, [7, 0])]
    assert (kept[0].start, kept[0].end) == (day, day + timedelta(hours=23))
    assert registry.monitoring_records(unique_name, "drift") == []
    make_store().teardown()
    assert registry.monitoring_records(unique_name, "statistics") == []
