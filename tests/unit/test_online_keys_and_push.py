"""Entity key serialization, push input checks and online store configuration parsing."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from repast import Entity, FeatureStore, FeatureView, Field, FileSource, PushMode, ValueType
from repast.errors import ConfigError, EntityKeyError, FeatureNotFound, InputError
from repast.jobs.push import push_mode
from repast.online.keys import integer_key, serialize_key_columns, serialize_request_keys, write_rows
from repast.online.redis import connection_kwargs
from repast.types import Int64, String

NOW = datetime(2024, 5, 1, tzinfo=UTC)


def test_arrow_and_request_keys_serialize_identically() -> None:
    ids, names = [1, -20, 2**62], ["a", "b,c", "é"]
    from_arrow = serialize_key_columns([pa.array(ids, pa.int64()), pa.array(names)]).to_pylist()
    assert from_arrow == serialize_request_keys([ids, names], ["id", "name"], [Int64, String])


def test_numpy_integers_are_integer_keys() -> None:
    assert serialize_request_keys([[np.int64(7)]], ["id"], [Int64]) == ["7"]


@pytest.mark.parametrize("value", ["7", 7.0, True, None])
def test_declared_integer_keys_reject_other_types(value: object) -> None:
    with pytest.raises(EntityKeyError, match="'id' must be Int64"):
        serialize_request_keys([[value]], ["id"], [Int64])


def test_undeclared_keys_accept_integers_strings_and_bytes_only() -> None:
    assert serialize_request_keys([[1, "x", b"\x01"]], ["id"], [None]) == ["1", "x", "01"]
    with pytest.raises(EntityKeyError):
        serialize_request_keys([[1.5]], ["id"], [None])


def test_an_integer_declared_key_column_with_non_integers_is_an_input_error() -> None:
    driver = Entity(name="driver", join_keys=["driver_id"], value_type=ValueType.INT64)
    view = FeatureView(name="stats", entities=[driver], source=FileSource(path="x.parquet"),
                       schema=[Field(name="trips", dtype=Int64)])
    batch = pa.table({"driver_id": ["7", "x"], "trips": [1, 2],
                      "event_timestamp": pa.array([NOW, NOW], pa.timestamp("us", tz="UTC"))})
    assert integer_key(view)
    with pytest.raises(InputError, match=r"'stats'.*'driver_id' is declared an integer"):
        write_rows(view, batch, integer_keys=True)


def test_push_modes_from_enum_and_text() -> None:
    assert push_mode(None) is PushMode.ONLINE
    assert push_mode("online_and_offline") is PushMode.ONLINE_AND_OFFLINE
    assert push_mode("OFFLINE") is PushMode.OFFLINE
    with pytest.raises(InputError):
        push_mode("both")


def test_redis_connection_string_in_feast_form() -> None:
    assert connection_kwargs("redis.local:6380,db=2,password=s3cret,ssl=true") == {
        "host": "redis.local", "port": 6380, "db": 2, "password": "s3cret", "ssl": True}
    with pytest.raises(ConfigError, match="unknown option 'timeout'"):
        connection_kwargs("localhost:6379,timeout=3")


@pytest.fixture
def store(sample_repo: Path) -> FeatureStore:
    fs = FeatureStore(repo_path=sample_repo)
    fs.apply_repo()
    return fs


def frame(**overrides: object) -> pd.DataFrame:
    data: dict[str, object] = {"driver_id": [1001], "conv_rate": pd.Series([0.5], dtype="float32"),
                               "acc_rate": pd.Series([0.5], dtype="float32"), "avg_daily_trips": [3],
                               "event_timestamp": [NOW], "created": [NOW]}
    data.update(overrides)
    return pd.DataFrame({k: v for k, v in data.items() if v is not None})


def test_push_without_a_feature_column_names_it(store: FeatureStore) -> None:
    with pytest.raises(InputError, match="acc_rate"):
        store.push("driver_stats_push_source", frame(acc_rate=None))


def test_push_without_the_timestamp_column_names_it(store: FeatureStore) -> None:
    with pytest.raises(InputError, match="event_timestamp"):
        store.push("driver_stats_push_source", frame(event_timestamp=None))


def test_push_with_null_join_keys_is_refused(store: FeatureStore) -> None:
    with pytest.raises(InputError, match="null"):
        store.push("driver_stats_push_source", frame(driver_id=pd.Series([None], dtype="Int64")))


def test_push_to_an_unknown_or_non_push_source_is_feature_not_found(store: FeatureStore) -> None:
    with pytest.raises(FeatureNotFound):
        store.push("nope", frame())
    with pytest.raises(FeatureNotFound, match="not a PushSource"):
        store.push("driver_hourly_stats_source", frame())


def test_push_offline_appends_to_the_batch_source(store: FeatureStore) -> None:
    view = store.get_feature_view("driver_hourly_stats_fresh")
    before = store.offline_engine.read_range(view, NOW, NOW.replace(year=2025)).num_rows
    store.push("driver_stats_push_source", frame(), to=PushMode.OFFLINE)
    rows = store.offline_engine.read_range(view, NOW, NOW.replace(year=2025))
    assert rows.num_rows == before + 1
    online = store.get_online_features(["driver_hourly_stats_fresh:conv_rate"], {"driver_id": [1001]})
    assert online.to_dict()["conv_rate"] == [None]  # offline only


def test_write_to_online_store_checks_types_first(store: FeatureStore) -> None:
    with pytest.raises(InputError, match="conv_rate"):
        store.write_to_online_store("driver_hourly_stats", frame(conv_rate=["high"]))
