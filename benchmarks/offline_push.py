"""Offline push latency and throughput: one-row `push(..., to="offline")` to the sample repo's source.

    python benchmarks/offline_push.py [--pushes 500] [--writers 1,4] [--layout file|directory]

Each writer is a process with its own FeatureStore pushing `--pushes` one-row frames, one after the
other; each push adds one immutable part file (fsync included). Reported per writer count: pushes/s
over all writers, and p50/p99 latency of one push. Afterwards the source is read back and the row
count checked, and the time of one training-data read over the source with all its parts is shown
(reads list every part: the cost of many small parts).
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from repast import FeatureStore  # noqa: E402
from repast.cli.scaffold import init_repo  # noqa: E402


def _row(driver: int) -> pa.Table:
    ts = datetime.now(UTC) - timedelta(minutes=5)
    return pa.table({"driver_id": pa.array([driver], pa.int64()),
                     "event_timestamp": pa.array([ts], pa.timestamp("us", tz="UTC")),
                     "created": pa.array([ts], pa.timestamp("us", tz="UTC")),
                     "conv_rate": pa.array([0.5], pa.float32()), "acc_rate": pa.array([0.5], pa.float32()),
                     "avg_daily_trips": pa.array([driver], pa.int64())})


def writer(repo: str, first: int, pushes: int, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    store = FeatureStore(repo)
    store.push("driver_stats_push_source", _row(first), to="offline")  # warm up: registry, imports
    latencies = []
    for i in range(1, pushes + 1):
        began = time.perf_counter()
        store.push("driver_stats_push_source", _row(first + i), to="offline")
        latencies.append(time.perf_counter() - began)
    out.put(latencies)


def run(repo: Path, writers: int, pushes: int, first: int) -> tuple[float, list[float]]:
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=writer, args=(str(repo), first + w * 100_000, pushes, out)) for w in range(writers)]
    for p in procs:
        p.start()
    latencies = [out.get() for _ in procs]
    for p in procs:
        p.join()
    flat = [x for lat in latencies for x in lat]
    wall = max(sum(lat) for lat in latencies)
    return writers * pushes / wall, flat


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pushes", type=int, default=500)
    parser.add_argument("--writers", default="1,4")
    parser.add_argument("--layout", choices=["file", "directory"], default="file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        repo = init_repo(Path(tmp) / "repo", "bench")
        if args.layout == "directory":
            (repo / "data" / "stats").mkdir()
            (repo / "data" / "driver_stats.parquet").rename(repo / "data" / "stats" / "part-0.parquet")
            defs = repo / "example_repo.py"
            defs.write_text(defs.read_text().replace('"data/driver_stats.parquet"', '"data/stats"'))
        store = FeatureStore(repo)
        store.apply_repo()
        print(f"offline push: one-row frames, {args.layout} source, {args.pushes} pushes per writer")
        expected = 0
        for i, writers in enumerate(int(w) for w in args.writers.split(",")):
            rate, latencies = run(repo, writers, args.pushes, 1_000_000 * (i + 1))
            expected += writers * (args.pushes + 1)
            q = statistics.quantiles(latencies, n=100)
            print(f"  {writers} writer(s): {rate:8.0f} pushes/s   p50 {q[49] * 1000:6.2f} ms   "
                  f"p99 {q[98] * 1000:6.2f} ms")
        view = store.get_feature_view("driver_hourly_stats")
        rows = store.offline_engine.read_range(view, datetime(1970, 1, 1, tzinfo=UTC), datetime.now(UTC))
        pushed = sum(1 for d in rows.column("driver_id").to_pylist() if d >= 1_000_000)
        assert pushed == expected, f"{pushed} rows read back, {expected} pushed"
        began = time.perf_counter()
        store.get_historical_features(pd.DataFrame({"driver_id": [1001], "event_timestamp": [datetime.now(UTC)]}),
                                      ["driver_hourly_stats:conv_rate"]).to_df()
        print(f"  read back {pushed} pushed rows exactly; one training read over the source with "
              f"{pushed} parts: {time.perf_counter() - began:.2f} s")


if __name__ == "__main__":
    main()
