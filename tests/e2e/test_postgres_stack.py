"""The whole stack on PostgreSQL (registry, offline engine and online store), as the `postgres`
Kubernetes overlay deploys it: a user's repo applied, trained on, materialized, served, pushed
to, and torn down through the real CLI and SDK."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from repast import FeatureStore
from repast.cli.scaffold import generate_driver_stats

DEFINITIONS = """
from datetime import timedelta

from repast import Entity, FeatureService, FeatureView, Field, PostgreSQLSource, PushSource, ValueType
from repast.types import Float32, Int64

driver = Entity(name="driver", join_keys=["driver_id"], value_type=ValueType.INT64)
source = PostgreSQLSource(name="driver_stats", table="{schema}.driver_stats",
                          timestamp_field="event_timestamp", created_timestamp_column="created")
driver_stats = FeatureView(
    name="driver_stats", entities=[driver], ttl=timedelta(days=1), source=source,
    schema=[Field(name="conv_rate", dtype=Float32), Field(name="acc_rate", dtype=Float32),
            Field(name="avg_daily_trips", dtype=Int64)],
)
push_source = PushSource(name="driver_stats_push", batch_source=source)
driver_stats_fresh = FeatureView(
    name="driver_stats_fresh", entities=[driver], ttl=timedelta(days=1), source=push_source,
    schema=[Field(name="conv_rate", dtype=Float32), Field(name="acc_rate", dtype=Float32),
            Field(name="avg_daily_trips", dtype=Int64)],
)
ranking = FeatureService(name="ranking", features=[driver_stats[["conv_rate", "avg_daily_trips"]]])
"""

NOW = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)


@pytest.fixture
def pg_repo(tmp_path: Path, postgres_url: str, unique_name: str) -> tuple[Path, pd.DataFrame]:
    import psycopg

    data = generate_driver_stats(tmp_path / "driver_stats.parquet", drivers=3, days=2, end=NOW).to_pandas()
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {unique_name}")
        conn.execute(f"CREATE TABLE {unique_name}.driver_stats (driver_id BIGINT, event_timestamp TIMESTAMPTZ, "
                     "conv_rate REAL, acc_rate REAL, avg_daily_trips BIGINT, created TIMESTAMPTZ)")
        with conn.cursor().copy(f"COPY {unique_name}.driver_stats FROM STDIN") as copy:
            for row in data.itertuples(index=False):
                copy.write_row(tuple(row))
    repo = tmp_path / "repo"
    repo.mkdir()
    sqlalchemy_url = postgres_url.replace("postgresql://", "postgresql+psycopg://", 1)
    (repo / "feature_store.yaml").write_text(
        f"project: {unique_name}\n"
        f"registry: {{path: '{sqlalchemy_url}', cache_ttl_seconds: 0}}\n"
        f"offline_store: {{type: postgres, url: '{postgres_url}', db_schema: {unique_name}}}\n"
        f"online_store: {{type: postgres, url: '{postgres_url}', db_schema: {unique_name}}}\n")
    (repo / "features.py").write_text(DEFINITIONS.format(schema=unique_name))
    yield repo, data
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {unique_name} CASCADE")


def cli(repo: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if k != "REPAST_FEATURE_STORE_YAML"}
    done = subprocess.run([sys.executable, "-m", "repast", "--repo", str(repo), *args], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def latest_rows(data: pd.DataFrame) -> pd.DataFrame:
    return data.sort_values(["event_timestamp", "created"]).groupby("driver_id").tail(1).set_index("driver_id")


@pytest.fixture
def open_store() -> Iterator[Callable[[Path], FeatureStore]]:
    """FeatureStores that are closed (pools released) at the end of the test."""
    opened: list[FeatureStore] = []

    def make(repo: Path) -> FeatureStore:
        opened.append(FeatureStore(repo_path=repo))
        return opened[-1]

    yield make
    for store in opened:
        store.close()


def _postgres_sockets() -> int:
    """Established TCP connections of this process to port 5432, from /proc."""
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(name) as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                if fields[2].endswith(":1538") and fields[3] == "01" and fields[9] in inodes:
                    count += 1
    return count


def test_closing_the_store_releases_its_postgres_connections(pg_repo: tuple[Path, pd.DataFrame]) -> None:
    repo, _ = pg_repo
    cli(repo, "apply")
    before = _postgres_sockets()
    with FeatureStore(repo_path=repo) as store:
        store.get_online_features(["driver_stats:avg_daily_trips"], {"driver_id": [1001]})
        assert _postgres_sockets() > before
    assert _postgres_sockets() == before
    # A closed store reconnects on next use.
    assert store.get_online_features(["driver_stats:avg_daily_trips"], {"driver_id": [1001]}).to_dict()
    store.close()


def test_apply_train_materialize_serve_and_teardown_all_on_postgres(pg_repo: tuple[Path, pd.DataFrame],
                                                                    open_store: Callable[[Path], FeatureStore]) -> None:
    repo, data = pg_repo
    assert "FeatureView driver_stats" in cli(repo, "apply")
    store = open_store(repo)

    asked = data.iloc[[5, 40, 70]][["driver_id", "event_timestamp"]].reset_index(drop=True)
    training = store.get_historical_features(asked, store.get_feature_service("ranking")).to_df()
    expected = data.iloc[[5, 40, 70]].reset_index(drop=True)
    assert training["driver_id"].tolist() == asked["driver_id"].tolist()
    assert training["avg_daily_trips"].tolist() == expected["avg_daily_trips"].tolist()
    assert training["conv_rate"].tolist() == pytest.approx(expected["conv_rate"].tolist(), rel=1e-6)

    cli(repo, "materialize-incremental", (NOW + timedelta(hours=1)).isoformat())
    online = store.get_online_features(["driver_stats:avg_daily_trips", "driver_stats:conv_rate"],
                                       {"driver_id": [1001, 1002, 1003, 9999]})
    latest = latest_rows(data)
    assert online.to_dict()["avg_daily_trips"] == [*latest.loc[[1001, 1002, 1003], "avg_daily_trips"], None]
    assert [str(s) for s in online.statuses()["avg_daily_trips"]] == ["PRESENT"] * 3 + ["NOT_FOUND"]


def test_push_reaches_the_online_store_and_the_source_table(pg_repo: tuple[Path, pd.DataFrame],
                                                             postgres_url: str, unique_name: str,
                                                             open_store: Callable[[Path], FeatureStore]) -> None:
    import psycopg

    repo, data = pg_repo
    cli(repo, "apply")
    store = open_store(repo)
    fresh = pd.DataFrame({"driver_id": [1001], "event_timestamp": [NOW + timedelta(minutes=30)],
                          "conv_rate": [0.5], "acc_rate": [0.25], "avg_daily_trips": [4242],
                          "created": [NOW + timedelta(minutes=31)]})
    store.push("driver_stats_push", fresh, to="online_and_offline")
    online = store.get_online_features(["driver_stats_fresh:avg_daily_trips"], {"driver_id": [1001]})
    assert online.to_dict()["avg_daily_trips"] == [4242]
    with psycopg.connect(postgres_url) as conn:
        count = conn.execute(f"SELECT count(*) FROM {unique_name}.driver_stats").fetchone()
    assert count is not None and count[0] == len(data) + 1


def tables(postgres_url: str, schema: str) -> set[str]:
    import psycopg

    with psycopg.connect(postgres_url) as conn:
        rows = conn.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                            (schema,)).fetchall()
    return {r[0] for r in rows}


def test_teardown_removes_online_tables_and_registry_records(pg_repo: tuple[Path, pd.DataFrame],
                                                             postgres_url: str, unique_name: str,
                                                             open_store: Callable[[Path], FeatureStore]) -> None:
    repo, _ = pg_repo
    cli(repo, "apply")
    cli(repo, "materialize-incremental")
    assert len(tables(postgres_url, unique_name)) > 1  # the source table and the views' online tables
    cli(repo, "teardown", "--yes")
    # What stays: the source table, and the store's shared bookkeeping that other projects use: its
    # index of views and the stream consumers' positions (this project's rows are gone from both).
    assert tables(postgres_url, unique_name) == {"driver_stats", "repast_online_views", "repast_stream_offsets"}
    import psycopg

    with psycopg.connect(postgres_url) as conn:
        for table in ("repast_online_views", "repast_stream_offsets"):
            assert conn.execute(f'SELECT count(*) FROM "{unique_name}".{table}').fetchone() == (0,)
    store = open_store(repo)
    assert store.list_feature_views() == []
    assert "driver_stats" not in cli(repo, "feature-views", "list", "--json")


def test_a_cli_command_releases_the_connections_it_opened(pg_repo: tuple[Path, pd.DataFrame],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    import repast.store
    from repast.cli.main import app

    repo, _ = pg_repo
    cli(repo, "apply")
    kept: list[FeatureStore] = []  # the stores stay referenced: only closing them releases their pools

    class KeptStore(FeatureStore):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, **kwargs)  # type: ignore[arg-type]
            kept.append(self)

    monkeypatch.setattr(repast.store, "FeatureStore", KeptStore)
    before = _postgres_sockets()
    for args in (["materialize-incremental", NOW.isoformat()], ["feature-views", "list"]):
        result = CliRunner().invoke(app, ["--repo", str(repo), *args])
        assert result.exit_code == 0, result.output
        assert _postgres_sockets() == before, f"`repast {' '.join(args)}` left connections open"
    assert len(kept) == 2


def test_a_stopped_server_releases_its_store_threads(pg_repo: tuple[Path, pd.DataFrame]) -> None:
    import threading

    from fastapi.testclient import TestClient

    from repast.server.app import create_app

    repo, _ = pg_repo
    cli(repo, "apply")

    def store_threads() -> list[threading.Thread]:
        return [t for t in threading.enumerate() if t.name.startswith("repast-store") and t.is_alive()]

    with FeatureStore(repo_path=repo) as store:
        with TestClient(create_app(store.backends)) as client:
            answer = client.post("/get-online-features", json={"features": ["driver_stats:avg_daily_trips"],
                                                               "entities": {"driver_id": [1001]}})
            assert answer.status_code == 200, answer.text
            assert store_threads(), "a PostgreSQL read runs on the server's store threads"
        deadline = time.monotonic() + 10
        while store_threads() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert store_threads() == []
