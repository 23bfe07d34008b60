"""Statistics kept by day, and drift against a reference: planted drift is caught, clean data is not."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from repast import SavedDatasetFileStorage
from repast.cli.main import app
from repast.errors import InputError
from tests.monitoring.repo import CURRENT_DAY, REFERENCE_START, monitored_repo, trips

REFERENCE = f"{REFERENCE_START:%Y-%m-%d}..{CURRENT_DAY:%Y-%m-%d}"
WINDOW_END = CURRENT_DAY + timedelta(days=1)


def drift_of(tmp_path: Path, shift: float = 0.0, cities: tuple[str, ...] = ("paris", "lyon", "nice"),
             reference: str = REFERENCE, **kwargs: object) -> dict[str, object]:
    store = monitored_repo(tmp_path, trips(CURRENT_DAY, 24, seed=2, shift=shift, cities=cities), **kwargs)  # type: ignore[arg-type]
    report = store.check_drift(reference, timedelta(days=1), WINDOW_END)
    return {f.feature: f for f in report.features}


def test_clean_data_is_not_flagged(tmp_path: Path) -> None:
    drift = drift_of(tmp_path)
    assert set(drift) == {"fare", "city"}
    assert not any(f.drifted for f in drift.values())  # type: ignore[attr-defined]
    assert drift["fare"].psi < 0.05 and drift["fare"].test == "ks"  # type: ignore[attr-defined]
    assert drift["city"].test == "chi2" and drift["city"].p_value > 0.001  # type: ignore[attr-defined]


def test_a_shifted_numeric_feature_is_caught_by_psi_and_ks(tmp_path: Path) -> None:
    drift = drift_of(tmp_path, shift=4.0)  # one standard deviation
    fare = drift["fare"]
    assert fare.drifted and fare.psi > 0.2 and fare.p_value < 1e-6  # type: ignore[attr-defined]
    assert not drift["city"].drifted  # type: ignore[attr-defined]


def test_a_new_category_is_caught_by_psi_and_chi_square(tmp_path: Path) -> None:
    drift = drift_of(tmp_path, cities=("paris", "lyon", "nice", "rome", "oslo", "bern"))
    city = drift["city"]
    assert city.drifted and city.p_value < 1e-6  # type: ignore[attr-defined]
    assert city.current["other_count"] > 0  # type: ignore[attr-defined]  # the new cities, counted together


def test_a_view_tag_raises_the_psi_threshold(tmp_path: Path) -> None:
    drift = drift_of(tmp_path, shift=4.0, view_tags={"drift_psi_threshold": "50"})
    assert drift["fare"].psi_threshold == 50 and not drift["fare"].drifted  # type: ignore[attr-defined]


def test_the_monitoring_section_sets_a_p_value_threshold(tmp_path: Path) -> None:
    drift = drift_of(tmp_path, shift=0.3, yaml_extra="monitoring:\n  drift_p_value_threshold: 0.01\n")
    assert drift["fare"].psi < 0.2 and drift["fare"].drifted  # type: ignore[attr-defined]  # the KS test caught it


def test_a_saved_training_set_is_a_reference_and_its_statistics_are_kept(tmp_path: Path) -> None:
    import pandas as pd

    store = monitored_repo(tmp_path, trips(CURRENT_DAY, 24, seed=2, shift=4.0))
    entity = pd.DataFrame({"rider_id": list(range(200)) * 20,
                           "event_timestamp": [REFERENCE_START + timedelta(hours=6 * i) for i in range(20)
                                               for _ in range(200)]})
    job = store.get_historical_features(entity, ["rides:fare", "rides:city"])
    store.create_saved_dataset(job, "training", SavedDatasetFileStorage(path="data/training.parquet"))
    report = store.check_drift("dataset:training", timedelta(days=1), WINDOW_END)
    assert [f.feature for f in report.drifted] == ["fare"]
    kept = store.get_feature_statistics(scope="dataset:training")
    assert set(kept["feature"]) == {"fare", "city"} and set(kept["day"]) == {"all"}
    assert kept.set_index("feature").loc["fare", "rows"] == 4000


def test_statistics_are_kept_by_day_and_returned_as_a_dataframe(tmp_path: Path) -> None:
    store = monitored_repo(tmp_path, trips(CURRENT_DAY, 24, seed=2))
    store.compute_feature_statistics(["rides"], REFERENCE_START, REFERENCE_START + timedelta(days=3))
    store.compute_feature_statistics(["rides"], REFERENCE_START + timedelta(days=2),
                                     REFERENCE_START + timedelta(days=4))
    frame = store.get_feature_statistics(["rides"], features=["fare"], scope="source")
    assert list(frame["day"]) == ["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04"]
    assert set(frame["rows"]) == {24 * 200}
    assert frame["mean"].between(19, 21).all() and (frame["null_rate"] == 0).all()
    assert all(sum(h["counts"]) == 24 * 200 for h in frame["histogram"])


def test_a_bad_reference_is_refused_before_anything_runs(tmp_path: Path) -> None:
    store = monitored_repo(tmp_path, trips(CURRENT_DAY, 24, seed=2))
    with pytest.raises(InputError, match="neither dataset:NAME nor a time range"):
        store.check_drift("last week", timedelta(days=1), WINDOW_END)


def test_the_drift_command_prints_a_table_and_exits_3_on_drift(tmp_path: Path) -> None:
    monitored_repo(tmp_path, trips(CURRENT_DAY, 24, seed=2, shift=4.0))
    args = ["--repo", str(tmp_path), "drift", "--reference", REFERENCE, "--window", "1d",
            "--end", WINDOW_END.isoformat()]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 3, result.output
    assert "DRIFT" in result.output and "fare" in result.output


def test_the_drift_command_exits_0_on_clean_data_and_1_with_one_error_line(tmp_path: Path) -> None:
    monitored_repo(tmp_path, trips(CURRENT_DAY, 24, seed=2))
    base = ["--repo", str(tmp_path), "drift", "--reference", REFERENCE, "--end", WINDOW_END.isoformat()]
    assert CliRunner().invoke(app, base).exit_code == 0
    bad = CliRunner().invoke(app, [*base, "--window", "yesterday"])
    assert bad.exit_code == 1 and bad.output.startswith("Error: --window 'yesterday' is not a length of time")


def test_the_stats_command_computes_and_shows_kept_statistics(tmp_path: Path) -> None:
    monitored_repo(tmp_path, trips(CURRENT_DAY, 24, seed=2))
    runner = CliRunner()
    computed = runner.invoke(app, ["--repo", str(tmp_path), "stats", "compute", "--views", "rides",
                                   "--window", "1d", "--end", WINDOW_END.isoformat(), "--json"])
    assert computed.exit_code == 0, computed.output
    assert {json.loads(line)["day"] for line in computed.output.splitlines()} == {f"{CURRENT_DAY:%Y-%m-%d}"}
    shown = runner.invoke(app, ["--repo", str(tmp_path), "stats", "show", "--json"])
    assert shown.output == computed.output
    both = runner.invoke(app, ["--repo", str(tmp_path), "stats", "compute", "--window", "1d", "--start", "2024-01-01"])
    assert both.exit_code == 1 and both.output.startswith("Error: give --start or --window")
