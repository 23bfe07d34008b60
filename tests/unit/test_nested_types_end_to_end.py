"""Map, Struct, Json and Set features read from Parquet map/struct/string/list columns: typed
offline, dicts and parsed JSON online, and accepted by push (embedded DuckDB + SQLite)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from repast import Entity, FeatureStore, FeatureView, Field, FileSource, PushSource, RepoConfig
from repast.types import Json, Map, Set, String, Struct

T0 = datetime(2024, 5, 1, tzinfo=UTC)
FEATURES = ["profiles:attrs", "profiles:person", "profiles:doc", "profiles:tags"]


@pytest.fixture
def store(tmp_path: Path) -> FeatureStore:
    (tmp_path / "data").mkdir()
    pq.write_table(pa.table({
        "user_id": pa.array([1, 2], pa.int64()),
        "attrs": pa.array([[("clicks", 3), ("views", 10)], None], pa.map_(pa.string(), pa.int64())),
        "person": pa.array([{"name": "Ada", "age": "36"}, {"name": "Bob", "age": None}]),
        "doc": pa.array(['{"plan": "pro", "seats": [1, 2]}', "null"]),
        "tags": pa.array([["a", "b", "a"], []], pa.list_(pa.string())),
        "event_timestamp": pa.array([T0, T0], pa.timestamp("us", tz="UTC")),
    }), tmp_path / "data" / "profiles.parquet")
    source = FileSource(name="profiles_source", path="data/profiles.parquet", timestamp_field="event_timestamp")
    user = Entity(name="user", join_keys=["user_id"])
    view = FeatureView(name="profiles", entities=[user],
                       source=PushSource(name="profiles_push", batch_source=source),
                       schema=[Field(name="attrs", dtype=Map),
                               Field(name="person", dtype=Struct({"name": String, "age": String})),
                               Field(name="doc", dtype=Json), Field(name="tags", dtype=Set(String))])
    fs = FeatureStore(config=RepoConfig.model_validate({"project": "nested", "repo_path": tmp_path}))
    fs.apply([user, view])
    return fs


def test_offline_columns_keep_map_struct_and_json_text(store: FeatureStore) -> None:
    entity_df = pd.DataFrame({"user_id": [1, 2], "event_timestamp": [T0 + timedelta(hours=1)] * 2})
    table = store.get_historical_features(entity_df, FEATURES).to_arrow()
    assert table.schema.field("attrs").type == pa.map_(pa.string(), pa.int64())
    assert table.schema.field("person").type == pa.struct([("name", pa.string()), ("age", pa.string())])
    assert table.schema.field("doc").type == pa.string()
    assert table.column("person").to_pylist() == [{"name": "Ada", "age": "36"}, {"name": "Bob", "age": None}]
    assert table.column("tags").to_pylist() == [["a", "b"], []]


def test_online_to_dict_returns_dicts_and_parsed_json(store: FeatureStore) -> None:
    store.materialize(T0 - timedelta(days=1), T0)
    out = store.get_online_features(FEATURES, {"user_id": [1, 2]}).to_dict()
    assert out["attrs"] == [{"clicks": 3, "views": 10}, None]
    assert out["person"] == [{"name": "Ada", "age": "36"}, {"name": "Bob", "age": None}]
    assert out["doc"] == [{"plan": "pro", "seats": [1, 2]}, None]
    assert out["tags"] == [["a", "b"], []]


def test_push_accepts_dicts_and_json_text(store: FeatureStore) -> None:
    store.push("profiles_push", pd.DataFrame({
        "user_id": [3], "attrs": [{"clicks": 7}], "person": [{"name": "Cy", "age": "41"}],
        "doc": ['{"plan": "free"}'], "tags": [["x", "x"]], "event_timestamp": [T0]}))
    out = store.get_online_features(FEATURES, {"user_id": [3]}).to_dict()
    assert (out["attrs"], out["person"], out["doc"], out["tags"]) == (
        [{"clicks": 7}], [{"name": "Cy", "age": "41"}], [{"plan": "free"}], [["x"]])


def test_feature_server_json_carries_dicts_uuids_decimals_and_bytes() -> None:
    import decimal
    import json
    import uuid

    from repast.jobs.online_read import OnlineResponse
    from repast.server.responses import online_response_json

    body = json.loads(online_response_json(OnlineResponse({
        "attrs": [{"clicks": 3}], "id": [uuid.UUID(int=1)], "amount": [decimal.Decimal("1.50")], "pdf": [b"%PDF"]})))
    assert [r["values"][0] for r in body["results"]] == [
        {"clicks": 3}, "00000000-0000-0000-0000-000000000001", "1.50", "JVBERg=="]
