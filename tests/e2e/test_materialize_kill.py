"""A materialization process killed (SIGKILL) at a random point, then run again, ends in exactly
the state of an uninterrupted run: real subprocesses, real DuckDB, real SQLite online store."""

from __future__ import annotations

import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

pytestmark = pytest.mark.slow

ENTITIES = 60_000
DEFINITIONS = '''
from datetime import timedelta
from repast import Entity, FeatureView, Field, FileSource
from repast.types import Float32, Int64, String

driver = Entity(name="driver", join_keys=["driver_id"])
source = FileSource(name="stats", path="../stats.parquet", timestamp_field="event_timestamp",
                    created_timestamp_column="created")
stats = FeatureView(name="stats", entities=[driver], ttl=timedelta(days=1), source=source,
                    schema=[Field(name="rate", dtype=Float32), Field(name="trips", dtype=Int64),
                            Field(name="city", dtype=String)])
'''
RUN = '''
import sys
from datetime import datetime
from repast import FeatureStore
from repast.jobs.materialize import materialize
store = FeatureStore(repo_path=sys.argv[1])
materialize(store.registry, store.offline_engine, store.online_store, datetime.fromisoformat(sys.argv[2]),
            datetime.fromisoformat(sys.argv[3]), batch_size=2_000)
'''
START, END = "2024-01-01T00:00:00+00:00", "2024-02-01T00:00:00+00:00"


def write_data(path: Path) -> None:
    """Three rows per entity, some sharing an event time and differing only by created time (never
    both: a full tie has no single latest row)."""
    rng = np.random.default_rng(7)
    n = ENTITIES * 3
    base = np.datetime64("2024-01-10T00:00:00", "us")
    event = base + rng.integers(0, 5, n).astype("timedelta64[h]")
    pq.write_table(pa.table({
        "driver_id": np.repeat(np.arange(ENTITIES, dtype=np.int64), 3),
        "event_timestamp": pa.array(event, pa.timestamp("us", tz="UTC")),
        "created": pa.array(event + np.tile(np.arange(3), ENTITIES).astype("timedelta64[s]"),
                            pa.timestamp("us", tz="UTC")),
        "rate": rng.random(n).astype(np.float32),
        "trips": rng.integers(0, 100, n),
        "city": [f"city{i}" for i in rng.integers(0, 50, n)],
    }), path)


def make_repo(root: Path, name: str) -> Path:
    repo = root / name
    repo.mkdir()
    (repo / "feature_store.yaml").write_text(f"project: {name}\nregistry: registry.db\n"
                                             "online_store: {type: sqlite, path: online.db}\n")
    (repo / "repo.py").write_text(DEFINITIONS)
    subprocess.run([sys.executable, "-m", "repast", "--repo", str(repo), "apply"], check=True, capture_output=True)
    return repo


def start_run(repo: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", RUN, str(repo), START, END], stderr=subprocess.PIPE)


def online_state(repo: Path) -> list[tuple[object, ...]]:
    with sqlite3.connect(repo / "online.db") as conn:
        return conn.execute(f'SELECT * FROM "{repo.name}_stats" ORDER BY _entity_key').fetchall()


def test_killed_materialization_rerun_matches_a_clean_run(tmp_path: Path) -> None:
    write_data(tmp_path / "stats.parquet")
    clean, killed = make_repo(tmp_path, "clean"), make_repo(tmp_path, "killed")
    began = time.monotonic()
    proc = start_run(clean)
    assert proc.wait(timeout=300) == 0, proc.stderr.read() if proc.stderr else ""
    duration = time.monotonic() - began

    seed = random.randrange(2**32)
    rng = random.Random(seed)
    for _ in range(2):  # killed twice, at random points of the run
        proc = start_run(killed)
        time.sleep(rng.uniform(0.1, 0.9) * duration)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    proc = start_run(killed)
    assert proc.wait(timeout=300) == 0, proc.stderr.read() if proc.stderr else ""

    expected = online_state(clean)
    assert len(expected) == ENTITIES
    assert online_state(killed) == expected, f"kill points from random seed {seed}"
