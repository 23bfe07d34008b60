"""The embedded engine is bounded by default: a memory limit derived from the machine and a
directory to spill to, so a materialization window larger than memory completes."""

from __future__ import annotations

from pathlib import Path

from repast.config.repo_config import RepoConfig
from repast.offline.duckdb import DuckDBOfflineConfig, DuckDBOfflineEngine, available_memory_bytes


def _setting(engine: DuckDBOfflineEngine, name: str) -> str:
    with engine.session() as con:
        return str(con.execute(f"SELECT current_setting('{name}')").fetchone()[0])  # type: ignore[index]


def test_without_settings_duckdb_may_use_half_the_memory_and_spills_to_the_temp_dir(tmp_path: Path) -> None:
    engine = DuckDBOfflineEngine(DuckDBOfflineConfig(), RepoConfig.model_construct(project="t", repo_path=tmp_path))
    limit = _setting(engine, "memory_limit")
    value, unit = float(limit.split()[0]), limit.split()[1]
    limit_bytes = value * {"MiB": 2**20, "GiB": 2**30, "MB": 10**6, "GB": 10**9}[unit]
    assert 0.4 * available_memory_bytes() <= limit_bytes <= 0.6 * available_memory_bytes()
    assert _setting(engine, "temp_directory").endswith("repast-duckdb-spill")


def test_configured_memory_limit_and_temp_directory_win(tmp_path: Path) -> None:
    config = DuckDBOfflineConfig(memory_limit="300MB", temp_directory=str(tmp_path / "spill"))
    engine = DuckDBOfflineEngine(config, RepoConfig.model_construct(project="t", repo_path=tmp_path))
    assert _setting(engine, "memory_limit") in ("286.1 MiB", "300.0 MB")
    assert _setting(engine, "temp_directory") == str(tmp_path / "spill")
