"""A bad aggregation is refused by `repast plan` and `repast apply` with one Error line, before anything is written."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.test_cli import assert_user_error, ok, repast

HEADER = """
from datetime import timedelta
from repast import Aggregation, FeatureView, Field
from repast.types import Float32, Int64
from example_repo import driver, driver_stats_source
"""


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cwd = tmp_path_factory.mktemp("agg")
    ok(repast("init", "repo", cwd=cwd))
    ok(repast("apply", cwd=cwd / "repo"))
    return cwd / "repo"


def _with_view(repo: Path, view_code: str) -> Path:
    path = repo / "aggregated.py"
    path.write_text(HEADER + view_code)
    return path


@pytest.mark.parametrize("command", ["plan", "apply"])
@pytest.mark.parametrize(("aggregation", "expected"), [
    ('Aggregation(column="conv_rate", function="median", time_window=timedelta(hours=1))',
     "unknown function 'median'"),
    ('Aggregation(column="conv_rate", function="sum", time_window=timedelta(hours=1), '
     'slide_interval=timedelta(minutes=7))', "not a whole number of slide_interval 7m tiles"),
    ('Aggregation(column="conv_rate", function="sum", time_window=timedelta(hours=1), name="driver_id")',
     "has the name of a join key"),
])
def test_bad_aggregation_is_one_error_line(repo: Path, command: str, aggregation: str, expected: str) -> None:
    path = _with_view(repo, f"""
trips = FeatureView(name="agg_view", entities=[driver], source=driver_stats_source,
                    schema=[Field(name="conv_rate", dtype=Float32)], aggregations=[{aggregation}])
""")
    try:
        assert_user_error(repast(command, cwd=repo), expected)
        assert "agg_view" not in ok(repast("feature-views", "list", cwd=repo))
    finally:
        path.unlink()


def test_aggregation_of_a_column_missing_from_an_inferred_schema_is_refused_at_apply(repo: Path) -> None:
    path = _with_view(repo, """
trips = FeatureView(name="agg_view", entities=[driver], source=driver_stats_source,
                    aggregations=[Aggregation(column="fare", function="sum", time_window=timedelta(hours=1))])
""")
    try:
        assert_user_error(repast("apply", cwd=repo), "feature view 'agg_view': aggregation 'sum_fare' reads column "
                                                     "'fare', which is not in the view's schema")
        assert "agg_view" not in ok(repast("feature-views", "list", cwd=repo))
    finally:
        path.unlink()


def test_good_aggregated_view_applies_with_its_features(repo: Path) -> None:
    path = _with_view(repo, """
trips = FeatureView(name="agg_view", entities=[driver], source=driver_stats_source,
                    schema=[Field(name="avg_daily_trips", dtype=Int64)],
                    aggregations=[Aggregation(column="avg_daily_trips", function="sum",
                                              time_window=timedelta(hours=1))])
""")
    try:
        ok(repast("apply", cwd=repo))
        assert "agg_view" in ok(repast("feature-views", "list", cwd=repo))
        assert '"function": "sum"' in ok(repast("feature-views", "describe", "agg_view", cwd=repo))
    finally:
        path.unlink()
