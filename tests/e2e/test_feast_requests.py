"""Feast 0.67's clients against a real `repast serve` process: the recorded request bodies of
tests/e2e/feast_067_requests (remote online store reads, push, write-to-online-store, materialize)
are all answered, unknown fields are ignored and named, and errors carry Feast's keys too."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.test_server_harness import free_port

REQUESTS = json.loads((Path(__file__).parent / "feast_067_requests" / "requests.json").read_text())


def with_now(value: Any, now: str) -> Any:
    if isinstance(value, dict):
        return {k: with_now(v, now) for k, v in value.items()}
    if isinstance(value, list):
        return [with_now(v, now) for v in value]
    return now if value == "NOW" else value


@contextmanager
def serving(tmp_path_factory: pytest.TempPathFactory, yaml_extra: str = "") -> Iterator[tuple[str, Path]]:
    """`repast serve` on a fresh `repast init` repo, started with Feast's short options."""
    from repast.cli.scaffold import init_repo

    repo = init_repo(tmp_path_factory.mktemp("feast_requests") / "repo", "feast_requests")
    (repo / "feature_store.yaml").write_text((repo / "feature_store.yaml").read_text() + yaml_extra)
    here = str(Path(__file__).parents[2])  # this checkout's repast, in the server process too
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([here, os.environ.get("PYTHONPATH", "")])}
    subprocess.run([sys.executable, "-m", "repast", "apply"], cwd=repo, env=env, check=True, capture_output=True)
    port = free_port()
    log = repo / "server.log"
    with log.open("wb") as out:  # Feast's short options: -h host, -p port, -w workers, -r registry ttl
        proc = subprocess.Popen([sys.executable, "-m", "repast", "serve", "-h", "127.0.0.1", "-p", str(port),
                                 "-w", "1", "-r", "1", "--keep-alive-timeout", "10", "--no-access-log"],
                                cwd=repo, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        yield url, log
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    with serving(tmp_path_factory) as served:
        yield served


@pytest.mark.parametrize("request_", REQUESTS, ids=[r["name"] for r in REQUESTS])
def test_feasts_recorded_request_is_answered(server: tuple[str, Path], request_: dict[str, Any]) -> None:
    url, _ = server
    body = with_now(request_["body"], datetime.now(UTC).replace(tzinfo=None).isoformat())
    response = httpx.post(url + request_["path"], json=body, timeout=60)
    assert response.status_code == 200, response.text
    assert "x-repast-ignored-fields" not in response.headers  # every field is one Feast documents


def test_values_pushed_by_feasts_bodies_are_read_back(server: tuple[str, Path]) -> None:
    url, _ = server
    now = datetime.now(UTC).replace(tzinfo=None).isoformat()
    for request_ in REQUESTS:
        if request_["path"] == "/push":
            httpx.post(url + "/push", json=with_now(request_["body"], now), timeout=60).raise_for_status()
    answer = httpx.post(url + "/get-online-features", timeout=60, json={
        "features": ["driver_hourly_stats_fresh:conv_rate"], "entities": {"driver_id": [1001, 1002]},
        "include_feature_view_version_metadata": False}).json()
    assert answer["results"][1]["values"] == [1.0, 0.5]


def test_an_unknown_field_is_ignored_named_in_a_header_and_logged_once(server: tuple[str, Path]) -> None:
    url, log = server
    body = with_now(REQUESTS[3]["body"], datetime.now(UTC).replace(tzinfo=None).isoformat())
    for _ in range(2):
        response = httpx.post(url + "/push", json={**body, "sent_by_feast_0_68": True}, timeout=60)
        assert response.status_code == 200, response.text
        assert response.headers["x-repast-ignored-fields"] == "sent_by_feast_0_68"
    assert log.read_text().count("sent_by_feast_0_68") == 1


def test_an_unknown_field_on_the_hot_endpoint_is_ignored(server: tuple[str, Path]) -> None:
    url, _ = server
    response = httpx.post(url + "/get-online-features", timeout=60, json={
        "features": ["driver_hourly_stats:conv_rate"], "entities": {"driver_id": [1001]}, "sent_by_feast_0_68": 1})
    assert response.status_code == 200, response.text


def test_a_refusal_carries_repasts_and_feasts_error_keys(server: tuple[str, Path]) -> None:
    url, _ = server
    response = httpx.post(url + "/get-online-features", timeout=60,
                          json={"features": ["nope:x"], "entities": {"driver_id": [1001]}})
    body = response.json()
    assert response.status_code == 404
    assert body["error"] == "not_found" and body["module"] == "feast.errors"
    assert body["class"] == "FeatureViewNotFoundException" and body["message"] == body["detail"]


def test_strict_requests_refuse_an_unknown_field_naming_it_and_accept_feasts_bodies(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    with serving(tmp_path_factory, "feature_server:\n  strict_requests: true\n") as (url, _):
        now = datetime.now(UTC).replace(tzinfo=None).isoformat()
        for request_ in REQUESTS:
            response = httpx.post(url + request_["path"], json=with_now(request_["body"], now), timeout=60)
            assert response.status_code == 200, (request_["name"], response.text)
        for path, body in (("/push", with_now(REQUESTS[3]["body"], now)), ("/get-online-features", {
                "features": ["driver_hourly_stats:conv_rate"], "entities": {"driver_id": [1001]}})):
            response = httpx.post(url + path, json={**body, "sent_by_feast_0_68": 1}, timeout=60)
            assert response.status_code == 400, response.text
            assert response.json()["error"] == "unknown_field" and "sent_by_feast_0_68" in response.json()["detail"]
