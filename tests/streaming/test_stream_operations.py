"""Running `repast stream` in production: /metrics and /ready on its port, SIGTERM finishes the batch
and leaves the group, and a broker outage is waited out with one log line, not a traceback storm."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path

from tests.object_storage import ObjectServer
from tests.streaming.broker import Broker, free_port, persistent_broker
from tests.streaming.repo import ROOT, encode, events, expected_online, offline_rows, online_values, write_repo


def _start(repo: Path, port: int, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "repast", "stream", "--from", "earliest", "--metrics-port",
                             str(port), "--kafka-option", "session.timeout.ms=6000", "--ready-lag", "0", *extra],
                            cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})


def _get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError:
        return 0, ""


def _wait_for(condition: Callable[[], bool], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError("the condition did not hold in time")


def test_metrics_ready_and_a_graceful_sigterm(kafka_broker: Broker, tmp_path: Path) -> None:
    topic = f"ops-{uuid.uuid4().hex[:8]}"
    kafka_broker.create_topic(topic)
    repo = write_repo(tmp_path, kafka_broker.bootstrap, topic)
    rows = events(300)
    kafka_broker.produce(topic, *encode(rows))
    port = free_port()
    process = _start(repo, port)
    try:
        _wait_for(lambda: _get(port, "/ready")[0] == 200)
        status, text = _get(port, "/metrics")
        assert status == 200
        assert f'repast_stream_events_total{{topic="{topic}"}} 300.0' in text
        assert "repast_stream_event_to_online_seconds_count" in text
        # Every 17th event is ten minutes older than its neighbours; the watermark delay is five.
        late = float(text.split(f'repast_stream_late_events_total{{topic="{topic}"}} ')[1].split()[0])
        assert 0 < late <= len([i for i in range(300) if i % 17 == 0])
        assert f'repast_stream_consumer_lag{{partition="0",topic="{topic}"}} 0.0' in text
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 0, err
    assert "left group" in err and "Traceback" not in err
    assert online_values(repo, 20) == expected_online(rows)


def test_a_broker_outage_is_waited_out_with_one_log_line(kafka_broker: Broker, tmp_path: Path) -> None:
    # A broker of its own: stopping the session's would stop the other tests'.
    own = Broker(f"127.0.0.1:{free_port()}", None, kafka_broker.binary, 0)  # type: ignore[arg-type]
    own.port = int(own.bootstrap.rsplit(":", 1)[1])
    own.start()
    topic = f"outage-{uuid.uuid4().hex[:8]}"
    own.create_topic(topic)
    repo = write_repo(tmp_path, own.bootstrap, topic)
    first = events(100)
    own.produce(topic, *encode(first))
    port = free_port()
    process = _start(repo, port)
    try:
        _wait_for(lambda: len(offline_rows(repo)) == 100)
        own.stop()
        time.sleep(8)  # the consumer retries all this while
        own.start()  # in-memory storage: the topic starts again, empty
        own.create_topic(topic)
        _wait_for(lambda: _get(port, "/metrics")[0] == 200)
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=60)
    finally:
        process.kill()
        own.stop()
    assert err.count("is unreachable") == 1, err
    assert "Traceback" not in err
    assert len(err.splitlines()) < 20, err


def test_after_broker_restarts_the_consumer_resumes_without_loss_or_duplicate(
        kafka_broker: Broker, s3_server: ObjectServer, tmp_path: Path) -> None:
    """Two outages of a broker that keeps its topics (S3 storage): events produced before, between and
    after them reach both stores exactly once, and each outage is one 'unreachable' and one 'back' line."""
    own = persistent_broker(kafka_broker.binary, s3_server.endpoint, s3_server.bucket)
    own.start()
    topic = f"restart-{uuid.uuid4().hex[:8]}"
    own.create_topic(topic)
    repo = write_repo(tmp_path, own.bootstrap, topic)
    batches = [events(100), events(100, start=100), events(100, start=200)]
    own.produce(topic, *encode(batches[0]))
    process = _start(repo, free_port())
    try:
        _wait_for(lambda: len(offline_rows(repo)) == 100)
        for i in (1, 2):
            own.stop()
            time.sleep(8)  # the consumer retries all this while
            own.start()  # the same storage: the topic, its messages and the group's offsets are there
            own.produce(topic, *encode(batches[i]))
            _wait_for(lambda n=100 * (i + 1): len(offline_rows(repo)) >= n, 90)  # type: ignore[misc]
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=60)
    finally:
        process.kill()
        own.stop()
    every = [r for b in batches for r in b]
    assert offline_rows(repo) == sorted((r["driver_id"], r["trips"]) for r in every)
    assert online_values(repo, 20) == expected_online(every)
    assert err.count("is unreachable") == 2 and err.count("is back after") == 2, err
    assert "Traceback" not in err
    assert len(err.splitlines()) < 30, err


def _redis(port: int, data: Path) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data),
                                "--appendonly", "yes", "--appendfsync", "always", "--save", ""],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_for(lambda: _listening(port), 10)
    return process


def _listening(port: int) -> bool:
    import socket

    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


def test_an_online_store_outage_is_waited_out_and_the_batch_written_once_it_is_back(
        kafka_broker: Broker, tmp_path: Path) -> None:
    import shutil

    import pytest

    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed: this test stops and restarts a Redis of its own")
    port, data = free_port(), tmp_path / "redis"
    data.mkdir()
    redis = _redis(port, data)
    topic = f"store-outage-{uuid.uuid4().hex[:8]}"
    kafka_broker.create_topic(topic)
    repo = write_repo(tmp_path / "repo", kafka_broker.bootstrap, topic,
                      online=f"{{type: redis, connection_string: \"redis://127.0.0.1:{port}/0\"}}")
    first, second = events(100), events(100, start=100)
    kafka_broker.produce(topic, *encode(first))
    process = _start(repo, free_port())
    try:
        _wait_for(lambda: len(offline_rows(repo)) == 100)
        redis.terminate()
        redis.wait(10)
        kafka_broker.produce(topic, *encode(second))
        time.sleep(3)  # the consumer meets the outage and waits
        redis = _redis(port, data)
        _wait_for(lambda: len(offline_rows(repo)) == 200)
        _wait_for(lambda: online_values(repo, 20) == expected_online(first + second))
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=60)
    finally:
        process.kill()
        redis.kill()
    assert process.returncode == 0, err
    assert err.count("a store is unavailable") == 1 and err.count("the stores answer again") == 1, err
    assert "Traceback" not in err
    assert sorted(offline_rows(repo)) == sorted((r["driver_id"], r["trips"]) for r in first + second)
