"""Token auth and TLS: one `repast serve --key --cert` with read and write tokens from the environment."""

from __future__ import annotations

import ssl
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from repast.cli.scaffold import init_repo
from tests.e2e.test_server_harness import ServerProcess, run_repast

pytestmark = pytest.mark.slow

READ, WRITE = "read-token-123", "write-token-456"
ONLINE = {"features": ["driver_hourly_stats:conv_rate"], "entities": {"driver_id": [1001]}}


def _self_signed(directory: Path) -> tuple[Path, Path]:
    key, cert = directory / "key.pem", directory / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
                    "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    return key, cert


# With the access log on every request takes the ASGI path; without it get-online-features is
# answered by the server's HTTP protocol (repast.server.protocol), which must check auth the same way.
@pytest.fixture(scope="module", params=[[], ["--no-access-log"]], ids=["asgi", "protocol"])
def secure(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[tuple[str, Path]]:
    repo = init_repo(tmp_path_factory.mktemp("secure") / "repo", "secure")
    config = repo / "feature_store.yaml"
    config.write_text(config.read_text() + "feature_server:\n  auth: {type: token, read_tokens: [\"${READ_TOKEN}\"], "
                      "write_tokens: [\"${WRITE_TOKEN}\"]}\n")
    env = {"READ_TOKEN": READ, "WRITE_TOKEN": WRITE}
    assert run_repast(repo, "apply", env=env).returncode == 0
    key, cert = _self_signed(repo)
    with ServerProcess(repo, "--key", str(key), "--cert", str(cert), *request.param, env=env,
                       scheme="https") as server:
        yield server.url, cert


def _call(secure: tuple[str, Path], method: str, path: str, token: str | None = None,
          json: object = None) -> httpx.Response:
    url, cert = secure
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    verify = ssl.create_default_context(cafile=str(cert))
    return httpx.request(method, url + path, headers=headers, json=json, verify=verify, timeout=30)


def test_probes_need_no_token(secure: tuple[str, Path]) -> None:
    assert _call(secure, "GET", "/health").status_code == 200
    assert _call(secure, "GET", "/ready").status_code == 200


@pytest.mark.parametrize("token", [None, "wrong-token"])
def test_missing_or_wrong_token_is_401(secure: tuple[str, Path], token: str | None) -> None:
    response = _call(secure, "POST", "/get-online-features", token, ONLINE)
    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized"


@pytest.mark.parametrize("token", [READ, WRITE])
def test_read_and_write_tokens_read_features(secure: tuple[str, Path], token: str) -> None:
    response = _call(secure, "POST", "/get-online-features", token, ONLINE)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("path", ["/push", "/write-to-online-store", "/materialize", "/materialize-incremental"])
def test_read_token_on_a_write_endpoint_is_403(secure: tuple[str, Path], path: str) -> None:
    response = _call(secure, "POST", path, READ, {})
    assert response.status_code == 403
    assert response.json()["error"] == "forbidden"


def test_write_token_pushes(secure: tuple[str, Path]) -> None:
    now = datetime.now(UTC).isoformat()
    df = {"driver_id": [1001], "event_timestamp": [now], "created": [now], "conv_rate": [0.5],
          "acc_rate": [0.5], "avg_daily_trips": [5]}
    response = _call(secure, "POST", "/push", WRITE, {"push_source_name": "driver_stats_push_source", "df": df})
    assert response.status_code == 200, response.text


def test_metrics_need_a_token(secure: tuple[str, Path]) -> None:
    assert _call(secure, "GET", "/metrics").status_code == 401
    assert _call(secure, "GET", "/metrics", READ).status_code == 403
    assert _call(secure, "GET", "/metrics", WRITE).status_code == 200


def test_read_tokens_may_read_the_registry_for_thin_clients(secure: tuple[str, Path]) -> None:
    assert _call(secure, "GET", "/registry").status_code == 401
    assert _call(secure, "GET", "/registry", READ).status_code == 200


@pytest.mark.parametrize("path", ["/registry/history", "/registry/materializations"])
def test_read_tokens_may_read_history_and_watermarks_for_the_ui(secure: tuple[str, Path], path: str) -> None:
    assert _call(secure, "GET", path).status_code == 401
    assert _call(secure, "GET", path, READ).status_code == 200


def test_plain_http_is_not_served_when_tls_is_on(secure: tuple[str, Path]) -> None:
    url, _ = secure
    with pytest.raises(httpx.HTTPError):
        httpx.get(url.replace("https://", "http://") + "/health", timeout=5)
