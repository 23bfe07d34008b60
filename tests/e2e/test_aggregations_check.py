"""`repast aggregations check VIEW --sample N`: online tiles compared with training data at one time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from tests.e2e.test_cli import assert_user_error, ok, repast


def tile_end_now() -> datetime:
    """The latest 5-minute tile end, taken when the repo is made (tiles older than every window
    expire against the wall clock); the source's events are before it."""
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    return now.replace(minute=now.minute - now.minute % 5)


DEFINITIONS = """
from datetime import timedelta
from repast import Aggregation, Entity, FeatureView, Field, FileSource, PushSource
from repast.types import Float64, Int64

rider = Entity(name="rider", join_keys=["rider_id"])
rides_source = FileSource(name="rides_source", path="data/rides.parquet", timestamp_field="event_timestamp")
rides_push = PushSource(name="rides_push", batch_source=rides_source)
rides = FeatureView(name="rides", entities=[rider], source=rides_push,
                    schema=[Field(name="rider_id", dtype=Int64), Field(name="amount", dtype=Float64)],
                    aggregations=[Aggregation(column="amount", function="sum", time_window=timedelta(hours=1)),
                                  Aggregation(column="amount", function="count", time_window=timedelta(hours=1)),
                                  Aggregation(column="amount", function="max", time_window=timedelta(minutes=30))])
plain = FeatureView(name="plain", entities=[rider], source=rides_source,
                    schema=[Field(name="rider_id", dtype=Int64), Field(name="amount", dtype=Float64)])
"""


def rides(rows: list[tuple[int, datetime, float]]) -> pd.DataFrame:
    return pd.DataFrame({"rider_id": pd.Series([r[0] for r in rows], dtype="int64"),
                         "event_timestamp": pd.to_datetime([r[1] for r in rows], utc=True),
                         "amount": pd.Series([r[2] for r in rows], dtype="float64")})


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, datetime]:
    path, at = tmp_path_factory.mktemp("aggcheck"), tile_end_now()
    (path / "data").mkdir()
    (path / "feature_store.yaml").write_text("project: aggcheck\nregistry: data/registry.db\nprovider: local\n")
    (path / "rides.py").write_text(DEFINITIONS)
    rides([(r, at - timedelta(minutes=m), float(m)) for r in range(8) for m in range(1, 90, 7)]).to_parquet(
        path / "data" / "rides.parquet")
    ok(repast("apply", cwd=path))
    ok(repast("materialize", (at - timedelta(hours=3)).isoformat(), at.isoformat(), cwd=path))
    return path, at


@pytest.fixture
def repo(made: tuple[Path, datetime]) -> Path:
    return made[0]


@pytest.fixture
def at(made: tuple[Path, datetime]) -> str:
    return made[1].isoformat()


def test_materialized_tiles_agree_with_training_data(repo: Path, at: str) -> None:
    out = ok(repast("aggregations", "check", "rides", "--sample", "5", "--at", at, "--seed", "1", cwd=repo))
    assert "5 entity key(s) sampled" in out
    assert out.splitlines()[1:] == ["  sum_amount    0/5 mismatched (0.0%)", "  count_amount  0/5 mismatched (0.0%)",
                                    "  max_amount    0/5 mismatched (0.0%)"]


def test_between_tile_ends_tiles_agree_with_training_data(repo: Path, made: tuple[Path, datetime]) -> None:
    """2.5 minutes after a tile end: the 1 h windows start 55 minutes before it, on the 5-minute tile
    grid (an event 57 minutes before it counts neither online nor offline)."""
    between = (made[1] + timedelta(minutes=2, seconds=30)).isoformat()
    out = ok(repast("aggregations", "check", "rides", "--sample", "8", "--at", between, "--seed", "1", cwd=repo))
    assert out.splitlines()[1:] == ["  sum_amount    0/8 mismatched (0.0%)", "  count_amount  0/8 mismatched (0.0%)",
                                    "  max_amount    0/8 mismatched (0.0%)"]


def test_an_event_pushed_online_only_is_a_mismatch_and_exit_1(repo: Path, at: str) -> None:
    when = at
    script = ("import pandas as pd\nfrom repast import FeatureStore\n"
              f"df = pd.DataFrame({{'rider_id': [3], 'event_timestamp': pd.to_datetime(['{when}'], utc=True), "
              "'amount': [1000.0]})\n"
              "FeatureStore(repo_path='.').push('rides_push', df, to='online')\n")
    (repo / "push_once.py").write_text(script)
    try:
        import subprocess
        import sys

        subprocess.run([sys.executable, "push_once.py"], cwd=repo, check=True)
    finally:
        (repo / "push_once.py").unlink()
    result = repast("aggregations", "check", "rides", "--sample", "100", "--at", at, cwd=repo)
    assert result.returncode == 1
    assert "  sum_amount    1/8 mismatched (12.5%)  e.g. rider_id=3: online 1261.0, offline 261.0" in result.stdout
    assert "Error: 3 aggregated feature(s) of 'rides' differ between online and offline" in result.stderr


@pytest.mark.parametrize(("args", "expected"), [
    (["nope"], "nope"),
    (["plain"], "feature view 'plain' has no aggregations"),
    (["rides", "--sample", "0"], "--sample must be at least 1"),
    (["rides", "--at", "yesterday"], "--at: 'yesterday' is not an ISO-8601 time"),
])
def test_bad_input_is_one_error_line(repo: Path, args: list[str], expected: str) -> None:
    assert_user_error(repast("aggregations", "check", *args, cwd=repo), expected)
