"""The web UI's freshness shows a stream feature view's lag: the consumer records, with each batch,
each partition's high watermark and when it saw it, beside the view's positions (for a view with
aggregations: with its tile marks); the page and the API show high watermark - position and its age."""

from __future__ import annotations

import uuid
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from repast import FeatureStore
from repast.ui import create_ui_app
from tests.streaming.broker import Broker
from tests.streaming.repo import encode, events, recent, run_cli, write_repo

with warnings.catch_warnings():  # starlette asks for "httpx2", which is not released; httpx works
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

FAST = ["--metrics-port", "0", "--kafka-option", "session.timeout.ms=6000", "--batch-size", "100"]


def _freshness(repo: Path, view: str = "driver_trips") -> tuple[dict[str, Any], str]:
    with FeatureStore(repo) as store, TestClient(create_ui_app(store.backends)) as client:
        body = client.get("/api/v1/projects/streamtest/freshness").json()
        page = client.get("/projects/streamtest/freshness").text
    return next(v for v in body["views"] if v["view"] == view), page


def _partitions(view: dict[str, Any]) -> list[tuple[int, int, int]]:
    return [(p["partition"], p["position"], p["high_watermark"]) for p in view["stream_lag"]["partitions"]]


def test_freshness_shows_the_stream_lag_and_its_age(kafka_broker: Broker, tmp_path: Path) -> None:
    topic = f"trips-{uuid.uuid4().hex[:8]}"
    kafka_broker.create_topic(topic, partitions=1)
    repo = write_repo(tmp_path, kafka_broker.bootstrap, topic)
    assert _freshness(repo)[0]["stream_lag"] == {"messages": None, "as_of": None, "age_seconds": None,
                                                 "partitions": []}  # before any batch
    kafka_broker.produce(topic, *encode(events(300)))
    before = datetime.now(UTC)
    # Stopped after its first batch (of at most 100): the rest of the partition is its lag.
    killed = run_cli(repo, "stream", "--from", "earliest", *FAST, env={"REPAST_STREAM_FAILPOINTS": "after_offline=1"},
                     check=False)
    assert killed.returncode == -9, killed.stderr
    view, page = _freshness(repo)
    (partition,) = view["stream_lag"]["partitions"]
    assert partition["high_watermark"] == 300 and 0 < partition["position"] <= 100
    assert view["stream_lag"]["messages"] == partition["lag"] == 300 - partition["position"]
    assert datetime.fromisoformat(view["stream_lag"]["as_of"]) >= before.replace(microsecond=0)
    assert view["stream_lag"]["age_seconds"] >= 0
    assert f'<td class="stream-lag">{300 - partition["position"]:,} messages, ' in page

    run_cli(repo, "stream", "--until-caught-up", *FAST)
    view, page = _freshness(repo)
    assert view["stream_lag"]["messages"] == 0 and view["stream_lag"]["partitions"][0]["position"] == 300
    assert '<td class="stream-lag">0 messages, ' in page


def _row(page: str, view: str) -> str:
    return page.split(f">{view}</a>", 1)[1].split("</tr>", 1)[0]


def test_freshness_shows_the_stream_lag_of_a_view_with_aggregations(kafka_broker: Broker, tmp_path: Path) -> None:
    """Its positions are tile marks: the lag is recorded with them, for every partition of the topic."""
    topic = f"trips-{uuid.uuid4().hex[:8]}"
    kafka_broker.create_topic(topic, partitions=3)
    repo = write_repo(tmp_path, kafka_broker.bootstrap, topic, aggregated=True)
    assert _freshness(repo, "trip_sums")[0]["stream_lag"] == {"messages": None, "as_of": None,
                                                              "age_seconds": None, "partitions": []}
    kafka_broker.produce(topic, *encode(events(300, base=recent())))
    before = datetime.now(UTC)
    killed = run_cli(repo, "stream", "--from", "earliest", *FAST, env={"REPAST_STREAM_FAILPOINTS": "after_offline=1"},
                     check=False)
    assert killed.returncode == -9, killed.stderr
    view, page = _freshness(repo, "trip_sums")
    recorded = _partitions(view)
    assert recorded and recorded == _partitions(_freshness(repo)[0])  # the same batch as the plain view's
    assert 0 < sum(position for _, position, _ in recorded) <= 100
    assert view["stream_lag"]["messages"] == sum(high - position for _, position, high in recorded)
    assert datetime.fromisoformat(view["stream_lag"]["as_of"]) >= before.replace(microsecond=0)
    assert f'<td class="stream-lag">{view["stream_lag"]["messages"]:,} message' in _row(page, "trip_sums")

    run_cli(repo, "stream", "--until-caught-up", *FAST)
    view, page = _freshness(repo, "trip_sums")
    recorded = _partitions(view)
    assert [p for p, _, _ in recorded] == [0, 1, 2]  # every partition, the last one included
    assert view["stream_lag"]["messages"] == 0 and sum(position for _, position, _ in recorded) == 300
    assert recorded == [(p, high, high) for p, _, high in recorded]
    assert '<td class="stream-lag">0 messages, ' in _row(page, "trip_sums")
