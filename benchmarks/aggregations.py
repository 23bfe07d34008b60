"""Benchmark: windowed aggregations (docs/aggregations.md).

--part offline (default): training data. 5,000,000 events (100,000 drivers x 50 events, one per
2 h each, over 100 h) and 1,000,000 entity rows at random times in the same 100 h; a view with
sum, count and mean of one column over a 1 h window and another over a 24 h window.
get_historical_features(...).to_arrow() on DuckDB (default configuration) is timed next to a
hand-written DuckDB range join computing the same values from the same Parquet file, in the same
process, runs interleaved; the values of both are compared (mismatch count printed).

    python benchmarks/aggregations.py [--part offline|online] [--repeat 3] [--workdir DIR]

--part online: benchmarks/aggregations_online.py (reads of aggregated features, tile materialization).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from datagen import generate_entity_frame, generate_view_table  # noqa: E402

DRIVERS, EVENTS_PER_DRIVER, ENTITY_ROWS = 100_000, 50, 1_000_000
SPAN = timedelta(hours=100)
WINDOWS = {"1h": timedelta(hours=1), "24h": timedelta(hours=24)}
TILES = {"1h": 300, "24h": 7200}  # seconds: the default tile of each window (repast's tile_interval)
FUNCTIONS = ("sum", "count", "mean")


def generate(workdir: Path) -> None:
    (workdir / "trips").mkdir(parents=True, exist_ok=True)
    events = generate_view_table(DRIVERS, EVENTS_PER_DRIVER, 1, seed=0, key="driver_id", step=timedelta(hours=2))
    pq.write_table(events.rename_columns(["driver_id", "event_timestamp", "created", "amount"]),
                   workdir / "trips" / "part-0.parquet")
    pq.write_table(generate_entity_frame(DRIVERS, ENTITY_ROWS, key="driver_id", span=SPAN), workdir / "entity.parquet")


def repast_view(workdir: Path, window: str) -> tuple[Any, Any]:
    from repast import Aggregation, Entity, FeatureView, Field, FileSource
    from repast.config.repo_config import RepoConfig
    from repast.offline.duckdb import DuckDBOfflineConfig, DuckDBOfflineEngine
    from repast.types import Float32

    source = FileSource(name="trips", path="trips", timestamp_field="event_timestamp",
                        created_timestamp_column="created")
    view = FeatureView(name=f"trips_{window}", entities=[Entity(name="driver", join_keys=["driver_id"])],
                       schema=[Field(name="amount", dtype=Float32)], source=source,
                       aggregations=[Aggregation(column="amount", function=f, time_window=WINDOWS[window])
                                     for f in FUNCTIONS])
    engine = DuckDBOfflineEngine(DuckDBOfflineConfig(), RepoConfig.model_construct(project="bench", repo_path=workdir))
    return engine, view


def run_repast(workdir: Path, entity: pa.Table, window: str) -> pa.Table:
    from repast.definitions import RepoContents
    from repast.definitions.feature_refs import resolve_features

    engine, view = repast_view(workdir, window)
    contents = RepoContents()
    contents.feature_views[view.name] = view
    contents.entities["driver"] = view.entity_objects[0]
    request = resolve_features(contents, [f"{view.name}:{f}_amount" for f in FUNCTIONS], False)
    result: pa.Table = engine.get_historical_features(entity, request, False).to_arrow()
    return result.select([f"{f}_amount" for f in FUNCTIONS])


def run_hand_written(workdir: Path, entity: pa.Table, window: str) -> pa.Table:
    """The range join a DuckDB user would write by hand, same answer by the same window rule: the
    window at t starts W before the end of t's tile (S = the default tile: 5 min for 1 h, 2 h for 24 h)."""
    import duckdb

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    keys = entity.select(["driver_id", "event_timestamp"]).append_column(
        "row", pa.array(np.arange(entity.num_rows, dtype=np.int64)))
    con.register("entity_rows", keys)
    seconds, tile = int(WINDOWS[window].total_seconds()), TILES[window] * 1_000_000
    sql = f"""
        WITH k AS (SELECT *, event_timestamp - INTERVAL {seconds} SECOND
                             + to_microseconds(({tile} - epoch_us(event_timestamp) % {tile}) % {tile}) AS start
                   FROM entity_rows)
        SELECT sum(t.amount)::DOUBLE AS sum_amount, count(t.amount) AS count_amount, avg(t.amount) AS mean_amount
        FROM k e LEFT JOIN read_parquet('{workdir / "trips" / "part-0.parquet"}') t
          ON t.driver_id = e.driver_id AND t.event_timestamp > e.start AND t.event_timestamp <= e.event_timestamp
        GROUP BY e.row ORDER BY e.row"""
    try:
        return con.sql(sql).to_arrow_table()
    finally:
        con.close()


def mismatches(a: pa.Table, b: pa.Table) -> int:
    """Rows whose sum, count or mean differ (floats beyond 1e-9 relative; null against non-null counts)."""
    bad = np.zeros(a.num_rows, dtype=bool)
    for name in a.column_names:
        x = a.column(name).to_numpy(zero_copy_only=False).astype(np.float64)
        y = b.column(name).to_numpy(zero_copy_only=False).astype(np.float64)
        both_null = np.isnan(x) & np.isnan(y)
        bad |= ~both_null & ~np.isclose(x, y, rtol=1e-9, atol=1e-9)
    return int(bad.sum())


def offline_part(args: argparse.Namespace) -> None:
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="repast-bench-agg-"))
    if not (workdir / "entity.parquet").exists():
        t = time.perf_counter()
        generate(workdir)
        print(f"generated data in {workdir} ({time.perf_counter() - t:.1f} s)")
    entity = pq.read_table(workdir / "entity.parquet")
    print(f"{DRIVERS * EVENTS_PER_DRIVER:,} events, {entity.num_rows:,} entity rows, "
          f"aggregations {', '.join(FUNCTIONS)} of one column; load average {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} cores")
    for window in WINDOWS:
        times: dict[str, list[float]] = {"repast": [], "hand-written": []}
        results: dict[str, pa.Table] = {}
        for _ in range(args.repeat):
            for label, run in (("hand-written", run_hand_written), ("repast", run_repast)):
                start = time.perf_counter()
                results[label] = run(workdir, entity, window)
                times[label].append(time.perf_counter() - start)
        filled = pc.mean(pc.greater(results["repast"].column("count_amount"), 0).cast(pa.float64())).as_py()
        ours, ref = statistics.median(times["repast"]), statistics.median(times["hand-written"])
        print(f"window {window}: repast median {ours:.2f} s (runs {', '.join(f'{t:.2f}' for t in times['repast'])}), "
              f"hand-written median {ref:.2f} s (runs {', '.join(f'{t:.2f}' for t in times['hand-written'])}), "
              f"ratio {ours / ref:.2f}x, {entity.num_rows / ours:,.0f} entity rows/s, "
              f"mismatches {mismatches(results['repast'], results['hand-written'])}, "
              f"windows with an event {filled:.0%}")


def online_part(args: argparse.Namespace) -> None:
    """Online reads of aggregated features and tile materialization: benchmarks/aggregations_online.py
    (its defaults: SQLite and Redis, 3000 calls, 5M events)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from aggregations_online import main as online_main

    sys.argv = [sys.argv[0]]
    online_main()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=["offline", "online"], default="offline")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=None, help="reuse generated data here")
    args = parser.parse_args()
    offline_part(args) if args.part == "offline" else online_part(args)


if __name__ == "__main__":
    main()
