"""Monitoring on the PostgreSQL stack: registry, offline store and online store all on PostgreSQL.

Statistics and drift are computed by the PostgreSQL engine and kept in the PostgreSQL registry; the
skew check reads the served log (Parquet, with the embedded engine) and recomputes on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from repast import FeatureStore
from tests.monitoring.repo import trips
from tests.monitoring.test_skew import RIDERS, plant_skew, serve

pytestmark = pytest.mark.postgres
DEFINITIONS = '''
from datetime import timedelta
from repast import Entity, FeatureService, FeatureView, Field, PostgreSQLSource
from repast.feature_logging import LoggingConfig
from repast.infra.offline_stores.file_source import FileLoggingDestination
from repast.types import Float64, String

rider = Entity(name="rider", join_keys=["rider_id"])
rides = FeatureView(name="rides", entities=[rider], ttl=timedelta(days=2),
                    schema=[Field(name="fare", dtype=Float64), Field(name="city", dtype=String)],
                    source=PostgreSQLSource(name="rides_source", table="{schema}.rides", timestamp_field="ts"))
pricing = FeatureService(name="pricing", features=[rides],
                         logging_config=LoggingConfig(destination=FileLoggingDestination(path="logs/pricing")))
'''


@pytest.fixture
def pg_store(tmp_path: Path, postgres_url: str, unique_name: str) -> Iterator[FeatureStore]:
    import psycopg

    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    start = now - timedelta(hours=5)
    table = trips(start - timedelta(days=2), 24, seed=1)  # two days ago: the reference day
    data = [*table.to_pylist(), *trips(start, 4, seed=3, shift=4.0).to_pylist()]  # today: drifted fares
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {unique_name}")
        conn.execute(f"CREATE TABLE {unique_name}.rides (rider_id BIGINT, ts TIMESTAMPTZ, fare DOUBLE PRECISION, "
                     "city TEXT)")
        with conn.cursor().copy(f"COPY {unique_name}.rides FROM STDIN") as copy:
            for row in data:
                copy.write_row((row["rider_id"], row["ts"], row["fare"], row["city"]))
    sqlalchemy_url = postgres_url.replace("postgresql://", "postgresql+psycopg://", 1)
    (tmp_path / "feature_store.yaml").write_text(
        f"project: {unique_name}\nregistry: {{path: '{sqlalchemy_url}', cache_ttl_seconds: 0}}\n"
        f"offline_store: {{type: postgres, url: '{postgres_url}', db_schema: {unique_name}}}\n"
        f"online_store: {{type: postgres, url: '{postgres_url}', db_schema: {unique_name}}}\n"
        "feature_server:\n  feature_logging:\n    flush_interval_secs: 0.05\n")
    (tmp_path / "features.py").write_text(DEFINITIONS.format(schema=unique_name))
    store = FeatureStore(repo_path=tmp_path)
    store.apply_repo()
    store.materialize(now - timedelta(days=3), now)
    yield store
    store.teardown()
    store.close()
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {unique_name} CASCADE")


def test_statistics_and_drift_are_computed_by_postgres_and_kept_in_its_registry(pg_store: FeatureStore) -> None:
    now = datetime.now(UTC)
    frame = pg_store.compute_feature_statistics(["rides"], now - timedelta(days=3), now)
    fare = frame[frame["feature"] == "fare"]
    assert fare["rows"].sum() == 24 * 200 + 4 * 200 and list(fare["day"]) == sorted(fare["day"])
    assert not fare["distinct_approx"].any()  # exact on PostgreSQL
    reference_day = (now - timedelta(days=2, hours=5)).replace(minute=0, second=0, microsecond=0)
    reference = f"{reference_day:%Y-%m-%dT%H:%M}..{reference_day + timedelta(days=1):%Y-%m-%dT%H:%M}"
    report = pg_store.check_drift(reference, timedelta(hours=6), now)
    assert [f.feature for f in report.drifted] == ["fare"]
    assert len(pg_store.get_feature_statistics(["rides"], scope="source")) == 2 * len(fare)


def test_skew_is_recomputed_on_postgres_and_caught(pg_store: FeatureStore) -> None:
    plant_skew(pg_store, RIDERS[:40], shift=2.0)
    serve(pg_store, RIDERS)
    by_feature = {f.feature: f for f in pg_store.check_skew(window=timedelta(hours=1)).features}
    assert (by_feature["fare"].mismatches, by_feature["fare"].mismatch_rate) == (40, 0.2)
    assert by_feature["city"].mismatches == 0 and not by_feature["city"].skewed
