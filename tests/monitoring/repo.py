"""A small monitored feature repo: a view with a numeric and a categorical feature over generated trips."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from repast import Entity, FeatureService, FeatureStore, FeatureView, Field, FileSource
from repast.feature_logging import LoggingConfig
from repast.infra.offline_stores.file_source import FileLoggingDestination
from repast.types import Float64, String

REFERENCE_START = datetime(2024, 1, 1, tzinfo=UTC)
CURRENT_DAY = REFERENCE_START + timedelta(days=7)  # the day after the reference week
RIDERS = 200


def trips(start: datetime, hours: int, seed: int, shift: float = 0.0,
          cities: tuple[str, ...] = ("paris", "lyon", "nice"), riders: int = RIDERS) -> pa.Table:
    """Per hour and rider one row: fare ~ N(20 + shift, 4), city uniform over `cities`."""
    rng = np.random.default_rng(seed)
    n = hours * riders
    ts = [start + timedelta(hours=h) for h in range(hours) for _ in range(riders)]
    return pa.table({"rider_id": pa.array(np.tile(np.arange(riders), hours), pa.int64()),
                     "ts": pa.array(ts, pa.timestamp("us", tz="UTC")),
                     "fare": pa.array(rng.normal(20 + shift, 4, n)),
                     "city": pa.array(rng.choice(list(cities), n))})


def monitored_repo(root: Path, current: pa.Table, reference: pa.Table | None = None, yaml_extra: str = "",
                   view_tags: dict[str, str] | None = None) -> FeatureStore:
    """A repo whose source holds `reference` (default: a clean reference week) and `current`."""
    (root / "data" / "trips").mkdir(parents=True, exist_ok=True)
    reference = reference if reference is not None else trips(REFERENCE_START, 7 * 24, seed=1)
    pq.write_table(reference, root / "data" / "trips" / "reference.parquet")
    pq.write_table(current, root / "data" / "trips" / "current.parquet")
    (root / "feature_store.yaml").write_text(
        "project: monitored\nregistry: data/registry.db\nonline_store: {type: sqlite, path: data/online.db}\n"
        "feature_server:\n  feature_logging:\n    flush_interval_secs: 0.05\n" + yaml_extra)
    store = FeatureStore(repo_path=root)
    rider = Entity(name="rider", join_keys=["rider_id"])
    view = FeatureView(name="rides", entities=[rider], ttl=timedelta(days=2), tags=view_tags or {},
                       schema=[Field(name="fare", dtype=Float64), Field(name="city", dtype=String)],
                       source=FileSource(path="data/trips", timestamp_field="ts"))
    service = FeatureService(name="pricing", features=[view],
                             logging_config=LoggingConfig(destination=FileLoggingDestination(path="logs/pricing")))
    store.apply([rider, view, service])
    return store
