"""Thin clients: `registry_type: remote` and `online_store: {type: remote}` read through a real
feature server (uvicorn on a free loopback port, in a thread), and `GET /registry` with its ETag."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from repast.config.repo_config import parse_config
from repast.errors import ConfigError, RepastError, StoreUnavailable
from repast.store import FeatureStore
from tests.registry_backend import registry_backend

pytest.importorskip("uvicorn", reason='the feature server needs the server extra: pip install -e ".[test]"')

FEATURES = ["driver_hourly_stats:conv_rate", "driver_hourly_stats:avg_daily_trips"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ThreadServer:
    """The feature server app of `store`, served by uvicorn in a background thread."""

    def __init__(self, store: FeatureStore) -> None:
        import uvicorn

        from repast.server.app import create_app

        self.url = f"http://127.0.0.1:{_free_port()}"
        port = int(self.url.rsplit(":", 1)[1])
        self.server = uvicorn.Server(uvicorn.Config(create_app(store.backends), host="127.0.0.1", port=port,
                                                    log_level="warning", access_log=False))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ThreadServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline, "the feature server did not start"
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


def _write_server_config(repo: Path, auth: dict[str, Any] | None) -> None:
    path = repo / "feature_store.yaml"
    data = yaml.safe_load(path.read_text())
    data["registry"] = {"path": "data/registry.db", "cache_ttl_seconds": 0}
    if auth:
        data["feature_server"] = {"auth": auth}
    path.write_text(yaml.safe_dump(data))


@pytest.fixture
def served(sample_repo: Path) -> Iterator[tuple[FeatureStore, str]]:
    _write_server_config(sample_repo, None)
    store = FeatureStore(repo_path=sample_repo)
    store.apply_repo()
    with ThreadServer(store) as server:
        yield store, server.url


def client_store(url: str, tmp_path: Path, token: str | None = None, online: bool = True) -> FeatureStore:
    data: dict[str, Any] = {"project": "sample",
                            "registry": {"registry_type": "remote", "path": url, "cache_ttl_seconds": 0}}
    if token:
        data["registry"]["token"] = token
    if online:
        data["online_store"] = {"type": "remote", "path": url, **({"token": token} if token else {})}
    return FeatureStore(config=parse_config(data, "client feature_store.yaml", tmp_path))


def test_get_registry_returns_the_definitions_with_an_etag(served: tuple[FeatureStore, str]) -> None:
    store, url = served
    response = httpx.get(url + "/registry")
    assert response.status_code == 200
    body = response.json()
    assert body["project"] == "sample" and body["version"] == store.registry.version
    assert "driver_hourly_stats" in body["specs"]["feature_view"]
    again = httpx.get(url + "/registry", headers={"If-None-Match": response.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == response.headers["etag"]


def test_get_registry_of_another_project_is_404(served: tuple[FeatureStore, str]) -> None:
    response = httpx.get(served[1] + "/registry", params={"project": "other"})
    assert response.status_code == 404
    assert response.json()["error"] == "not_found" and "'sample'" in response.json()["detail"]


def test_remote_registry_lists_what_the_server_has(served: tuple[FeatureStore, str], tmp_path: Path) -> None:
    store, url = served
    client = client_store(url, tmp_path)
    assert client.config_source == "config argument"
    assert sorted(v.name for v in client.list_feature_views()) == sorted(v.name for v in store.list_feature_views())
    assert client.get_feature_service("driver_activity_v1").name == "driver_activity_v1"
    odfv = client.get_on_demand_feature_view("transformed_conv_rate")
    assert callable(odfv.udf)


def test_remote_registry_rereads_only_when_the_etag_changes(served: tuple[FeatureStore, str], tmp_path: Path) -> None:
    store, url = served
    remote = registry_backend(client_store(url, tmp_path))
    first = remote.read("sample")
    assert remote.read("sample") is first  # 304: the cached snapshot
    from repast import Entity

    store.apply([Entity(name="rider", join_keys=["rider_id"])])
    changed = remote.read("sample")
    assert changed.version == first.version + 1 and "rider" in changed.specs["entity"]


def test_remote_registry_is_read_only(served: tuple[FeatureStore, str], tmp_path: Path) -> None:
    from repast import Entity

    client = client_store(served[1], tmp_path, online=False)
    with pytest.raises(ConfigError, match="read-only"):
        registry_backend(client).apply("sample", [], 1, "me")
    with pytest.raises(ConfigError, match=r"registry_type 'remote' .* is read-only: it cannot apply"):
        client.apply([Entity(name="rider", join_keys=["rider_id"])])


def test_remote_registry_path_must_be_an_http_url(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="must be an http:// or https:// URL"):
        client_store("ftp://repast-feature-server:6566", tmp_path, online=False)


def test_unreachable_server_is_store_unavailable(tmp_path: Path) -> None:
    client = client_store(f"http://127.0.0.1:{_free_port()}", tmp_path, online=False)
    with pytest.raises(StoreUnavailable, match="cannot be reached"):
        client.list_feature_views()


def test_token_is_sent_and_required(sample_repo: Path, tmp_path: Path) -> None:
    _write_server_config(sample_repo, {"type": "token", "read_tokens": ["r-token"], "write_tokens": ["w-token"]})
    store = FeatureStore(repo_path=sample_repo)
    store.apply_repo()
    with ThreadServer(store) as server:
        assert [v.name for v in client_store(server.url, tmp_path, token="r-token", online=False)
                .list_feature_views()]
        with pytest.raises(RepastError, match="401"):
            client_store(server.url, tmp_path, online=False).list_feature_views()


def test_remote_online_store_reads_what_the_server_serves(served: tuple[FeatureStore, str], tmp_path: Path) -> None:
    store, url = served
    store.materialize(datetime.now(UTC) - timedelta(days=2), datetime.now(UTC))
    entities = {"driver_id": [1001, 1003, 9999]}
    expected = store.get_online_features(FEATURES, entities).to_dict()
    got = client_store(url, tmp_path).get_online_features(FEATURES, entities).to_dict()
    assert got["conv_rate"][:2] == pytest.approx(expected["conv_rate"][:2])
    assert got["avg_daily_trips"] == expected["avg_daily_trips"]
    assert got["conv_rate"][2] is None


def test_remote_online_store_is_read_only(served: tuple[FeatureStore, str], tmp_path: Path) -> None:
    import pandas as pd

    from repast.online.base import OnlineStore

    client = client_store(served[1], tmp_path)
    assert not isinstance(client.online_store, OnlineStore), "a reader only: no write methods to raise from"
    rows = pd.DataFrame({"driver_id": [1001], "event_timestamp": [pd.Timestamp.now(tz="UTC")]})
    with pytest.raises(ConfigError, match=r"online_store type 'remote' \(http://.*\) is read-only: it cannot "
                                          r"write_to_online_store\('driver_hourly_stats'\)"):
        client.write_to_online_store("driver_hourly_stats", rows)
    client.online_store.ping()


def test_remote_online_rows_come_from_feasts_response_shape() -> None:
    """The contract with the server: Feast's {metadata.feature_names, results[values, statuses, ...]}."""
    from repast import Entity, FeatureView, Field, FileSource
    from repast.online.remote import _entity_columns, _rows
    from repast.types import Float32, Int64

    driver = Entity(name="driver", join_keys=["driver_id"])
    view = FeatureView(name="stats", entities=[driver], schema=[Field(name="driver_id", dtype=Int64),
                                                                Field(name="rate", dtype=Float32)],
                       source=FileSource(name="s", path="s.parquet", timestamp_field="ts"))
    view.resolve_entities({"driver": driver})
    assert _entity_columns(view, ["1001", "1002"]) == {"driver_id": [1001, 1002]}
    response = {"metadata": {"feature_names": ["driver_id", "stats__rate"]},
                "results": [{"values": [1001, 1002], "statuses": ["PRESENT", "PRESENT"],
                             "event_timestamps": ["1970-01-01T00:00:00Z"] * 2},
                            {"values": [0.5, None], "statuses": ["PRESENT", "NOT_FOUND"],
                             "event_timestamps": ["2024-05-01T10:00:00Z", "1970-01-01T00:00:00Z"]}]}
    rows = _rows(response, ["stats__rate"], 2, "http://server")
    assert rows == [(int(datetime(2024, 5, 1, 10, tzinfo=UTC).timestamp() * 1_000_000), 0.5), None]


def test_zone_less_event_timestamps_from_the_server_are_read_as_utc(monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    from repast.online.remote import _epoch_us

    monkeypatch.setenv("TZ", "America/New_York")  # a local zone must not shift the value
    time.tzset()
    try:
        assert _epoch_us("2024-05-01T00:00:00") == _epoch_us("2024-05-01T00:00:00Z") == 1714521600 * 1_000_000
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_remote_online_store_reads_aggregated_features_merged_by_the_server(
        served: tuple[FeatureStore, str], tmp_path: Path) -> None:
    import pandas as pd

    from repast import Aggregation, FeatureView, Field, PushSource
    from repast.types import Int64

    store, url = served
    push = store.get_data_source("driver_stats_push_source")
    assert isinstance(push, PushSource)
    driver = store.get_entity("driver")
    view = FeatureView(name="trips_1h", entities=[driver], source=push,
                       schema=[Field(name="avg_daily_trips", dtype=Int64)],
                       aggregations=[Aggregation(column="avg_daily_trips", function=f, time_window=timedelta(hours=1))
                                     for f in ("sum", "count")])
    store.apply([view])
    now = pd.Timestamp.now(tz="UTC")
    store.write_to_online_store("trips_1h", pd.DataFrame({
        "driver_id": [1001, 1001], "event_timestamp": [now - pd.Timedelta(minutes=5), now],
        "created": [now, now], "conv_rate": [0.1, 0.2], "acc_rate": [0.1, 0.2], "avg_daily_trips": [3, 4]}))
    features = ["trips_1h:sum_avg_daily_trips", "trips_1h:count_avg_daily_trips"]
    got = client_store(url, tmp_path).get_online_features(features, {"driver_id": [1001, 1002]})
    assert got.to_dict() == {"driver_id": [1001, 1002], "sum_avg_daily_trips": [7, None],
                             "count_avg_daily_trips": [2, 0]}
    assert [s.value for s in got.statuses()["count_avg_daily_trips"]] == ["PRESENT", "NOT_FOUND"]
