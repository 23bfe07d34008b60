"""The first start of an aggregated stream view: its tiles are backfilled from the batch source for
events before the cut-over T and fed from the stream for events at or after T, so the events both
hold are counted once, none is missing, and a SIGKILL between the backfill and the first stream
batch changes nothing (against a real broker)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from repast.jobs.aggregated_read import micros
from tests.streaming.broker import Broker
from tests.streaming.repo import encode, expected_sums, offline_rows, online_sums, recent, run_cli, write_repo

FAST = ["--metrics-port", "0", "--kafka-option", "session.timeout.ms=6000"]
DRIVERS = 10


def _event(i: int, when: datetime) -> dict[str, Any]:
    return {"driver_id": i % DRIVERS, "event_timestamp": when.isoformat(), "rate": i / 10, "trips": i}


def _write_history(repo: Path, rows: list[dict[str, Any]]) -> None:
    """The user's batch data: one Parquet file in the batch source's directory."""
    history = repo / "data" / "trips"
    history.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({
        "driver_id": pa.array([r["driver_id"] for r in rows], pa.int64()),
        "event_timestamp": pa.array([datetime.fromisoformat(r["event_timestamp"]) for r in rows],
                                    pa.timestamp("us", tz="UTC")),
        "rate": pa.array([r["rate"] for r in rows], pa.float64()),
        "trips": pa.array([r["trips"] for r in rows], pa.int64())}), history / "history.parquet")


def _stored_cutover(repo: Path, topic: str) -> int | None:
    from repast import FeatureStore
    from repast.streaming.cutover import stored_cutover

    with FeatureStore(repo_path=str(repo)) as store:
        return stored_cutover(store.online_store, store.project, store.get_feature_view("trip_sums"), topic)


@pytest.fixture(params=["sqlite", "redis", "postgres"])
def online_store(request: pytest.FixtureRequest) -> Iterator[tuple[str, str]]:
    """(the online store's YAML, the project) on each store that keeps tiles; its data dropped after."""
    project = f"cutover24_{uuid.uuid4().hex[:8]}"
    if request.param == "sqlite":
        yield "{type: sqlite, path: data/online.db}", project
    elif request.param == "redis":
        url = request.getfixturevalue("redis_url")
        yield f"{{type: redis, connection_string: \"{url}\"}}", project
    else:
        from tests.contract.test_online_store import drop_postgres_schema

        url = request.getfixturevalue("postgres_url")
        yield f"{{type: postgres, url: \"{url}\", db_schema: {project}}}", project
        drop_postgres_schema(url, project)


def test_first_start_counts_batch_events_before_the_cutover_and_stream_events_from_it_once(
        kafka_broker: Broker, tmp_path: Path, online_store: tuple[str, str]) -> None:
    topic = f"cutover-{uuid.uuid4().hex[:8]}"
    kafka_broker.create_topic(topic, partitions=2)
    cutover = recent() + timedelta(minutes=31, seconds=17)  # inside a tile: batch and stream events share it
    batch = [_event(i, cutover - timedelta(minutes=90) + timedelta(seconds=90 * i)) for i in range(60)]
    assert all(datetime.fromisoformat(r["event_timestamp"]) < cutover for r in batch)
    _write_history(tmp_path, batch)
    online, project = online_store
    repo = write_repo(tmp_path, kafka_broker.bootstrap, topic, online=online, project=project, aggregated=True)
    try:
        _cutover_run(kafka_broker, repo, topic, cutover, batch)
    finally:
        run_cli(repo, "teardown", check=False)


def _cutover_run(kafka_broker: Broker, repo: Path, topic: str, cutover: datetime,
                 batch: list[dict[str, Any]]) -> None:
    overlap = batch[-20:]  # the stream also holds the batch data's last events: not counted twice
    before_only = [_event(1000 + i, cutover - timedelta(seconds=1 + i)) for i in range(5)]  # before T: batch's
    after = [_event(2000 + i, cutover + timedelta(seconds=i)) for i in range(100)]  # the first one exactly at T
    kafka_broker.produce(topic, *encode(overlap + before_only + after))

    # Killed between the backfill and the first stream batch: the tiles hold the batch data, T is kept.
    killed = run_cli(repo, "stream", "--from", cutover.isoformat(), "--until-caught-up", *FAST, check=False,
                     env={"REPAST_STREAM_FAILPOINTS": "after_backfill=1"})
    assert killed.returncode == -9, killed.stderr
    assert online_sums(repo, DRIVERS) == expected_sums(batch)
    assert _stored_cutover(repo, topic) == micros(cutover)
    assert offline_rows(repo) == sorted((r["driver_id"], r["trips"]) for r in batch)

    run_cli(repo, "stream", "--from", cutover.isoformat(), "--until-caught-up", *FAST)  # backfills again, then reads
    run_cli(repo, "stream", "--until-caught-up", *FAST)  # the stored positions: nothing new, nothing twice
    assert online_sums(repo, DRIVERS) == expected_sums(batch + after)
    # Offline, every stream event is appended as it came (training sees the stream as it is).
    assert offline_rows(repo) == sorted((r["driver_id"], r["trips"]) for r in batch + overlap + before_only + after)


def test_a_view_added_later_takes_the_consumers_own_parts_and_only_newer_stream_events(
        kafka_broker: Broker, tmp_path: Path) -> None:
    """The stream already fed a plain view (its events are parts of the batch source); an aggregated
    view added then reads the partitions from their beginning: the events the parts hold count once."""
    topic = f"cutover-{uuid.uuid4().hex[:8]}"
    kafka_broker.create_topic(topic, partitions=2)
    repo = write_repo(tmp_path, kafka_broker.bootstrap, topic)
    base = recent()
    first = [_event(i, base + timedelta(seconds=i)) for i in range(200)]
    kafka_broker.produce(topic, *encode(first))
    run_cli(repo, "stream", "--from", "earliest", "--until-caught-up", *FAST)
    write_repo(tmp_path, kafka_broker.bootstrap, topic, aggregated=True)  # the aggregated view is added
    second = [_event(200 + i, base + timedelta(hours=1, seconds=i)) for i in range(100)]
    kafka_broker.produce(topic, *encode(second))
    result = run_cli(repo, "stream", "--until-caught-up", *FAST)
    assert "Backfilled the tiles of trip_sums" in result.stdout
    run_cli(repo, "stream", "--until-caught-up", *FAST)
    assert online_sums(repo, DRIVERS) == expected_sums(first + second)
    assert offline_rows(repo) == sorted((r["driver_id"], r["trips"]) for r in first + second)


def test_without_batch_data_every_stream_event_goes_to_the_tiles(kafka_broker: Broker, tmp_path: Path) -> None:
    topic = f"cutover-{uuid.uuid4().hex[:8]}"
    kafka_broker.create_topic(topic, partitions=1)
    repo = write_repo(tmp_path, kafka_broker.bootstrap, topic, aggregated=True)
    rows = [_event(i, recent() - timedelta(minutes=i)) for i in range(50)]  # all before the start time
    kafka_broker.produce(topic, *encode(rows))
    result = run_cli(repo, "stream", "--from", "earliest", "--until-caught-up", *FAST)
    assert "Backfilled the tiles" not in result.stdout
    assert online_sums(repo, DRIVERS) == expected_sums(rows)
