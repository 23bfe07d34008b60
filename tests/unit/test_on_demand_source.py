"""The code of an on-demand view loaded from the registry can be shown as notebooks show it
(`inspect.getsource(view.udf)`, which `dill.source.getsource` uses), even where the repo's files are not."""

from __future__ import annotations

import inspect
from pathlib import Path

import pandas as pd

from repast import FeatureStore


def test_the_source_of_a_stored_function_is_shown_without_the_repos_files(sample_repo: Path) -> None:
    FeatureStore(repo_path=sample_repo).apply_repo()
    (sample_repo / "example_repo.py").rename(sample_repo.parent / "moved_away.py")  # as on another machine
    view = FeatureStore(repo_path=sample_repo).get_on_demand_feature_view("transformed_conv_rate")
    source = inspect.getsource(view.udf)
    assert source.startswith("@on_demand_feature_view(") and "def transformed_conv_rate(" in source
    assert 'df["conv_rate_plus_val1"] = inputs["conv_rate"] + inputs["val_to_add"]' in source
    out = view.transform(pd.DataFrame({"conv_rate": [1.0], "val_to_add": [1], "val_to_add_2": [2]}))
    assert out["conv_rate_plus_val2"].tolist() == [3.0]  # the function still runs
