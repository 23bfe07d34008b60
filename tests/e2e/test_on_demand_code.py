"""Code stored in the registry runs only where a view is run, and with a signing key only if signed.

A tampered function payload (a pickle that touches a marker file when deserialized) is written
into the registry database as an attacker with write access to it would. Listing, describing,
dumping and starting the server must not run it; serving the view does (no key) or refuses it
naming the view (with `registry.signing_key`).
"""

from __future__ import annotations

import base64
import json
import pathlib
import pickle
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from repast import FeatureStore
from repast.errors import DefinitionError
from tests.e2e.test_server_harness import ServerProcess, run_repast

ODFV = "transformed_conv_rate"
FEATURES = [f"{ODFV}:conv_rate_plus_val1"]
ENTITIES = {"driver_id": [1001], "val_to_add": [1], "val_to_add_2": [2]}


class Payload:
    """Unpickling this touches `marker`: the stand-in for arbitrary code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return pathlib.Path(self.marker).touch, ()  # type: ignore[return-value]


def _tamper(repo: Path, marker: Path) -> None:
    payload = base64.b64encode(pickle.dumps(Payload(marker))).decode()
    with sqlite3.connect(repo / "data" / "registry.db") as conn:
        (spec,) = conn.execute("SELECT spec FROM repast_objects WHERE kind = 'on_demand_feature_view'").fetchone()
        spec = json.loads(spec)
        spec["udf_pickle"] = payload
        conn.execute("UPDATE repast_objects SET spec = ? WHERE kind = 'on_demand_feature_view'", (json.dumps(spec),))


def _use_signing_key(repo: Path) -> dict[str, str]:
    config = repo / "feature_store.yaml"
    config.write_text(config.read_text().replace(
        "registry: data/registry.db", "registry:\n  path: data/registry.db\n  signing_key: ${REPAST_SIGNING_KEY}"))
    return {"REPAST_SIGNING_KEY": "s3cret-key"}


@pytest.fixture
def tampered(sample_repo: Path, tmp_path: Path) -> tuple[Path, Path]:
    assert run_repast(sample_repo, "apply").returncode == 0
    marker = tmp_path / "code-ran"
    _tamper(sample_repo, marker)
    return sample_repo, marker


@pytest.mark.parametrize("command", [["feature-views", "list"], ["on-demand-feature-views", "list"],
                                     ["on-demand-feature-views", "list", "--json"],
                                     ["on-demand-feature-views", "describe", ODFV], ["registry-dump"],
                                     ["feature-services", "describe", "driver_activity_v1"], ["plan"]])
def test_listing_describing_and_dumping_never_run_stored_code(tampered: tuple[Path, Path],
                                                              command: list[str]) -> None:
    repo, marker = tampered
    result = run_repast(repo, *command)
    assert result.returncode == 0, result.stderr
    assert not marker.exists()


def test_describe_shows_the_stored_source(tampered: tuple[Path, Path]) -> None:
    repo, _ = tampered
    described = json.loads(run_repast(repo, "on-demand-feature-views", "describe", ODFV).stdout)
    assert "def transformed_conv_rate" in described["udf_source"] and "udf_pickle" not in described


@pytest.mark.slow
def test_server_start_does_not_run_stored_code(tampered: tuple[Path, Path]) -> None:
    repo, marker = tampered
    with ServerProcess(repo, "--no-access-log") as server:
        assert httpx.get(server.url + "/health").status_code == 200
        assert httpx.post(server.url + "/get-online-features", json={
            "features": ["driver_hourly_stats:conv_rate"], "entities": {"driver_id": [1001]}}).status_code == 200
    assert not marker.exists()


def test_without_a_key_the_process_that_runs_the_view_loads_it(tampered: tuple[Path, Path]) -> None:
    repo, marker = tampered
    with pytest.raises(Exception):  # noqa: B017  (the payload is not a function: calling it fails)
        FeatureStore(repo).get_online_features(FEATURES, ENTITIES)
    assert marker.exists()


def test_a_signed_function_runs_with_the_key(sample_repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in _use_signing_key(sample_repo).items():
        monkeypatch.setenv(name, value)
    store = FeatureStore(sample_repo)
    store.apply_repo()
    store.write_to_online_store("driver_hourly_stats", {
        "driver_id": [1001], "conv_rate": [0.5], "acc_rate": [0.5], "avg_daily_trips": [1],
        "event_timestamp": [datetime.now(UTC)]})
    assert FeatureStore(sample_repo).get_online_features(FEATURES, ENTITIES).to_dict()["conv_rate_plus_val1"] \
        == [1.5]


def test_a_tampered_function_is_refused_with_the_key_naming_the_view(sample_repo: Path, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in _use_signing_key(sample_repo).items():
        monkeypatch.setenv(name, value)
    FeatureStore(sample_repo).apply_repo()
    marker = tmp_path / "code-ran"
    _tamper(sample_repo, marker)
    with pytest.raises(DefinitionError, match=f"on-demand feature view '{ODFV}'.*does not match"):
        FeatureStore(sample_repo).get_online_features(FEATURES, ENTITIES)
    assert not marker.exists()


def test_an_unsigned_function_is_refused_with_the_key(sample_repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    FeatureStore(sample_repo).apply_repo()  # applied before a key was configured
    for name, value in _use_signing_key(sample_repo).items():
        monkeypatch.setenv(name, value)
    with pytest.raises(DefinitionError, match=f"on-demand feature view '{ODFV}'.*not signed"):
        FeatureStore(sample_repo).get_online_features(FEATURES, ENTITIES)


def test_apply_with_the_key_signs_functions_applied_without_it(sample_repo: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    FeatureStore(sample_repo).apply_repo()
    for name, value in _use_signing_key(sample_repo).items():
        monkeypatch.setenv(name, value)
    store = FeatureStore(sample_repo)
    assert [(c.op, c.name, c.fields) for c in store.plan_repo()] == [("update", ODFV, ("udf_signature",))]
    store.apply_repo()
    assert store.plan_repo() == []
    assert FeatureStore(sample_repo).get_online_features(FEATURES, ENTITIES).to_dict()["conv_rate_plus_val1"] \
        == [None]  # runs (no stored driver row: conv_rate is null)


# ---- every public entry point, over a registry holding a tampered function --------------------

def _row() -> dict[str, list[object]]:
    return {"driver_id": [1001], "conv_rate": [0.5], "acc_rate": [0.5], "avg_daily_trips": [1],
            "event_timestamp": [datetime.now(UTC)], "created": [datetime.now(UTC)]}


def _sdk_calls() -> dict[str, object]:
    """One call of every public FeatureStore method, none of which asks for the on-demand view.
    Errors are fine (a method may not apply to the sample repo); running the stored code is not."""
    import pandas as pd

    from repast import Entity
    from repast.definitions.saved_dataset import SavedDatasetFileStorage

    now = datetime.now(UTC)
    entity_df = pd.DataFrame({"driver_id": [1001], "event_timestamp": [now]})
    plain = ["driver_hourly_stats:conv_rate"]
    other = Entity(name="unrelated", join_keys=["unrelated_id"])
    return {
        "plan": lambda s: s.plan([other]), "apply": lambda s: s.apply([other]),
        "plan_repo": lambda s: s.plan_repo(), "plan_repo_with_effects": lambda s: s.plan_repo_with_effects(),
        "apply_repo": lambda s: s.apply_repo(), "apply_repo_with_effects": lambda s: s.apply_repo_with_effects(),
        "refresh_registry": lambda s: s.refresh_registry(), "history": lambda s: s.history(),
        **{name: (lambda n: lambda s: getattr(s, n)())(name) for name in (
            "list_entities", "list_data_sources", "list_feature_views", "list_on_demand_feature_views",
            "list_feature_services", "list_projects", "get_project", "list_batch_feature_views",
            "list_stream_feature_views", "list_all_feature_views", "list_label_views", "list_saved_datasets")},
        "get_entity": lambda s: s.get_entity("driver"),
        "get_data_source": lambda s: s.get_data_source("driver_hourly_stats_source"),
        "get_feature_view": lambda s: s.get_feature_view("driver_hourly_stats"),
        "get_on_demand_feature_view": lambda s: s.get_on_demand_feature_view(ODFV).to_dict(),
        "get_feature_service": lambda s: s.get_feature_service("driver_activity_v1"),
        "get_label_view": lambda s: s.get_label_view("none"),
        "get_saved_dataset": lambda s: s.get_saved_dataset("none"),
        "list_feature_view_versions": lambda s: s.list_feature_view_versions("driver_hourly_stats"),
        "get_historical_features": lambda s: s.get_historical_features(entity_df, plain).to_df(),
        "create_saved_dataset": lambda s: s.create_saved_dataset(
            s.get_historical_features(entity_df, plain), "ds",
            SavedDatasetFileStorage(str(s.repo_path / "ds.parquet"))),
        "materialize": lambda s: s.materialize(datetime(2020, 1, 1, tzinfo=UTC), now),
        "materialize_incremental": lambda s: s.materialize_incremental(now),
        "get_online_features": lambda s: s.get_online_features(plain, {"driver_id": [1001]}).to_dict(),
        "push": lambda s: s.push("driver_stats_push_source", pd.DataFrame(_row())),
        "write_to_online_store": lambda s: s.write_to_online_store("driver_hourly_stats", pd.DataFrame(_row())),
        "write_to_offline_store": lambda s: s.write_to_offline_store("driver_hourly_stats", pd.DataFrame(_row())),
        "retrieve_online_documents_v2": lambda s: s.retrieve_online_documents_v2(plain, 1, [0.1]),
        "retrieve_online_documents": lambda s: s.retrieve_online_documents([0.1], 1, plain),
        "retrieve_documents": lambda s: s.retrieve_documents(plain, 1, [0.1]),
        "delete_feature_service": lambda s: s.delete_feature_service("driver_activity_v1"),
        "delete_feature_view": lambda s: s.delete_feature_view("driver_hourly_stats_fresh"),
        "teardown": lambda s: s.teardown(),
        "close": lambda s: s.close(),
        "get_online_features_async": lambda s: _run(s.get_online_features_async(plain, {"driver_id": [1001]})),
        "push_async": lambda s: _run(s.push_async("driver_stats_push_source", pd.DataFrame(_row()))),
        "serve_registry": lambda s: s.serve_registry(),
        "serve_transformations": lambda s: s.serve_transformations(),
        # Monitoring reads sources, saved datasets and the served log; none asks for the on-demand view.
        "compute_feature_statistics": lambda s: s.compute_feature_statistics(
            ["driver_hourly_stats"], datetime(2020, 1, 1, tzinfo=UTC), now),
        "get_feature_statistics": lambda s: s.get_feature_statistics(),
        "check_drift": lambda s: s.check_drift("2020-01-01..2021-01-01", feature_views=["driver_hourly_stats"]),
        "check_skew": lambda s: s.check_skew(sample=10),
        "record_freshness": lambda s: s.record_freshness(),
    }


def _run(result: object) -> object:
    """An async method's coroutine run to its end (a refused method raises before returning one)."""
    import asyncio
    import inspect

    return asyncio.run(result) if inspect.isawaitable(result) else result  # type: ignore[arg-type]


# Not called: properties building a backend, and the blocking servers (tests/ui cover the UI's app;
# test_server_start_does_not_run_stored_code the feature server's start).
NOT_CALLED = {"offline_engine", "online_store", "serve_ui", "serve", "serve_offline"}


def test_every_sdk_method_is_walked() -> None:
    public = {n for n in dir(FeatureStore) if not n.startswith("_")}
    assert public - NOT_CALLED == set(_sdk_calls())


@pytest.mark.parametrize("signed", [False, True], ids=["no-key", "signing-key"])
def test_no_sdk_method_runs_stored_code_unless_it_runs_the_view(sample_repo: Path, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch,
                                                                signed: bool) -> None:
    if signed:
        for name, value in _use_signing_key(sample_repo).items():
            monkeypatch.setenv(name, value)
    FeatureStore(sample_repo).apply_repo()
    marker = tmp_path / "code-ran"
    _tamper(sample_repo, marker)
    calls = _sdk_calls()
    last = ["apply_repo", "apply_repo_with_effects", "teardown", "close"]  # they rewrite or remove it
    for method in [m for m in calls if m not in last] + last:
        call = calls[method]
        try:
            call(FeatureStore(sample_repo))  # type: ignore[operator]
        except Exception:  # noqa: S112, BLE001 - only running the stored code fails this test
            pass
        assert not marker.exists(), f"FeatureStore.{method} ran the stored function"


CLI_COMMANDS = [
    ["version"], ["validate"], ["plan"], ["registry-dump"], ["history"], ["history", "--json"],
    ["config", "show"], ["projects", "list"], ["projects", "describe", "sample"], ["saved-datasets", "list"],
    ["saved-datasets", "describe", "none"],
    *[[group, "list"] for group in ("entities", "data-sources", "feature-views", "on-demand-feature-views",
                                    "feature-services")],
    *[[group, "list", "--json"] for group in ("entities", "data-sources", "feature-views",
                                              "on-demand-feature-views", "feature-services")],
    ["entities", "describe", "driver"], ["data-sources", "describe", "driver_hourly_stats_source"],
    ["feature-views", "describe", "driver_hourly_stats"], ["feature-views", "list-versions", "driver_hourly_stats"],
    ["on-demand-feature-views", "describe", ODFV], ["feature-services", "describe", "driver_activity_v1"],
    ["materialize", "2020-01-01T00:00:00", "2030-01-01T00:00:00"], ["materialize-incremental", "2030-01-01T00:00:00"],
    ["delete", "driver_activity_v1"], ["configuration"], ["gc"], ["apply"], ["teardown", "--yes"],
    # Feast's commands repast refuses with the reason (exit 1): nothing to run, nothing read.
    ["serve_registry"], ["serve_transformations"], ["permissions"], ["demo-notebooks"],
    # The stream commands (tests/streaming/test_stream_udf_signing.py walks them over a stream view's udf).
    ["stream-feature-views", "list"], ["stream-feature-views", "describe", "none"], ["aggregations", "check", "none"],
    ["stream", "--from", "earliest", "--until-caught-up", "--metrics-port", "0"],
    # Monitoring (docs/monitoring.md): statistics, drift, skew, freshness.
    ["stats", "compute", "--views", "driver_hourly_stats", "--start", "2020-01-01", "--end", "2030-01-01"],
    ["stats", "show"], ["stats", "freshness"], ["drift", "--reference", "2020-01-01..2021-01-01"], ["skew"],
]
# Not run here: `init` (makes another repo), `serve` (test_server_start_does_not_run_stored_code), the
# offline server (a blocking server: tests/e2e/test_serve_offline.py starts it), `ui`
# (tests/ui run its app over a registry holding a function that cannot be unpickled).
CLI_NOT_RUN = {"init", "serve", "ui", "serve-offline", "serve_offline"}


def test_every_cli_command_is_walked() -> None:
    import typer

    from repast.cli.main import app

    def names(command: object, prefix: tuple[str, ...]) -> set[tuple[str, ...]]:
        sub = getattr(command, "commands", None)
        if sub is None:
            return {prefix}
        return {n for name, c in sub.items() for n in names(c, (*prefix, name))}

    every = names(typer.main.get_command(app), ())
    walked = {cmd for cmd in every for c in CLI_COMMANDS if tuple(c[:len(cmd)]) == cmd}
    assert every - walked == {(n,) for n in CLI_NOT_RUN}


@pytest.mark.parametrize("signed", [False, True], ids=["no-key", "signing-key"])
def test_no_cli_command_runs_stored_code(sample_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         signed: bool) -> None:
    from typer.testing import CliRunner

    from repast.cli.main import app

    if signed:
        for name, value in _use_signing_key(sample_repo).items():
            monkeypatch.setenv(name, value)
    FeatureStore(sample_repo).apply_repo()
    marker = tmp_path / "code-ran"
    _tamper(sample_repo, marker)
    runner = CliRunner()
    for command in CLI_COMMANDS:
        runner.invoke(app, ["--repo", str(sample_repo), *command])
        assert not marker.exists(), f"repast {' '.join(command)} ran the stored function"


# ---- the signature covers the source text shown by describe and the UI ------------------------

def _rewrite_stored(repo: Path, **fields: str) -> None:
    with sqlite3.connect(repo / "data" / "registry.db") as conn:
        (spec,) = conn.execute("SELECT spec FROM repast_objects WHERE kind = 'on_demand_feature_view'").fetchone()
        spec = {**json.loads(spec), **fields}
        conn.execute("UPDATE repast_objects SET spec = ? WHERE kind = 'on_demand_feature_view'", (json.dumps(spec),))


def test_a_rewritten_source_text_is_refused_with_the_key(sample_repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in _use_signing_key(sample_repo).items():
        monkeypatch.setenv(name, value)
    FeatureStore(sample_repo).apply_repo()
    _rewrite_stored(sample_repo, udf_source="def transformed_conv_rate(inputs):\n    return harmless(inputs)\n")
    with pytest.raises(DefinitionError, match=f"on-demand feature view '{ODFV}'.*does not match"):
        FeatureStore(sample_repo).get_online_features(FEATURES, ENTITIES)


def test_a_signature_that_does_not_cover_the_source_is_refused_naming_the_fix(
        sample_repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import hashlib
    import hmac

    env = _use_signing_key(sample_repo)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    FeatureStore(sample_repo).apply_repo()
    with sqlite3.connect(sample_repo / "data" / "registry.db") as conn:
        (spec,) = conn.execute("SELECT spec FROM repast_objects WHERE kind = 'on_demand_feature_view'").fetchone()
    payload = json.loads(spec)["udf_pickle"]  # signed as before the source was covered: name and pickle only
    _rewrite_stored(sample_repo, udf_signature=hmac.new(env["REPAST_SIGNING_KEY"].encode(),
                                                        f"{ODFV}\0{payload}".encode(), hashlib.sha256).hexdigest())
    with pytest.raises(DefinitionError, match=f"on-demand feature view '{ODFV}'.*source.*apply"):
        FeatureStore(sample_repo).get_online_features(FEATURES, ENTITIES)
    store = FeatureStore(sample_repo)
    assert [(c.op, c.name, c.fields) for c in store.plan_repo()] == [("update", ODFV, ("udf_signature",))]
    store.apply_repo()
    assert FeatureStore(sample_repo).get_online_features(FEATURES, ENTITIES).to_dict()["conv_rate_plus_val1"] \
        == [None]
