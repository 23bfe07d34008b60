"""A bad aggregation is refused by `repast plan` and `repast apply` with one Error line, before anything is written."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
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


@contextmanager
def view_file(repo: Path, view_code: str) -> Iterator[None]:
    """The repo with one more definitions file while the block runs."""
    path = repo / "aggregated.py"
    path.write_text(HEADER + view_code)
    try:
        yield
    finally:
        path.unlink()


def assert_refused(repo: Path, command: str, view_code: str, expected: str) -> None:
    """One Error line naming `expected`, and the view is not in the registry afterwards."""
    with view_file(repo, view_code):
        assert_user_error(repast(command, cwd=repo), expected)
        assert "agg_view" not in ok(repast("feature-views", "list", cwd=repo))


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
    assert_refused(repo, command, f"""
trips = FeatureView(name="agg_view", entities=[driver], source=driver_stats_source,
                    schema=[Field(name="conv_rate", dtype=Float32)], aggregations=[{aggregation}])
""", expected)


def test_aggregation_of_a_column_missing_from_an_inferred_schema_is_refused_at_apply(repo: Path) -> None:
    assert_refused(repo, "apply", """
trips = FeatureView(name="agg_view", entities=[driver], source=driver_stats_source,
                    aggregations=[Aggregation(column="fare", function="sum", time_window=timedelta(hours=1))])
""", "feature view 'agg_view': aggregation 'sum_fare' reads column 'fare', which is not in the view's schema")


def test_good_aggregated_view_applies_with_its_features(repo: Path) -> None:
    with view_file(repo, """
trips = FeatureView(name="agg_view", entities=[driver], source=driver_stats_source,
                    schema=[Field(name="avg_daily_trips", dtype=Int64)],
                    aggregations=[Aggregation(column="avg_daily_trips", function="sum",
                                              time_window=timedelta(hours=1))])
"""):
        ok(repast("apply", cwd=repo))
        assert "agg_view" in ok(repast("feature-views", "list", cwd=repo))
        assert '"function": "sum"' in ok(repast("feature-views", "describe", "agg_view", cwd=repo))
