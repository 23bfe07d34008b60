"""docs/kubeflow.md as a user runs it: its shell commands, then its Python cells, in order.

The notebook's mounted Secret is stood in for by $REPAST_FEATURE_STORE_YAML pointing at the
sample repo the guide creates. Commands that need a cluster (`kubectl apply`, `kubectl create`)
are not run; the test checks what they name exists, and tests/deploy checks the manifests.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "kubeflow.md"
CLUSTER_ONLY = ("kubectl apply", "kubectl -n")

pytestmark = pytest.mark.slow


def metrics_logged(outputs: Path) -> dict[str, float]:
    """The evaluate step's Metrics artifact: kfp.local records it in the step's executor output."""
    import json

    for path in outputs.rglob("executor_output.json"):
        for artifact in json.loads(path.read_text()).get("artifacts", {}).get("metrics", {}).get("artifacts", []):
            return dict(artifact["metadata"])
    raise AssertionError(f"no metrics artifact under {outputs}")


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", GUIDE.read_text(), re.S)


def commands() -> list[str]:
    return [line.strip() for block in blocks("bash") for line in block.splitlines() if line.strip()]


def test_cluster_commands_name_files_that_exist() -> None:
    cluster = [c for c in commands() if c.startswith(CLUSTER_ONLY)]
    assert cluster, "the guide installs the manifests with kubectl"
    for command in cluster:
        for path in re.findall(r"(?:-k|-f) (\S+)", command):
            assert (ROOT / path).exists(), f"{command}: {path} does not exist"


def test_the_guide_runs_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("kfp")
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    (tmp_path / "deploy").symlink_to(ROOT / "deploy")
    env = {**os.environ, "REPAST_FEATURE_STORE_YAML": str(tmp_path / "driver_repo" / "feature_store.yaml"),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    outputs = {}
    for command in commands():
        if command.startswith(CLUSTER_ONLY):
            continue
        argv = shlex.split(command)
        if argv[0] == "kubectl" and shutil.which("kubectl") is None:
            continue  # tests/deploy reports the missing kubectl
        if argv[0] == "python":
            argv[0] = sys.executable
        done = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"`{command}` failed:\n{done.stdout}\n{done.stderr}"
        outputs[command] = done.stdout
    assert "$REPAST_FEATURE_STORE_YAML" in outputs["repast config show"]
    assert (tmp_path / "driver_training_pipeline.yaml").exists()

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("REPAST_FEATURE_STORE_YAML", env["REPAST_FEATURE_STORE_YAML"])
    monkeypatch.setattr(sys, "path", list(sys.path))
    namespace: dict[str, object] = {}
    for cell in blocks("python"):
        exec(compile(cell, str(GUIDE), "exec"), namespace)  # noqa: S102
    training_df = namespace["training_df"]
    assert list(training_df.columns)[-3:] == ["conv_rate", "acc_rate", "avg_daily_trips"]  # type: ignore[attr-defined]
    assert metrics_logged(tmp_path / "local_outputs")["accuracy"] >= 0
