"""Exactly once in effect: `repast stream` SIGKILLed at random points (while parsing, between the
online and the offline write, after both writes before the Kafka commit, and at random times) over
many trials, then run to the end; the online values, the aggregation tiles (sums and counts) and
the offline rows equal the reference computed from the produced events: nothing lost, nothing
twice."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.streaming.broker import Broker
from tests.streaming.repo import (
    ROOT,
    encode,
    events,
    expected_online,
    expected_sums,
    offline_rows,
    online_sums,
    online_values,
    recent,
    run_cli,
    write_repo,
)

TRIALS = 8
# Killed before parsing, after one view's online write (the next view not yet written), after every
# online write (offline not yet written), after both (before the Kafka commit).
FAILPOINTS = "parse=0.03,after_view=0.03,after_online=0.03,after_offline=0.03"


def _run_until_killed(repo: Path, trial: int, rng: random.Random) -> int:
    """One consumer run with failpoints on, SIGKILLed from outside after a random delay if no
    failpoint killed it first; returns its exit status (negative: the signal)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "repast", "stream", "--from", "earliest", "--batch-size", "40", "--metrics-port", "0",
         # A new group each trial: no wait for the killed member's session to expire, and the
         # stores' positions, not Kafka's committed offsets, say where to resume.
         "--group-id", f"kill-{trial}-{uuid.uuid4().hex[:6]}", "--kafka-option", "session.timeout.ms=6000",
         "--until-caught-up"],
        cwd=repo, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(ROOT), "REPAST_STREAM_FAILPOINTS": FAILPOINTS})
    try:
        process.wait(timeout=rng.uniform(3.0, 10.0))  # start-up and joining the group take ~4 s
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGKILL)
        process.wait()
    return process.returncode


def _kill_trials(broker: Broker, repo: Path, topic: str, seed: int) -> None:
    rng = random.Random(seed)
    base = recent()  # inside the aggregations' one-day window
    produced: list[dict[str, Any]] = []
    statuses = []
    for trial in range(TRIALS):
        batch = events(400, start=len(produced), base=base)
        broker.produce(topic, *encode(batch))
        produced += batch
        statuses.append(_run_until_killed(repo, trial, rng))
    # --from only matters if no trial got as far as a first write (a loaded machine): positions win.
    run_cli(repo, "stream", "--from", "earliest", "--until-caught-up", "--metrics-port", "0",
            "--kafka-option", "session.timeout.ms=6000",
            "--group-id", f"final-{uuid.uuid4().hex[:6]}", timeout=300)
    assert any(s == -signal.SIGKILL for s in statuses), f"no trial was killed: {statuses}"
    assert online_values(repo, 20) == expected_online(produced, trips_plus=1)
    assert online_sums(repo, 20) == expected_sums(produced, trips_plus=1)
    assert offline_rows(repo) == sorted((r["driver_id"], r["trips"] + 1) for r in produced)


@pytest.mark.slow
def test_sigkill_at_any_point_loses_and_duplicates_nothing_on_sqlite(kafka_broker: Broker, tmp_path: Path) -> None:
    topic = f"kill-{uuid.uuid4().hex[:8]}"
    kafka_broker.create_topic(topic, partitions=3)
    repo = write_repo(tmp_path, kafka_broker.bootstrap, topic, udf=True, aggregated=True)
    _kill_trials(kafka_broker, repo, topic, seed=24)


@pytest.mark.slow
def test_sigkill_at_any_point_loses_and_duplicates_nothing_on_redis(kafka_broker: Broker, tmp_path: Path,
                                                                    redis_url: str) -> None:
    topic = f"kill-{uuid.uuid4().hex[:8]}"
    kafka_broker.create_topic(topic, partitions=3)
    project = f"stream24_{uuid.uuid4().hex[:8]}"
    repo = write_repo(tmp_path, kafka_broker.bootstrap, topic, udf=True, aggregated=True, project=project,
                      online=f"{{type: redis, connection_string: \"{redis_url}\"}}")
    try:
        _kill_trials(kafka_broker, repo, topic, seed=2424)
    finally:
        run_cli(repo, "teardown", check=False)


@pytest.mark.slow
def test_sigkill_at_any_point_loses_and_duplicates_nothing_on_postgres(kafka_broker: Broker, tmp_path: Path,
                                                                       postgres_url: str) -> None:
    topic = f"kill-{uuid.uuid4().hex[:8]}"
    kafka_broker.create_topic(topic, partitions=3)
    schema = f"stream24_{uuid.uuid4().hex[:8]}"
    repo = write_repo(tmp_path, kafka_broker.bootstrap, topic, udf=True, aggregated=True,
                      online=f"{{type: postgres, url: \"{postgres_url}\", db_schema: {schema}}}")
    try:
        _kill_trials(kafka_broker, repo, topic, seed=242424)
    finally:
        from tests.contract.test_online_store import drop_postgres_schema

        drop_postgres_schema(postgres_url, schema)
