"""Drift and training/serving skew on the Spark offline engine: the planted problems are caught and
clean data is not flagged, as on DuckDB (tests/monitoring/test_drift.py, test_skew.py)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from repast import FeatureStore
from repast.cli.main import app
from tests.monitoring import repo
from tests.monitoring.test_drift import REFERENCE, WINDOW_END
from tests.monitoring.test_skew import RIDERS, plant_skew, serve, serving_store

pytestmark = pytest.mark.spark


@pytest.fixture
def on_spark(spark_session: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every monitored repo of the test reads its offline data with the Spark engine."""
    original = repo.monitored_repo

    def spark_repo(root: Path, *args: object, yaml_extra: str = "", **kwargs: object) -> FeatureStore:
        spark = f"offline_store: {{type: spark, staging_location: {tmp_path / 'staging'}}}\n"
        store = original(root, *args, yaml_extra=yaml_extra + spark, **kwargs)  # type: ignore[arg-type]
        assert type(store.backends.offline_engine).__name__ == "SparkOfflineEngine"
        return store
    monkeypatch.setattr(repo, "monitored_repo", spark_repo)
    monkeypatch.setattr("tests.monitoring.test_skew.monitored_repo", spark_repo)


def test_drift_on_spark_flags_a_shifted_feature_and_not_a_clean_one(on_spark: None, tmp_path: Path) -> None:
    current = repo.trips(repo.CURRENT_DAY, 24, seed=2, shift=4.0)  # fare shifted by one standard deviation
    store = repo.monitored_repo(tmp_path, current)
    drift = {f.feature: f for f in store.check_drift(REFERENCE, timedelta(days=1), WINDOW_END).features}
    assert drift["fare"].drifted and drift["fare"].psi > 0.2 and drift["fare"].p_value < 1e-6
    assert not drift["city"].drifted and drift["city"].test == "chi2"


def test_the_drift_command_on_spark_exits_0_on_clean_data(on_spark: None, tmp_path: Path) -> None:
    repo.monitored_repo(tmp_path, repo.trips(repo.CURRENT_DAY, 24, seed=2))
    result = CliRunner().invoke(app, ["--repo", str(tmp_path), "drift", "--reference", REFERENCE, "--window", "1d",
                                      "--end", WINDOW_END.isoformat()])
    assert result.exit_code == 0, result.output
    assert "fare" in result.output and "city" in result.output


def test_skew_on_spark_is_zero_unplanted_and_caught_when_planted(on_spark: None, tmp_path: Path) -> None:
    store = serving_store(tmp_path)
    serve(store, RIDERS)
    clean = store.check_skew(sample=1000, window=timedelta(hours=1))
    assert {(f.feature, f.compared, f.mismatches, f.missing, f.extra) for f in clean.features} == {
        ("fare", 200, 0, 0, 0), ("city", 200, 0, 0, 0)}
    plant_skew(store, RIDERS[:20], shift=5.0)
    serve(store, RIDERS[:20])
    skewed = {f.feature: f for f in store.check_skew(sample=1000, window=timedelta(hours=1)).features}
    assert skewed["fare"].skewed and skewed["fare"].mismatches == 20
    assert skewed["fare"].mean_abs_diff == pytest.approx(5.0 * 20 / skewed["fare"].compared)
    assert skewed["city"].mismatches == 0
