"""get_online_features details on the embedded store: shapes, caching, key checks, responses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from repast import Entity, FeatureService, FeatureStore, FeatureView, Field, ValueType
from repast.errors import EntityKeyError, FeatureNotFound, InputError
from repast.jobs.online_read import FieldStatus, OnlineResponse, read_plan
from repast.types import Float32, Int64

NOW = datetime.now(UTC).replace(microsecond=0)
FEATURES = ["driver_hourly_stats:conv_rate", "driver_hourly_stats:avg_daily_trips"]


@pytest.fixture
def store(sample_repo: Path) -> FeatureStore:
    fs = FeatureStore(repo_path=sample_repo)
    fs.apply_repo()
    fs.write_to_online_store("driver_hourly_stats", pd.DataFrame({
        "driver_id": [1001, 1002], "conv_rate": pd.Series([0.5, 0.25], dtype="float32"),
        "acc_rate": pd.Series([1.0, 1.0], dtype="float32"), "avg_daily_trips": [10, 20],
        "event_timestamp": [NOW, NOW], "created": [NOW, NOW]}))
    return fs


def test_list_of_dicts_and_dict_of_lists_give_the_same_response(store: FeatureStore) -> None:
    a = store.get_online_features(FEATURES, [{"driver_id": 1001}, {"driver_id": 1002}]).to_dict()
    b = store.get_online_features(FEATURES, {"driver_id": [1001, 1002]}).to_dict()
    assert a == b == {"driver_id": [1001, 1002], "conv_rate": [0.5, 0.25], "avg_daily_trips": [10, 20]}


def test_features_come_in_request_order_after_the_join_keys(store: FeatureStore) -> None:
    response = store.get_online_features(list(reversed(FEATURES)), {"driver_id": [1001]})
    assert response.feature_names == ["driver_id", "avg_daily_trips", "conv_rate"]


def test_full_feature_names_prefix_the_view(store: FeatureStore) -> None:
    response = store.get_online_features(FEATURES, {"driver_id": [1001]}, full_feature_names=True)
    assert list(response.to_dict()) == ["driver_id", "driver_hourly_stats__conv_rate",
                                        "driver_hourly_stats__avg_daily_trips"]


def test_the_read_plan_is_cached_until_the_registry_changes(store: FeatureStore) -> None:
    first = read_plan(store.registry, FEATURES, False)
    assert read_plan(store.registry, list(FEATURES), False) is first
    assert read_plan(store.registry, FEATURES, True) is not first
    store.apply([Entity(name="rider", join_keys=["rider_id"])])
    assert read_plan(store.registry, FEATURES, False) is not first


def test_join_key_maps_read_the_mapped_request_column(store: FeatureStore) -> None:
    view = store.get_feature_view("driver_hourly_stats")
    mapped = view[["conv_rate"]].with_join_key_map({"driver_id": "origin"})
    service = FeatureService(name="by_origin", features=[mapped])
    store.apply([service])
    response = store.get_online_features(store.get_feature_service("by_origin"), {"origin": [1002, 1001]})
    assert response.to_dict() == {"origin": [1002, 1001], "conv_rate": [0.25, 0.5]}


def test_a_key_of_the_wrong_type_is_an_entity_key_error(store: FeatureStore) -> None:
    typed = Entity(name="typed_driver", join_keys=["driver_id"], value_type=ValueType.INT64)
    source = store.get_feature_view("driver_hourly_stats").source
    store.apply([typed, FeatureView(name="typed", entities=[typed], source=source,
                                    schema=[Field(name="conv_rate", dtype=Float32)])])
    with pytest.raises(EntityKeyError, match=r"driver_id.*Int64"):
        store.get_online_features(["typed:conv_rate"], {"driver_id": ["1001"]})
    with pytest.raises(EntityKeyError, match="driver_id"):
        store.get_online_features(FEATURES, {"driver_id": [1001.5]})


def test_a_key_typed_only_by_its_source_column_refuses_a_string(store: FeatureStore) -> None:
    untyped = Entity(name="untyped_driver", join_keys=["driver_id"])  # no value_type, as in most Feast repos
    source = store.get_feature_view("driver_hourly_stats").source
    store.apply([untyped, FeatureView(name="untyped", entities=[untyped], source=source,
                                      schema=[Field(name="conv_rate", dtype=Float32)])])
    with pytest.raises(EntityKeyError, match=r"join key 'driver_id' must be Int64, got 'abc' \(str\)"):
        store.get_online_features(["untyped:conv_rate"], {"driver_id": ["abc"]})


def test_missing_request_data_is_an_input_error(store: FeatureStore) -> None:
    with pytest.raises(InputError, match="val_to_add"):
        store.get_online_features(store.get_feature_service("driver_activity_v1"), {"driver_id": [1001]})


@pytest.mark.parametrize("bad", [["x"], [True], [1.5], [b"1"]])
def test_request_data_of_the_wrong_type_is_an_input_error(store: FeatureStore, bad: list[object]) -> None:
    with pytest.raises(InputError, match=r"request data 'val_to_add' .*must be Int64"):
        store.get_online_features(store.get_feature_service("driver_activity_v1"),
                                  {"driver_id": [1001], "val_to_add": bad, "val_to_add_2": [1]})


def test_unknown_features_are_feature_not_found(store: FeatureStore) -> None:
    with pytest.raises(FeatureNotFound):
        store.get_online_features(["driver_hourly_stats:nope"], {"driver_id": [1001]})


def test_columns_of_different_lengths_are_an_input_error(store: FeatureStore) -> None:
    with pytest.raises(InputError, match="lengths"):
        store.get_online_features(store.get_feature_service("driver_activity_v1"),
                                  {"driver_id": [1001, 1002], "val_to_add": [1], "val_to_add_2": [1, 2]})


def test_no_entity_rows_give_empty_columns(store: FeatureStore) -> None:
    assert store.get_online_features(FEATURES, {"driver_id": []}).to_dict() == {
        "driver_id": [], "conv_rate": [], "avg_daily_trips": []}


def test_to_arrow_uses_the_declared_types(store: FeatureStore) -> None:
    table = store.get_online_features(FEATURES, {"driver_id": [1001, 9999]}).to_arrow()
    assert table.schema.field("conv_rate").type == pa.float32()
    assert table.schema.field("avg_daily_trips").type == pa.int64()
    assert table.column("avg_daily_trips").to_pylist() == [10, None]


def test_to_df_has_one_row_per_entity(store: FeatureStore) -> None:
    df = store.get_online_features(FEATURES, {"driver_id": [1001, 1002]}).to_df()
    assert df.shape == (2, 3)


def test_feast_dict_round_trips(store: FeatureStore) -> None:
    response = store.get_online_features(FEATURES, {"driver_id": [1001, 9999]})
    body = response.to_feast_dict()
    assert body["metadata"]["feature_names"] == ["driver_id", "conv_rate", "avg_daily_trips"]
    assert body["results"][1]["statuses"] == ["PRESENT", "NOT_FOUND"]
    again = OnlineResponse.from_feast_dict(body)
    assert again.to_dict() == response.to_dict()
    assert again.statuses() == response.statuses()
    assert again.event_timestamps() == response.event_timestamps()


def test_on_demand_python_mode_runs_on_the_read_values(store: FeatureStore) -> None:
    from repast.on_demand_feature_view import on_demand_feature_view

    view = store.get_feature_view("driver_hourly_stats")

    @on_demand_feature_view(sources=[view], schema=[Field(name="trips_x2", dtype=Int64)], mode="python")
    def doubled(inputs: dict[str, list[int]]) -> dict[str, list[int]]:
        return {"trips_x2": [t * 2 for t in inputs["avg_daily_trips"]]}

    store.apply([doubled])
    response = store.get_online_features(["doubled:trips_x2"], {"driver_id": [1001, 1002]})
    assert response.to_dict() == {"driver_id": [1001, 1002], "trips_x2": [20, 40]}
    assert response.statuses()["trips_x2"] == [FieldStatus.PRESENT, FieldStatus.PRESENT]


def test_outside_max_age_still_returns_the_value(store: FeatureStore) -> None:
    old = NOW - timedelta(days=3)
    store.write_to_online_store("driver_hourly_stats", pd.DataFrame({
        "driver_id": [1003], "conv_rate": pd.Series([0.75], dtype="float32"),
        "acc_rate": pd.Series([1.0], dtype="float32"), "avg_daily_trips": [5],
        "event_timestamp": [old], "created": [old]}))
    response = store.get_online_features(FEATURES, {"driver_id": [1003]})
    assert response.to_dict()["conv_rate"] == [0.75]
    assert response.statuses()["conv_rate"] == [FieldStatus.OUTSIDE_MAX_AGE]
