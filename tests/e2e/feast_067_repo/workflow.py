# The workflow `feast init` writes next to the definitions (Feast calls it test_workflow.py), with
# `feast` replaced by `repast`, plus asserts on the values. apply imports it like every other file
# of the repo and must find no definitions in it and run nothing.
import json
import os
import subprocess
from datetime import datetime

import pandas as pd

from repast import FeatureStore
from repast.data_source import PushMode

DRIVERS = [1001, 1002, 1003]


def latest_rows() -> pd.DataFrame:
    """Plain pandas, the reference: per driver, the latest row of the source file."""
    df = pd.read_parquet("data/driver_stats.parquet")
    return df.sort_values(["event_timestamp", "created"]).groupby("driver_id").tail(1).set_index("driver_id")


def run_demo() -> None:
    store = FeatureStore(repo_path=".")
    print("\n--- Run repast apply ---")
    subprocess.run(["repast", "apply"], check=True)

    print("\n--- Historical features for training ---")
    fetch_historical_features_entity_df(store, for_batch_scoring=False)

    print("\n--- Historical features for batch scoring ---")
    fetch_historical_features_entity_df(store, for_batch_scoring=True)

    print("\n--- Load features into online store ---")
    store.materialize_incremental(end_date=datetime.now())

    print("\n--- Online features ---")
    fetch_online_features(store)

    print("\n--- Online features retrieved (instead) through a feature service---")
    fetch_online_features(store, source="feature_service")

    print("\n--- Online features retrieved (using feature service v3, which uses a feature view with a push source---")
    fetch_online_features(store, source="push")

    print("\n--- Simulate a stream event ingestion of the hourly stats df ---")
    event_df = pd.DataFrame.from_dict(
        {
            "driver_id": [1001],
            "event_timestamp": [datetime.now()],
            "created": [datetime.now()],
            "conv_rate": [1.0],
            "acc_rate": [1.0],
            "avg_daily_trips": [1000],
            "trip_counts": [{"berlin": 7}],
            "profile": [{"name": "pushed driver", "age": "40"}],
            "settings": ['{"night_shifts": false}'],
        }
    )
    print(event_df)
    store.push("driver_stats_push_source", event_df, to=PushMode.ONLINE_AND_OFFLINE)

    print("\n--- Online features again with updated values from a stream push---")
    pushed = fetch_online_features(store, source="push")
    assert pushed["conv_rate"][0] == 1.0 and pushed["avg_daily_trips"][0] == 1000, pushed
    assert pushed["conv_rate_plus_val1"][0] == 1001.0, pushed
    assert pushed["trip_counts"][0] == {"berlin": 7} and pushed["settings"][0] == {"night_shifts": False}, pushed
    assert pushed["profile"][0] == {"name": "pushed driver", "age": "40"}, pushed

    print("\n--- Labels from two labellers: the latest wins ---")
    store.push("driver_labels_push_source", pd.DataFrame({
        "driver_id": [1002, 1002], "is_safe": [1, 0], "labeler": ["human", "llm_judge"],
        "event_timestamp": [datetime.now() - pd.Timedelta(minutes=5), datetime.now()]}))
    labels = store.get_online_features(["driver_safety_labels:is_safe", "driver_safety_labels:labeler"],
                                       [{"driver_id": 1002}]).to_dict()
    assert labels == {"driver_id": [1002], "is_safe": [0], "labeler": ["llm_judge"]}, labels

    print("\n--- Run repast teardown ---")
    subprocess.run(["repast", "teardown"], check=True)
    print("\nWORKFLOW OK")


def fetch_historical_features_entity_df(store: FeatureStore, for_batch_scoring: bool) -> None:
    # Note: see https://docs.feast.dev/getting-started/concepts/feature-retrieval for more details on how to
    # retrieve for all entities in the offline store instead
    latest = latest_rows()
    entity_df = pd.DataFrame.from_dict(
        {
            # entity's join key -> entity values
            "driver_id": DRIVERS,
            # "event_timestamp" (reserved key) -> timestamps, as ISO text (converted as Feast does)
            "event_timestamp": [ts.isoformat() for ts in latest.loc[DRIVERS, "event_timestamp"]],
            # (optional) label name -> label values. Feast does not process these
            "label_driver_reported_satisfaction": [1, 5, 3],
            # values we're using for an on-demand transformation
            "val_to_add": [1, 2, 3],
            "val_to_add_2": [10, 20, 30],
        }
    )
    # For batch scoring, we want the latest timestamps
    if for_batch_scoring:
        entity_df["event_timestamp"] = pd.to_datetime("now", utc=True)

    training_df = store.get_historical_features(
        entity_df=entity_df,
        features=[
            "driver_hourly_stats:conv_rate",
            "driver_hourly_stats:acc_rate",
            "driver_hourly_stats:avg_daily_trips",
            "driver_hourly_stats:trip_counts",
            "driver_hourly_stats:profile",
            "transformed_conv_rate:conv_rate_plus_val1",
            "transformed_conv_rate:conv_rate_plus_val2",
        ],
    ).to_df()
    print(training_df.head())
    assert training_df["driver_id"].tolist() == DRIVERS
    assert training_df["avg_daily_trips"].tolist() == latest.loc[DRIVERS, "avg_daily_trips"].tolist()
    assert training_df["conv_rate"].tolist() == latest.loc[DRIVERS, "conv_rate"].tolist()
    assert training_df["conv_rate_plus_val1"].tolist() == [
        float(c) + v for c, v in zip(latest.loc[DRIVERS, "conv_rate"], [1, 2, 3], strict=True)]
    assert training_df["profile"].tolist() == latest.loc[DRIVERS, "profile"].tolist()


def fetch_online_features(store: FeatureStore, source: str = "") -> dict:
    entity_rows = [
        # {join_key: entity_value}
        {
            "driver_id": 1001,
            "val_to_add": 1000,
            "val_to_add_2": 2000,
        },
        {
            "driver_id": 1002,
            "val_to_add": 1001,
            "val_to_add_2": 2002,
        },
    ]
    if source == "feature_service":
        features_to_fetch = store.get_feature_service("driver_activity_v1")
    elif source == "push":
        features_to_fetch = store.get_feature_service("driver_activity_v3")
    else:
        features_to_fetch = [
            "driver_hourly_stats:acc_rate",
            "driver_hourly_stats:trip_counts",
            "driver_hourly_stats:profile",
            "driver_hourly_stats:settings",
            "transformed_conv_rate:conv_rate_plus_val1",
            "transformed_conv_rate:conv_rate_plus_val2",
        ]
    returned_features = store.get_online_features(
        features=features_to_fetch,
        entity_rows=entity_rows,
    ).to_dict()
    for key, value in sorted(returned_features.items()):
        print(key, " : ", value)
    latest = latest_rows()
    if source == "":
        assert returned_features["acc_rate"] == latest.loc[[1001, 1002], "acc_rate"].tolist()
        assert returned_features["trip_counts"] == [dict(m) for m in latest.loc[[1001, 1002], "trip_counts"]]
        assert returned_features["profile"] == latest.loc[[1001, 1002], "profile"].tolist()
        assert returned_features["settings"] == [json.loads(s) for s in latest.loc[[1001, 1002], "settings"]]
    if source == "feature_service":
        assert sorted(returned_features) == ["conv_rate", "conv_rate_plus_val1", "conv_rate_plus_val2", "driver_id"]
        assert returned_features["conv_rate"] == latest.loc[[1001, 1002], "conv_rate"].tolist()
    return returned_features


if __name__ == "__main__":
    os.chdir(os.path.dirname(os.path.abspath(__file__)))
    run_demo()
