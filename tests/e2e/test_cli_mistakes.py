"""User mistakes and environment trouble on the command line: one `Error:` line each, exit 1 (2 for
usage), no traceback. Each case here once printed a traceback or exited silently."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from repast.errors import MissingExtra
from tests.e2e.backend_processes import PostgresProcess
from tests.e2e.test_cli import assert_user_error, ok, repast


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    ok(repast("init", "repo", cwd=tmp_path))
    return tmp_path / "repo"


def test_a_file_source_that_is_not_parquet_is_named(repo: Path) -> None:
    (repo / "data" / "driver_stats.parquet").write_text("not parquet at all\n")
    assert_user_error(repast("plan", cwd=repo), "driver_stats.parquet' cannot be read as PARQUET")


def test_history_limit_beyond_any_history_is_a_usage_error(repo: Path) -> None:
    result = repast("history", "--limit", str(10**30), cwd=repo)
    assert result.returncode == 2
    assert "--limit" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(("code", "expected"), [
    ("import sys\nsys.exit(3)\n", "exiting.py:2: the file called sys.exit(3) while being loaded"),
    ("raise KeyboardInterrupt\n", "exiting.py:1: interrupted (KeyboardInterrupt)"),
])
def test_a_definitions_file_that_stops_the_process_is_named(repo: Path, code: str, expected: str) -> None:
    (repo / "exiting.py").write_text(code)
    assert_user_error(repast("apply", cwd=repo), expected)


def test_a_locked_sqlite_registry_is_one_error_line(repo: Path) -> None:
    ok(repast("apply", cwd=repo))
    config = repo / "feature_store.yaml"
    config.write_text(config.read_text().replace(
        "registry: data/registry.db", "registry: {path: data/registry.db, lock_timeout_seconds: 0.2}"))
    holder = sqlite3.connect(repo / "data" / "registry.db", isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        assert_user_error(repast("history", cwd=repo), "is locked by another process")
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_a_missing_extra_names_the_extra_to_install() -> None:
    from repast.cli.main import user_errors

    cli = typer.Typer()

    @cli.command()
    @user_errors
    def serve() -> None:
        raise MissingExtra('the Python package \'fastapi\' is required: pip install "repast[server]"')

    result = CliRunner().invoke(cli, [])
    assert result.exit_code == 1
    assert 'pip install "repast[server]"' in result.output


@pytest.fixture
def read_only_role(repo: Path) -> Iterator[Path]:
    """The repo applied on a PostgreSQL registry, then configured with a role that may only read it."""
    import psycopg

    postgres = PostgresProcess().start()
    try:
        config = repo / "feature_store.yaml"
        text = config.read_text()
        url = postgres.url.replace("postgresql://", "postgresql+psycopg://")
        config.write_text(text.replace("registry: data/registry.db", f"registry: {url}"))
        ok(repast("apply", cwd=repo))
        with psycopg.connect(postgres.url, autocommit=True) as conn:
            conn.execute("CREATE ROLE reader LOGIN")
            conn.execute("GRANT SELECT ON ALL TABLES IN SCHEMA public TO reader")
        reader = url.replace("postgres@", "reader@")
        config.write_text(text.replace("registry: data/registry.db", f"registry: {reader}"))
        yield repo
    finally:
        postgres.close()


def test_apply_with_a_registry_role_that_cannot_write_is_one_error_line(read_only_role: Path) -> None:
    repo = read_only_role
    defs = repo / "example_repo.py"
    defs.write_text(defs.read_text().replace('tags={"team": "driver_performance"}', 'tags={"team": "pricing"}'))
    assert_user_error(repast("apply", cwd=repo), "refuses to let this user apply definitions",
                      "permission denied")


def test_materialize_with_a_registry_role_that_cannot_write_is_one_error_line(read_only_role: Path) -> None:
    assert_user_error(repast("materialize-incremental", cwd=read_only_role),
                      "refuses to let this user record a materialization")


def test_reading_with_a_registry_role_that_cannot_write_works(read_only_role: Path) -> None:
    assert "driver_hourly_stats" in ok(repast("feature-views", "list", cwd=read_only_role))




def test_unset_server_tokens_stop_serve_only(repo: Path) -> None:
    config = repo / "feature_store.yaml"
    config.write_text(config.read_text() + "feature_server:\n  auth: {type: token, "
                      "read_tokens: ['${READ_TOKEN_UNSET_HERE}']}\n")
    assert "Plan: 8 to add" in ok(repast("plan", cwd=repo))
    assert_user_error(repast("serve", "--port", "1", cwd=repo), "${READ_TOKEN_UNSET_HERE} is not set",
                      "needed by feature_server")
