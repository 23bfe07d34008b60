"""`repast serve` on the sample repo (SQLite online store), driven over HTTP as a Feast client would.

One server process serves the whole module; tests that write (push, materialize) compare only
what they wrote. Every bad request in the table gets its 4xx and leaves the store as it was.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from repast import Client
from repast.cli.scaffold import init_repo
from repast.errors import FeatureNotFound
from repast.store import FeatureStore
from tests.e2e.test_server_harness import ServerProcess, run_repast

pytestmark = pytest.mark.slow

DRIVERS = [1001, 1002, 1003, 1004, 1005]
STATS = ["conv_rate", "acc_rate", "avg_daily_trips"]
MAX_BODY = 65536


@dataclass
class Served:
    repo: Path
    url: str
    http: httpx.Client
    store: FeatureStore

    def post(self, path: str, body: Any) -> httpx.Response:
        return self.http.post(path, json=body)

    def online(self, body: dict[str, Any]) -> dict[str, Any]:
        response = self.post("/get-online-features", body)
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]


def columns(body: dict[str, Any]) -> dict[str, dict[str, list[Any]]]:
    """name -> {values, statuses, event_timestamps} of a Feast-shaped response."""
    return dict(zip(body["metadata"]["feature_names"], body["results"], strict=True))


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    repo = init_repo(tmp_path_factory.mktemp("served") / "repo", "served")
    config = repo / "feature_store.yaml"
    text = config.read_text().replace("registry: data/registry.db",
                                      "registry: {path: data/registry.db, cache_ttl_seconds: 1}")
    config.write_text(text + f"feature_server: {{max_body_bytes: {MAX_BODY}}}\n")
    assert run_repast(repo, "apply").returncode == 0
    store = FeatureStore(repo)
    now = datetime.now(UTC)
    store.materialize(now - timedelta(days=8), now, ["driver_hourly_stats"])
    with ServerProcess(repo, "--no-access-log") as server, httpx.Client(base_url=server.url, timeout=30) as http:
        yield Served(repo, server.url, http, store)


def store_state(served: Served) -> tuple[Any, ...]:
    """Everything a request could change: online values of every view, registry, offline data."""
    store = served.store
    store.refresh_registry()
    online = []
    for view in ("driver_hourly_stats", "driver_hourly_stats_fresh"):
        response = store.get_online_features([f"{view}:{f}" for f in STATS], {"driver_id": DRIVERS + [9999]})
        online.append(response.to_dict())
    data = hashlib.sha256(b"".join(p.read_bytes() for p in sorted((served.repo / "data").glob("*.parquet"))))
    return (online, store.registry.version, store.registry.materializations(), data.hexdigest())


# ---- reads -----------------------------------------------------------------------------------

def test_health_and_ready_answer(served: Served) -> None:
    assert served.http.get("/health").json() == {"status": "ok"}
    assert served.http.get("/ready").json() == {"status": "ready"}


def test_online_features_have_feasts_shape_entity_keys_first(served: Served) -> None:
    body = served.online({"features": ["driver_hourly_stats:conv_rate", "driver_hourly_stats:avg_daily_trips"],
                          "entities": {"driver_id": [1001, 1002]}})
    assert body["metadata"]["feature_names"] == ["driver_id", "conv_rate", "avg_daily_trips"]
    assert set(body["results"][0]) == {"values", "statuses", "event_timestamps"}
    cols = columns(body)
    assert cols["driver_id"]["values"] == [1001, 1002]
    assert cols["conv_rate"]["statuses"] == ["PRESENT", "PRESENT"]
    assert all(isinstance(v, float) for v in cols["conv_rate"]["values"])
    assert all(isinstance(v, int) for v in cols["avg_daily_trips"]["values"])
    for ts in cols["conv_rate"]["event_timestamps"]:
        assert datetime.fromisoformat(ts.replace("Z", "+00:00")) > datetime.now(UTC) - timedelta(days=1)


def test_served_values_equal_the_sdks(served: Served) -> None:
    features = [f"driver_hourly_stats:{f}" for f in STATS]
    body = served.online({"features": features, "entities": {"driver_id": DRIVERS}})
    sdk = served.store.get_online_features(features, {"driver_id": DRIVERS}).to_dict()
    cols = columns(body)
    for name in ["driver_id", *STATS]:
        assert cols[name]["values"] == pytest.approx(sdk[name])


def test_unknown_entity_is_not_found_with_a_null_value(served: Served) -> None:
    cols = columns(served.online({"features": ["driver_hourly_stats:conv_rate"], "entities": {"driver_id": [9999]}}))
    assert cols["conv_rate"]["values"] == [None]
    assert cols["conv_rate"]["statuses"] == ["NOT_FOUND"]


def test_feature_service_runs_on_demand_views_with_request_data(served: Served) -> None:
    body = served.online({"feature_service": "driver_activity_v1",
                          "entities": {"driver_id": [1001], "val_to_add": [1000], "val_to_add_2": [2000]}})
    cols = columns(body)
    assert cols["driver_id"]["values"] == [1001]
    assert cols["conv_rate_plus_val1"]["values"][0] == pytest.approx(cols["conv_rate"]["values"][0] + 1000)


def test_full_feature_names_prefix_the_view(served: Served) -> None:
    body = served.online({"features": ["driver_hourly_stats:conv_rate"], "entities": {"driver_id": [1001]},
                          "full_feature_names": True})
    assert body["metadata"]["feature_names"] == ["driver_id", "driver_hourly_stats__conv_rate"]


# ---- writes ----------------------------------------------------------------------------------

def _fresh_rows(driver: int, conv_rate: float) -> dict[str, list[Any]]:
    now = datetime.now(UTC).isoformat()
    return {"driver_id": [driver], "event_timestamp": [now], "created": [now], "conv_rate": [conv_rate],
            "acc_rate": [0.5], "avg_daily_trips": [10]}


def test_push_is_served_at_once(served: Served) -> None:
    response = served.post("/push", {"push_source_name": "driver_stats_push_source",
                                     "df": _fresh_rows(1003, 0.25), "to": "online"})
    assert response.status_code == 200, response.text
    cols = columns(served.online({"features": ["driver_hourly_stats_fresh:conv_rate"],
                                  "entities": {"driver_id": [1003]}}))
    assert cols["conv_rate"]["values"] == [pytest.approx(0.25)]
    assert cols["conv_rate"]["statuses"] == ["PRESENT"]


def test_write_to_online_store_is_served_at_once(served: Served) -> None:
    response = served.post("/write-to-online-store", {"feature_view_name": "driver_hourly_stats_fresh",
                                                      "df": _fresh_rows(1004, 0.75)})
    assert response.status_code == 200, response.text
    cols = columns(served.online({"features": ["driver_hourly_stats_fresh:conv_rate"],
                                  "entities": {"driver_id": [1004]}}))
    assert cols["conv_rate"]["values"] == [pytest.approx(0.75)]


def test_materialize_and_incremental_move_the_watermark(served: Served) -> None:
    now = datetime.now(UTC)
    start = (now - timedelta(days=2)).isoformat()
    response = served.post("/materialize", {"start_ts": start, "end_ts": now.isoformat(),
                                            "feature_views": ["driver_hourly_stats"]})
    assert response.status_code == 200, response.text
    later = now + timedelta(minutes=1)
    response = served.post("/materialize-incremental", {"end_ts": later.isoformat(),
                                                        "feature_views": ["driver_hourly_stats"]})
    assert response.status_code == 200, response.text
    record = served.store.registry.materializations()["driver_hourly_stats"]
    assert abs((record.end - later).total_seconds()) < 1


def test_python_client_returns_what_the_sdk_returns(served: Served) -> None:
    features = [f"driver_hourly_stats:{f}" for f in STATS]
    with Client(served.url) as client:
        remote = client.get_online_features(features, [{"driver_id": d} for d in DRIVERS])
        with pytest.raises(FeatureNotFound, match="nope"):
            client.get_online_features(["nope:x"], {"driver_id": [1001]})
    local = served.store.get_online_features(features, {"driver_id": DRIVERS})
    assert remote.feature_names == local.feature_names
    for name, values in local.to_dict().items():
        assert remote.to_dict()[name] == pytest.approx(values)
    assert remote.statuses() == local.statuses()
    assert remote.event_timestamps()["conv_rate"] == local.event_timestamps()["conv_rate"]


def test_python_client_pushes_a_dataframe(served: Served) -> None:
    now = pd.Timestamp.now(tz="UTC")
    df = pd.DataFrame({"driver_id": [1005], "event_timestamp": [now], "created": [now], "conv_rate": [0.125],
                       "acc_rate": [0.5], "avg_daily_trips": [9]})
    with Client(served.url) as client:
        client.push("driver_stats_push_source", df)
        response = client.get_online_features(["driver_hourly_stats_fresh:conv_rate"], {"driver_id": [1005]})
    assert response.to_dict()["conv_rate"] == [pytest.approx(0.125)]


# ---- operations ------------------------------------------------------------------------------

def test_metrics_count_requests_rows_and_watermarks(served: Served) -> None:
    served.online({"features": ["driver_hourly_stats:conv_rate"], "entities": {"driver_id": [1001, 1002]}})
    served.post("/get-online-features", {"features": ["nope:x"], "entities": {"driver_id": [1]}})
    text = served.http.get("/metrics").text
    assert 'repast_http_requests_total{endpoint="/get-online-features",status="200"}' in text
    assert 'repast_http_requests_total{endpoint="/get-online-features",status="404"}' in text
    assert 'repast_http_request_duration_seconds_bucket{endpoint="/get-online-features"' in text
    assert "repast_online_rows_read_total" in text
    assert 'repast_materialization_watermark_seconds{feature_view="driver_hourly_stats"}' in text
    assert 'repast_feature_age_seconds{feature_view="driver_hourly_stats"}' in text


def test_docs_describe_every_endpoint(served: Served) -> None:
    assert served.http.get("/docs").status_code == 200
    paths = served.http.get("/openapi.json").json()["paths"]
    for path in ("/get-online-features", "/push", "/write-to-online-store", "/materialize",
                 "/materialize-incremental", "/health", "/ready", "/metrics"):
        assert path in paths
    schema = paths["/get-online-features"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert "entities" in schema["properties"]


def test_registry_endpoint_answers_304_when_unchanged(served: Served) -> None:
    first = served.http.get("/registry")
    assert first.status_code == 200
    assert "driver_hourly_stats" in first.json()["specs"]["feature_view"]
    again = served.http.get("/registry", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304


def test_an_applied_change_is_served_without_a_restart(served: Served) -> None:
    definitions = served.repo / "example_repo.py"
    definitions.write_text(definitions.read_text() + '''
driver_stats_copy = FeatureView(name="driver_stats_copy", entities=[driver], ttl=timedelta(days=1),
                                schema=[Field(name="conv_rate", dtype=Float32)], source=driver_stats_source)
''')
    assert run_repast(served.repo, "apply").returncode == 0
    body = {"features": ["driver_stats_copy:conv_rate"], "entities": {"driver_id": [1001]}}
    deadline = time.monotonic() + 15
    while (status := served.post("/get-online-features", body).status_code) != 200 and time.monotonic() < deadline:
        assert status == 404
        time.sleep(0.2)
    assert status == 200


# ---- bad requests: each a 4xx, none writes ----------------------------------------------------

NOW = "2024-01-01T00:00:00Z"
GOOD_ROW = {"driver_id": [1001], "event_timestamp": [NOW], "created": [NOW], "conv_rate": [0.1],
            "acc_rate": [0.2], "avg_daily_trips": [3]}
FEATURES = ["driver_hourly_stats:conv_rate"]


def _push(df: Any, **extra: Any) -> dict[str, Any]:
    return {"push_source_name": "driver_stats_push_source", "df": df, **extra}


def _row(**changes: Any) -> dict[str, Any]:
    row = {k: v for k, v in GOOD_ROW.items() if k not in changes}
    row.update({k: v for k, v in changes.items() if v is not None})
    return row


BAD_REQUESTS: list[tuple[str, str, Any, int, str]] = [
    # (id, path, body: bytes or JSON, status, error kind)
    ("malformed-json", "/get-online-features", b'{"features": [', 400, "malformed_json"),
    ("empty-body", "/get-online-features", b"", 400, "malformed_json"),
    ("not-utf8", "/get-online-features", b"\xff\xfe{}", 400, "malformed_json"),
    ("body-is-array", "/get-online-features", [FEATURES], 422, "invalid_request"),
    ("body-is-string", "/get-online-features", "driver_hourly_stats:conv_rate", 422, "invalid_request"),
    ("no-entities", "/get-online-features", {"features": FEATURES}, 422, "invalid_request"),
    ("no-features", "/get-online-features", {"entities": {"driver_id": [1001]}}, 422, "invalid_request"),
    ("features-and-service", "/get-online-features",
     {"features": FEATURES, "feature_service": "driver_activity_v1", "entities": {"driver_id": [1001]}},
     422, "invalid_request"),
    ("features-not-a-list", "/get-online-features",
     {"features": "driver_hourly_stats:conv_rate", "entities": {"driver_id": [1001]}}, 422, "invalid_request"),
    ("feature-not-a-string", "/get-online-features", {"features": [7], "entities": {"driver_id": [1001]}},
     422, "invalid_request"),
    ("reference-without-view", "/get-online-features", {"features": ["conv_rate"], "entities": {"driver_id": [1]}},
     400, "invalid_input"),
    ("unknown-view", "/get-online-features", {"features": ["nope:conv_rate"], "entities": {"driver_id": [1001]}},
     404, "not_found"),
    ("unknown-feature", "/get-online-features",
     {"features": ["driver_hourly_stats:nope"], "entities": {"driver_id": [1001]}}, 404, "not_found"),
    ("unknown-service", "/get-online-features", {"feature_service": "nope", "entities": {"driver_id": [1001]}},
     404, "not_found"),
    ("wrong-entity-key-name", "/get-online-features", {"features": FEATURES, "entities": {"driver": [1001]}},
     400, "entity_key_error"),
    ("float-entity-key", "/get-online-features", {"features": FEATURES, "entities": {"driver_id": [1.5]}},
     400, "entity_key_error"),
    ("null-entity-key", "/get-online-features", {"features": FEATURES, "entities": {"driver_id": [None]}},
     400, "entity_key_error"),
    ("object-entity-key", "/get-online-features", {"features": FEATURES, "entities": {"driver_id": [{"a": 1}]}},
     400, "entity_key_error"),
    ("entities-not-lists", "/get-online-features", {"features": FEATURES, "entities": {"driver_id": 1001}},
     422, "invalid_request"),
    ("mismatched-lengths", "/get-online-features",
     {"feature_service": "driver_activity_v1", "entities": {"driver_id": [1001, 1002], "val_to_add": [1]}},
     422, "invalid_request"),
    ("empty-entity-lists", "/get-online-features", {"features": FEATURES, "entities": {"driver_id": []}},
     422, "invalid_request"),
    ("missing-request-data", "/get-online-features",
     {"feature_service": "driver_activity_v1", "entities": {"driver_id": [1001]}}, 400, "invalid_input"),
    ("full-feature-names-not-bool", "/get-online-features",
     {"features": FEATURES, "entities": {"driver_id": [1001]}, "full_feature_names": "yes"}, 422, "invalid_request"),
    ("name-clash", "/get-online-features",
     {"features": FEATURES + ["driver_hourly_stats_fresh:conv_rate"], "entities": {"driver_id": [1001]}},
     400, "invalid_input"),
    ("push-unknown-source", "/push", {"push_source_name": "nope", "df": GOOD_ROW}, 404, "not_found"),
    ("push-to-batch-source", "/push", {"push_source_name": "driver_hourly_stats_source", "df": GOOD_ROW},
     404, "not_found"),
    ("push-missing-feature-column", "/push", _push(_row(conv_rate=None) | {}), 400, "invalid_input"),
    ("push-missing-join-key", "/push", _push({k: v for k, v in GOOD_ROW.items() if k != "driver_id"}),
     400, "invalid_input"),
    ("push-wrong-value-type", "/push", _push(_row(conv_rate=["high"])), 400, "invalid_input"),
    ("push-mixed-column", "/push", _push(_row(avg_daily_trips=[[1, 2]])), 400, "invalid_input"),
    ("push-bad-timestamp", "/push", _push(_row(event_timestamp=["yesterday"])), 400, "invalid_input"),
    ("push-mismatched-lengths", "/push", _push(_row(conv_rate=[0.1, 0.2])), 422, "invalid_request"),
    ("push-unknown-destination", "/push", _push(GOOD_ROW, to="moon"), 422, "invalid_request"),
    ("push-df-not-object", "/push", _push([GOOD_ROW]), 422, "invalid_request"),
    ("write-unknown-view", "/write-to-online-store", {"feature_view_name": "nope", "df": GOOD_ROW},
     404, "not_found"),
    ("write-wrong-key-type", "/write-to-online-store",
     {"feature_view_name": "driver_hourly_stats_fresh", "df": _row(driver_id=[1.5])}, 400, "invalid_input"),
    ("materialize-reversed-window", "/materialize",
     {"start_ts": "2024-01-02T00:00:00Z", "end_ts": "2024-01-01T00:00:00Z"}, 422, "invalid_request"),
    ("materialize-bad-timestamp", "/materialize", {"start_ts": "soon", "end_ts": NOW}, 422, "invalid_request"),
    ("materialize-unknown-view", "/materialize",
     {"start_ts": "2000-01-01T00:00:00Z", "end_ts": NOW, "feature_views": ["driver_hourly_stats", "nope"]},
     404, "not_found"),
    ("incremental-without-end", "/materialize-incremental", {"feature_views": ["driver_hourly_stats"]},
     422, "invalid_request"),
    ("body-over-limit", "/push", _push({"driver_id": [1001] * MAX_BODY}), 413, "payload_too_large"),
    ("unknown-endpoint", "/nope", {}, 404, "not_found"),
]


@pytest.mark.parametrize(("path", "body", "status", "kind"), [r[1:] for r in BAD_REQUESTS],
                         ids=[r[0] for r in BAD_REQUESTS])
def test_bad_request_gets_a_4xx_and_writes_nothing(served: Served, path: str, body: Any, status: int,
                                                   kind: str) -> None:
    before = store_state(served)
    if isinstance(body, bytes):
        response = served.http.post(path, content=body, headers={"content-type": "application/json"})
    else:
        response = served.post(path, body)
    assert (response.status_code, response.json()["error"]) == (status, kind), response.text
    assert response.json()["detail"]
    assert store_state(served) == before


def test_wrong_method_is_405_with_the_error_shape(served: Served) -> None:
    response = served.http.get("/get-online-features")
    assert response.status_code == 405
    assert response.json()["error"] == "method_not_allowed"
