"""Materialization on Spark, written by the executors into Redis and PostgreSQL: the online store
equals the latest rows, also after a run killed (SIGKILL, JVM included) at a random point and run again."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from repast import FeatureStore
from tests.conftest import SPARK_TEST_CONF

ENTITIES = 20_000
START, END = "2024-01-01T00:00:00+00:00", "2024-02-01T00:00:00+00:00"
DEFINITIONS = '''
from datetime import timedelta
from repast import Entity, FeatureView, Field, SparkSource
from repast.types import Float32, Int64

driver = Entity(name="driver", join_keys=["driver_id"])
source = SparkSource(name="stats", path="stats", file_format="parquet", timestamp_field="event_timestamp",
                     created_timestamp_column="created")
stats = FeatureView(name="stats", entities=[driver], ttl=timedelta(days=1), source=source,
                    schema=[Field(name="rate", dtype=Float32), Field(name="trips", dtype=Int64)])
'''
RUN = '''
import sys, time
from datetime import datetime
from repast import FeatureStore
from repast.jobs.materialize import materialize
store = FeatureStore(repo_path=sys.argv[1])
store.offline_engine.spark  # the session starts before the kill clock does
print("ready", flush=True)
time.sleep(float(sys.argv[4]))
materialize(store.registry, store.offline_engine, store.online_store, datetime.fromisoformat(sys.argv[2]),
            datetime.fromisoformat(sys.argv[3]), batch_size=500)
print("done", flush=True)
'''


def write_data(directory: Path) -> None:
    """Three rows per entity over two files, ties on event time broken by created time."""
    rng = np.random.default_rng(11)
    n = ENTITIES * 3
    event = np.datetime64("2024-01-10T00:00:00", "us") + rng.integers(0, 5, n).astype("timedelta64[h]")
    table = pa.table({
        "driver_id": np.repeat(np.arange(ENTITIES, dtype=np.int64), 3),
        "event_timestamp": pa.array(event, pa.timestamp("us", tz="UTC")),
        "created": pa.array(event + np.tile(np.arange(3), ENTITIES).astype("timedelta64[s]"),
                            pa.timestamp("us", tz="UTC")),
        "rate": rng.random(n).astype(np.float32),
        "trips": rng.integers(0, 100, n),
    })
    directory.mkdir()
    pq.write_table(table.slice(0, n // 2), directory / "part-0.parquet")
    pq.write_table(table.slice(n // 2), directory / "part-1.parquet")


def make_repo(root: Path, project: str, online: str) -> Path:
    repo = root / project
    repo.mkdir()
    conf = ", ".join(f"'{k}': '{v}'" for k, v in SPARK_TEST_CONF.items())
    (repo / "feature_store.yaml").write_text(
        f"project: {project}\nregistry: registry.db\nonline_store: {online}\n"
        f"offline_store: {{type: spark, staging_location: '{root / 'staging'}', spark_conf: {{{conf}}}}}\n")
    (repo / "repo.py").write_text(DEFINITIONS)
    write_data(repo / "stats")
    FeatureStore(repo_path=repo).apply_repo()
    return repo


def expected_latest(repo: Path) -> dict[int, tuple[float, int]]:
    """Plain pandas: per entity, the row with the greatest (event, created) timestamps."""
    rows = pq.read_table(repo / "stats").to_pandas().sort_values(["event_timestamp", "created"])
    latest = rows.groupby("driver_id").tail(1)
    return {int(r.driver_id): (float(r.rate), int(r.trips)) for r in latest.itertuples()}


def online_state(repo: Path) -> dict[int, tuple[float, int]]:
    store = FeatureStore(repo_path=repo)
    ids = list(range(ENTITIES))
    got = store.get_online_features(["stats:rate", "stats:trips"], {"driver_id": ids}).to_dict()
    return dict(zip(ids, zip(got["rate"], got["trips"], strict=True), strict=True))


def kill_midway(repo: Path, rng: random.Random) -> None:
    """Start a materialization in its own process group and SIGKILL it (and its JVM) at a random point."""
    proc = subprocess.Popen([sys.executable, "-c", RUN, str(repo), START, END, str(rng.uniform(0, 4))],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True,
                            cwd=Path(__file__).resolve().parents[2])
    assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
    time.sleep(rng.uniform(0.5, 6))
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)


@pytest.fixture(params=["redis", "postgres"])
def online_yaml(request: pytest.FixtureRequest, unique_name: str) -> str:
    if request.param == "redis":
        url = request.getfixturevalue("redis_url")
        return f"{{type: redis, connection_string: '{url}'}}"
    url = request.getfixturevalue("postgres_url")
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {unique_name}")
    request.addfinalizer(lambda: _drop_schema(url, unique_name))
    return f"{{type: postgres, url: '{url}', db_schema: {unique_name}}}"


def _drop_schema(url: str, schema: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


@pytest.mark.slow
def test_killed_spark_materialization_rerun_leaves_the_latest_rows(
        spark_session: object, tmp_path: Path, unique_name: str, online_yaml: str) -> None:
    repo = make_repo(tmp_path, unique_name, online_yaml)
    seed = random.randrange(2**32)
    kill_midway(repo, random.Random(seed))
    store = FeatureStore(repo_path=repo)  # the rerun, in this process's Spark session
    [stats] = store.materialize(datetime.fromisoformat(START), datetime.fromisoformat(END))
    assert stats.rows == ENTITIES
    assert online_state(repo) == expected_latest(repo), f"kill point from random seed {seed}"
