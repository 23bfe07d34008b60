"""A materialization of an aggregated view killed (SIGKILL) midway through writing its tiles, then run
again, serves exactly what an uninterrupted run serves, and what the brute-force reference computes
from the events: no event counted twice, none lost. Real subprocesses, real DuckDB, real stores."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from repast import FeatureStore
from repast.jobs.online_read import get_online_features
from tests.contract.test_online_store import drop_postgres_schema, online_store_config
from tests.reference import windowed_value

pytestmark = pytest.mark.slow

ENTITIES, EVENTS_PER_ENTITY = 3_000, 40
FUNCTIONS = ("count", "sum", "max", "last_n")
DEFINITIONS = '''
from datetime import timedelta
from repast import Aggregation, Entity, FeatureView, Field, FileSource
from repast.types import Float64, Int64

rider = Entity(name="rider", join_keys=["rider_id"])
source = FileSource(name="rides", path="../rides.parquet", timestamp_field="event_timestamp")
rides = FeatureView(name="rides", entities=[rider], source=source,
                    schema=[Field(name="rider_id", dtype=Int64), Field(name="amount", dtype=Float64)],
                    aggregations=[Aggregation(column="amount", function=f, time_window=timedelta(hours=24),
                                              slide_interval=timedelta(minutes=5), n=3 if f == "last_n" else None)
                                  for f in ("count", "sum", "max", "last_n")])
'''
# Small batches: the tiles are written in many groups of whole keys, many transactions to be killed between.
RUN = '''
import sys
from datetime import datetime
from repast import FeatureStore
from repast.jobs.materialize import materialize
store = FeatureStore(repo_path=sys.argv[1])
materialize(store.registry, store.offline_engine, store.online_store, datetime.fromisoformat(sys.argv[2]),
            datetime.fromisoformat(sys.argv[3]), batch_size=1_000)
'''
# Whole minutes, the window (24 h) ending after every event; tiles expire against the wall clock, so
# the events are of the last 20 hours.
END = datetime.now(UTC).replace(second=0, microsecond=0)
START = END - timedelta(hours=21)


def events() -> pa.Table:
    rng = np.random.default_rng(11)
    n = ENTITIES * EVENTS_PER_ENTITY
    end_us = int(END.timestamp()) * 1_000_000
    ts = end_us - rng.integers(1, 20 * 3600, n) * 1_000_000
    ts[::7] -= ts[::7] % (300 * 1_000_000)  # some on tile ends
    return pa.table({"rider_id": np.repeat(np.arange(ENTITIES, dtype=np.int64), EVENTS_PER_ENTITY),
                     "event_timestamp": pa.array(ts, pa.timestamp("us", "UTC")),
                     "amount": rng.integers(-50, 50, n).astype(np.float64) / 4})


@pytest.fixture(params=["sqlite", "redis", "postgres"])
def repos(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    pq.write_table(events(), tmp_path / "rides.parquet")
    made = []
    for name in ("clean", "killed"):
        project = f"t_{name}_{os.getpid()}_{random.randrange(10**6)}"
        repo = tmp_path / name
        repo.mkdir()
        config = online_store_config(request.param, request, repo, project)
        (repo / "feature_store.yaml").write_text(yaml.safe_dump(
            {"project": project, "registry": "registry.db", "online_store": config}))
        (repo / "repo.py").write_text(DEFINITIONS)
        subprocess.run([sys.executable, "-m", "repast", "--repo", str(repo), "apply"], check=True,
                       capture_output=True)
        made.append((repo, config, project))
    yield made[0][0], made[1][0]
    for repo, config, project in made:
        store = FeatureStore(repo_path=repo)
        store.teardown()
        store.online_store.close()
        if request.param == "postgres":
            drop_postgres_schema(config["url"], project)


def start_run(repo: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[2]), *sys.path])}
    return subprocess.Popen([sys.executable, "-c", RUN, str(repo), START.isoformat(), END.isoformat()],
                            stderr=subprocess.PIPE, env=env)


def served(repo: Path, riders: list[int] | None = None) -> dict[str, list[Any]]:
    store = FeatureStore(repo_path=repo)
    try:
        refs = [f"rides:{f}_amount" for f in FUNCTIONS]
        return get_online_features(store.registry, store.online_store, refs,
                                   {"rider_id": list(range(ENTITIES)) if riders is None else riders}, at=END).to_dict()
    finally:
        store.online_store.close()


def has_tiles(repo: Path) -> bool:
    """Whether the run has written some tiles: the count of a few riders read through the store."""
    return any(served(repo, list(range(0, ENTITIES, 97)))["count_amount"])


def test_tile_materialization_killed_midway_then_rerun_serves_exactly_the_reference(
        repos: tuple[Path, Path]) -> None:
    clean, killed = repos
    began = time.monotonic()
    proc = start_run(clean)
    assert proc.wait(timeout=600) == 0, proc.stderr.read() if proc.stderr else ""
    duration = time.monotonic() - began

    seed = random.randrange(2**32)
    rng = random.Random(seed)
    for attempt in range(2):
        proc = start_run(killed)
        if attempt == 0:  # the first kill: once tiles are being written, not before
            while proc.poll() is None and not has_tiles(killed):
                time.sleep(0.05)
        time.sleep(rng.uniform(0.0, 0.3) * duration)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=60) == -signal.SIGKILL, f"the run ended before the kill (seed {seed})"
    proc = start_run(killed)
    assert proc.wait(timeout=600) == 0, proc.stderr.read() if proc.stderr else ""

    want, got = served(clean), served(killed)
    assert got == want, f"kill points from random seed {seed}"
    table = events()
    ids, times, amounts = (table.column(c).to_pylist() for c in ("rider_id", "event_timestamp", "amount"))
    by_rider: dict[int, list[tuple[int, None, float]]] = {}
    for rider, ts, amount in zip(ids, times, amounts, strict=True):
        by_rider.setdefault(rider, []).append((int(ts.timestamp() * 1_000_000), None, amount))
    end_us = int(END.timestamp()) * 1_000_000
    for rider in range(0, ENTITIES, 31):
        for f in FUNCTIONS:
            reference = windowed_value(by_rider[rider], f, end_us, 24 * 3600 * 1_000_000, 300 * 1_000_000,
                                       3 if f == "last_n" else 0)
            assert got[f"{f}_amount"][rider] == reference, f"{f} of rider {rider} (seed {seed})"
