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

from tests.streaming.broker import Broker, free_port
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
