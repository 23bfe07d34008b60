"""The feature server's edge, without a store: error mapping, auth, body parsing, the middleware."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import httpx
import pyarrow as pa
import pytest
from pydantic import SecretStr

from repast.config.repo_config import FeatureServerConfig, TokenAuthConfig
from repast.errors import (
    EntityKeyError,
    FeatureNotFound,
    InputError,
    RegistryConflict,
    ServerError,
    StoreUnavailable,
    exception_for,
)
from repast.server.auth import Access, TokenAuth, auth_from_config
from repast.server.errors import ApiError, exception_body, status_and_kind
from repast.server.metrics import endpoint_label
from repast.server.middleware import ServerMiddleware
from repast.server.schemas import (
    GetOnlineFeaturesRequest,
    MaterializeRequest,
    PushRequest,
    frame_from_json,
    parse_body,
)


@pytest.mark.parametrize(("exc", "status", "kind"), [
    (FeatureNotFound("x"), 404, "not_found"),
    (EntityKeyError("x"), 400, "entity_key_error"),
    (InputError("x"), 400, "invalid_input"),
    (RegistryConflict("x"), 409, "registry_conflict"),
    (StoreUnavailable("x"), 503, "store_unavailable"),
    (ApiError(413, "payload_too_large", "x"), 413, "payload_too_large"),
    (ValueError("x"), 500, "internal_error"),
])
def test_each_exception_maps_to_one_status_and_kind(exc: Exception, status: int, kind: str) -> None:
    assert status_and_kind(exc) == (status, kind)


def test_a_real_fault_does_not_leak_its_message() -> None:
    status, body = exception_body(KeyError("secret internals"))
    assert status == 500
    assert b"secret" not in body


def test_client_gets_back_the_sdk_exception_class_for_a_kind() -> None:
    assert isinstance(exception_for("not_found", "gone", 404), FeatureNotFound)
    assert isinstance(exception_for("store_unavailable", "down", 503), StoreUnavailable)
    assert isinstance(exception_for("malformed_json", "bad", 400), InputError)
    err = exception_for("forbidden", "read token", 403)
    assert isinstance(err, ServerError) and err.status == 403


def _auth() -> TokenAuth:
    config = TokenAuthConfig(read_tokens=[SecretStr("r1")], write_tokens=[SecretStr("w1")])
    auth = auth_from_config(FeatureServerConfig(auth=config))
    assert auth is not None
    return auth


def test_no_auth_config_means_no_checker() -> None:
    assert auth_from_config(FeatureServerConfig()) is None


@pytest.mark.parametrize("header", [None, b"", b"Bearer", b"Basic r1", b"Bearer nope"])
def test_missing_or_unknown_token_is_401(header: bytes | None) -> None:
    with pytest.raises(ApiError) as e:
        _auth().check("POST", "/get-online-features", header)
    assert e.value.status == 401


def test_read_token_may_read_features_and_not_write() -> None:
    auth = _auth()
    assert auth.access_of(b"Bearer r1") is Access.READ
    auth.check("POST", "/get-online-features", b"Bearer r1")
    with pytest.raises(ApiError) as e:
        auth.check("POST", "/push", b"Bearer r1")
    assert e.value.status == 403


def test_write_token_may_do_everything_and_probes_are_open() -> None:
    auth = _auth()
    for path in ("/push", "/materialize", "/get-online-features"):
        auth.check("POST", path, b"bearer w1")
    auth.check("GET", "/health", None)
    auth.check("GET", "/ready", None)


@pytest.mark.parametrize(("body", "status", "needle"), [
    (b"{", 400, "not valid JSON"),
    (b"[1]", 422, "JSON object"),
    (b'{"entities": {"driver_id": [1]}}', 422, "exactly one of"),
    (b'{"features": ["v:f"], "entities": {}}', 422, "'entities' is empty"),
    (b'{"features": ["v:f"], "entities": {"a": [1], "b": [1, 2]}}', 422, "same length"),
    (b'{"features": ["v:f"], "entities": {"a": []}}', 422, "give at least one row"),
    (b'{"features": ["v:f"], "entities": {"a": [1]}, "full_feature_names": "yes"}', 422, "full_feature_names"),
    (b'{"features": "v:f", "entities": {"a": [1]}}', 422, "features"),
])
def test_bad_online_request_bodies_are_refused(body: bytes, status: int, needle: str) -> None:
    with pytest.raises(ApiError) as e:
        parse_body(body, GetOnlineFeaturesRequest)
    assert e.value.status == status
    assert needle in e.value.detail


def test_an_unknown_online_request_field_is_refused_only_under_strict_requests() -> None:
    body = b'{"features": ["v:f"], "entities": {"a": [1]}, "extra": 1}'
    assert parse_body(body, GetOnlineFeaturesRequest).ignored_fields == ("extra",)
    with pytest.raises(ApiError) as e:
        parse_body(body, GetOnlineFeaturesRequest, strict=True)
    assert e.value.status == 400 and "extra" in e.value.detail


def test_push_body_defaults_to_online_and_refuses_unknown_destinations() -> None:
    assert parse_body(b'{"push_source_name": "s", "df": {"a": [1]}}', PushRequest).to == "online"
    with pytest.raises(ApiError):
        parse_body(b'{"push_source_name": "s", "df": {"a": [1]}, "to": "moon"}', PushRequest)


def test_materialize_window_must_be_ordered() -> None:
    with pytest.raises(ApiError) as e:
        parse_body(b'{"start_ts": "2024-01-02T00:00:00Z", "end_ts": "2024-01-01"}', MaterializeRequest)
    assert "before" in e.value.detail


def test_frame_parses_iso_and_unix_timestamps_as_utc() -> None:
    iso = frame_from_json({"ts": ["2024-01-01T00:00:00Z", "2024-01-01 01:00:00", None]}, ["ts"])
    unix = frame_from_json({"ts": [1704067200, 1704070800.0]}, ["ts"])
    assert iso.schema.field("ts").type == pa.timestamp("us", tz="UTC")
    expected = [datetime(2024, 1, 1, 0, tzinfo=UTC), datetime(2024, 1, 1, 1, tzinfo=UTC)]
    assert iso.column("ts").to_pylist()[:2] == expected
    assert unix.column("ts").to_pylist() == expected


@pytest.mark.parametrize(("df", "column"), [
    ({"ts": ["yesterday"], "a": [1]}, "ts"),
    ({"ts": ["2024-01-01", 5]}, "ts"),
    ({"a": [1, "x"]}, "a"),
    ({"a": [{"nested": 1}, 2]}, "a"),
])
def test_frame_column_of_mixed_or_unparseable_values_is_an_input_error(df: dict[str, Any], column: str) -> None:
    with pytest.raises(InputError, match=f"df column '{column}'") as info:
        frame_from_json(df, ["ts"])
    assert "\n" not in str(info.value) and "You might" not in str(info.value)  # pandas' hints are cut off


def test_client_sends_pandas_timestamps_in_a_dict_of_lists_as_iso_text() -> None:
    import pandas as pd

    from repast.client import frame_columns

    ts = pd.Timestamp("2024-01-01T00:00:00Z")
    assert frame_columns({"ts": [ts, None], "a": [1, 2]}) == {"ts": [ts.isoformat(), None], "a": [1, 2]}


def test_unknown_paths_share_one_metric_label() -> None:
    assert endpoint_label("/get-online-features") == "/get-online-features"
    assert endpoint_label("/wp-admin/x.php") == "other"


class _Recorder:
    def __init__(self) -> None:
        self.seen: list[tuple[str, int]] = []

    def observe(self, endpoint: str, status: int, seconds: float) -> None:
        self.seen.append((endpoint, status))


async def _echo_or_fail(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["path"] == "/boom":
        raise RuntimeError("internal detail")
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


def _call(method: str, path: str, **kwargs: Any) -> tuple[httpx.Response, _Recorder]:
    recorder = _Recorder()
    app = ServerMiddleware(_echo_or_fail, recorder, _auth(), max_body_bytes=10)  # type: ignore[arg-type]

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.request(method, path, **kwargs)
    return asyncio.run(go()), recorder


def test_middleware_refuses_a_declared_oversized_body_with_413() -> None:
    resp, recorder = _call("POST", "/push", content=b"x" * 11, headers={"Authorization": "Bearer w1"})
    assert resp.status_code == 413
    assert resp.json()["error"] == "payload_too_large"
    assert recorder.seen == [("/push", 413)]


def test_middleware_counts_an_undeclared_body_and_refuses_past_the_limit() -> None:
    async def chunks() -> Any:
        yield b"x" * 6
        yield b"x" * 6
    resp, _ = _call("POST", "/push", content=chunks(), headers={"Authorization": "Bearer w1"})
    assert resp.status_code == 413


def test_middleware_checks_auth_before_the_app_runs() -> None:
    resp, recorder = _call("POST", "/push", content=b"x")
    assert resp.status_code == 401
    assert resp.headers["www-authenticate"].startswith("Bearer")
    assert recorder.seen == [("/push", 401)]


def test_middleware_turns_an_unexpected_exception_into_a_json_500() -> None:
    resp, recorder = _call("GET", "/boom", headers={"Authorization": "Bearer w1"})
    assert resp.status_code == 500
    assert resp.json()["error"] == "internal_error"
    assert "internal detail" not in resp.text
    assert recorder.seen == [("other", 500)]


@pytest.mark.parametrize(("host", "public"), [("0.0.0.0", True), ("::", True), ("10.1.2.3", True),
                                              ("127.0.0.1", False), ("::1", False), ("localhost", False)])
def test_serve_warns_only_for_addresses_beyond_this_machine(host: str, public: bool) -> None:
    from repast.server.runner import host_is_public

    assert host_is_public(host) is public


def test_every_latency_and_row_is_in_the_scrape(sample_repo: Any) -> None:
    from repast.server.metrics import ServerMetrics
    from repast.store import FeatureStore

    metrics = ServerMetrics(FeatureStore(sample_repo).registry)
    for seconds in (0.0001, 0.003, 0.003, 30.0, 100.0):
        metrics.observe("/get-online-features", 200, seconds)
        metrics.count_rows(2)
    text = metrics.render()[0].decode()
    labels = 'endpoint="/get-online-features",status="200"'
    assert f'repast_http_request_duration_seconds_count{{{labels}}} 5.0' in text
    bucket = 'repast_http_request_duration_seconds_bucket{endpoint="/get-online-features",le="%s",status="200"}'
    assert f'{bucket % "0.005"} 3.0' in text and f'{bucket % "60.0"} 4.0' in text
    assert f'repast_http_request_duration_seconds_sum{{{labels}}} 130.0061' in text
    assert "repast_online_rows_read_total 10.0" in text
