"""`repast stream --dead-letter-topic`: refused messages are produced to a topic of the real broker
(key and value as received, why and where from in `repast.*` headers), before the batch's writes
move any position, so a kill right after them loses none."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from tests.streaming.broker import Broker
from tests.streaming.repo import encode, events, expected_online, online_values, run_cli, write_repo

FAST = ["--metrics-port", "0", "--kafka-option", "session.timeout.ms=6000"]
BAD = [b"not json", b"\xff\xfe binary", b'{"event_timestamp": "2025-01-01T00:00:00", "rate": 1, "trips": 1}']


def _topics(broker: Broker, partitions: int = 2) -> tuple[str, str]:
    suffix = uuid.uuid4().hex[:8]
    source, dead = f"trips-{suffix}", f"trips-dead-{suffix}"
    broker.create_topic(source, partitions=partitions)
    broker.create_topic(dead, partitions=1)
    return source, dead


def _produce_with_bad(broker: Broker, topic: str, good: list[dict[str, Any]]) -> None:
    values, keys = encode(good)
    broker.produce(topic, values[:20] + BAD + values[20:], keys[:20] + [b"bad-%d" % i for i in range(3)] + keys[20:])


def _read_all(broker: Broker, topic: str, expected: int) -> list[Any]:
    from confluent_kafka import Consumer

    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": f"check-{uuid.uuid4().hex[:8]}",
                         "auto.offset.reset": "earliest", "session.timeout.ms": 6000})
    consumer.subscribe([topic])
    got: list[Any] = []
    try:
        for _ in range(60):  # the group joins within seconds; stop once `expected` came or after ~60 s
            got += [m for m in consumer.consume(100, 1.0) if m.error() is None]
            if len(got) >= expected:
                break
    finally:
        consumer.close()
    return got


def test_refused_messages_go_to_the_dead_letter_topic_with_reason_and_origin(kafka_broker: Broker,
                                                                             tmp_path: Path) -> None:
    source, dead = _topics(kafka_broker)
    repo = write_repo(tmp_path, kafka_broker.bootstrap, source)
    good = events(60)
    _produce_with_bad(kafka_broker, source, good)
    run_cli(repo, "stream", "--from", "earliest", "--until-caught-up", "--dead-letter-topic", dead, *FAST)
    assert online_values(repo, 20) == expected_online(good)
    letters = _read_all(kafka_broker, dead, len(BAD))
    assert sorted(m.value() for m in letters) == sorted(BAD)
    by_value = {m.value(): m for m in letters}
    assert by_value[b"not json"].key() == b"bad-0"
    headers = {m.value(): {k: v.decode() for k, v in m.headers()} for m in letters}
    assert headers[b"not json"]["repast.reason"].startswith("cannot be decoded as json")
    assert "missing driver_id" in headers[BAD[2]]["repast.reason"]
    for h in headers.values():
        assert h["repast.topic"] == source and int(h["repast.partition"]) in (0, 1) and int(h["repast.offset"]) >= 0
    assert not (repo / "data" / "dead_letters").exists()  # a topic replaces the default file


def test_dead_letters_are_on_the_topic_before_the_batch_is_written(kafka_broker: Broker, tmp_path: Path) -> None:
    """Killed right after the online write (its position moved past the refused messages): a
    restart does not read them again, so they must already be on the topic. (One partition: the
    first batch holds the refused messages.)"""
    source, dead = _topics(kafka_broker, partitions=1)
    repo = write_repo(tmp_path, kafka_broker.bootstrap, source)
    _produce_with_bad(kafka_broker, source, events(60))
    killed = run_cli(repo, "stream", "--from", "earliest", "--until-caught-up", "--dead-letter-topic", dead, *FAST,
                     env={"REPAST_STREAM_FAILPOINTS": "after_online=1"}, check=False)
    assert killed.returncode == -9, killed.stderr
    assert sorted(m.value() for m in _read_all(kafka_broker, dead, len(BAD))) == sorted(BAD)


def test_a_missing_dead_letter_topic_is_one_error_line(kafka_broker: Broker, tmp_path: Path) -> None:
    source, _ = _topics(kafka_broker)
    repo = write_repo(tmp_path, kafka_broker.bootstrap, source)
    result = run_cli(repo, "stream", "--from", "earliest", "--until-caught-up", "--dead-letter-topic", "nowhere",
                     *FAST, check=False)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "Error:" in result.stderr and "'nowhere'" in result.stderr
