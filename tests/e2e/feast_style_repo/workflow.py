# Feast repos carry a script like this next to their definitions (Feast calls it test_workflow.py);
# apply imports it like every other file and must find no definitions in it and run nothing.
import subprocess
from datetime import datetime

import pandas as pd

from repast import FeatureStore


def run_demo() -> None:
    store = FeatureStore(repo_path=".")
    print("\n--- Run repast apply ---")
    subprocess.run(["repast", "apply"], check=True)

    print("\n--- Historical features for training ---")
    entity_df = pd.DataFrame.from_dict({
        "driver_id": [1001, 1002, 1003],
        "event_timestamp": [datetime.now()] * 3,
        "val_to_add": [1, 2, 3],
        "val_to_add_2": [10, 20, 30],
    })
    training_df = store.get_historical_features(
        entity_df=entity_df,
        features=["driver_hourly_stats:conv_rate", "transformed_conv_rate:conv_rate_plus_val1"],
    ).to_df()
    print(training_df.head())


if __name__ == "__main__":
    run_demo()
