"""A repo in the shape Feast 0.67's `feast init` writes (feature_store.yaml, definitions, workflow),
with `feast` replaced by `repast` and nothing else, run end to end as its user would run it."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

REPO = Path(__file__).parent / "feast_067_repo"
pytestmark = pytest.mark.slow


def generate_data(data: Path) -> None:
    """Hourly rows for drivers 1001..1005 over the last ten hours, with Map, Struct and Json columns."""
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    rows = [(d, end - timedelta(hours=h)) for d in range(1001, 1006) for h in range(10)]
    data.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({
        "driver_id": pa.array([d for d, _ in rows], pa.int64()),
        "event_timestamp": pa.array([t for _, t in rows], pa.timestamp("us", tz="UTC")),
        "created": pa.array([t + timedelta(minutes=5) for _, t in rows], pa.timestamp("us", tz="UTC")),
        "conv_rate": pa.array([(d % 100) / 10 + h / 1000 for d, h in zip([d for d, _ in rows], range(50),
                                                                          strict=True)], pa.float32()),
        "acc_rate": pa.array([0.5 + i / 100 for i in range(len(rows))], pa.float32()),
        "avg_daily_trips": pa.array([100 + i for i in range(len(rows))], pa.int64()),
        "trip_counts": pa.array([[("berlin", i), ("paris", 2 * i)] for i in range(len(rows))],
                                pa.map_(pa.string(), pa.int64())),
        "profile": pa.array([{"name": f"driver {d}", "age": str(30 + d % 10)} for d, _ in rows]),
        "settings": pa.array([json.dumps({"night_shifts": i % 2 == 0, "zones": [i]}) for i in range(len(rows))]),
    }), data / "driver_stats.parquet")
    pq.write_table(pa.table({"driver_id": pa.array([], pa.int64()), "is_safe": pa.array([], pa.int64()),
                             "labeler": pa.array([], pa.string()),
                             "event_timestamp": pa.array([], pa.timestamp("us", tz="UTC"))}),
                   data / "driver_labels.parquet")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    target = tmp_path / "feast_067_repo"
    shutil.copytree(REPO, target, ignore=shutil.ignore_patterns("__pycache__", "data"))
    generate_data(target / "data")
    return target


def test_the_repo_imports_repast_where_feast_has_feast_and_nothing_else() -> None:
    for path in REPO.glob("*.py"):
        imports = re.findall(r"^(?:from|import) (\S+)", path.read_text(), re.MULTILINE)
        assert not [i for i in imports if i.split(".")[0] == "feast"], path


def test_the_feast_067_workflow_runs_end_to_end_with_the_expected_values(repo: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "REPAST_FEATURE_STORE_YAML"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    result = subprocess.run([sys.executable, "workflow.py"], cwd=repo, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert "WORKFLOW OK" in result.stdout
    assert "Traceback" not in result.stderr


def test_apply_registers_the_project_label_view_logging_config_and_versions(repo: Path) -> None:
    from repast import FeatureStore

    store = FeatureStore(repo_path=repo)
    store.apply_repo()
    assert store.get_project("feast_067").description == "A project for driver statistics"
    assert store.get_label_view("driver_safety_labels").labeler_field == "labeler"
    logging = store.get_feature_service("driver_activity_v1").logging_config
    assert logging is not None and logging.destination.to_dict()["path"] == "data"
    assert [v.version for v in store.list_feature_view_versions("driver_hourly_stats")] == [1]
    assert store.get_feature_view("driver_hourly_stats").enable_validation
