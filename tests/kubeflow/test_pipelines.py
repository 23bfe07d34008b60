"""The kfp components and the example pipeline, run for real with kfp.local and compiled to YAML.

kfp.local's SubprocessRunner(use_venv=False) runs every step as a subprocess of this very
interpreter (repast, kfp and scikit-learn installed), which is what the repast image provides
on a cluster; nothing is downloaded.
"""


import importlib.util
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
import yaml

kfp = pytest.importorskip("kfp", reason='kfp is in the test extra: pip install -e ".[test]"')
from kfp import dsl, local  # noqa: E402

from repast.kubeflow import components  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "kubeflow" / "pipeline.py"

pytestmark = pytest.mark.slow


def _example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("repast_kfp_example", EXAMPLE)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def kfp_local(tmp_path: Path) -> Iterator[Path]:
    root = tmp_path / "kfp_root"
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(root), raise_on_error=True)
    with warnings.catch_warnings():
        # The repast image name has no "python" in it; kfp.local warns, and runs it in-process.
        warnings.filterwarnings("ignore", message=".*non-Python base image.*")
        yield root


def test_apply_then_materialize_pipeline_runs_locally(sample_repo: Path, kfp_local: Path) -> None:
    @dsl.pipeline(name="repast-apply-materialize")
    def apply_and_materialize(repo: str):
        applied = components.apply_repo(repo_path=repo, config_path=repo)
        loaded = components.materialize_incremental(config_path=repo, feature_views=["driver_hourly_stats"])
        loaded.after(applied)

    apply_and_materialize(repo=str(sample_repo))

    from repast import FeatureStore

    store = FeatureStore(repo_path=sample_repo)
    assert "driver_hourly_stats" in [v.name for v in store.list_feature_views()]
    online = store.get_online_features(["driver_hourly_stats:conv_rate"], {"driver_id": [1001]}).to_dict()
    assert online["conv_rate"][0] is not None


def test_example_pipeline_builds_training_data_trains_and_evaluates(sample_repo: Path, kfp_local: Path) -> None:
    from repast.kubeflow.tasks import apply_repo

    apply_repo(str(sample_repo))
    pipeline = _example().build_pipeline()
    run = pipeline(config_path=str(sample_repo), rows=200)
    del run
    from tests.kubeflow.test_docs import metrics_logged

    assert {"accuracy", "roc_auc"} <= set(metrics_logged(kfp_local))
    training = [p for p in kfp_local.rglob("training_data") if p.is_file()]
    import pandas as pd

    df = pd.read_parquet(training[0])
    assert len(df) == 200 and {"conv_rate", "acc_rate", "avg_daily_trips", "trip_completed"} <= set(df.columns)
    models = [p for p in kfp_local.rglob("model") if p.is_file()]
    import joblib

    assert hasattr(joblib.load(models[0]), "predict_proba")


def test_example_pipeline_compiles_with_the_config_secret_mounted(tmp_path: Path) -> None:
    out = tmp_path / "pipeline.yaml"
    _example().main(["--output", str(out), "--config-secret", "repast-feature-store"])
    docs = list(yaml.safe_load_all(out.read_text()))
    spec, platform = docs[0], docs[1]
    assert spec["pipelineInfo"]["name"] == "repast-driver-training"
    executors = spec["deploymentSpec"]["executors"]
    assert {e["container"]["image"] for e in executors.values()} == {components.IMAGE}
    mounts = [s for ex in platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"].values()
              for s in ex.get("secretAsVolume", [])]
    assert [(m["secretName"], m["mountPath"]) for m in mounts] == [("repast-feature-store", "/etc/repast")]


def test_components_compile_and_never_install_packages_at_run_time(tmp_path: Path) -> None:
    from kfp import compiler

    for name in ("apply_repo", "materialize", "materialize_incremental", "get_historical_features", "check_drift"):
        path = tmp_path / f"{name}.yaml"
        compiler.Compiler().compile(getattr(components, name), str(path))
        container = next(iter(yaml.safe_load(path.read_text())["deploymentSpec"]["executors"].values()))["container"]
        program = " ".join(container["command"] + container.get("args", []))
        assert "pip install" not in program, name
        assert "from repast.kubeflow.tasks import" in program, name

