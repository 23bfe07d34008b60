"""What the Kubeflow components run (repast.kubeflow.tasks), on the sample repo, without kfp."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from repast.config.repo_config import ENV_CONFIG_PATH
from repast.errors import ConfigError, InputError
from repast.kubeflow import tasks

FEATURES = ["driver_hourly_stats:conv_rate", "driver_hourly_stats:avg_daily_trips"]


def _entities(path: Path) -> Path:
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    pd.DataFrame({"driver_id": [1001, 1002, 1003, 9999],
                  "event_timestamp": [now - timedelta(hours=h) for h in (2, 3, 4, 5)],
                  "label": [1, 0, 1, 0]}).to_parquet(path)
    return path


def test_config_as_yaml_text_resolves_relative_paths_against_repo_path(sample_repo: Path) -> None:
    text = (sample_repo / "feature_store.yaml").read_text()
    store = tasks.open_store(feature_store_yaml=text, repo_path=str(sample_repo))
    assert store.project == "sample"
    assert store.config.registry_url() == "sqlite:///" + str((sample_repo / "data" / "registry.db").resolve())


def test_config_path_may_be_the_yaml_file_or_the_repo_directory(sample_repo: Path) -> None:
    for path in (sample_repo, sample_repo / "feature_store.yaml"):
        assert tasks.open_store(config_path=str(path)).config.repo_path == sample_repo.resolve()


def test_without_config_parameters_the_step_finds_the_env_configured_file(
        sample_repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_CONFIG_PATH, str(sample_repo / "feature_store.yaml"))
    store = tasks.open_store()
    assert store.config_source == f"${ENV_CONFIG_PATH}"
    assert store.project == "sample"


def test_yaml_text_and_path_together_are_refused(sample_repo: Path) -> None:
    with pytest.raises(ConfigError, match="not both"):
        tasks.open_store(feature_store_yaml="project: x\n", config_path=str(sample_repo))


def test_malformed_yaml_text_names_the_parameter() -> None:
    with pytest.raises(ConfigError, match="feature_store_yaml parameter: malformed YAML"):
        tasks.open_store(feature_store_yaml="project: [unclosed\n")


def test_time_parameters_are_iso_8601_and_utc() -> None:
    assert tasks.parse_time("2024-05-01T10:00:00", "end_date") == datetime(2024, 5, 1, 10, tzinfo=UTC)
    assert tasks.parse_time("2024-05-01T12:00:00+02:00", "end_date") == datetime(2024, 5, 1, 10, tzinfo=UTC)
    with pytest.raises(InputError, match="end_date: 'yesterday' is not an ISO-8601 time"):
        tasks.parse_time("yesterday", "end_date")


def test_materialize_refuses_an_empty_window_before_opening_the_store() -> None:
    with pytest.raises(InputError, match="must be before end_date"):
        tasks.materialize("2024-05-02T00:00:00", "2024-05-01T00:00:00", config_path="/nonexistent")


def test_apply_needs_the_repo_directory() -> None:
    with pytest.raises(InputError, match="repo_path"):
        tasks.apply_repo("")


def test_apply_registers_the_sample_definitions(sample_repo: Path) -> None:
    changes = json.loads(tasks.apply_repo(str(sample_repo)))
    assert {"op": "add", "kind": "feature_view", "name": "driver_hourly_stats", "fields": []} in changes
    assert json.loads(tasks.apply_repo(str(sample_repo))) == []


def test_training_data_keeps_entity_rows_and_adds_features(sample_repo: Path, tmp_path: Path) -> None:
    tasks.apply_repo(str(sample_repo))
    out = tmp_path / "out" / "training.parquet"
    meta = tasks.get_historical_features(str(_entities(tmp_path / "entities.parquet")), str(out),
                                         features=FEATURES, config_path=str(sample_repo))
    df = pq.read_table(out).to_pandas()
    assert list(df.columns) == ["driver_id", "event_timestamp", "label", "conv_rate", "avg_daily_trips"]
    assert df["driver_id"].tolist() == [1001, 1002, 1003, 9999]
    assert df["conv_rate"].iloc[:3].notna().all() and pd.isna(df["conv_rate"].iloc[3])
    assert meta["rows"] == 4 and meta["columns"] == list(df.columns)


def test_training_data_from_a_feature_service(sample_repo: Path, tmp_path: Path) -> None:
    tasks.apply_repo(str(sample_repo))
    entities = pd.read_parquet(_entities(tmp_path / "entities.parquet")).assign(val_to_add=1, val_to_add_2=2)
    entities.to_parquet(tmp_path / "entities_req.parquet")
    out = tmp_path / "training.parquet"
    tasks.get_historical_features(str(tmp_path / "entities_req.parquet"), str(out),
                                  feature_service="driver_activity_v1", config_path=str(sample_repo))
    assert {"conv_rate", "conv_rate_plus_val1"} <= set(pq.read_table(out).column_names)


def test_training_data_needs_exactly_one_of_features_and_service(sample_repo: Path, tmp_path: Path) -> None:
    entities = str(_entities(tmp_path / "e.parquet"))
    with pytest.raises(InputError, match="exactly one"):
        tasks.get_historical_features(entities, str(tmp_path / "o.parquet"), config_path=str(sample_repo))
    with pytest.raises(InputError, match="exactly one"):
        tasks.get_historical_features(entities, str(tmp_path / "o.parquet"), features=FEATURES,
                                      feature_service="driver_activity_v1", config_path=str(sample_repo))
