"""A library call prints nothing: DuckDB's progress bar (which it writes to stdout, TTY or not,
for a query running over 2 s) is off unless `offline_store.progress_bar: true` asks for it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

# A point-in-time join of 1.5M entity rows over 4M feature rows on one DuckDB thread: several seconds.
SCRIPT = r'''
import re, sys
from datetime import UTC, datetime
from pathlib import Path
import numpy as np, pandas as pd, pyarrow as pa, pyarrow.parquet as pq
from repast.cli.scaffold import init_repo
from repast.store import FeatureStore

repo = init_repo(Path(sys.argv[1]) / "repo", "quiet")
config = repo / "feature_store.yaml"
asked = "\n  progress_bar: true\n  progress_bar_after_seconds: 0"  # drawn at once: no timing involved
settings = "offline_store:\n  type: duckdb\n  threads: 1" + (asked if sys.argv[2] == "asked" else "")
config.write_text(re.sub(r"offline_store:\n  type: duckdb[^\n]*", settings, config.read_text()))
n, m = 4_000_000, 1_500_000
rng = np.random.default_rng(0)
now = pd.Timestamp(datetime(2024, 1, 1, tzinfo=UTC))
ts = now - pd.to_timedelta(rng.integers(0, 86400 * 30, n), unit="s")
pq.write_table(pa.table({"driver_id": rng.integers(0, m, n), "event_timestamp": ts,
                         "conv_rate": rng.random(n).astype("float32"), "acc_rate": rng.random(n).astype("float32"),
                         "avg_daily_trips": rng.integers(0, 100, n), "created": ts}),
               repo / "data" / "driver_stats.parquet")
store = FeatureStore(repo)
store.apply_repo()
entity_df = pd.DataFrame({"driver_id": np.arange(m), "event_timestamp": now})
table = store.get_historical_features(entity_df, ["driver_hourly_stats:conv_rate"]).to_arrow()
assert table.num_rows == m
'''


def _stdout(tmp_path: Path, mode: str) -> str:
    result = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / mode), mode], capture_output=True,
                            text=True, timeout=600, env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_get_historical_features_prints_nothing_to_stdout(tmp_path: Path) -> None:
    assert _stdout(tmp_path, "library") == ""


def test_the_same_query_shows_duckdbs_bar_when_asked(tmp_path: Path) -> None:
    """The control: DuckDB draws its bar for this query when asked (from its first moment), so the
    library's silence above is the setting's doing."""
    assert "%" in _stdout(tmp_path, "asked")
