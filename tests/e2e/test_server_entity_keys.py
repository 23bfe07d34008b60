"""Entity keys the feature server refuses with a 400 JSON error naming the key, on both of its
request paths (the protocol's fast path and ASGI, which share the parsing): values nested at any
depth, and integers outside the range of the key's declared type. Nothing of it is a 500."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from repast.cli.scaffold import init_repo
from tests.e2e.test_server_harness import ServerProcess, run_repast

pytestmark = pytest.mark.slow

INT32_VIEW = '''

driver32 = Entity(name="driver32", join_keys=["driver_id"], value_type=ValueType.INT32)
driver_stats_32 = FeatureView(name="driver_stats_32", entities=[driver32], ttl=timedelta(days=1),
                              schema=[Field(name="conv_rate", dtype=Float32)], source=driver_stats_source)
'''
F64 = ["driver_hourly_stats:conv_rate"]
F32 = ["driver_stats_32:conv_rate"]
ON_DEMAND = ["transformed_conv_rate:conv_rate_plus_val1"]


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """(the server answering in its protocol, the same server with an access log: ASGI only)."""
    repo: Path = init_repo(tmp_path_factory.mktemp("keys") / "repo", "keys")
    with (repo / "example_repo.py").open("a") as f:
        f.write(INT32_VIEW)
    result = run_repast(repo, "apply")
    assert result.returncode == 0, result.stderr
    with ServerProcess(repo, "--no-access-log") as fast, ServerProcess(repo) as asgi:
        yield fast, asgi


def nested(depth: int, inner: Any = 1) -> Any:
    for _ in range(depth):
        inner = [inner]
    return inner


def _post(server: ServerProcess, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(server.url + "/get-online-features", content=json.dumps(body).encode(), timeout=15,
                      headers={"Content-Type": "application/json"})


def _refused(servers: tuple[ServerProcess, ServerProcess], body: dict[str, Any], status: int = 400) -> list[str]:
    details = []
    for server in servers:
        response = _post(server, body)
        assert response.status_code == status, (server.url, response.text[:300])
        assert response.headers["content-type"].startswith("application/json")
        details.append(response.json()["detail"])
        assert "Traceback" not in server.output()
    return details


@pytest.mark.parametrize("depth", [2, 255, 900])
@pytest.mark.parametrize("features", [F64, ON_DEMAND], ids=["view", "on-demand"])
def test_a_nested_entity_key_is_a_400_naming_the_key(servers: tuple[ServerProcess, ServerProcess], depth: int,
                                                     features: list[str]) -> None:
    body = {"features": features, "entities": {"driver_id": [nested(depth)], "val_to_add": [1], "val_to_add_2": [2]}}
    for detail in _refused(servers, body):
        assert "driver_id" in detail and len(detail) < 400


@pytest.mark.parametrize("depth", [255, 900, 5000])
def test_a_nested_request_value_or_body_of_any_depth_is_a_4xx(servers: tuple[ServerProcess, ServerProcess],
                                                              depth: int) -> None:
    for body in ({"features": ON_DEMAND, "entities": {"driver_id": [1001], "val_to_add": [nested(depth)],
                                                      "val_to_add_2": [2]}},
                 {"features": F64, "entities": {"driver_id": [{"a": nested(depth)}]}},
                 {"features": [nested(depth, "x")], "entities": {"driver_id": [1]}},
                 {"features": F64, "entities": nested(depth, {})}):
        for server in servers:
            response = httpx.post(server.url + "/get-online-features", timeout=15,
                                  content=json.dumps(body).encode() if depth < 900 else _deep_json(body))
            assert 400 <= response.status_code < 500, (server.url, body.keys(), response.text[:300])
            assert response.headers["content-type"].startswith("application/json")
        assert all("Traceback" not in s.output() for s in servers)


def _deep_json(body: Any) -> bytes:
    """json.dumps without its recursion limit (bodies deeper than Python's own)."""
    if isinstance(body, list):
        return b"[" + b",".join(_deep_json(v) for v in body) + b"]" if len(body) != 1 else \
            _deep_list(body)
    if isinstance(body, dict):
        return b"{" + b",".join(json.dumps(k).encode() + b":" + _deep_json(v) for k, v in body.items()) + b"}"
    return json.dumps(body).encode()


def _deep_list(value: Any) -> bytes:
    depth = 0
    while isinstance(value, list) and len(value) == 1:
        value, depth = value[0], depth + 1
    return b"[" * depth + _deep_json(value) + b"]" * depth


@pytest.mark.parametrize("key", [2**63, 2**64 - 1, -(2**63) - 1], ids=["2^63", "2^64-1", "below"])
def test_an_int64_key_out_of_range_is_a_400_naming_int64(servers: tuple[ServerProcess, ServerProcess],
                                                         key: int) -> None:
    for detail in _refused(servers, {"features": F64, "entities": {"driver_id": [1001, key]}}):
        assert "driver_id" in detail and "Int64" in detail


@pytest.mark.parametrize("key", [2**31, -(2**31) - 1, 2**63])
def test_an_int32_key_out_of_range_is_a_400_naming_int32(servers: tuple[ServerProcess, ServerProcess],
                                                         key: int) -> None:
    for detail in _refused(servers, {"features": F32, "entities": {"driver_id": [key]}}):
        assert "driver_id" in detail and "Int32" in detail


@pytest.mark.parametrize("key", [2**63 - 1, -(2**63)])
def test_the_int64_bounds_themselves_are_read(servers: tuple[ServerProcess, ServerProcess], key: int) -> None:
    for server in servers:
        response = _post(server, {"features": F64, "entities": {"driver_id": [key]}})
        assert response.status_code == 200 and response.json()["results"][1]["statuses"] == ["NOT_FOUND"]
