"""`repast stream` against a real broker: events reach the online store (latest per key) and the
batch source (every event once), bad messages go to the dead-letter file, the first start needs
--from."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from tests.streaming.broker import Broker
from tests.streaming.repo import encode, events, expected_online, offline_rows, online_values, run_cli, write_repo

FAST = ["--metrics-port", "0", "--kafka-option", "session.timeout.ms=6000"]


def topic_name() -> str:
    return f"trips-{uuid.uuid4().hex[:8]}"


def test_events_reach_the_online_and_the_offline_store(kafka_broker: Broker, tmp_path: Path) -> None:
    topic = topic_name()
    kafka_broker.create_topic(topic, partitions=2)
    repo = write_repo(tmp_path, kafka_broker.bootstrap, topic)
    rows = events(500)
    kafka_broker.produce(topic, *encode(rows))
    run_cli(repo, "stream", "--from", "earliest", "--until-caught-up", *FAST)
    assert online_values(repo, 20) == expected_online(rows)
    assert offline_rows(repo) == sorted((r["driver_id"], r["trips"]) for r in rows)


def test_the_first_start_without_from_is_refused_with_one_error_line(kafka_broker: Broker, tmp_path: Path) -> None:
    topic = topic_name()
    kafka_broker.create_topic(topic)
    repo = write_repo(tmp_path, kafka_broker.bootstrap, topic)
    result = run_cli(repo, "stream", "--until-caught-up", *FAST, check=False)
    assert result.returncode == 1
    assert "Error: first start" in result.stderr and "--from earliest" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_restart_continues_where_the_stores_stand(kafka_broker: Broker, tmp_path: Path) -> None:
    topic = topic_name()
    kafka_broker.create_topic(topic)
    repo = write_repo(tmp_path, kafka_broker.bootstrap, topic, udf=True)
    first, second = events(300), events(300, start=300)
    kafka_broker.produce(topic, *encode(first))
    run_cli(repo, "stream", "--from", "earliest", "--until-caught-up", *FAST)
    kafka_broker.produce(topic, *encode(second))
    run_cli(repo, "stream", "--until-caught-up", *FAST)  # no --from: the stored positions
    assert online_values(repo, 20) == expected_online(first + second, trips_plus=1)
    assert offline_rows(repo) == sorted((r["driver_id"], r["trips"] + 1) for r in first + second)


def test_bad_messages_go_to_the_dead_letter_file_and_the_rest_is_written(kafka_broker: Broker,
                                                                          tmp_path: Path) -> None:
    topic = topic_name()
    kafka_broker.create_topic(topic)
    repo = write_repo(tmp_path, kafka_broker.bootstrap, topic)
    good = events(100)
    values, keys = encode(good)
    bad = [b"not json", b'{"driver_id": "x", "event_timestamp": "2025-01-01T00:00:00", "rate": 1, "trips": 1}',
           b'{"event_timestamp": "2025-01-01T00:00:00", "rate": 1, "trips": 1}',
           b'{"driver_id": 1, "rate": 1, "trips": 1}', b'{"driver_id": 1, "event_timestamp": "2025-01-01T00:00:00", '
           b'"rate": "fast", "trips": 1}']
    kafka_broker.produce(topic, values[:50] + bad + values[50:], keys[:50] + [b"1"] * len(bad) + keys[50:])
    dead = tmp_path / "dead.jsonl"
    run_cli(repo, "stream", "--from", "earliest", "--until-caught-up", "--dead-letters", str(dead), *FAST)
    assert online_values(repo, 20) == expected_online(good)
    assert offline_rows(repo) == sorted((r["driver_id"], r["trips"]) for r in good)
    letters = [json.loads(line) for line in dead.read_text().splitlines()]
    assert sorted(letter["value"].encode() for letter in letters) == sorted(bad)
    reasons = {letter["value"]: letter["reason"] for letter in letters}
    assert reasons["not json"].startswith("cannot be decoded as json")
    assert "missing driver_id" in reasons[bad[2].decode()]
    assert "missing event_timestamp" in reasons[bad[3].decode()]
    assert all({"topic", "partition", "offset"} <= set(letter) for letter in letters)


def test_a_batch_of_only_bad_messages_moves_the_position_and_is_not_refused_twice(kafka_broker: Broker,
                                                                                   tmp_path: Path) -> None:
    topic = topic_name()
    kafka_broker.create_topic(topic, partitions=1)
    repo = write_repo(tmp_path, kafka_broker.bootstrap, topic)
    dead = tmp_path / "dead.jsonl"
    kafka_broker.produce(topic, [b"{", b"[]", b"{}"])
    run_cli(repo, "stream", "--from", "earliest", "--until-caught-up", "--dead-letters", str(dead), *FAST)
    good = events(10)
    kafka_broker.produce(topic, *encode(good))
    run_cli(repo, "stream", "--until-caught-up", "--dead-letters", str(dead), *FAST)
    assert len(dead.read_text().splitlines()) == 3
    assert online_values(repo, 20) == expected_online(good)


def test_the_first_start_backfills_the_online_store_from_the_batch_source(kafka_broker: Broker,
                                                                          tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from tests.streaming.repo import T0

    topic = topic_name()
    kafka_broker.create_topic(topic)
    history = tmp_path / "data" / "trips"
    history.mkdir(parents=True)
    pq.write_table(pa.table({"driver_id": pa.array(range(20), pa.int64()),
                             "event_timestamp": pa.array([T0.replace(year=2024)] * 20, pa.timestamp("us", tz="UTC")),
                             "rate": [-1.0] * 20, "trips": pa.array([-1] * 20, pa.int64())}),
                   history / "history.parquet")
    repo = write_repo(tmp_path, kafka_broker.bootstrap, topic)
    rows = events(50, drivers=10)
    kafka_broker.produce(topic, *encode(rows))
    run_cli(repo, "stream", "--from", "earliest", "--until-caught-up", *FAST)
    expected = {**{d: (-1.0, -1) for d in range(20)}, **expected_online(rows)}
    assert online_values(repo, 20) == expected
    assert offline_rows(repo) == sorted([(d, -1) for d in range(20)] + [(r["driver_id"], r["trips"]) for r in rows])


def test_aggregated_views_are_fed_into_tiles_once(kafka_broker: Broker, tmp_path: Path) -> None:
    from tests.streaming.repo import expected_sums, online_sums, recent

    topic = topic_name()
    kafka_broker.create_topic(topic)
    repo = write_repo(tmp_path, kafka_broker.bootstrap, topic, udf=True, aggregated=True)
    first, second = events(200, base=recent()), events(200, start=200, base=recent())
    kafka_broker.produce(topic, *encode(first))
    run_cli(repo, "stream", "--from", "earliest", "--until-caught-up", *FAST)
    kafka_broker.produce(topic, *encode(second))
    run_cli(repo, "stream", "--until-caught-up", *FAST)
    run_cli(repo, "stream", "--until-caught-up", *FAST)  # nothing new: nothing added twice
    assert online_sums(repo, 20) == expected_sums(first + second, trips_plus=1)
    assert online_values(repo, 20) == expected_online(first + second, trips_plus=1)
