"""The `repast` command driven as a user drives it: a real process in a temporary feature repo."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer

from repast.cli.main import app
from repast.cli.scaffold import generate_driver_stats

FEAST_STYLE_REPO = Path(__file__).parent / "feast_style_repo"
GROUPS = {  # CLI group -> the names `repast init` registers in it
    "entities": ["driver"],
    "data-sources": ["driver_hourly_stats_source", "driver_stats_push_source", "vals_to_add"],
    "feature-views": ["driver_hourly_stats", "driver_hourly_stats_fresh"],
    "on-demand-feature-views": ["transformed_conv_rate"],
    "feature-services": ["driver_activity_v1"],
}


def repast(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run `python -m repast ARGS` (the same entry point as the `repast` script)."""
    full_env = {k: v for k, v in os.environ.items() if k != "REPAST_FEATURE_STORE_YAML"}
    full_env.update({"REPAST_USER": "e2e-tester", "COLUMNS": "200", **(env or {})})
    return subprocess.run([sys.executable, "-m", "repast", *args], cwd=cwd, env=full_env, capture_output=True,
                          text=True, timeout=120)


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def assert_user_error(result: subprocess.CompletedProcess[str], *expected: str) -> None:
    """Exit 1, one line on stderr starting with 'Error:', no traceback."""
    assert result.returncode == 1, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    assert "Traceback" not in result.stderr + result.stdout
    for text in expected:
        assert text in lines[0]


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    ok(repast("init", "repo", cwd=tmp_path))
    return tmp_path / "repo"


@pytest.fixture(scope="module")
def applied_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One sample repo, applied once, shared by the read-only commands."""
    root = tmp_path_factory.mktemp("applied")
    ok(repast("init", "repo", cwd=root))
    ok(repast("apply", cwd=root / "repo"))
    return root / "repo"


# ---- init, plan, apply --------------------------------------------------------------------------

def test_init_creates_config_definitions_and_generated_data(tmp_path: Path) -> None:
    out = ok(repast("init", "my_repo", cwd=tmp_path))
    repo = tmp_path / "my_repo"
    assert "Created feature repo" in out
    assert "project: my_repo" in (repo / "feature_store.yaml").read_text()
    assert "FeatureView(" in (repo / "example_repo.py").read_text()
    assert (repo / "data" / "driver_stats.parquet").stat().st_size > 0


def test_init_into_a_non_empty_directory_is_a_user_error(tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "file.txt").write_text("mine")
    assert_user_error(repast("init", "taken", cwd=tmp_path), "already exists and is not empty")


def test_plan_lists_every_definition_to_add_and_writes_nothing(repo: Path) -> None:
    out = ok(repast("plan", cwd=repo))
    assert "+ Entity driver" in out and "+ FeatureView driver_hourly_stats" in out
    assert "Plan: 8 to add, 0 to change, 0 to delete." in out
    assert "Plan: 8 to add" in ok(repast("plan", cwd=repo))


def test_apply_registers_and_plan_afterwards_shows_no_changes(repo: Path) -> None:
    assert "Applied: 8 to add, 0 to change, 0 to delete." in ok(repast("apply", cwd=repo))
    assert "No changes: the registry matches the repo." in ok(repast("plan", cwd=repo))
    assert "No changes" in ok(repast("apply", cwd=repo))


def test_plan_after_editing_a_view_shows_the_update_and_its_fields(repo: Path) -> None:
    ok(repast("apply", cwd=repo))
    defs = repo / "example_repo.py"
    defs.write_text(defs.read_text().replace('tags={"team": "driver_performance"}', 'tags={"team": "pricing"}'))
    out = ok(repast("plan", cwd=repo))
    assert "~ FeatureView driver_hourly_stats (tags)" in out
    assert "Plan: 0 to add, 1 to change, 0 to delete." in out


def test_plan_apply_and_history_diff_show_each_changed_value_before_and_after(repo: Path) -> None:
    ok(repast("apply", cwd=repo))
    defs = repo / "example_repo.py"
    defs.write_text(defs.read_text().replace('tags={"team": "driver_performance"}', 'tags={"team": "pricing"}')
                    .replace('description="Trips per day, 7-day average"', 'description="Trips a day"'))
    tags = 'tags: {"team": "driver_performance"} -> {"team": "pricing"}'
    described = 'schema[avg_daily_trips].description: "Trips per day, 7-day average" -> "Trips a day"'
    for command in ("plan", "apply"):
        out = ok(repast(command, cwd=repo))
        assert tags in out and described in out
    diff = ok(repast("history", "--diff", "2", cwd=repo))
    assert "update feature_view driver_hourly_stats" in diff and tags in diff and described in diff
    assert "@v" not in diff


def test_history_diff_of_an_unknown_apply_is_one_error_line(repo: Path) -> None:
    ok(repast("apply", cwd=repo))
    assert_user_error(repast("history", "--diff", "7", cwd=repo), "no apply 7")


def test_apply_after_removing_a_definition_deletes_it(repo: Path) -> None:
    ok(repast("apply", cwd=repo))
    defs = repo / "example_repo.py"
    text = defs.read_text()
    defs.write_text(text[:text.index("driver_stats_push_source = ")])
    out = ok(repast("apply", cwd=repo))
    assert "- FeatureView driver_hourly_stats_fresh" in out and "- DataSource driver_stats_push_source" in out
    assert "driver_hourly_stats_fresh" not in ok(repast("feature-views", "list", cwd=repo))


# ---- list, describe, dump, history --------------------------------------------------------------

@pytest.mark.parametrize("group", GROUPS)
def test_list_prints_a_table_of_registered_names(group: str, applied_repo: Path) -> None:
    out = ok(repast(group, "list", cwd=applied_repo))
    assert "name" in out.splitlines()[1]
    for name in GROUPS[group]:
        assert name in out


@pytest.mark.parametrize("group", GROUPS)
def test_list_json_prints_every_definition(group: str, applied_repo: Path) -> None:
    objs = json.loads(ok(repast(group, "list", "--json", cwd=applied_repo)))
    assert sorted(o["name"] for o in objs) == GROUPS[group]


@pytest.mark.parametrize("group", GROUPS)
def test_describe_prints_one_definition_as_json(group: str, applied_repo: Path) -> None:
    name = GROUPS[group][0]
    assert json.loads(ok(repast(group, "describe", name, cwd=applied_repo)))["name"] == name


def test_describe_shows_an_on_demand_function_as_source_text_not_pickle(applied_repo: Path) -> None:
    odfv = json.loads(ok(repast("on-demand-feature-views", "describe", "transformed_conv_rate", cwd=applied_repo)))
    assert "def transformed_conv_rate(inputs: pd.DataFrame)" in odfv["udf_source"]
    assert "udf_pickle" not in odfv


def test_describe_of_an_unknown_name_lists_what_is_registered(applied_repo: Path) -> None:
    assert_user_error(repast("feature-views", "describe", "nope", cwd=applied_repo),
                      "FeatureView 'nope' is not registered", "driver_hourly_stats")


def test_registry_dump_prints_every_definition_as_json(applied_repo: Path) -> None:
    dump = json.loads(ok(repast("registry-dump", cwd=applied_repo)))
    assert (dump["project"], dump["version"]) == ("repo", 1)
    assert [fv["name"] for fv in dump["feature_view"]] == ["driver_hourly_stats", "driver_hourly_stats_fresh"]
    assert "udf_pickle" not in dump["on_demand_feature_view"][0]


def test_history_lists_each_apply_with_who_and_what(applied_repo: Path) -> None:
    out = ok(repast("history", cwd=applied_repo))
    assert "e2e-tester" in out and "add entity driver" in out
    (entry,) = json.loads(ok(repast("history", "--json", cwd=applied_repo)))
    assert (entry["version"], entry["applied_by"]) == (1, "e2e-tester")
    assert {"op": "add", "kind": "feature_service", "name": "driver_activity_v1", "fields": []} in entry["changes"]


def test_commands_run_against_another_directory_with_repo(applied_repo: Path, tmp_path: Path) -> None:
    assert "driver_hourly_stats" in ok(repast("--repo", str(applied_repo), "feature-views", "list", cwd=tmp_path))
    assert "No changes" in ok(repast("--repo", str(applied_repo), "plan", cwd=tmp_path))


def test_the_repast_console_script_runs_too(applied_repo: Path) -> None:
    script = Path(sys.executable).parent / "repast"
    result = subprocess.run([str(script), "entities", "list", "--json"], cwd=applied_repo, capture_output=True,
                            text=True, timeout=120)
    assert [e["name"] for e in json.loads(ok(result))] == ["driver"]


def test_config_show_prints_the_configuration_with_secrets_masked(repo: Path) -> None:
    (repo / "feature_store.yaml").write_text(
        "project: repo\nregistry: postgresql+psycopg://app:${REPAST_E2E_PASSWORD}@db.internal/features\n"
        "online_store:\n  type: redis\n  connection_string: redis.internal:6379,password=${REPAST_E2E_PASSWORD}\n")
    out = ok(repast("config", "show", cwd=repo, env={"REPAST_E2E_PASSWORD": "hunter2"}))
    assert "hunter2" not in out
    config = json.loads(out.split("\n", 1)[1])
    assert config["registry"]["path"] == "postgresql+psycopg://app:***@db.internal/features"
    assert config["online_store"]["type"] == "redis"


def test_teardown_removes_everything_registered(repo: Path) -> None:
    ok(repast("apply", cwd=repo))
    assert "torn down" in ok(repast("teardown", "--yes", cwd=repo))
    assert json.loads(ok(repast("feature-views", "list", "--json", cwd=repo))) == []
    assert json.loads(ok(repast("history", "--json", cwd=repo))) == []
    assert "Plan: 8 to add" in ok(repast("plan", cwd=repo))


# ---- help and exit codes ------------------------------------------------------------------------

def all_commands(command: Any, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], str]]:
    """(command path, first line of its help) for the root and every (sub)command."""
    found = [(prefix, command.help.strip().splitlines()[0] if command.help else "")]
    for name, sub in getattr(command, "commands", {}).items():  # a group
        found += all_commands(sub, (*prefix, name))
    return found


@pytest.mark.parametrize("path, summary", [pytest.param(path, summary, id=" ".join(("repast", *path)))
                                           for path, summary in all_commands(typer.main.get_command(app))])
def test_every_command_has_help(path: tuple[str, ...], summary: str, tmp_path: Path) -> None:
    assert summary, f"`repast {' '.join(path)}` has no help text"
    out = ok(repast(*path, "--help", cwd=tmp_path))
    assert f"Usage: repast {' '.join(path)}".rstrip() in out
    assert " ".join(summary.split()[:6]) in " ".join(out.split())


def test_bad_yaml_is_a_one_line_user_error(repo: Path) -> None:
    (repo / "feature_store.yaml").write_text("project: repo\nonline_store: [unclosed\n")
    assert_user_error(repast("plan", cwd=repo), "feature_store.yaml: malformed YAML at line 3")


def test_unknown_config_key_is_a_one_line_user_error(repo: Path) -> None:
    (repo / "feature_store.yaml").write_text("project: repo\nonline_stor:\n  type: sqlite\n")
    assert_user_error(repast("apply", cwd=repo), "feature_store.yaml: online_stor: unknown key")


def test_missing_environment_variable_is_a_user_error(repo: Path) -> None:
    (repo / "feature_store.yaml").write_text("project: repo\nregistry: ${REPAST_E2E_UNSET}/registry.db\n")
    assert_user_error(repast("plan", cwd=repo), "${REPAST_E2E_UNSET} is not set")


def test_missing_source_column_is_a_one_line_user_error_and_nothing_is_applied(repo: Path) -> None:
    defs = repo / "example_repo.py"
    defs.write_text(defs.read_text().replace('Field(name="acc_rate", dtype=Float32),\n        Field(name="avg',
                                             'Field(name="acceptance", dtype=Float32),\n        Field(name="avg', 1))
    assert_user_error(repast("apply", cwd=repo), "example_repo.py: FeatureView 'driver_hourly_stats': schema "
                                                 "field 'acceptance' is not a column of source")
    assert json.loads(ok(repast("history", "--json", cwd=repo))) == []


def test_python_error_in_a_repo_file_is_a_user_error_naming_file_and_line(repo: Path) -> None:
    (repo / "broken.py").write_text("import math\n\nvalue = math.sqrt(-1)\n")
    assert_user_error(repast("plan", cwd=repo), "broken.py:3: ValueError: math domain error")


def test_running_outside_a_feature_repo_is_a_user_error(tmp_path: Path) -> None:
    assert_user_error(repast("plan", cwd=tmp_path), "feature_store.yaml: not found")


@pytest.mark.parametrize("args", [("no-such-command",), ("plan", "--no-such-option"), ("feature-views", "describe"),
                                  ("history", "--limit", "many")], ids=" ".join)
def test_usage_errors_exit_with_code_2(args: tuple[str, ...], tmp_path: Path) -> None:
    result = repast(*args, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "Usage: repast" in result.stderr and "Traceback" not in result.stderr


# ---- a repo written for Feast -------------------------------------------------------------------

@pytest.fixture
def feast_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "feast_repo"
    shutil.copytree(FEAST_STYLE_REPO, repo, ignore=shutil.ignore_patterns("__pycache__", "data"))
    generate_driver_stats(repo / "data" / "driver_stats.parquet")
    return repo


def test_feast_style_repo_plans_and_applies(feast_repo: Path) -> None:
    plan = ok(repast("plan", cwd=feast_repo))
    assert "Plan: 13 to add, 0 to change, 0 to delete." in plan, plan
    ok(repast("apply", cwd=feast_repo))
    assert "No changes" in ok(repast("plan", cwd=feast_repo))
    views = json.loads(ok(repast("feature-views", "list", "--json", cwd=feast_repo)))
    assert sorted(v["name"] for v in views) == ["driver_hourly_stats", "driver_hourly_stats_fresh"]
    odfvs = json.loads(ok(repast("on-demand-feature-views", "list", "--json", cwd=feast_repo)))
    assert sorted(o["name"] for o in odfvs) == [
        "transformed_conv_rate", "transformed_conv_rate_fresh", "transformed_conv_rate_python"]


def test_feast_style_feature_services_keep_projections_aliases_and_key_maps(feast_repo: Path) -> None:
    ok(repast("apply", cwd=feast_repo))
    v1 = json.loads(ok(repast("feature-services", "describe", "driver_activity_v1", cwd=feast_repo)))
    assert [(p["view_name"], p["features"]) for p in v1["features"]] == [
        ("driver_hourly_stats", ["conv_rate"]),
        ("transformed_conv_rate", ["conv_rate_plus_val1", "conv_rate_plus_val2"])]
    v2 = json.loads(ok(repast("feature-services", "describe", "driver_activity_v2", cwd=feast_repo)))
    assert v2["features"][0]["features"] == ["conv_rate", "acc_rate", "avg_daily_trips"]
    referrer_activity = ok(repast("feature-services", "describe", "referrer_activity", cwd=feast_repo))
    (referrer,) = json.loads(referrer_activity)["features"]
    assert referrer == {"view_name": "driver_hourly_stats", "features": ["acc_rate"], "name_alias": "referrer_stats",
                        "join_key_map": {"driver_id": "referrer_id"}}


def test_version_prints_the_installed_version(tmp_path: Path) -> None:
    from repast import __version__

    assert ok(repast("version", cwd=tmp_path)).strip() == f"repast {__version__}"
