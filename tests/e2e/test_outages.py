"""Backends stopped or frozen under a running server: fast 503s with a JSON body, one log line per
kind of failure instead of a traceback per request, and a registry outage served from the cache.

Every backend here is the test's own process on a free port (stopped with a signal, frozen with
SIGSTOP); the shared servers are never touched. Nothing asserts a duration: "answered at all"
within a generous client timeout is the behaviour (a frozen backend used to hold requests).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from repast.cli.scaffold import init_repo
from repast.errors import StoreUnavailable
from repast.store import FeatureStore
from tests.e2e.backend_processes import PostgresProcess
from tests.e2e.test_server_harness import RedisProcess, ServerProcess, run_repast

pytestmark = pytest.mark.slow

ONLINE = {"features": ["driver_hourly_stats:conv_rate"], "entities": {"driver_id": [1001, 1002]}}
SQLITE_ONLINE = "  type: sqlite          # embedded; also: redis, postgres\n  path: data/online.db"
CLIENT_TIMEOUT = 10  # "does not hang": a frozen backend held requests for 14 s and more before


def _repo(tmp_path: Path, online: str | None = None, registry: str | None = None) -> Path:
    repo = init_repo(tmp_path / "repo", "outage")
    config = repo / "feature_store.yaml"
    text = config.read_text()
    if online is not None:
        text = text.replace(SQLITE_ONLINE, online)
    if registry is not None:
        text = text.replace("registry: data/registry.db", registry)
    config.write_text(text)
    result = run_repast(repo, "apply")
    assert result.returncode == 0, result.stderr
    now = datetime.now(UTC)
    FeatureStore(repo).materialize(now - timedelta(days=8), now, ["driver_hourly_stats"])
    return repo


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisProcess]:
    process = RedisProcess(tmp_path / "redis").start()
    try:
        yield process
    finally:
        if process.proc is not None:
            os.kill(process.proc.pid, signal.SIGCONT)
        process.stop()


@pytest.fixture
def postgres() -> Iterator[PostgresProcess]:
    process = PostgresProcess().start()
    try:
        yield process
    finally:
        process.close()


def _redis_repo(tmp_path: Path, redis: RedisProcess) -> Path:
    return _repo(tmp_path, online=f"  type: redis\n  connection_string: \"{redis.address}\"")


def _answers(http: httpx.Client, n: int) -> list[httpx.Response]:
    return [http.post("/get-online-features", json=ONLINE) for _ in range(n)]


def test_a_stopped_redis_answers_503_json_and_logs_no_traceback(tmp_path: Path, redis: RedisProcess) -> None:
    repo = _redis_repo(tmp_path, redis)
    with ServerProcess(repo, "--no-access-log") as server, \
            httpx.Client(base_url=server.url, timeout=CLIENT_TIMEOUT) as http:
        assert http.post("/get-online-features", json=ONLINE).status_code == 200
        redis.stop()
        answers = _answers(http, 30)
        assert {r.status_code for r in answers} == {503}
        assert {r.json()["error"] for r in answers} == {"store_unavailable"}
        log = server.output()
    assert "Traceback" not in log
    assert log.count("cannot be reached") <= 2  # one line per kind per interval, not one per request


def test_a_frozen_redis_answers_503_and_recovers_when_it_resumes(tmp_path: Path, redis: RedisProcess) -> None:
    repo = _redis_repo(tmp_path, redis)
    assert redis.proc is not None
    with ServerProcess(repo, "--no-access-log") as server, \
            httpx.Client(base_url=server.url, timeout=CLIENT_TIMEOUT) as http:
        ok = http.post("/get-online-features", json=ONLINE)
        os.kill(redis.proc.pid, signal.SIGSTOP)
        answers = _answers(http, 5)
        assert {r.status_code for r in answers} == {503}, [r.text for r in answers]
        assert http.get("/ready").status_code == 503
        assert http.get("/health").status_code == 200
        os.kill(redis.proc.pid, signal.SIGCONT)
        deadline = time.monotonic() + 30
        while (back := http.post("/get-online-features", json=ONLINE)).status_code != 200:
            assert time.monotonic() < deadline, back.text
            time.sleep(0.2)
        assert back.json() == ok.json()


def test_the_sdk_raises_store_unavailable_for_a_frozen_redis(tmp_path: Path, redis: RedisProcess) -> None:
    store = FeatureStore(_redis_repo(tmp_path, redis))
    assert redis.proc is not None
    os.kill(redis.proc.pid, signal.SIGSTOP)
    outcome: list[BaseException | None] = []

    def read() -> None:
        try:
            store.get_online_features(ONLINE["features"], ONLINE["entities"])
            outcome.append(None)
        except BaseException as e:  # noqa: BLE001 - the outcome is the assertion
            outcome.append(e)

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    thread.join(CLIENT_TIMEOUT)
    assert outcome, "get_online_features did not return while Redis was frozen"
    assert isinstance(outcome[0], StoreUnavailable)


def _pg_registry(postgres: PostgresProcess) -> str:
    url = postgres.url.replace("postgresql://", "postgresql+psycopg://")
    return f"registry: {{path: \"{url}\", cache_ttl_seconds: 1}}"


def test_a_registry_outage_serves_cached_definitions_and_says_so(tmp_path: Path,
                                                                 postgres: PostgresProcess) -> None:
    repo = _repo(tmp_path, registry=_pg_registry(postgres))
    with ServerProcess(repo, "--no-access-log") as server, \
            httpx.Client(base_url=server.url, timeout=CLIENT_TIMEOUT) as http:
        ok = http.post("/get-online-features", json=ONLINE)
        assert ok.status_code == 200
        postgres.stop()
        time.sleep(1.5)  # past the cache TTL: the next read re-checks the registry and cannot
        answers = _answers(http, 10)
        assert {r.status_code for r in answers} == {200}
        assert all(r.json() == ok.json() for r in answers)
        ready = http.get("/ready")
        assert ready.status_code == 200
        assert ready.json()["registry"]["status"] == "stale"
        assert "repast_registry_stale 1.0" in http.get("/metrics").text
        log = server.output()
    assert "Traceback" not in log


def test_the_registry_is_current_again_after_the_outage(tmp_path: Path, postgres: PostgresProcess) -> None:
    repo = _repo(tmp_path, registry=_pg_registry(postgres))
    with ServerProcess(repo, "--no-access-log") as server, \
            httpx.Client(base_url=server.url, timeout=CLIENT_TIMEOUT) as http:
        postgres.stop()
        time.sleep(1.5)
        http.post("/get-online-features", json=ONLINE)
        assert "registry" in http.get("/ready").json()
        postgres.start()
        deadline = time.monotonic() + 30
        while "registry" in (ready := http.get("/ready").json()):
            assert time.monotonic() < deadline, ready
            http.post("/get-online-features", json=ONLINE)
            time.sleep(0.5)
        assert "repast_registry_stale 0.0" in http.get("/metrics").text


def _pg_online(postgres: PostgresProcess) -> str:
    return f"  type: postgres\n  url: \"{postgres.url}\"\n  db_schema: outage"


def _store_outage(tmp_path: Path, postgres: PostgresProcess, outage: Any) -> list[httpx.Response]:
    repo = _repo(tmp_path, online=_pg_online(postgres))
    with ServerProcess(repo, "--no-access-log") as server, \
            httpx.Client(base_url=server.url, timeout=CLIENT_TIMEOUT) as http:
        assert http.post("/get-online-features", json=ONLINE).status_code == 200
        outage()
        answers = _answers(http, 5) + [http.get("/ready")]
        assert http.get("/health").status_code == 200
        assert "Traceback" not in server.output()
    return answers


def test_a_stopped_postgres_online_store_answers_503_json(tmp_path: Path, postgres: PostgresProcess) -> None:
    answers = _store_outage(tmp_path, postgres, postgres.stop)
    assert {r.status_code for r in answers} == {503}
    assert {r.json()["error"] for r in answers} == {"store_unavailable"}


def test_a_frozen_postgres_online_store_answers_503_json(tmp_path: Path, postgres: PostgresProcess) -> None:
    answers = _store_outage(tmp_path, postgres, postgres.freeze)
    assert {r.status_code for r in answers} == {503}
    assert {r.json()["error"] for r in answers} == {"store_unavailable"}


def test_a_read_waiting_on_a_frozen_postgres_does_not_hold_other_requests(
        tmp_path: Path, postgres: PostgresProcess) -> None:
    # PostgreSQL reads wait on a thread of the store's own (its client has no read timeout); the
    # server used to wait for it on its event loop, so while one read waited out the store's bound
    # (here 5.5 s), every other request, /health included, waited too. Now the read is answered at
    # the server's deadline (here 3 s) and /health at once, while the read still waits.
    repo = _repo(tmp_path, online=_pg_online(postgres) + "\n  read_timeout_seconds: 5")
    config = repo / "feature_store.yaml"
    config.write_text(config.read_text() + "feature_server:\n  read_deadline_seconds: 3\n")
    answers: list[int] = []
    with ServerProcess(repo, "--no-access-log") as server:
        assert httpx.post(server.url + "/get-online-features", json=ONLINE, timeout=CLIENT_TIMEOUT).status_code == 200
        postgres.freeze()

        def read() -> None:
            answers.append(httpx.post(server.url + "/get-online-features", json=ONLINE,
                                      timeout=CLIENT_TIMEOUT).status_code)

        reader = threading.Thread(target=read)
        reader.start()
        time.sleep(0.3)  # the read is waiting on the frozen server
        health = httpx.get(server.url + "/health", timeout=CLIENT_TIMEOUT)
        read_still_waiting = reader.is_alive()
        reader.join()
    assert health.status_code == 200
    assert read_still_waiting, "/health was answered only once the read had been answered"
    assert answers == [503]


def test_materialize_against_a_stopped_redis_is_one_error_line(tmp_path: Path, redis: RedisProcess) -> None:
    repo = _redis_repo(tmp_path, redis)
    redis.stop()
    result = run_repast(repo, "materialize-incremental")
    assert result.returncode == 1
    assert result.stderr.startswith("Error: Redis online store cannot be reached")
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
