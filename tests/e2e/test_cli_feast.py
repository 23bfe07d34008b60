"""The CLI commands Feast users know, driven as a user drives them: projects, delete,
saved-datasets, validate, feature-views list --tags and list-versions."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from repast import FeatureStore
from repast.infra.offline_stores.file_source import SavedDatasetFileStorage
from tests.e2e.test_cli import assert_user_error, ok, repast


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    ok(repast("init", "repo", cwd=tmp_path))
    return tmp_path / "repo"


def definitions_file(repo: Path) -> Path:
    return next(p for p in repo.glob("*.py") if "FeatureView(" in p.read_text())


def test_projects_list_and_describe_show_the_repos_project(repo: Path) -> None:
    path = definitions_file(repo)
    path.write_text(path.read_text() + '\nfrom repast import Project\n'
                    'project = Project(name="repo", description="Driver ranking")\n')
    ok(repast("apply", cwd=repo))
    listed = json.loads(ok(repast("projects", "list", "--json", cwd=repo)))
    assert listed == [{"name": "repo", "description": "Driver ranking", "tags": {}, "owner": ""}]
    assert json.loads(ok(repast("projects", "describe", "repo", cwd=repo)))["description"] == "Driver ranking"


def test_a_project_object_that_disagrees_with_the_yaml_fails_before_anything_is_written(repo: Path) -> None:
    path = definitions_file(repo)
    path.write_text(path.read_text() + '\nfrom repast import Project\nproject = Project(name="elsewhere")\n')
    assert_user_error(repast("apply", cwd=repo),
                      "Project 'elsewhere' does not match feature_store.yaml's project 'repo'")
    assert_user_error(repast("feature-views", "describe", "driver_hourly_stats", cwd=repo), "not registered")


def test_feature_views_list_filters_by_tags(repo: Path) -> None:
    ok(repast("apply", cwd=repo))
    tagged = json.loads(ok(repast("feature-views", "list", "--json", "--tags", "team=driver_performance", cwd=repo)))
    assert [v["name"] for v in tagged] == ["driver_hourly_stats"]
    assert json.loads(ok(repast("feature-views", "list", "--json", "--tags", "team:nobody", cwd=repo))) == []


def test_each_schema_change_records_a_new_feature_view_version(repo: Path) -> None:
    ok(repast("apply", cwd=repo))
    path = definitions_file(repo)
    path.write_text(path.read_text().replace('        Field(name="acc_rate", dtype=Float32),\n', "", 1))
    ok(repast("apply", cwd=repo))
    ok(repast("apply", cwd=repo))  # unchanged: no new version
    versions = json.loads(ok(repast("feature-views", "list-versions", "driver_hourly_stats", "--json", cwd=repo)))
    assert [v["version"] for v in versions] == [1, 2]
    assert [f["name"] for f in versions[0]["schema"]] == ["conv_rate", "acc_rate", "avg_daily_trips"]
    assert [f["name"] for f in versions[1]["schema"]] == ["conv_rate", "avg_daily_trips"]


def test_metadata_changes_are_updates_but_record_no_new_version(repo: Path) -> None:
    ok(repast("apply", cwd=repo))
    path = definitions_file(repo)
    path.write_text(path.read_text()
                    .replace('description="Trips per day, 7-day average"',
                             'description="Trips per day (7-day average)", tags={"unit": "trips"}', 1)
                    .replace('tags={"team": "driver_performance"},',
                             'tags={"team": "driver_performance", "tier": "gold"}, owner="ana@example.com",', 1)
                    .replace("ttl=timedelta(days=1)", "ttl=timedelta(days=2)", 1))
    assert "~ FeatureView driver_hourly_stats" in ok(repast("apply", cwd=repo))
    versions = json.loads(ok(repast("feature-views", "list-versions", "driver_hourly_stats", "--json", cwd=repo)))
    assert [v["version"] for v in versions] == [1]
    history = json.loads(ok(repast("history", "--json", "--limit", "1", cwd=repo)))
    (change,) = [c for c in history[0]["changes"] if c["name"] == "driver_hourly_stats"]
    assert change["op"] == "update" and {"owner", "tags", "ttl_seconds"} <= set(change["fields"])


def test_a_new_source_or_transformation_records_a_new_version_and_plan_says_so(repo: Path) -> None:
    import shutil

    ok(repast("apply", cwd=repo))
    shutil.copy(repo / "data" / "driver_stats.parquet", repo / "data" / "driver_stats_v2.parquet")
    path = definitions_file(repo)
    path.write_text(path.read_text()
                    .replace('path="data/driver_stats.parquet"', 'path="data/driver_stats_v2.parquet"', 1)
                    .replace('df["conv_rate_plus_val1"] = inputs["conv_rate"] + inputs["val_to_add"]',
                             'df["conv_rate_plus_val1"] = inputs["conv_rate"] * 2 + inputs["val_to_add"]', 1))
    plan = ok(repast("plan", cwd=repo))
    assert "~ FeatureView driver_hourly_stats (source) -> new version v2" in plan
    assert "transformed_conv_rate (udf_source) -> new version v2" in plan
    ok(repast("apply", cwd=repo))
    for view in ("driver_hourly_stats", "transformed_conv_rate"):
        versions = json.loads(ok(repast("feature-views", "list-versions", view, "--json", cwd=repo)))
        assert [v["version"] for v in versions] == [1, 2]
    # Only the source's metadata changes: an update, not a version.
    path.write_text(path.read_text().replace('path="data/driver_stats_v2.parquet"',
                                             'path="data/driver_stats_v2.parquet", description="v2 data"', 1))
    plan = ok(repast("plan", cwd=repo))
    assert "~ FeatureView driver_hourly_stats (source)" in plan and "new version" not in plan


def test_a_view_pinned_to_another_versions_schema_is_refused(repo: Path) -> None:
    ok(repast("apply", cwd=repo))
    path = definitions_file(repo)
    text = path.read_text().replace('        Field(name="acc_rate", dtype=Float32),\n', "", 1)
    pinned = '    name="driver_hourly_stats",\n    version="v1",\n'
    path.write_text(text.replace('    name="driver_hourly_stats",\n', pinned, 1))
    assert_user_error(repast("apply", cwd=repo), "pinned to v1, but its schema differs from the registered v1")


def test_delete_removes_one_definition_by_name(repo: Path) -> None:
    ok(repast("apply", cwd=repo))
    assert "Deleted feature service 'driver_activity_v1'" in ok(repast("delete", "driver_activity_v1", cwd=repo))
    assert json.loads(ok(repast("feature-services", "list", "--json", cwd=repo))) == []
    assert_user_error(repast("delete", "nope", cwd=repo), "nothing named 'nope' is registered")


def test_validate_checks_definitions_and_writes_nothing(repo: Path) -> None:
    assert "Valid" in ok(repast("validate", cwd=repo))
    assert json.loads(ok(repast("feature-views", "list", "--json", cwd=repo))) == []
    path = definitions_file(repo)
    path.write_text(path.read_text().replace('entities=[driver]', 'entities=["rider"]', 1))
    assert_user_error(repast("validate", cwd=repo), "entity 'rider' is not defined")


def test_saved_datasets_list_and_describe(repo: Path) -> None:
    ok(repast("apply", cwd=repo))
    store = FeatureStore(repo_path=repo)
    job = store.get_historical_features(
        pd.DataFrame({"driver_id": [1001], "event_timestamp": [datetime.now(UTC)]}),
        features=["driver_hourly_stats:conv_rate"])
    store.create_saved_dataset(from_=job, name="training_v1", storage=SavedDatasetFileStorage("data/training.parquet"))
    assert "training_v1" in ok(repast("saved-datasets", "list", cwd=repo))
    described = json.loads(ok(repast("saved-datasets", "describe", "training_v1", cwd=repo)))
    assert (described["features"], described["row_count"]) == (["driver_hourly_stats:conv_rate"], 1)
    assert_user_error(repast("saved-datasets", "describe", "nope", cwd=repo), "saved dataset 'nope' is not registered")


# ---- issue 21: Feast's command names and options ----------------------------------------------------

def test_serve_takes_feasts_short_options(repo: Path) -> None:
    # -h is the host (not help), -p the port, -t the type: gRPC is refused by name before anything listens.
    assert_user_error(repast("serve", "-h", "127.0.0.1", "-p", "6599", "-w", "1", "-r", "5", "-m",
                             "--keep-alive-timeout", "10", "-t", "grpc", cwd=repo),
                      "not supported by repast", "grpc")


@pytest.mark.parametrize("command", ["serve_registry", "serve_transformations", "permissions"])
def test_feasts_other_server_commands_are_known_and_refused_with_the_reason(repo: Path, command: str) -> None:
    result = repast(command, "--port", "8815", cwd=repo)
    assert result.returncode == 1, result.stderr
    assert "not supported by repast" in result.stderr and command in result.stderr


def test_serve_offline_is_feasts_name_for_serve_offline(repo: Path) -> None:
    result = repast("serve_offline", "--help", cwd=repo)
    assert result.returncode == 0 and "Arrow Flight" in result.stdout


def test_configuration_prints_the_configuration_in_use(repo: Path) -> None:
    assert json.loads(ok(repast("configuration", cwd=repo)))["project"] == "repo"


def test_chdir_runs_the_command_in_that_directory(repo: Path) -> None:
    # A repo that builds its paths from os.curdir, as some Feast repos do, applied from its parent.
    definitions = definitions_file(repo)
    from_curdir = 'path=os.path.abspath(os.path.join(os.curdir, "data", "driver_stats.parquet"))'
    text = definitions.read_text().replace('path="data/driver_stats.parquet"', from_curdir)
    definitions.write_text("import os\n" + text)
    ok(repast("-c", "repo", "apply", cwd=repo.parent))
    dump = json.loads(ok(repast("-c", "repo", "registry-dump", cwd=repo.parent)))
    assert str(repo / "data" / "driver_stats.parquet") in json.dumps(dump)


def test_materialize_refuses_feasts_disable_event_timestamp_by_name(repo: Path) -> None:
    ok(repast("apply", cwd=repo))
    assert_user_error(repast("materialize", "2024-01-01", "2024-01-02", "--disable-event-timestamp", cwd=repo),
                      "not supported by repast", "--disable-event-timestamp")
