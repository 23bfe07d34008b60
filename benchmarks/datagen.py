"""Generated feature data for benchmarks: deterministic, vectorized, any size.

Shared by the historical-retrieval and the materialization/online benchmarks, so every
benchmark states its data the same way: entities x rows per entity x features.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa

DEFAULT_START = datetime(2024, 1, 1, tzinfo=UTC)
TS = pa.timestamp("us", tz="UTC")


def _micros(dt: datetime) -> int:
    return int(dt.timestamp() * 1_000_000)


def generate_view_table(entities: int, rows_per_entity: int, features: int, seed: int = 0, *,
                        key: str = "entity_id", prefix: str = "f", start: datetime = DEFAULT_START,
                        step: timedelta = timedelta(hours=1)) -> pa.Table:
    """Rows of one feature view: `entities * rows_per_entity` rows, sorted by entity then time.

    Columns: `key` (int64, 0..entities-1), `event_timestamp` and `created` (timestamp[us, UTC]),
    then `features` columns `{prefix}0..`: even ones float32, odd ones int64. Entity i's rows fall
    one per `step` from `start`, each jittered inside its step, so event times differ per entity;
    `created` is a few seconds after the event.
    """
    rng = np.random.default_rng(seed)
    n = entities * rows_per_entity
    step_us = int(step.total_seconds() * 1_000_000)
    slots = np.tile(np.arange(rows_per_entity, dtype=np.int64), entities)
    event_us = _micros(start) + slots * step_us + rng.integers(0, step_us, n)
    columns: dict[str, pa.Array] = {
        key: pa.array(np.repeat(np.arange(entities, dtype=np.int64), rows_per_entity)),
        "event_timestamp": pa.array(event_us, pa.int64()).cast(TS),
        "created": pa.array(event_us + rng.integers(1, 10_000_000, n), pa.int64()).cast(TS),
    }
    for i in range(features):
        if i % 2 == 0:
            columns[f"{prefix}{i}"] = pa.array(rng.random(n, dtype=np.float32))
        else:
            columns[f"{prefix}{i}"] = pa.array(rng.integers(0, 1_000, n, dtype=np.int64))
    return pa.table(columns)


def generate_entity_frame(entities: int, rows: int, seed: int = 1, *, key: str = "entity_id",
                          start: datetime = DEFAULT_START, span: timedelta = timedelta(hours=100),
                          extra_keys: dict[str, int] | None = None) -> pa.Table:
    """An entity frame of `rows` rows: random keys in 0..entities-1 and random times in [start, start+span].

    `extra_keys` adds more key columns (name -> number of distinct values), for views keyed
    differently. Rows come in random order, as training sets usually do.
    """
    rng = np.random.default_rng(seed)
    span_us = int(span.total_seconds() * 1_000_000)
    columns: dict[str, pa.Array] = {key: pa.array(rng.integers(0, entities, rows, dtype=np.int64))}
    for name, count in (extra_keys or {}).items():
        columns[name] = pa.array(rng.integers(0, count, rows, dtype=np.int64))
    columns["event_timestamp"] = pa.array(_micros(start) + rng.integers(0, span_us, rows), pa.int64()).cast(TS)
    columns["label"] = pa.array(rng.random(rows))
    return pa.table(columns)
