"""Training/serving skew: served rows replayed through point-in-time retrieval; planted skew is caught."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from repast import FeatureStore
from repast.cli.main import app
from repast.errors import InputError
from repast.server.app import create_app
from tests.monitoring.repo import REFERENCE_START, monitored_repo, trips

RIDERS = list(range(200))


def serving_store(root: Path) -> FeatureStore:
    """Four hours of rides ending an hour ago, materialized."""
    now = datetime.now(UTC)
    start = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=5)
    store = monitored_repo(root, trips(start, 4, seed=3), reference=trips(REFERENCE_START, 1, seed=1))
    store.materialize(now - timedelta(days=1), now)
    return store


def serve(store: FeatureStore, riders: list[int]) -> None:
    """Requests to the feature server for the logged service, its served rows flushed to the log."""
    server = create_app(store.backends)

    async def requests() -> None:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=server), base_url="http://test") as client:
            for i in range(0, len(riders), 50):
                body = {"feature_service": "pricing", "entities": {"rider_id": riders[i:i + 50]}}
                assert (await client.post("/get-online-features", json=body)).status_code == 200
    asyncio.run(requests())
    assert server.state.feature_server.feature_log.flush()


def plant_skew(store: FeatureStore, riders: list[int], shift: float) -> None:
    """Online-only values for `riders`: their fares shifted, newer than anything in the offline source."""
    import pandas as pd

    served = store.get_online_features(["rides:fare", "rides:city"], {"rider_id": riders}).to_df()
    store.write_to_online_store("rides", pd.DataFrame({
        "rider_id": riders, "fare": served["fare"] + shift, "city": served["city"],
        "ts": [datetime.now(UTC) - timedelta(seconds=30)] * len(riders)}))


def test_an_unskewed_store_reports_no_mismatch(tmp_path: Path) -> None:
    store = serving_store(tmp_path)
    serve(store, RIDERS)
    report = store.check_skew(sample=1000, window=timedelta(hours=1))
    assert {(f.view, f.feature) for f in report.features} == {("rides", "fare"), ("rides", "city")}
    for f in report.features:
        assert (f.sampled, f.compared, f.mismatches, f.missing, f.extra, f.skewed) == (200, 200, 0, 0, 0, False)
    assert next(f for f in report.features if f.feature == "fare").mean_abs_diff == 0


def test_online_values_shifted_from_the_offline_source_are_caught(tmp_path: Path) -> None:
    store = serving_store(tmp_path)
    plant_skew(store, RIDERS[:50], shift=1.5)
    serve(store, RIDERS)
    by_feature = {f.feature: f for f in store.check_skew(sample=1000, window=timedelta(hours=1)).features}
    fare = by_feature["fare"]
    assert (fare.mismatches, fare.mismatch_rate, fare.skewed) == (50, 0.25, True)
    assert fare.mean_abs_diff == pytest.approx(1.5 * 50 / 200)
    assert not by_feature["city"].skewed


def test_served_keys_unknown_offline_count_as_extra_served_values_as_missing(tmp_path: Path) -> None:
    import pandas as pd

    store = serving_store(tmp_path)
    store.write_to_online_store("rides", pd.DataFrame({"rider_id": [9000], "fare": [1.0], "city": ["paris"],
                                                       "ts": [datetime.now(UTC) - timedelta(seconds=30)]}))
    serve(store, [9000, 9001, 0])
    fare = next(f for f in store.check_skew(window=timedelta(hours=1)).features if f.feature == "fare")
    # 9000: served online-only (missing offline); 9001: neither side has it; 0: both agree.
    assert (fare.sampled, fare.compared, fare.missing, fare.extra, fare.mismatches) == (3, 1, 1, 0, 0)


def test_the_sample_is_chosen_by_key_hash_and_is_the_same_run_after_run(tmp_path: Path) -> None:
    store = serving_store(tmp_path)
    serve(store, RIDERS)
    first = store.check_skew(sample=20, window=timedelta(hours=1))
    again = store.check_skew(sample=20, window=timedelta(hours=1))
    assert [f.sampled for f in first.features] == [20, 20]
    assert first.features == again.features


def test_the_skew_command_exits_3_on_skew_and_keeps_the_result(tmp_path: Path) -> None:
    store = serving_store(tmp_path)
    plant_skew(store, RIDERS[:10], shift=2.0)
    serve(store, RIDERS)
    result = CliRunner().invoke(app, ["--repo", str(tmp_path), "skew", "--sample", "500", "--window", "1h"])
    assert result.exit_code == 3, result.output
    assert "SKEW" in result.output
    kept = {r.feature: r.values for r in store.registry.monitoring_records("skew")}
    assert kept["fare"]["mismatches"] == 10 and kept["city"]["mismatches"] == 0


def test_a_store_without_logged_services_is_told_so(tmp_path: Path) -> None:
    store = serving_store(tmp_path)
    with pytest.raises(InputError, match="has logged nothing yet"):
        store.check_skew(window=timedelta(hours=1))


def test_the_served_log_is_an_offline_source_with_statistics(tmp_path: Path) -> None:
    store = serving_store(tmp_path)
    serve(store, RIDERS)
    frame = store.compute_feature_statistics(served_log=True)
    assert set(frame["scope"]) == {"served_log:pricing"} and set(frame["feature"]) == {"fare", "city"}
    fare = frame.set_index("feature").loc["fare"]
    assert (fare["rows"], fare["count"], fare["null_rate"]) == (200, 200, 0.0)
    assert store.get_feature_statistics(scope="served_log:pricing")["rows"].tolist() == [200, 200]
