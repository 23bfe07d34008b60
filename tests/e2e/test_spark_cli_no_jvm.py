"""With the Spark engine, the commands that only read or write definitions (plan, apply, validate,
list, describe) start no JVM: a local file source's columns are read from its metadata, and the
engine starts Spark only when a command reads data. A command that does start Spark prints only
repast's own output unless --verbose."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytest.importorskip("pyspark", reason='the Spark engine needs the spark extra: pip install -e ".[test]"')

# Runs the commands in one process, then says whether pyspark ever launched its Java gateway.
RUN_COMMANDS = """
import json, sys
from typer.testing import CliRunner
from repast.cli.main import app
results = []
for args in json.loads(sys.argv[1]):
    outcome = CliRunner().invoke(app, args)
    results.append([args, outcome.exit_code, outcome.output[-600:]])
context = sys.modules.get("pyspark.context")
launched = context is not None and context.SparkContext._gateway is not None
print(json.dumps({"results": results, "jvm": launched}))
"""


def spark_repo(repo: Path) -> Path:
    path = repo / "feature_store.yaml"
    data = yaml.safe_load(path.read_text())
    data["offline_store"] = {"type": "spark", "spark_conf": {"spark.master": "local[1]", "spark.ui.enabled": "false",
                                                             "spark.driver.host": "127.0.0.1",
                                                             "spark.driver.bindAddress": "127.0.0.1"}}
    path.write_text(yaml.safe_dump(data))
    return repo


def test_plan_apply_list_and_describe_start_no_jvm(sample_repo: Path) -> None:
    spark_repo(sample_repo)
    commands = [["--repo", str(sample_repo), *c] for c in (
        ["plan"], ["apply"], ["validate"], ["feature-views", "list"],
        ["feature-views", "describe", "driver_hourly_stats"], ["entities", "list"], ["plan"])]
    done = subprocess.run([sys.executable, "-c", RUN_COMMANDS, json.dumps(commands)], capture_output=True,
                          text=True, timeout=600, cwd=sample_repo)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    for args, code, output in report["results"]:
        assert code == 0, f"{args}: {output}"
    assert "No changes" in report["results"][-1][2]  # the second plan: apply registered everything
    assert report["jvm"] is False, "a definitions-only command started Spark's JVM"


def test_a_command_that_starts_spark_prints_none_of_sparks_output_without_verbose(sample_repo: Path) -> None:
    import os

    from tests.conftest import _spark_missing

    missing = _spark_missing()
    if missing is not None:
        if os.environ.get("REPAST_TEST_SPARK") == "1":
            pytest.fail(f"REPAST_TEST_SPARK=1 is set but the Spark tests cannot run: {missing}")
        pytest.skip(f"Spark tests skipped: {missing}")
    spark_repo(sample_repo)
    repast = [sys.executable, "-m", "repast", "--repo", str(sample_repo)]
    subprocess.run([*repast, "apply"], check=True, capture_output=True, timeout=300)
    done = subprocess.run([*repast, "materialize", "2020-01-01T00:00:00", "2100-01-01T00:00:00"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    output = done.stdout + done.stderr
    for spark_own in (" WARN ", "log4j", "Setting default log level", "[Stage ", "NativeCodeLoader"):
        assert spark_own not in output, f"Spark's output {spark_own!r} in repast's: {output[-2000:]}"
