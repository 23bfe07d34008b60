"""On-demand views with write_to_online_store=True: computed when their inputs are written, stored,
and read from storage (sample repo: real DuckDB, SQLite)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from repast import FeatureStore, Field
from repast.on_demand_feature_view import on_demand_feature_view
from repast.ondemand.storage import storage_view
from repast.types import Float64

NOW = datetime.now(UTC)


def doubled_view(store: FeatureStore, view_name: str, name: str) -> Any:
    source = store.get_feature_view(view_name)

    def udf(inputs: dict[str, Any]) -> dict[str, Any]:
        return {"conv_rate_doubled": [None if c is None else c * 2 for c in inputs["conv_rate"]]}

    udf.__name__ = name
    return on_demand_feature_view(sources=[source[["conv_rate"]]], schema=[Field(name="conv_rate_doubled",
                                                                                  dtype=Float64)],
                                  mode="python", write_to_online_store=True)(udf)


@pytest.fixture
def store(sample_repo: Path) -> FeatureStore:
    fs = FeatureStore(repo_path=sample_repo)
    fs.apply_repo()
    return fs


def stored_values(store: FeatureStore, name: str, keys: list[int]) -> list[Any]:
    view = storage_view(store.get_on_demand_feature_view(name), store.registry.refresh())
    assert view is not None
    return [None if row is None else row[1] for row in
            store.online_store.read(store.project, view, [str(k) for k in keys], ["conv_rate_doubled"])]


def test_a_push_computes_and_stores_the_view(store: FeatureStore) -> None:
    store.apply([doubled_view(store, "driver_hourly_stats_fresh", "fresh_doubled")])
    store.push("driver_stats_push_source", pd.DataFrame({
        "driver_id": [1001], "conv_rate": pd.Series([0.25], dtype="float32"),
        "acc_rate": pd.Series([0.5], dtype="float32"), "avg_daily_trips": [3], "event_timestamp": [NOW],
        "created": [NOW]}))
    assert stored_values(store, "fresh_doubled", [1001, 1002]) == [0.5, None]
    out = store.get_online_features(["fresh_doubled:conv_rate_doubled"], {"driver_id": [1001, 1002]}).to_dict()
    assert out["conv_rate_doubled"] == [0.5, None]


def test_materialization_computes_and_stores_the_view(store: FeatureStore) -> None:
    store.apply([doubled_view(store, "driver_hourly_stats", "batch_doubled")])
    store.materialize(NOW - timedelta(days=30), NOW, ["driver_hourly_stats"])
    rates = store.get_online_features(["driver_hourly_stats:conv_rate"], {"driver_id": [1001, 1002]}).to_dict()
    assert stored_values(store, "batch_doubled", [1001, 1002]) == pytest.approx([2 * r for r in rates["conv_rate"]])


def test_a_view_with_request_data_is_still_computed_when_read(store: FeatureStore) -> None:
    odfv = store.get_on_demand_feature_view("transformed_conv_rate")
    assert storage_view(odfv, store.registry.contents()) is None
