"""The Kubeflow Pipelines component that launches a training-data job on the Spark Operator compiles
into a pipeline (the SparkApplication it creates is checked in tests/deploy/test_spark_manifests.py)."""

# No `from __future__ import annotations`: kfp reads the annotations of pipeline functions.
from pathlib import Path

import pytest
import yaml

kfp = pytest.importorskip("kfp", reason='kfp is in the test extra: pip install -e ".[test]"')
from kfp import compiler, dsl  # noqa: E402

from repast.kubeflow.components import spark_training_data  # noqa: E402


def test_spark_training_component_compiles_into_a_pipeline(tmp_path: Path) -> None:
    @dsl.pipeline(name="spark-training")
    def pipeline(entity_path: str, output_path: str):
        spark_training_data(entity_path=entity_path, output_path=output_path, namespace="repast",
                            feature_service="driver_activity")

    compiler.Compiler().compile(pipeline, str(tmp_path / "p.yaml"))
    spec = yaml.safe_load((tmp_path / "p.yaml").read_text())
    assert "comp-spark-training-data" in spec["components"]
    assert spec["root"]["dag"]["tasks"]["spark-training-data"]["inputs"]["parameters"]["namespace"] \
        == {"runtimeValue": {"constant": "repast"}}
