"""HTTP behaviour of the hot endpoint, which `repast serve` answers in its HTTP protocol instead of
through ASGI when it can (repast.server.protocol): the bytes on the wire, pipelining, bodies that
arrive late or chunked, HTTP/1.0, Expect: 100-continue, keep-alive and metrics are what uvicorn's
ASGI path gives. The reference is the same app under plain uvicorn (its own protocol: everything
through ASGI)."""

from __future__ import annotations

import os
import re
import signal
import socket
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import orjson
import pytest

from repast.cli.scaffold import init_repo
from repast.store import FeatureStore
from tests.e2e.test_server_harness import ServerProcess, run_repast

pytestmark = pytest.mark.slow

TIMEOUT = 15  # "answered at all", not how fast
FEATURES = ["driver_hourly_stats:conv_rate", "driver_hourly_stats:avg_daily_trips"]


def online_body(ids: list[object], features: list[str] = FEATURES) -> bytes:
    return orjson.dumps({"features": features, "entities": {"driver_id": ids}})


def post(body: bytes, extra: bytes = b"") -> bytes:
    return (b"POST /get-online-features HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" + extra
            + b"Content-Length: %d\r\n\r\n" % len(body) + body)


def plain_uvicorn(repo: Path) -> ServerProcess:
    """The server's app under plain uvicorn: uvicorn's own protocol, every request through ASGI."""
    command = [sys.executable, "-m", "uvicorn", "--factory", "repast.server.worker:app_from_env",
               "--http", "httptools", "--no-access-log"]
    return ServerProcess(repo, command=command, env={"REPAST_SERVE_CONFIG": str(repo)})


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """(`repast serve` as a user starts it, access log on, the same app under plain uvicorn)."""
    repo: Path = init_repo(tmp_path_factory.mktemp("http") / "repo", "http")
    assert run_repast(repo, "apply").returncode == 0
    now = datetime.now(UTC)
    FeatureStore(repo).materialize(now - timedelta(days=8), now, ["driver_hourly_stats"])
    with ServerProcess(repo) as fast, plain_uvicorn(repo) as asgi:
        yield fast, asgi


def read_response(s: socket.socket, buffer: bytearray) -> bytes:
    """One whole response (head and Content-Length bytes) from `s`; what follows stays in `buffer`."""
    while b"\r\n\r\n" not in buffer:
        chunk = s.recv(65536)
        assert chunk, f"the connection closed inside a response: {bytes(buffer)!r}"
        buffer += chunk
    end = buffer.index(b"\r\n\r\n") + 4
    match = re.search(rb"(?i)\r\ncontent-length: *(\d+)", bytes(buffer[:end]))
    length = int(match.group(1)) if match else 0
    while len(buffer) < end + length:
        chunk = s.recv(65536)
        assert chunk, "the connection closed inside a response body"
        buffer += chunk
    response = bytes(buffer[:end + length])
    del buffer[:end + length]
    return response


def exchange(server: ServerProcess, data: bytes, responses: int = 1) -> list[bytes]:
    with socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT) as s:
        s.sendall(data)
        buffer = bytearray()
        return [read_response(s, buffer) for _ in range(responses)]


def without_date(response: bytes) -> bytes:
    return re.sub(rb"\r\ndate: [^\r]*", b"", response)


CASES = {
    "one": online_body([1001]),
    "several": online_body([1001, 9999, 1002]),
    "wrong key type": online_body(["abc"]),
    "unknown feature": online_body([1001], ["driver_hourly_stats:nope"]),
    "malformed": b'{"features": [',
    "not an object": b"[1, 2]",
}


@pytest.mark.parametrize("body", CASES.values(), ids=CASES.keys())
def test_the_answer_on_the_wire_is_the_asgi_paths_byte_for_byte(
        servers: tuple[ServerProcess, ServerProcess], body: bytes) -> None:
    fast, asgi = servers
    [answer] = exchange(fast, post(body))
    [reference] = exchange(asgi, post(body))
    assert without_date(answer) == without_date(reference)
    assert re.search(rb"\r\ndate: ", answer), "uvicorn's default headers are kept"


def test_pipelined_requests_are_answered_in_order(servers: tuple[ServerProcess, ServerProcess]) -> None:
    fast, _ = servers
    requests = [post(online_body([1001])), b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n",
                post(online_body(["abc"])), post(online_body([1002]))]
    alone = [exchange(fast, r)[0] for r in requests]
    together = exchange(fast, b"".join(requests), responses=len(requests))
    assert [without_date(r) for r in together] == [without_date(r) for r in alone]
    assert [r.split(b" ", 2)[1] for r in together] == [b"200", b"200", b"400", b"200"]


def test_a_body_that_arrives_after_its_headers_in_pieces_is_answered(
        servers: tuple[ServerProcess, ServerProcess]) -> None:
    fast, _ = servers
    request = post(online_body([1001]))
    head_end = request.index(b"\r\n\r\n") + 4
    with socket.create_connection(("127.0.0.1", fast.port), timeout=TIMEOUT) as s:
        s.sendall(request[:head_end])
        time.sleep(0.2)
        s.sendall(request[head_end:head_end + 10])
        time.sleep(0.2)
        s.sendall(request[head_end + 10:])
        answer = read_response(s, bytearray())
    assert without_date(answer) == without_date(exchange(fast, request)[0])


def test_http_1_0_chunked_and_expect_continue_requests_are_answered(
        servers: tuple[ServerProcess, ServerProcess]) -> None:
    fast, _ = servers
    body = online_body([1001])
    [reference] = exchange(fast, post(body))
    expected = reference.partition(b"\r\n\r\n")[2]

    with socket.create_connection(("127.0.0.1", fast.port), timeout=TIMEOUT) as s:
        s.sendall(post(body).replace(b"HTTP/1.1", b"HTTP/1.0", 1))
        answer = read_response(s, bytearray())
        assert s.recv(65536) == b"", "an HTTP/1.0 request without keep-alive closes its connection"
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(expected)

    chunked = (b"POST /get-online-features HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
               + b"%x\r\n" % len(body[:20]) + body[:20] + b"\r\n"
               + b"%x\r\n" % len(body[20:]) + body[20:] + b"\r\n0\r\n\r\n")
    [answer] = exchange(fast, chunked)
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(expected)

    request = post(body, b"Expect: 100-continue\r\n")
    head_end = request.index(b"\r\n\r\n") + 4
    with socket.create_connection(("127.0.0.1", fast.port), timeout=TIMEOUT) as s:
        s.sendall(request[:head_end])
        buffer = bytearray()
        while b"\r\n\r\n" not in buffer:
            buffer += s.recv(65536)
        assert bytes(buffer).startswith(b"HTTP/1.1 100 Continue")
        del buffer[:buffer.index(b"\r\n\r\n") + 4]
        s.sendall(request[head_end:])
        answer = read_response(s, buffer)
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(expected)


def test_a_kept_alive_connection_stays_open_while_used_and_closes_when_idle(
        servers: tuple[ServerProcess, ServerProcess]) -> None:
    # uvicorn closes a connection idle for 5 s (its default keep-alive timeout). Requests 2 s apart
    # keep it open past the first 5 s; then, idle, it is closed.
    fast, _ = servers
    request = post(online_body([1001]))
    with socket.create_connection(("127.0.0.1", fast.port), timeout=TIMEOUT) as s:
        buffer = bytearray()
        for i in range(4):
            if i:
                time.sleep(2)
            s.sendall(request)
            assert read_response(s, buffer).startswith(b"HTTP/1.1 200"), f"request {i + 1}"
        s.settimeout(30)
        assert s.recv(65536) == b"", "an idle kept-alive connection is closed"


def _requests_counted(server: ServerProcess, status: str) -> float:
    text = httpx.get(server.url + "/metrics", timeout=TIMEOUT).text
    pattern = 'repast_http_requests_total{endpoint="/get-online-features",status="' + status + '"} '
    match = re.search(re.escape(pattern) + r"(\S+)", text)
    return float(match.group(1)) if match else 0.0


def test_answers_given_in_the_protocol_are_counted_in_metrics(servers: tuple[ServerProcess, ServerProcess]) -> None:
    fast, _ = servers
    ok, bad = _requests_counted(fast, "200"), _requests_counted(fast, "400")
    with socket.create_connection(("127.0.0.1", fast.port), timeout=TIMEOUT) as s:
        s.sendall(post(online_body([1001])) * 5 + post(online_body(["abc"])) * 2)
        buffer = bytearray()
        for _ in range(7):
            read_response(s, buffer)
    assert _requests_counted(fast, "200") == ok + 5
    assert _requests_counted(fast, "400") == bad + 2


@pytest.mark.parametrize("bad", [
    b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n",
    b"NOT A REQUEST\r\n\r\n",
], ids=["header too large", "unparseable"])
def test_a_refused_request_pipelined_behind_answered_ones_comes_after_their_answers(
        servers: tuple[ServerProcess, ServerProcess], bad: bytes) -> None:
    fast, _ = servers
    with socket.create_connection(("127.0.0.1", fast.port), timeout=TIMEOUT) as s:
        s.sendall(post(online_body([1001])) * 2 + bad)
        buffer = bytearray()
        answers = [read_response(s, buffer) for _ in range(3)]
        while chunk := s.recv(65536):
            buffer += chunk
    assert [a.split(b" ", 2)[1] for a in answers] == [b"200", b"200", b"431" if b"X-Big" in bad else b"400"]
    assert buffer == b"", "nothing follows the refusal: the connection is closed"


def test_a_request_being_received_when_the_server_stops_is_answered_before_it_closes(
        tmp_path: Path) -> None:
    repo: Path = init_repo(tmp_path / "repo", "stopping")
    assert run_repast(repo, "apply").returncode == 0
    request = post(online_body([1001]))
    head_end = request.index(b"\r\n\r\n") + 4
    with ServerProcess(repo, "--no-access-log") as server, \
            socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT) as s:
        s.sendall(request[:head_end + 5])
        time.sleep(0.2)
        assert server.proc is not None
        os.killpg(server.proc.pid, signal.SIGTERM)  # a graceful stop: uvicorn waits for connections
        time.sleep(0.5)
        s.sendall(request[head_end + 5:])
        buffer = bytearray()
        answer = read_response(s, buffer)
        while chunk := s.recv(65536):
            buffer += chunk
        server.proc.wait(timeout=TIMEOUT)  # stopped (uvicorn re-raises SIGTERM once it has shut down)
    assert answer.startswith(b"HTTP/1.1 200")
    assert buffer == b"", "the connection is closed after the answer"


def test_answers_given_in_the_protocol_are_in_the_access_log(servers: tuple[ServerProcess, ServerProcess]) -> None:
    fast, _ = servers
    marker = f"/get-online-features?access-log-check={time.monotonic_ns()}".encode()
    request = post(online_body([1001])).replace(b"/get-online-features", marker, 1)
    with socket.create_connection(("127.0.0.1", fast.port), timeout=TIMEOUT) as s:
        s.sendall(request * 3)
        buffer = bytearray()
        assert all(read_response(s, buffer).startswith(b"HTTP/1.1 200") for _ in range(3))
    deadline = time.monotonic() + TIMEOUT
    line = f'"POST {marker.decode()} HTTP/1.1" 200 OK'
    while fast.output().count(line) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert fast.output().count(line) == 3, fast.output()[-2000:]
    assert re.search(r'INFO: +127\.0\.0\.1:\d+ - "POST /get-online-features\?access-log-check=', fast.output())


UPGRADES = {
    "websocket on the hot endpoint": post(online_body([1001]), b"Connection: Upgrade\r\nUpgrade: websocket\r\n"
                                          b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                                          b"Sec-WebSocket-Version: 13\r\n"),
    "websocket on /health": b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    "h2c on the hot endpoint": post(online_body([1001]), b"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
                                    b"HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n"),
}


@pytest.mark.parametrize("request_bytes", UPGRADES.values(), ids=UPGRADES.keys())
def test_a_request_to_switch_protocols_is_answered_at_once_and_its_connection_closed(
        servers: tuple[ServerProcess, ServerProcess], request_bytes: bytes) -> None:
    fast, _ = servers
    with socket.create_connection(("127.0.0.1", fast.port), timeout=5) as s:
        s.sendall(request_bytes)
        buffer = bytearray()
        answer = read_response(s, buffer)
        while chunk := s.recv(65536):  # the connection closes: nothing more is read from it
            buffer += chunk
    assert answer.startswith(b"HTTP/1.1 400"), answer
    assert orjson.loads(answer.partition(b"\r\n\r\n")[2])["error"] == "upgrade_not_supported"
    assert buffer == b""


def test_a_request_to_switch_protocols_behind_answered_ones_comes_after_their_answers(
        servers: tuple[ServerProcess, ServerProcess]) -> None:
    fast, _ = servers
    with socket.create_connection(("127.0.0.1", fast.port), timeout=5) as s:
        s.sendall(post(online_body([1001])) + b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
                  + UPGRADES["websocket on /health"])
        buffer = bytearray()
        answers = [read_response(s, buffer) for _ in range(3)]
        while chunk := s.recv(65536):
            buffer += chunk
    assert [a.split(b" ", 2)[1] for a in answers] == [b"200", b"200", b"400"]
    assert buffer == b""


@pytest.mark.postgres
def test_reads_awaited_on_store_threads_are_answered_in_order_as_uvicorn_answers_them(
        tmp_path: Path, postgres_url: str, unique_name: str) -> None:
    # A PostgreSQL online store is always read on the server's store threads: every answer of the
    # hot endpoint is awaited in the protocol, none is replayed through ASGI.
    import psycopg

    repo: Path = init_repo(tmp_path / "repo", unique_name)
    config = repo / "feature_store.yaml"
    config.write_text(re.sub(r"online_store:\n(  .*\n)+",
                             f"online_store: {{type: postgres, url: '{postgres_url}', db_schema: {unique_name}}}\n",
                             config.read_text()))
    assert "type: postgres" in config.read_text()
    try:
        assert run_repast(repo, "apply").returncode == 0
        now = datetime.now(UTC)
        FeatureStore(repo).materialize(now - timedelta(days=8), now, ["driver_hourly_stats"])
        requests = [post(online_body([1001])), b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n",
                    post(online_body(["abc"])), post(online_body([1001, 9999, 1002])), post(online_body([1002]))]
        with ServerProcess(repo) as fast, plain_uvicorn(repo) as asgi:
            together = exchange(fast, b"".join(requests), responses=len(requests))
            reference = exchange(asgi, b"".join(requests), responses=len(requests))
            assert [without_date(r) for r in together] == [without_date(r) for r in reference]
            assert [r.split(b" ", 2)[1] for r in together] == [b"200", b"200", b"400", b"200", b"200"]
            assert '"POST /get-online-features HTTP/1.1" 200 OK' in fast.output()
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {unique_name} CASCADE")
