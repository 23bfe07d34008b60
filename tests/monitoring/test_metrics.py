"""The feature server's /metrics: per view freshness, and the last drift, skew and statistics results."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta
from pathlib import Path

import httpx

from repast import FeatureStore
from repast.server.app import create_app
from tests.monitoring.test_skew import RIDERS, plant_skew, serve, serving_store

Sample = tuple[str, frozenset[tuple[str, str]]]


def key(name: str, **labels: str) -> Sample:
    return name, frozenset(labels.items())


def scrape(store: FeatureStore) -> dict[Sample, float]:
    """Every sample of /metrics as (name, labels) -> value."""
    async def get() -> str:
        transport = httpx.ASGITransport(app=create_app(store.backends))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return (await client.get("/metrics")).text
    samples = {}
    for line in asyncio.run(get()).splitlines():
        match = re.fullmatch(r"(\w+)(?:\{(.*)\})? (\S+)", line)
        if match and not line.startswith("#"):
            labels = frozenset(re.findall(r'(\w+)="([^"]*)"', match.group(2) or ""))
            samples[(match.group(1), labels)] = float(match.group(3))
    return samples


def test_the_age_of_the_newest_online_value_is_a_gauge_per_view(tmp_path: Path) -> None:
    store = serving_store(tmp_path)
    age = scrape(store)[key("repast_online_newest_value_age_seconds", feature_view="rides")]
    assert 2 * 3600 <= age <= 4 * 3600  # the newest row is 2-3 hours old (more if the hour turned since)
    assert key("repast_feature_age_seconds", feature_view="rides") in scrape(store)


def test_the_last_skew_and_statistics_results_are_gauges(tmp_path: Path) -> None:
    store = serving_store(tmp_path)
    plant_skew(store, RIDERS[:50], shift=1.0)
    serve(store, RIDERS)
    store.check_skew(window=timedelta(hours=1))
    store.compute_feature_statistics(served_log=True)
    samples = scrape(store)
    labels = {"feature_service": "pricing", "feature_view": "rides"}
    assert samples[key("repast_skew_mismatch_rate", **labels, feature="fare")] == 0.25
    assert samples[key("repast_skew_detected", **labels, feature="fare")] == 1
    assert samples[key("repast_skew_detected", **labels, feature="city")] == 0
    statistics = {"feature_view": "rides", "feature": "fare", "scope": "served_log:pricing"}
    assert samples[key("repast_statistics_rows", **statistics)] == 200
    assert samples[key("repast_monitoring_last_run_timestamp_seconds", check="skew")] > 0


def test_the_last_drift_result_is_a_gauge(tmp_path: Path) -> None:
    from tests.monitoring.repo import CURRENT_DAY, REFERENCE_START, monitored_repo, trips

    store = monitored_repo(tmp_path, trips(CURRENT_DAY, 24, seed=2, shift=4.0))
    reference = f"{REFERENCE_START:%Y-%m-%d}..{CURRENT_DAY:%Y-%m-%d}"
    store.check_drift(reference, timedelta(days=1), CURRENT_DAY + timedelta(days=1))
    samples = scrape(store)
    labels = {"feature_view": "rides", "feature": "fare", "reference": reference}
    assert samples[key("repast_drift_detected", **labels)] == 1
    assert samples[key("repast_drift_psi", **labels)] > 0.2
