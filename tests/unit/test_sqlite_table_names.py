"""SQLite online tables are named as Feast names them, `<project>_<view>` (tutorials query the file
directly), and a file written with repast's earlier `<project>__<view>` names keeps working: its
tables are renamed in place, values and watermarks kept."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from repast import FeatureStore
from repast.errors import DefinitionError

VIEW = "driver_hourly_stats"


def online_db(store: FeatureStore) -> Path:
    return store.repo_path / "data" / "online.db"


def tables(store: FeatureStore) -> set[str]:
    with closing(sqlite3.connect(online_db(store))) as conn:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


@pytest.fixture
def materialized(sample_repo: Path) -> FeatureStore:
    store = FeatureStore(repo_path=sample_repo)
    store.apply_repo()
    store.materialize_incremental(datetime.now(UTC))
    return store


def test_a_views_table_is_named_project_underscore_view_as_feasts(materialized: FeatureStore) -> None:
    with closing(sqlite3.connect(online_db(materialized))) as conn:
        rows = conn.execute(f'SELECT COUNT(*) FROM "{materialized.project}_{VIEW}"').fetchone()
    assert rows[0] == 5


def test_an_online_file_with_the_earlier_table_names_keeps_its_values_and_watermark(
        materialized: FeatureStore) -> None:
    before = materialized.get_online_features([f"{VIEW}:conv_rate"], {"driver_id": [1001]}).to_dict()
    storage = materialized.online_store.storage_id(materialized.project, materialized.get_feature_view(VIEW))
    materialized.close()
    with closing(sqlite3.connect(online_db(materialized))) as conn:  # as the earlier layout named them
        for view in (VIEW, "driver_hourly_stats_fresh"):
            conn.execute(f'ALTER TABLE "{materialized.project}_{view}" RENAME TO "{materialized.project}__{view}"')
        conn.commit()
    reopened = FeatureStore(repo_path=materialized.repo_path)
    after = reopened.get_online_features([f"{VIEW}:conv_rate"], {"driver_id": [1001]}).to_dict()
    assert after == before
    assert f"{reopened.project}_{VIEW}" in tables(reopened) and f"{reopened.project}__{VIEW}" not in tables(reopened)
    assert reopened.online_store.storage_id(reopened.project, reopened.get_feature_view(VIEW)) == storage
    runs = reopened.materialize_incremental(datetime.now(UTC) + timedelta(minutes=1))
    # The watermark moved on from the earlier run (a restarted one would begin at end - ttl, a day back).
    assert next(r for r in runs if r.view == VIEW).start > datetime.now(UTC) - timedelta(hours=1)


def test_two_views_whose_feast_table_names_collide_are_refused(tmp_path: Path) -> None:
    from repast.definitions import Entity, FeatureView, Field, FileSource
    from repast.online.sqlite import SqliteOnlineConfig, SqliteOnlineStore
    from repast.types import Int64

    store = SqliteOnlineStore(SqliteOnlineConfig(path=str(tmp_path / "online.db")), None)
    source = FileSource(name="s", path="s.parquet", timestamp_field="ts")
    driver = Entity(name="driver", join_keys=["driver_id"])

    def view(name: str) -> FeatureView:
        return FeatureView(name=name, entities=[driver], source=source, schema=[Field(name="x", dtype=Int64)])

    store.update("a_b", [view("c")], [])
    with pytest.raises(DefinitionError, match="a_b_c"):
        store.update("a", [view("b_c")], [])
