"""Exact ties on (event, created): training and serving pick the same row, the last in the source.

The source's order is its files in order (the original file, then parts in the order they were
written) and the rows in each file in order, so a correction written later wins everywhere.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from repast import FeatureStore

NOW = datetime.now(UTC).replace(microsecond=0)
TIED = NOW - timedelta(minutes=10)


def rows(conv_rates: list[float], driver: int = 1001) -> pa.Table:
    n = len(conv_rates)
    return pa.table({"driver_id": pa.array([driver] * n, pa.int64()),
                     "event_timestamp": pa.array([TIED] * n, pa.timestamp("us", tz="UTC")),
                     "created": pa.array([TIED] * n, pa.timestamp("us", tz="UTC")),
                     "conv_rate": pa.array(conv_rates, pa.float32()), "acc_rate": pa.array([0.5] * n, pa.float32()),
                     "avg_daily_trips": pa.array([1] * n, pa.int64())})


@pytest.fixture
def store(sample_repo: Path) -> FeatureStore:
    fs = FeatureStore(sample_repo)
    fs.apply_repo()
    return fs


def training_and_serving(store: FeatureStore, driver: int = 1001) -> tuple[float, float]:
    entity_df = pd.DataFrame({"driver_id": [driver], "event_timestamp": [NOW]})
    training = store.get_historical_features(entity_df, ["driver_hourly_stats:conv_rate"]).to_df()
    store.materialize(NOW - timedelta(days=1), NOW, ["driver_hourly_stats"])
    online = store.get_online_features(["driver_hourly_stats:conv_rate"], {"driver_id": [driver]}).to_dict()
    return float(training["conv_rate"][0]), float(online["conv_rate"][0])


def test_of_tied_rows_in_one_write_the_last_wins_in_training_and_serving(store: FeatureStore) -> None:
    store.write_to_offline_store("driver_hourly_stats", rows([0.25, 0.75, 0.5]))
    assert training_and_serving(store) == (0.5, 0.5)


def test_a_tied_row_written_later_wins_in_training_and_serving(store: FeatureStore) -> None:
    for rate in (0.75, 0.25, 0.5, 0.125):
        store.push("driver_stats_push_source", rows([rate]), to="offline")
    assert training_and_serving(store) == (0.125, 0.125)
