"""The drift check as a Kubeflow Pipelines step: it fails on drift, so a retraining pipeline can gate on it."""

# No `from __future__ import annotations`: kfp reads the annotations of the pipeline function.
import json
import warnings
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from repast.errors import ThresholdCrossed
from repast.kubeflow import tasks
from tests.monitoring.repo import CURRENT_DAY, REFERENCE_START, monitored_repo, trips

REFERENCE = f"{REFERENCE_START:%Y-%m-%d}..{CURRENT_DAY:%Y-%m-%d}"
END = (CURRENT_DAY + timedelta(days=1)).isoformat()


def test_the_task_returns_the_results_on_clean_data(tmp_path: Path) -> None:
    monitored_repo(tmp_path, trips(CURRENT_DAY, 24, seed=2))
    results = json.loads(tasks.check_drift(REFERENCE, "1d", END, config_path=str(tmp_path)))
    assert {r["feature"] for r in results} == {"fare", "city"} and not any(r["drifted"] for r in results)


def test_the_task_fails_on_drift_naming_the_feature(tmp_path: Path) -> None:
    monitored_repo(tmp_path, trips(CURRENT_DAY, 24, seed=2, shift=4.0))
    with pytest.raises(ThresholdCrossed, match=r"1 feature\(s\) drifted .*rides:fare \(PSI"):
        tasks.check_drift(REFERENCE, "1d", END, config_path=str(tmp_path))
    results = json.loads(tasks.check_drift(REFERENCE, "1d", END, fail_on_drift=False, config_path=str(tmp_path)))
    assert [r["feature"] for r in results if r["drifted"]] == ["fare"]


@pytest.fixture
def kfp_local(tmp_path: Path) -> Iterator[None]:
    pytest.importorskip("kfp")
    from kfp import local

    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path / "kfp_root"),
               raise_on_error=True)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*non-Python base image.*")
        yield


@pytest.mark.slow
@pytest.mark.parametrize("shift", [0.0, 4.0])
def test_a_pipeline_gated_on_the_drift_step_stops_on_drift(tmp_path: Path, kfp_local: None, shift: float) -> None:
    from kfp import dsl

    from repast.kubeflow import components

    repo = tmp_path / "repo"
    repo.mkdir()
    monitored_repo(repo, trips(CURRENT_DAY, 24, seed=2, shift=shift))

    @dsl.pipeline(name="retrain-unless-drift")
    def gated(config: str):  # type: ignore[no-untyped-def]  # kfp: a pipeline returns no annotation
        components.check_drift(reference=REFERENCE, window="1d", end_date=END, config_path=config)

    if shift:
        with pytest.raises(RuntimeError, match="check-drift"):
            gated(config=str(repo))
    else:
        gated(config=str(repo))
