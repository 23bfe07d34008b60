"""The all-remote client of a notebook: `registry_type: remote` (Feast's `host:port` path),
`offline_store: {type: remote}` and `online_store: {type: remote}` against a real feature server and a
real offline server (both in threads on free loopback ports); the quickstart workflow end to end, auth,
bounds, and errors equal to the local SDK's."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.flight as flight
import pyarrow.parquet as pq
import pytest
import yaml

from repast.config.repo_config import OfflineServerConfig, parse_config
from repast.errors import ConfigError, EntityKeyError, FeatureNotFound, InputError, StoreUnavailable
from repast.offline import flight_protocol as wire
from repast.store import FeatureStore
from tests.kubeflow.test_remote_stores import ThreadServer, _free_port
from tests.offline_server import ThreadFlightServer

pytest.importorskip("uvicorn", reason='the feature server needs the server extra: pip install -e ".[test]"')

FEATURES = ["driver_hourly_stats:conv_rate", "driver_hourly_stats:acc_rate", "driver_hourly_stats:avg_daily_trips"]
ODFV_FEATURES = ["transformed_conv_rate:conv_rate_plus_val1", "driver_hourly_stats:conv_rate"]
AUTH = {"type": "token", "read_tokens": ["r-token"], "write_tokens": ["w-token"]}


def entity_frame(rows: int = 6) -> pd.DataFrame:
    now = pd.Timestamp.now(tz="UTC").floor("s")
    return pd.DataFrame({"driver_id": [1001 + i % 5 for i in range(rows)],
                         "event_timestamp": [now - pd.Timedelta(hours=i) for i in range(rows)],
                         "val_to_add": list(range(rows)), "val_to_add_2": list(range(rows))})


@pytest.fixture
def server_store(sample_repo: Path) -> FeatureStore:
    path = sample_repo / "feature_store.yaml"
    data = yaml.safe_load(path.read_text())
    data["registry"] = {"path": "data/registry.db", "cache_ttl_seconds": 0}
    data["feature_server"] = {"auth": AUTH}
    path.write_text(yaml.safe_dump(data))
    store = FeatureStore(repo_path=sample_repo)
    store.apply_repo()
    return store


@pytest.fixture
def servers(server_store: FeatureStore) -> Iterator[tuple[str, ThreadFlightServer]]:
    with ThreadServer(server_store) as http, ThreadFlightServer(server_store.backends) as offline:
        yield http.url.removeprefix("http://"), offline


def notebook_store(servers: tuple[str, ThreadFlightServer], tmp_path: Path, token: str = "r-token",
                   offline_token: bool = True, **offline: Any) -> FeatureStore:
    """A notebook's FeatureStore: all three kinds remote, Feast's shapes, no data credentials."""
    host_port, flight_server = servers
    auth = {"token": token}
    data = {"project": "sample",
            "registry": {"registry_type": "remote", "path": host_port, "cache_ttl_seconds": 0, **auth},
            "offline_store": flight_server.client_config(**(auth if offline_token else {}), **offline),
            "online_store": {"type": "remote", "path": f"http://{host_port}", **auth}}
    return FeatureStore(config=parse_config(data, "notebook feature_store.yaml", tmp_path))


def test_all_remote_client_runs_the_quickstart_workflow(server_store: FeatureStore, servers: Any,
                                                        tmp_path: Path) -> None:
    notebook = notebook_store(servers, tmp_path)
    assert "driver_hourly_stats" in [v.name for v in notebook.list_feature_views()]
    entities = entity_frame()
    local = server_store.get_historical_features(entity_df=entities, features=FEATURES).to_df()
    remote = notebook.get_historical_features(entity_df=entities, features=FEATURES).to_df()
    pd.testing.assert_frame_equal(remote, local)
    server_store.materialize(datetime.now(UTC) - timedelta(days=2), datetime.now(UTC))
    online = notebook.get_online_features(FEATURES, {"driver_id": [1001, 1002]}).to_dict()
    assert online["avg_daily_trips"] == server_store.get_online_features(
        FEATURES, {"driver_id": [1001, 1002]}).to_dict()["avg_daily_trips"]


def test_on_demand_views_and_feature_services_match_the_local_run(server_store: FeatureStore, servers: Any,
                                                                  tmp_path: Path) -> None:
    notebook = notebook_store(servers, tmp_path)
    entities = entity_frame()
    for features in (ODFV_FEATURES, notebook.get_feature_service("driver_activity_v1")):
        local_features = features if isinstance(features, list) else server_store.get_feature_service(features.name)
        local = server_store.get_historical_features(entities, local_features, full_feature_names=True).to_df()
        remote = notebook.get_historical_features(entities, features, full_feature_names=True).to_df()
        pd.testing.assert_frame_equal(remote, local)


def test_entity_frame_as_arrow_sql_or_a_time_range_matches_the_local_run(server_store: FeatureStore, servers: Any,
                                                                          tmp_path: Path) -> None:
    notebook = notebook_store(servers, tmp_path)
    entities = pa.Table.from_pandas(entity_frame()[["driver_id", "event_timestamp"]], preserve_index=False)
    pq.write_table(entities, tmp_path / "entities.parquet")
    sql = f"SELECT * FROM read_parquet('{tmp_path / 'entities.parquet'}')"
    end = datetime.now(UTC)
    for kwargs in ({"entity_df": entities}, {"entity_df": sql},
                   {"entity_df": None, "start_date": end - timedelta(days=3), "end_date": end}):
        local = server_store.get_historical_features(features=FEATURES, **kwargs).to_arrow()
        assert notebook.get_historical_features(features=FEATURES, **kwargs).to_arrow().equals(local)


def test_to_parquet_streams_what_to_arrow_returns(servers: Any, tmp_path: Path, server_store: FeatureStore) -> None:
    notebook = notebook_store(servers, tmp_path)
    job = notebook.get_historical_features(entity_frame(40), FEATURES)
    job.to_parquet(str(tmp_path / "training.parquet"))
    assert pq.read_table(tmp_path / "training.parquet").equals(job.to_arrow())
    reader = job.to_record_batch_reader()
    assert reader.read_all().equals(job.to_arrow())


def test_results_arrive_in_batches_of_the_servers_size(server_store: FeatureStore, tmp_path: Path,
                                                       servers: Any) -> None:
    with ThreadFlightServer(server_store.backends, OfflineServerConfig(batch_rows=7)) as small:
        notebook = notebook_store((servers[0], small), tmp_path)
        batches = list(notebook.get_historical_features(entity_frame(30), FEATURES).to_batches())
    assert [b.num_rows for b in batches] == [7, 7, 7, 7, 2]


def test_saved_dataset_from_a_remote_retrieval(servers: Any, tmp_path: Path) -> None:
    from repast import SavedDatasetFileStorage

    notebook = notebook_store(servers, tmp_path)
    job = notebook.get_historical_features(entity_frame(), FEATURES)
    job.persist(SavedDatasetFileStorage(path=str(tmp_path / "saved.parquet")))
    assert pq.read_table(tmp_path / "saved.parquet").equals(job.to_arrow())


def test_write_to_offline_store_goes_through_the_server_with_a_write_token(
        server_store: FeatureStore, servers: Any, tmp_path: Path) -> None:
    when = pd.Timestamp.now(tz="UTC").floor("s") - pd.Timedelta(minutes=1)
    rows = pd.DataFrame({"driver_id": [4242], "event_timestamp": [when], "created": [when],
                         "conv_rate": [0.5], "acc_rate": [0.25], "avg_daily_trips": [7]})
    with pytest.raises(ConfigError, match="needs a write token"):
        notebook_store(servers, tmp_path).write_to_offline_store("driver_hourly_stats", rows)
    notebook_store(servers, tmp_path, token="w-token").write_to_offline_store("driver_hourly_stats", rows)
    entity = pd.DataFrame({"driver_id": [4242], "event_timestamp": [when + pd.Timedelta(seconds=1)]})
    got = server_store.get_historical_features(entity, FEATURES).to_df()
    assert got["avg_daily_trips"].tolist() == [7]


def test_unauthenticated_client_is_refused_with_a_clear_error(servers: Any, tmp_path: Path) -> None:
    notebook = notebook_store(servers, tmp_path, offline_token=False)  # the registry's token only
    with pytest.raises(ConfigError, match=r"refused the request \(unauthorized\): missing 'Authorization"):
        notebook.get_historical_features(entity_frame(), FEATURES)


def test_bad_input_is_the_error_the_local_sdk_raises(server_store: FeatureStore, servers: Any,
                                                     tmp_path: Path) -> None:
    notebook = notebook_store(servers, tmp_path)
    bad_type = entity_frame().assign(driver_id=lambda f: f.driver_id.astype(str))
    cases = [(entity_frame(), ["driver_hourly_stats:nope"], FeatureNotFound),
             (entity_frame().rename(columns={"driver_id": "driver"}), FEATURES, EntityKeyError),
             (bad_type, FEATURES, EntityKeyError),
             ("SELECT * FROM no_such_table", FEATURES, InputError)]
    for entity, features, error in cases:
        with pytest.raises(error) as local:
            server_store.get_historical_features(entity, features)
        with pytest.raises(error) as remote:
            notebook.get_historical_features(entity, features)
        assert str(remote.value) == str(local.value)


def test_an_upload_over_the_bound_is_refused(server_store: FeatureStore, servers: Any, tmp_path: Path) -> None:
    with ThreadFlightServer(server_store.backends, OfflineServerConfig(max_upload_bytes=1024)) as small:
        notebook = notebook_store((servers[0], small), tmp_path)
        with pytest.raises(InputError, match="larger than the server's bound"):
            notebook.get_historical_features(entity_frame(1000), FEATURES).to_arrow()


def test_a_request_over_the_concurrency_bound_is_busy(server_store: FeatureStore, servers: Any,
                                                      tmp_path: Path) -> None:
    with ThreadFlightServer(server_store.backends, OfflineServerConfig(max_concurrent_requests=1)) as one:
        notebook = notebook_store((servers[0], one), tmp_path)
        # A client that starts an upload and never finishes it holds the one slot.
        holder = flight.FlightClient(f"grpc+tcp://127.0.0.1:{one.port}")
        command = wire.encode_command("write_rows", source={"type": "file", "name": "held",
                                                            "path": str(tmp_path / "held"),
                                                            "timestamp_field": "event_timestamp"})
        options = flight.FlightCallOptions(headers=[(b"authorization", b"Bearer w-token")])
        writer, _ = holder.do_exchange(flight.FlightDescriptor.for_command(command), options)
        writer.begin(pa.schema([("a", pa.int64())]))
        writer.write_batch(pa.record_batch([pa.array([1])], names=["a"]))
        deadline = time.monotonic() + 20
        while True:
            try:
                notebook.get_historical_features(entity_frame(), FEATURES).to_arrow()
            except StoreUnavailable as e:
                assert "is busy" in str(e) and "--max-concurrent" in str(e)
                break
            assert time.monotonic() < deadline, "the held request never took the slot"
        writer.done_writing()  # the server's read of the upload ends, and with it the held request
        writer.close()
        holder.close()


def test_unreachable_offline_server_is_store_unavailable(servers: Any, tmp_path: Path) -> None:
    notebook = notebook_store(servers, tmp_path, port=_free_port())
    with pytest.raises(StoreUnavailable, match="offline server grpc"):
        notebook.get_historical_features(entity_frame(), FEATURES)


def test_registry_path_host_port_is_the_feature_servers_http_url() -> None:
    from repast.registry.remote import server_url

    assert server_url("repast-feature-server:6566") == "http://repast-feature-server:6566"
    assert server_url("https://features.example") == "https://features.example"


def test_an_engine_outage_on_the_server_is_store_unavailable_on_the_client(tmp_path: Path) -> None:
    from repast import Entity, FeatureView, Field, PostgreSQLSource
    from repast.jobs.backends import Backends
    from repast.types import Float32

    down = f"postgresql://postgres@127.0.0.1:{_free_port()}/test"  # nothing listens there
    backends = Backends(parse_config({"project": "t", "registry": str(tmp_path / "registry.db"),
                                      "offline_store": {"type": "postgres", "url": down}}, "server", tmp_path))
    driver = Entity(name="driver", join_keys=["driver_id"])
    view = FeatureView(name="stats", entities=[driver], schema=[Field(name="rate", dtype=Float32)],
                       source=PostgreSQLSource(name="stats", table="stats", timestamp_field="ts"))
    view.resolve_entities({"driver": driver})
    with ThreadFlightServer(backends) as server:
        client = FeatureStore(config=parse_config({"project": "t", "registry": str(tmp_path / "registry.db"),
                                                   "offline_store": server.client_config()}, "client", tmp_path))
        with pytest.raises(StoreUnavailable, match="postgres offline store: cannot connect"):
            client.backends.offline_engine.source_schema(view.batch_source)


def test_tls_client_with_the_servers_certificate_gets_the_local_result(server_store: FeatureStore, servers: Any,
                                                                       tmp_path: Path) -> None:
    from tests.e2e.test_server_auth import _self_signed

    key, cert = _self_signed(tmp_path)
    with ThreadFlightServer(server_store.backends, tls=(cert.read_bytes(), key.read_bytes())) as secure:
        notebook = notebook_store((servers[0], secure), tmp_path, scheme="grpc+tls", cert=str(cert))
        entities = entity_frame()
        pd.testing.assert_frame_equal(notebook.get_historical_features(entities, FEATURES).to_df(),
                                      server_store.get_historical_features(entities, FEATURES).to_df())


HOLD_AND_DIE = """
import os, sys
import pyarrow as pa, pyarrow.flight as flight
client = flight.FlightClient(sys.argv[1])
options = flight.FlightCallOptions(headers=[(b"authorization", b"Bearer w-token")])
writer, _ = client.do_exchange(flight.FlightDescriptor.for_command(sys.argv[2].encode()), options)
writer.begin(pa.schema([("a", pa.int64())]))
writer.write_batch(pa.record_batch([pa.array([1])], names=["a"]))
print("holding", flush=True)
sys.stdin.readline()
os._exit(0)  # gone mid-upload, without closing anything
"""


def test_a_client_that_disconnects_mid_upload_frees_its_slot(server_store: FeatureStore, servers: Any,
                                                             tmp_path: Path) -> None:
    import subprocess
    import sys

    with ThreadFlightServer(server_store.backends, OfflineServerConfig(max_concurrent_requests=1)) as one:
        notebook = notebook_store((servers[0], one), tmp_path)
        command = wire.encode_command("write_rows", source={"type": "file", "name": "held", "path": str(tmp_path / "h"),
                                                            "timestamp_field": "event_timestamp"})
        holder = subprocess.Popen([sys.executable, "-c", HOLD_AND_DIE, f"grpc+tcp://127.0.0.1:{one.port}",
                                   command.decode()], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        holder.communicate("exit\n", timeout=30)
        deadline = time.monotonic() + 20
        while True:  # the server notices the closed connection, ends the call and frees the slot
            try:
                notebook.get_historical_features(entity_frame(), FEATURES).to_arrow()
                break
            except StoreUnavailable as e:
                assert "is busy" in str(e)
                assert time.monotonic() < deadline, "the slot of the disconnected client was never freed"
                time.sleep(0.1)
