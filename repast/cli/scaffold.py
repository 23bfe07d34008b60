"""`repast init NAME`: a sample feature repo with generated driver statistics."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from repast.errors import InputError

FEATURE_STORE_YAML = """\
project: {project}
# A SQLite file; or {{path: postgresql+psycopg://user@host/db, cache_ttl_seconds: 60}}
registry: data/registry.db
provider: local
offline_store:
  type: duckdb          # embedded; also: postgres
online_store:
  type: sqlite          # embedded; also: redis, postgres
  path: data/online.db
entity_key_serialization_version: 3
"""

DEFINITIONS = '''\
"""Driver statistics: the sample feature repo created by `repast init`."""

from datetime import timedelta

import pandas as pd

from repast import Entity, FeatureService, FeatureView, Field, FileSource, PushSource, RequestSource, ValueType
from repast.on_demand_feature_view import on_demand_feature_view
from repast.types import Float32, Float64, Int64

driver = Entity(name="driver", join_keys=["driver_id"], value_type=ValueType.INT64,
                description="A ride-hailing driver")

driver_stats_source = FileSource(
    name="driver_hourly_stats_source",
    path="data/driver_stats.parquet",
    timestamp_field="event_timestamp",
    created_timestamp_column="created",
)

driver_stats_fv = FeatureView(
    name="driver_hourly_stats",
    entities=[driver],
    ttl=timedelta(days=1),
    schema=[
        Field(name="conv_rate", dtype=Float32),
        Field(name="acc_rate", dtype=Float32),
        Field(name="avg_daily_trips", dtype=Int64, description="Trips per day, 7-day average"),
    ],
    source=driver_stats_source,
    online=True,
    tags={"team": "driver_performance"},
)

input_request = RequestSource(
    name="vals_to_add",
    schema=[Field(name="val_to_add", dtype=Int64), Field(name="val_to_add_2", dtype=Int64)],
)


@on_demand_feature_view(
    sources=[driver_stats_fv, input_request],
    schema=[Field(name="conv_rate_plus_val1", dtype=Float64),
            Field(name="conv_rate_plus_val2", dtype=Float64)],
)
def transformed_conv_rate(inputs: pd.DataFrame) -> pd.DataFrame:
    df = pd.DataFrame()
    df["conv_rate_plus_val1"] = inputs["conv_rate"] + inputs["val_to_add"]
    df["conv_rate_plus_val2"] = inputs["conv_rate"] + inputs["val_to_add_2"]
    return df


driver_activity_v1 = FeatureService(
    name="driver_activity_v1",
    features=[driver_stats_fv[["conv_rate"]], transformed_conv_rate],
)

driver_stats_push_source = PushSource(name="driver_stats_push_source", batch_source=driver_stats_source)

driver_stats_fresh_fv = FeatureView(
    name="driver_hourly_stats_fresh",
    entities=[driver],
    ttl=timedelta(days=1),
    schema=[
        Field(name="conv_rate", dtype=Float32),
        Field(name="acc_rate", dtype=Float32),
        Field(name="avg_daily_trips", dtype=Int64),
    ],
    source=driver_stats_push_source,
    online=True,
)
'''


def generate_driver_stats(path: Path, drivers: int = 5, days: int = 7, seed: int = 42,
                          end: datetime | None = None) -> pa.Table:
    """Hourly statistics for drivers 1001.. over `days` days ending at `end` (default: now)."""
    rng = np.random.default_rng(seed)
    end = (end or datetime.now(UTC)).astimezone(UTC).replace(minute=0, second=0, microsecond=0, tzinfo=None)
    hours = np.arange(days * 24, 0, -1)
    ts = np.array([end - timedelta(hours=int(h)) for h in hours], dtype="datetime64[us]")
    ids = np.repeat(np.arange(1001, 1001 + drivers, dtype=np.int64), len(ts))
    event_ts = np.tile(ts, drivers)
    n = len(ids)
    table = pa.table({
        "driver_id": ids,
        "event_timestamp": pa.array(event_ts, pa.timestamp("us", tz="UTC")),
        "conv_rate": pa.array(rng.uniform(0.1, 0.95, n).astype(np.float32)),
        "acc_rate": pa.array(rng.uniform(0.5, 1.0, n).astype(np.float32)),
        "avg_daily_trips": pa.array(rng.integers(50, 1000, n, dtype=np.int64)),
        "created": pa.array(event_ts + np.timedelta64(5, "m"), pa.timestamp("us", tz="UTC")),
    })
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return table


def init_repo(target: Path, project: str | None = None) -> Path:
    """Create the sample repo at `target` (which must not exist or be empty)."""
    if target.exists() and any(target.iterdir()):
        raise InputError(f"'{target}' already exists and is not empty; choose a new directory name")
    project = project or target.name.replace(" ", "_")
    target.mkdir(parents=True, exist_ok=True)
    (target / "feature_store.yaml").write_text(FEATURE_STORE_YAML.format(project=project))
    (target / "example_repo.py").write_text(DEFINITIONS)
    (target / ".repastignore").write_text("# paths (globs) of Python files apply should not import\n")
    generate_driver_stats(target / "data" / "driver_stats.parquet")
    return target
