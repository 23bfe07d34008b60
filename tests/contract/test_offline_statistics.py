"""Contract: feature statistics computed in every SQL offline engine agree with numpy on the same rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pytest

from repast.config.repo_config import MonitoringConfig
from repast.errors import ConfigError
from repast.monitoring.statistics import compute, sql_engine, view_in_range
from repast.offline.sql_base import SQLOfflineEngine
from repast.types import Bool, Float64, Int64, String
from tests.contract.offline_harness import OfflineHarness, offline, view  # noqa: F401

DAY = datetime(2024, 3, 1, tzinfo=UTC)
N = 400  # rows per day, two days


def events() -> pa.Table:
    rng = np.random.default_rng(7)
    n = 2 * N
    amount = rng.normal(10, 2, n)
    return pa.table({
        "id": pa.array(np.arange(n) % 50, pa.int64()),
        "ts": pa.array([DAY + timedelta(seconds=i * 86400 // N) for i in range(n)], pa.timestamp("us", tz="UTC")),
        "amount": pa.array([None if i % 10 == 0 else float(x) for i, x in enumerate(amount)], pa.float64()),
        "trips": pa.array(np.arange(n) % 5, pa.int64()),
        "city": pa.array([["paris", "lyon", "nice", "o'hare"][i % 4] if i % 8 else None for i in range(n)]),
        "active": pa.array([i % 3 == 0 for i in range(n)]),
        "clock": pa.array(1.7e9 + rng.normal(0, 1, n) + (np.arange(n) >= N) * 5, pa.float64()),  # mean >> stddev
    })


def statistics(offline: OfflineHarness, days: tuple[int, ...] = (2,)) -> dict[tuple[str, str], dict]:  # type: ignore[type-arg]  # noqa: F811
    """Per (feature, day) the statistics of the events over the first `days` days (several: each
    computed in turn over the same source, keyed (feature, day, days) after the first)."""
    if not isinstance(offline.engine, SQLOfflineEngine):
        pytest.skip("not implemented, because the remote engine is a client of the offline server: statistics are "
                    "computed where the engine is configured directly (test_the_remote_engine_refuses_statistics)")
    source = offline.source("events", events(), timestamp_field="ts")
    fv = view("events", source, ["id"], {"amount": Float64, "trips": Int64, "city": String, "active": Bool,
                                         "clock": Float64})
    found = {}
    for n, span in enumerate(days):
        records = compute(offline.engine, view_in_range(offline.engine, fv, DAY, DAY + timedelta(days=span)),
                          MonitoringConfig(histogram_bins=4, top_values=2))
        found.update({(r.feature, r.day, *([span] if n else [])): {"rows": r.rows, "start": r.start, "end": r.end,
                                                                  **r.values} for r in records})
    return found


def test_statistics_are_computed_per_utc_day_with_counts_and_null_rates(offline: OfflineHarness) -> None:  # noqa: F811
    stats = statistics(offline)
    assert sorted({day for _, day in stats}) == ["2024-03-01", "2024-03-02"]
    table = events().slice(0, N)
    first = stats[("amount", "2024-03-01")]
    assert (first["rows"], first["count"]) == (N, N - table.column("amount").null_count)
    assert first["null_rate"] == pytest.approx(table.column("amount").null_count / N)
    assert (first["start"], first["end"]) == (DAY, DAY + timedelta(seconds=(N - 1) * 86400 // N))
    assert stats[("city", "2024-03-01")]["null_rate"] == pytest.approx(table.column("city").null_count / N)


def test_numeric_moments_and_quantiles_match_numpy(offline: OfflineHarness) -> None:  # noqa: F811
    stats = statistics(offline)[("amount", "2024-03-01")]
    values = np.array([v for v in events().slice(0, N).column("amount").to_pylist() if v is not None])
    assert (stats["min"], stats["max"]) == (pytest.approx(values.min()), pytest.approx(values.max()))
    assert stats["mean"] == pytest.approx(values.mean())
    assert stats["stddev"] == pytest.approx(values.std(ddof=1))
    # Engines with a sketch (DuckDB, Spark) answer approximately: within a few percent of the data's spread.
    spread = values.max() - values.min()
    assert abs(stats["quantiles"]["0.5"] - np.quantile(values, 0.5)) < 0.05 * spread


def test_each_days_stddev_is_exact_even_when_the_mean_dwarfs_it(offline: OfflineHarness) -> None:  # noqa: F811
    stats = statistics(offline)
    for day, rows in (("2024-03-01", events().slice(0, N)), ("2024-03-02", events().slice(N, N))):
        for feature in ("amount", "clock"):
            values = np.array([v for v in rows.column(feature).to_pylist() if v is not None])
            assert stats[(feature, day)]["stddev"] == pytest.approx(values.std(ddof=1), rel=1e-4), (feature, day)


def test_a_one_day_range_gets_that_days_statistics(offline: OfflineHarness) -> None:  # noqa: F811
    stats = statistics(offline, days=(2, 1))
    assert sorted(key[1] for key in stats if len(key) == 3) == ["2024-03-01"] * 5  # one day, every feature
    for feature in ("amount", "clock", "trips"):
        first, alone = stats[(feature, "2024-03-01")], stats[(feature, "2024-03-01", 1)]
        assert {k: alone[k] for k in ("rows", "count", "min", "max")} == {k: first[k] for k in ("rows", "count", "min",
                                                                                                "max")}
        assert sum(alone["histogram"]["counts"]) == alone["count"]  # on the day's own bins
        assert alone["stddev"] == pytest.approx(first["stddev"], rel=1e-4)


def test_histograms_use_fixed_bins_over_the_runs_min_and_max(offline: OfflineHarness) -> None:  # noqa: F811
    stats = statistics(offline)
    trips = stats[("trips", "2024-03-01")]["histogram"]
    assert trips["edges"] == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert trips["counts"] == [N // 5, N // 5, N // 5, 2 * N // 5]  # the last bin holds its upper edge
    amounts = [stats[("amount", d)]["histogram"] for d in ("2024-03-01", "2024-03-02")]
    assert amounts[0]["edges"] == amounts[1]["edges"]  # every day on the same bins
    assert sum(amounts[0]["counts"]) == stats[("amount", "2024-03-01")]["count"]


def test_categorical_features_get_top_values_and_a_distinct_count(offline: OfflineHarness) -> None:  # noqa: F811
    stats = statistics(offline)
    city = stats[("city", "2024-03-01")]
    # paris loses half its rows to nulls; ties are broken by the value, so every engine picks the same two.
    assert city["top_values"] == [["lyon", N // 4], ["nice", N // 4]]
    assert city["other_count"] == N // 4 + N // 8
    assert city["distinct_count"] == 4
    active = stats[("active", "2024-03-01")]
    assert dict(map(tuple, active["top_values"])) == {"false": N - (N + 2) // 3, "true": (N + 2) // 3}
    assert stats[("trips", "2024-03-01")]["distinct_count"] == 5


def test_the_remote_engine_refuses_statistics(offline: OfflineHarness) -> None:  # noqa: F811
    if isinstance(offline.engine, SQLOfflineEngine):
        pytest.skip("an SQL engine computes statistics (the tests above)")
    with pytest.raises(ConfigError, match="cannot compute statistics"):
        sql_engine(offline.engine)
