"""The online store goes away and comes back: the server answers 503 meanwhile and recovers alone.

The test runs its own redis-server on a free port (persisting to its directory, so a restart
keeps the materialized rows), stops it mid-test and starts it again on the same port.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from repast.cli.scaffold import init_repo
from repast.store import FeatureStore
from tests.e2e.test_server_harness import RedisProcess, ServerProcess, run_repast

pytestmark = [pytest.mark.slow, pytest.mark.redis]

ONLINE = {"features": ["driver_hourly_stats:conv_rate"], "entities": {"driver_id": [1001, 1002]}}


@pytest.fixture
def redis_repo(tmp_path: Path) -> Iterator[tuple[Path, RedisProcess]]:
    redis = RedisProcess(tmp_path / "redis").start()
    try:
        repo = init_repo(tmp_path / "repo", "redis_served")
        config = repo / "feature_store.yaml"
        config.write_text(config.read_text().replace(
            "  type: sqlite          # embedded; also: redis, postgres\n  path: data/online.db",
            f"  type: redis\n  connection_string: \"{redis.address}\""))
        assert run_repast(repo, "apply").returncode == 0
        now = datetime.now(UTC)
        FeatureStore(repo).materialize(now - timedelta(days=8), now, ["driver_hourly_stats"])
        yield repo, redis
    finally:
        redis.stop()


def _wait_for(http: httpx.Client, status: int, timeout: float = 30) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while True:
        response = http.post("/get-online-features", json=ONLINE)
        if response.status_code == status or time.monotonic() > deadline:
            return response
        time.sleep(0.2)


def test_store_outage_is_503_and_the_server_recovers_by_itself(redis_repo: tuple[Path, RedisProcess]) -> None:
    repo, redis = redis_repo
    with ServerProcess(repo, "--no-access-log") as server, httpx.Client(base_url=server.url, timeout=30) as http:
        ok = http.post("/get-online-features", json=ONLINE)
        assert ok.status_code == 200, ok.text
        assert ok.json()["results"][1]["statuses"] == ["PRESENT", "PRESENT"]

        redis.stop()
        down = _wait_for(http, 503)
        assert down.status_code == 503, down.text
        assert down.json()["error"] == "store_unavailable"
        assert http.get("/ready").status_code == 503
        assert http.get("/health").status_code == 200
        now = datetime.now(UTC).isoformat()
        push = http.post("/push", json={"push_source_name": "driver_stats_push_source", "df": {
            "driver_id": [1001], "event_timestamp": [now], "created": [now], "conv_rate": [0.5],
            "acc_rate": [0.5], "avg_daily_trips": [5]}})
        assert push.status_code == 503, push.text

        redis.start()
        back = _wait_for(http, 200)
        assert back.status_code == 200, back.text
        assert back.json() == ok.json()
        assert http.get("/ready").status_code == 200
        metrics = http.get("/metrics").text
        assert 'repast_http_requests_total{endpoint="/get-online-features",status="503"}' in metrics
