"""What one request may ask of the server: entity rows, feature values, header size and time.

One server runs with small limits; every refusal is JSON naming the limit's key. Huge requests
are refused without the worker's memory growing with them.
"""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from repast.cli.scaffold import init_repo
from tests.e2e.test_server_harness import ServerProcess, run_repast

pytestmark = pytest.mark.slow

LIMITS = """
feature_server:
  max_entity_rows: 5
  max_feature_values: 8
  header_timeout_seconds: 1
  max_header_bytes: 4096
"""
FEATURES = ["driver_hourly_stats:conv_rate", "driver_hourly_stats:acc_rate", "driver_hourly_stats:avg_daily_trips"]
SOCKET_TIMEOUT = 10  # "answered at all", not how fast


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    repo = init_repo(tmp_path_factory.mktemp("limits") / "repo", "limits")
    config = repo / "feature_store.yaml"
    config.write_text(config.read_text() + LIMITS)
    assert run_repast(repo, "apply").returncode == 0
    with ServerProcess(repo, "--no-access-log") as process:
        yield process


def _online(server: ServerProcess, features: list[str], ids: list[int]) -> httpx.Response:
    return httpx.post(server.url + "/get-online-features", json={"features": features, "entities": {"driver_id": ids}},
                      timeout=SOCKET_TIMEOUT)


def _raw(server: ServerProcess, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", server.port), timeout=SOCKET_TIMEOUT) as s:
        s.sendall(data)
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)


def test_more_entity_rows_than_the_limit_is_413_naming_it(server: ServerProcess) -> None:
    response = _online(server, FEATURES[:1], list(range(6)))
    assert response.status_code == 413
    assert response.json()["error"] == "too_many_entity_rows"
    assert "feature_server.max_entity_rows" in response.json()["detail"]


def test_rows_at_the_limit_are_served(server: ServerProcess) -> None:
    assert _online(server, FEATURES[:1], list(range(1001, 1006))).status_code == 200


def test_more_feature_values_than_the_limit_is_413_naming_it(server: ServerProcess) -> None:
    response = _online(server, FEATURES, [1001, 1002, 1003])  # 3 x 3 = 9 > 8
    assert response.status_code == 413
    assert response.json()["error"] == "too_many_feature_values"
    assert "feature_server.max_feature_values" in response.json()["detail"]


def _peak_rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) / 1024  # type: ignore[union-attr]


def test_huge_requests_are_refused_without_the_worker_growing(server: ServerProcess) -> None:
    assert server.proc is not None
    ids = list(range(1_000_000, 2_200_000))  # about 9.6 MB of JSON, under the body limit
    body = orjson.dumps({"features": FEATURES, "entities": {"driver_id": ids}})
    before = _peak_rss_mb(server.proc.pid)
    statuses: list[int] = []

    def send() -> None:
        statuses.append(httpx.post(server.url + "/get-online-features", content=body, timeout=60).status_code)

    threads = [threading.Thread(target=send) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses == [413] * 4
    # Parsing a 10 MB body costs some memory; answering 1.2M rows x 3 features took gigabytes.
    assert _peak_rss_mb(server.proc.pid) - before < 400


def test_a_header_over_the_size_limit_is_431(server: ServerProcess) -> None:
    answer = _raw(server, b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 431")
    assert b"feature_server.max_header_bytes" in answer


def test_a_header_that_never_ends_is_431_before_it_is_all_read(server: ServerProcess) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=SOCKET_TIMEOUT) as s:
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ")
        try:
            for _ in range(100):
                s.sendall(b"a" * 10_000)
        except OSError:
            pass  # the server closed the connection: what this test wants
        assert s.recv(65536).startswith(b"HTTP/1.1 431")


def test_headers_that_trickle_in_are_cut_off_with_408(server: ServerProcess) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=SOCKET_TIMEOUT) as s:
        s.sendall(b"GET /health HTTP/1.1\r\n")
        answer = s.recv(65536)
    assert answer.startswith(b"HTTP/1.1 408")
    assert b"feature_server.header_timeout_seconds" in answer


def _one_response(s: socket.socket) -> bytes:
    """One whole response from a kept-alive connection: its headers and Content-Length bytes (the
    server may write them in separate packets, so one recv can end between them)."""
    def more() -> bytes:
        chunk = s.recv(65536)
        assert chunk, "the server closed the connection inside a response"
        return chunk

    data = b""
    while b"\r\n\r\n" not in data:
        data += more()
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))  # type: ignore[union-attr]
    while len(body) < length:
        body += more()
    return head + b"\r\n\r\n" + body


def test_headers_of_a_later_request_on_a_kept_alive_connection_are_cut_off_with_408(
        server: ServerProcess) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=SOCKET_TIMEOUT) as s:
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        first = _one_response(s)
        s.sendall(b"GET /health HTTP/1.1\r\n")  # the next request's headers never end
        second = s.recv(65536)
    assert first.startswith(b"HTTP/1.1 200")
    assert second.startswith(b"HTTP/1.1 408")


def test_a_connection_that_sends_nothing_is_closed(server: ServerProcess) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=SOCKET_TIMEOUT) as s:
        assert s.recv(65536) == b""


def test_a_request_within_the_limits_keeps_its_connection(server: ServerProcess) -> None:
    with httpx.Client(base_url=server.url, timeout=SOCKET_TIMEOUT) as http:
        for _ in range(3):
            assert http.get("/health", headers={"X-Note": "a" * 1000}).status_code == 200


@pytest.mark.parametrize(("args", "message"), [
    (["--port", "99999"], "--port must be between 1 and 65535"),
    (["--host", "no-such-host.invalid"], "--host 'no-such-host.invalid'"),
])
def test_serve_refuses_a_bad_address_before_starting(server: ServerProcess, args: list[str], message: str) -> None:
    result = run_repast(server.repo, "serve", *args)
    assert result.returncode == 1
    assert result.stderr.startswith("Error: ") and message in result.stderr
    assert "startup complete" not in result.stderr + result.stdout


def test_serve_refuses_a_port_in_use(server: ServerProcess) -> None:
    result = run_repast(server.repo, "serve", "--port", str(server.port))
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{server.port}" in result.stderr

