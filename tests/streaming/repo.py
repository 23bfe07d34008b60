"""A feature repo with one stream feature view over a Kafka topic, events for it, and the reference
the stores must equal after any run: per driver the latest event online, every event once offline."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow.dataset as ds

ROOT = Path(__file__).resolve().parents[2]
DEFS = '''
from datetime import timedelta
from repast import Entity, Field, FileSource, KafkaSource, StreamFeatureView, JsonFormat
from repast.types import Float64, Int64

driver = Entity(name="driver", join_keys=["driver_id"])
trips_batch = FileSource(name="trips_batch", path="data/trips", timestamp_field="event_timestamp")
trips_stream = KafkaSource(
    name="trips_stream", kafka_bootstrap_servers="{bootstrap}", topic="{topic}",
    timestamp_field="event_timestamp", batch_source=trips_batch,
    message_format=JsonFormat(schema_json="driver_id bigint, event_timestamp timestamp, rate double, trips bigint"),
    watermark_delay_threshold=timedelta(minutes=5))
driver_trips = StreamFeatureView(
    name="driver_trips", entities=[driver], ttl=timedelta(days=1), source=trips_stream,
    schema=[Field(name="driver_id", dtype=Int64), Field(name="rate", dtype=Float64),
            Field(name="trips", dtype=Int64)]{udf})
'''
AGGREGATED = '''
from repast import Aggregation
trip_sums = StreamFeatureView(
    name="trip_sums", entities=[driver], ttl=timedelta(days=1), source=trips_stream,
    schema=[Field(name="driver_id", dtype=Int64), Field(name="trips", dtype=Int64)],
    aggregations=[Aggregation(column="trips", function="sum", time_window=timedelta(days=1)),
                  Aggregation(column="trips", function="count", time_window=timedelta(days=1))]{udf})
'''
UDF = '''

def add_one(df):
    df["trips"] = df["trips"] + 1
    return df
'''
T0 = datetime(2025, 1, 1, tzinfo=UTC)


SIGNING_KEY = {"REPAST_SIGNING_KEY": "s3cret-key"}  # the environment of a process holding the key


def write_repo(path: Path, bootstrap: str, topic: str, online: str = "{type: sqlite, path: data/online.db}",
               project: str = "streamtest", udf: bool = False, aggregated: bool = False,
               signed: bool = False) -> Path:
    """The repo, applied; `signed`: registry.signing_key is set (from SIGNING_KEY) and apply holds it."""
    path.mkdir(parents=True, exist_ok=True)
    registry = "registry:\n  path: data/registry.db\n  signing_key: ${REPAST_SIGNING_KEY}" if signed \
        else "registry: data/registry.db"
    (path / "feature_store.yaml").write_text(f"project: {project}\n{registry}\nprovider: local\n"
                                             f"online_store: {online}\n")
    defs = DEFS.format(bootstrap=bootstrap, topic=topic, udf=", udf=add_one" if udf else "")
    if aggregated:
        defs += AGGREGATED.format(udf=", udf=add_one" if udf else "")
    (path / "defs.py").write_text((UDF if udf else "") + defs)
    run_cli(path, "apply", env=SIGNING_KEY if signed else None)
    return path


def run_cli(repo: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 120,
            check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([sys.executable, "-m", "repast", *args], cwd=repo, capture_output=True, text=True,
                            timeout=timeout, env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})})
    if check and result.returncode != 0:
        raise AssertionError(f"repast {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result


def events(n: int, drivers: int = 20, start: int = 0, base: datetime = T0) -> list[dict[str, Any]]:
    """n events from `base` on; each driver's times increase, with some out of order (late) and
    some equal."""
    out = []
    for i in range(start, start + n):
        shift = -600 if i % 17 == 0 else (i // 2)  # every 17th is ten minutes late
        when = base + timedelta(seconds=shift)
        out.append({"driver_id": i % drivers, "event_timestamp": when.isoformat(), "rate": i / 10, "trips": i})
    return out


def encode(rows: list[dict[str, Any]]) -> tuple[list[bytes], list[bytes]]:
    return [json.dumps(r).encode() for r in rows], [str(r["driver_id"]).encode() for r in rows]


def expected_online(rows: list[dict[str, Any]], trips_plus: int = 0) -> dict[int, tuple[float, int]]:
    """Per driver: the event with the latest time; among equal times the one produced last."""
    latest: dict[int, dict[str, Any]] = {}
    for r in rows:
        cur = latest.get(r["driver_id"])
        if cur is None or r["event_timestamp"] >= cur["event_timestamp"]:
            latest[r["driver_id"]] = r
    return {k: (r["rate"], r["trips"] + trips_plus) for k, r in latest.items()}


def online_values(repo: Path, drivers: int) -> dict[int, tuple[float, int]]:
    from repast import FeatureStore

    with FeatureStore(repo_path=str(repo)) as store:
        got = store.get_online_features(["driver_trips:rate", "driver_trips:trips"],
                                        [{"driver_id": d} for d in range(drivers)]).to_dict()
    return {d: (r, t) for d, r, t in zip(got["driver_id"], got["rate"], got["trips"], strict=True) if r is not None}


def offline_rows(repo: Path) -> list[tuple[int, int]]:
    """(driver_id, trips) of every row in the batch source, sorted."""
    path = repo / "data" / "trips"
    if not path.exists() or not any(p.suffix == ".parquet" and p.name[0] not in "._" for p in path.iterdir()):
        return []
    table = ds.dataset(str(path), format="parquet").to_table(columns=["driver_id", "trips"])
    return sorted(zip(table.column("driver_id").to_pylist(), table.column("trips").to_pylist(), strict=True))


def recent() -> datetime:
    """A base time whose events stay inside a one-day window while a test runs."""
    return datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)


def expected_sums(rows: list[dict[str, Any]], trips_plus: int = 0) -> dict[int, tuple[int, int]]:
    """Per driver: the sum and the count of trips over every event (all inside the window)."""
    out: dict[int, tuple[int, int]] = {}
    for r in rows:
        total, count = out.get(r["driver_id"], (0, 0))
        out[r["driver_id"]] = (total + r["trips"] + trips_plus, count + 1)
    return out


def online_sums(repo: Path, drivers: int) -> dict[int, tuple[int, int]]:
    from repast import FeatureStore

    with FeatureStore(repo_path=str(repo)) as store:
        got = store.get_online_features(["trip_sums:sum_trips", "trip_sums:count_trips"],
                                        [{"driver_id": d} for d in range(drivers)]).to_dict()
    return {d: (s, c) for d, s, c in zip(got["driver_id"], got["sum_trips"], got["count_trips"], strict=True)
            if c}
