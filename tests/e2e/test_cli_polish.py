"""What a new user sees: help that shows which options take values, `--views a,b`, piped
materialize output as docs/cli.md shows it, and plain answers for teardown, read-only plans and
--version."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from repast.store import FeatureStore
from tests.e2e.test_cli import ok, repast
from tests.kubeflow.test_remote_stores import ThreadServer, _write_server_config


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    ok(repast("init", "repo", cwd=tmp_path))
    return tmp_path / "repo"


@pytest.mark.parametrize("command", [["materialize"], ["history"], ["feature-views", "list"], ["serve"], [],
                                     ["ui"], ["projects", "list"], ["saved-datasets", "list"], ["delete"],
                                     ["feature-views", "list-versions"], ["validate"]])
def test_help_shows_no_python_types_after_flags(repo: Path, command: list[str]) -> None:
    text = ok(repast(*command, "--help", cwd=repo))
    assert "<bool>" not in text and "<list[str]>" not in text


def test_usage_names_arguments_in_capitals(repo: Path) -> None:
    text = ok(repast("materialize", "--help", cwd=repo))
    assert "repast materialize [OPTIONS] START END" in text
    assert "{start}" not in text
    assert "VIEW[,VIEW...]" in text and "separate names with commas" in text


def test_version_flag_prints_the_version(repo: Path) -> None:
    assert ok(repast("--version", cwd=repo)) == ok(repast("version", cwd=repo))


def test_views_take_comma_separated_names_and_repeated_flags(repo: Path) -> None:
    ok(repast("apply", cwd=repo))
    out = ok(repast("materialize-incremental", "--views", "driver_hourly_stats,driver_hourly_stats_fresh", cwd=repo))
    assert out.startswith("driver_hourly_stats: ") and "driver_hourly_stats_fresh: " in out
    out = ok(repast("materialize-incremental", "-v", "driver_hourly_stats", "-v", "driver_hourly_stats_fresh",
                    cwd=repo))
    assert "Materialized 2 feature view(s)" in out


def test_piped_materialize_prints_one_line_per_view_and_a_summary(repo: Path) -> None:
    ok(repast("apply", cwd=repo))
    lines = ok(repast("materialize", "2020-01-01", "2100-01-01", "--views", "driver_hourly_stats", cwd=repo)) \
        .strip().splitlines()
    assert len(lines) == 2, lines
    assert lines[0].startswith("driver_hourly_stats: ") and " rows written in " in lines[0]
    assert lines[1].startswith("Materialized 1 feature view(s): ")


def test_piped_tables_wrap_long_names_instead_of_cutting_them(repo: Path) -> None:
    defs = repo / "example_repo.py"
    long_name = "driver_hourly_stats_with_a_name_longer_than_any_column_of_an_eighty_character_terminal"
    defs.write_text(defs.read_text().replace('name="driver_hourly_stats",', f'name="{long_name}",'))
    ok(repast("apply", cwd=repo))
    out = ok(repast("feature-views", "list", cwd=repo, env={"COLUMNS": "80"}))
    assert "…" not in out
    first_column = "".join(line.split("│")[1].strip() for line in out.splitlines() if line.startswith("│"))
    assert long_name in first_column


def test_teardown_of_a_project_never_applied_says_there_is_nothing(repo: Path) -> None:
    out = ok(repast("teardown", "--yes", cwd=repo))
    assert "Nothing to tear down" in out and "torn down." not in out


@pytest.fixture
def thin_client(tmp_path: Path, sample_repo: Path) -> Iterator[Path]:
    """A repo whose registry and online store are a feature server's (read-only)."""
    _write_server_config(sample_repo, None)
    store = FeatureStore(repo_path=sample_repo)
    store.apply_repo()
    with ThreadServer(store) as server:
        client = tmp_path / "client"
        client.mkdir()
        shutil.copytree(sample_repo / "data", client / "data", ignore=shutil.ignore_patterns("*.db*"))
        (client / "example_repo.py").write_text("")  # an empty repo: the plan would delete everything
        (client / "feature_store.yaml").write_text(yaml.safe_dump({
            "project": "sample", "registry": {"registry_type": "remote", "path": server.url},
            "online_store": {"type": "remote", "path": server.url}}))
        yield client


def test_plan_against_a_read_only_registry_says_so_first(thin_client: Path) -> None:
    lines = ok(repast("plan", cwd=thin_client)).strip().splitlines()
    assert lines[0].startswith("Note: registry_type 'remote'") and "read-only" in lines[0]
    assert any("to delete" in line for line in lines)


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_show_completion_prints_a_completion_script_for_the_shell(shell: str, tmp_path: Path) -> None:
    script = ok(repast("--show-completion", shell, cwd=tmp_path))
    assert "_REPAST_COMPLETE" in script or "repast" in script
    assert "complete" in script.lower()


def test_install_completion_is_offered_at_the_top_level(tmp_path: Path) -> None:
    assert "--install-completion" in ok(repast("--help", cwd=tmp_path, env={"COLUMNS": "200"}))
