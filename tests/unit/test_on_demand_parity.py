"""Serving computes what training computed: on-demand views give the same values online (after
materialization) as in a training frame at the same moment, in both modes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from repast import FeatureStore

EXTRA_VIEWS = '''
from repast import Field
from repast.on_demand_feature_view import on_demand_feature_view
from repast.types import Float64, Int64

from example_repo import driver_stats_fv, input_request


@on_demand_feature_view(sources=[driver_stats_fv, input_request],
                        schema=[Field(name="trips_plus_val", dtype=Int64),
                                Field(name="acc_times_two", dtype=Float64)],
                        mode="python")
def python_mode_view(inputs):
    return {"trips_plus_val": [t + v for t, v in zip(inputs["avg_daily_trips"], inputs["val_to_add"])],
            "acc_times_two": [a * 2.0 for a in inputs["driver_hourly_stats__acc_rate"]]}


@on_demand_feature_view(sources=[driver_stats_fv], schema=[Field(name="trips_halved", dtype=Int64)])
def declared_type_view(inputs):
    return pd.DataFrame({"trips_halved": inputs["avg_daily_trips"] / 2})
'''

FEATURES = ["transformed_conv_rate:conv_rate_plus_val1", "transformed_conv_rate:conv_rate_plus_val2",
            "python_mode_view:trips_plus_val", "python_mode_view:acc_times_two",
            "declared_type_view:trips_halved"]


@pytest.fixture
def store(sample_repo: Path) -> FeatureStore:
    (sample_repo / "more_views.py").write_text("import pandas as pd\n" + EXTRA_VIEWS)
    store = FeatureStore(repo_path=sample_repo)
    store.apply_repo()
    store.materialize_incremental(datetime.now(UTC))
    return store


def test_on_demand_values_online_equal_the_training_frame_at_the_same_time(store: FeatureStore) -> None:
    drivers, vals, vals2 = [1001, 1002, 1003], [1, 2, 3], [10, 20, 30]
    online = store.get_online_features(FEATURES, {"driver_id": drivers, "val_to_add": vals,
                                                  "val_to_add_2": vals2}).to_dict()
    entity_df = pd.DataFrame({"driver_id": drivers, "event_timestamp": [datetime.now(UTC) + timedelta(seconds=1)] * 3,
                              "val_to_add": vals, "val_to_add_2": vals2})
    offline = store.get_historical_features(entity_df, FEATURES).to_df()
    for ref in FEATURES:
        name = ref.split(":")[1]
        assert online[name] == pytest.approx(offline[name].tolist()), name


def test_online_on_demand_values_have_the_declared_type(store: FeatureStore) -> None:
    online = store.get_online_features(["declared_type_view:trips_halved"], {"driver_id": [1001]}).to_dict()
    assert isinstance(online["trips_halved"][0], int)
