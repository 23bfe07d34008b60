"""get_online_features, push and write_to_online_store through FeatureStore, on every online store.

The sample repo (`repast init`): drivers 1001-1005, view driver_hourly_stats (ttl 1 day), the
on-demand view transformed_conv_rate with request data, service driver_activity_v1 and push
source driver_stats_push_source feeding driver_hourly_stats_fresh.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
import yaml

from repast import FeatureStore
from repast.errors import EntityKeyError, InputError
from repast.jobs.online_read import FieldStatus
from repast.jobs.push import PushMode
from tests.contract.test_online_store import STORES, drop_postgres_schema, f32, online_store_config

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest, sample_repo: Path, tmp_path: Path,
          unique_name: str) -> Iterator[FeatureStore]:
    config = online_store_config(request.param, request, tmp_path, unique_name)
    yaml_path = sample_repo / "feature_store.yaml"
    data = yaml.safe_load(yaml_path.read_text())
    data.update(project=unique_name, online_store=config)
    yaml_path.write_text(yaml.safe_dump(data))
    fs = FeatureStore(repo_path=sample_repo)
    fs.apply_repo()
    yield fs
    fs.teardown()
    fs.online_store.close()
    if request.param == "postgres":
        drop_postgres_schema(config["url"], unique_name)


def stats_frame(rows: list[tuple[int, float | None, int, datetime]]) -> pd.DataFrame:
    """Rows (driver_id, conv_rate, avg_daily_trips, event time) in the batch source's columns."""
    return pd.DataFrame({
        "driver_id": pd.Series([r[0] for r in rows], dtype="int64"),
        "conv_rate": pd.Series([r[1] for r in rows], dtype="float32"),
        "acc_rate": pd.Series([0.5] * len(rows), dtype="float32"),
        "avg_daily_trips": pd.Series([r[2] for r in rows], dtype="int64"),
        "event_timestamp": pd.to_datetime([r[3] for r in rows], utc=True),
        "created": pd.to_datetime([r[3] for r in rows], utc=True),
    })


def test_every_status_and_the_ttl(store: FeatureStore) -> None:
    store.write_to_online_store("driver_hourly_stats", stats_frame([
        (1001, 0.5, 10, NOW - timedelta(hours=1)),
        (1002, 0.25, 20, NOW - timedelta(days=2)),  # older than the 1-day ttl
        (1003, None, 30, NOW - timedelta(hours=1)),
    ]))
    response = store.get_online_features(["driver_hourly_stats:conv_rate", "driver_hourly_stats:avg_daily_trips"],
                                         [{"driver_id": d} for d in (1001, 1002, 1003, 1004)])
    assert response.to_dict() == {"driver_id": [1001, 1002, 1003, 1004], "conv_rate": [0.5, 0.25, None, None],
                                  "avg_daily_trips": [10, 20, 30, None]}
    ok, old, null, missing = (FieldStatus.PRESENT, FieldStatus.OUTSIDE_MAX_AGE, FieldStatus.NULL_VALUE,
                              FieldStatus.NOT_FOUND)
    assert response.statuses() == {"driver_id": [ok, ok, ok, ok], "conv_rate": [ok, old, null, missing],
                                   "avg_daily_trips": [ok, old, ok, missing]}
    stamps = response.event_timestamps()["conv_rate"]
    assert stamps == [NOW - timedelta(hours=1), NOW - timedelta(days=2), NOW - timedelta(hours=1), None]


def test_feature_service_with_on_demand_view_and_request_data(store: FeatureStore) -> None:
    store.write_to_online_store("driver_hourly_stats", stats_frame([(1001, 0.5, 10, NOW), (1002, 0.25, 20, NOW)]))
    service = store.get_feature_service("driver_activity_v1")
    response = store.get_online_features(service, {"driver_id": [1001, 1002], "val_to_add": [1, 2],
                                                   "val_to_add_2": [10, 20]})
    assert response.to_dict() == {"driver_id": [1001, 1002], "conv_rate": [0.5, 0.25],
                                  "conv_rate_plus_val1": [1.5, 2.25], "conv_rate_plus_val2": [10.5, 20.25]}


def test_push_online_writes_every_view_of_the_source_and_keeps_the_latest(store: FeatureStore) -> None:
    store.push("driver_stats_push_source", stats_frame([(1001, 0.75, 5, NOW)]), to=PushMode.ONLINE)
    store.push("driver_stats_push_source", stats_frame([(1001, 0.1, 1, NOW - timedelta(hours=1))]))
    response = store.get_online_features(["driver_hourly_stats_fresh:conv_rate"], [{"driver_id": 1001}])
    assert response.to_dict() == {"driver_id": [1001], "conv_rate": [0.75]}


def test_push_with_a_wrong_column_type_writes_nothing(store: FeatureStore) -> None:
    frame = stats_frame([(1001, 0.75, 5, NOW)])
    frame["avg_daily_trips"] = ["many"]
    with pytest.raises(InputError, match="avg_daily_trips"):
        store.push("driver_stats_push_source", frame)
    response = store.get_online_features(["driver_hourly_stats_fresh:conv_rate"], [{"driver_id": 1001}])
    assert response.statuses()["conv_rate"] == [FieldStatus.NOT_FOUND]


def test_missing_join_key_is_an_entity_key_error(store: FeatureStore) -> None:
    with pytest.raises(EntityKeyError, match="driver_id"):
        store.get_online_features(["driver_hourly_stats:conv_rate"], [{"driver": 1001}])


def test_float32_values_read_back_identically_on_every_store(store: FeatureStore) -> None:
    store.write_to_online_store("driver_hourly_stats", stats_frame([(1001, 0.1, 10, NOW)]))
    response = store.get_online_features(["driver_hourly_stats:conv_rate"], {"driver_id": [1001]})
    assert response.to_dict()["conv_rate"] == [f32(0.1)]
