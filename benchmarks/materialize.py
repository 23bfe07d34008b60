"""Materialization throughput: offline Parquet (DuckDB) -> each online store.

    python benchmarks/materialize.py [--entities 1000000] [--rows-per-entity 1] [--batch-size 100000]
                                     [--stores sqlite,redis,postgres]

Data: `entities` x `rows-per-entity` rows of 10 features (5 float32, 5 int64), from datagen.py.
Reported per store: rows written, seconds, rows/s (end to end: DuckDB read_latest + writes) and
the peak RSS growth during the run, which should follow the batch size, not the data size.
Targets (issue 4, 2 cores): SQLite >= 300,000 rows/s; Redis and PostgreSQL >= 100,000 rows/s.
Redis and PostgreSQL come from REPAST_TEST_REDIS / REPAST_TEST_POSTGRES (local defaults).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
from datagen import generate_view_table  # noqa: E402
from serve import DEFINITIONS, FEATURES  # noqa: E402  (the same one-view repo as the server benchmark)


def online_config(kind: str, project: str) -> str:
    if kind == "sqlite":
        return "{type: sqlite, path: data/online.db}"
    if kind == "redis":
        url = os.environ.get("REPAST_TEST_REDIS", "redis://127.0.0.1:6379/0")
        return f"{{type: redis, connection_string: '{url}'}}"
    url = os.environ.get("REPAST_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
    return f"{{type: postgres, url: '{url}', db_schema: {project}}}"


def _rss_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _reset_peak_rss() -> None:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS (Linux)
    except OSError:
        pass


def run_store(kind: str, root: Path, batch_size: int, start: Any, end: Any,
              memory_limit: str | None = None) -> dict[str, float]:
    from repast.jobs.materialize import materialize
    from repast.store import FeatureStore

    project = f"bench_{kind}_{os.getpid()}"
    repo = root / kind
    (repo / "data").mkdir(parents=True)
    os.symlink(root / "bench.parquet", repo / "data" / "bench.parquet")
    (repo / "feature_store.yaml").write_text(
        f"project: {project}\nregistry: data/registry.db\nonline_store: {online_config(kind, project)}\n"
        + (f"offline_store: {{type: duckdb, memory_limit: {memory_limit}}}\n" if memory_limit else ""))
    (repo / "bench_repo.py").write_text(DEFINITIONS)
    store = FeatureStore(repo)
    store.apply_repo()
    try:
        _reset_peak_rss()
        rss_before = _rss_kb("VmRSS")
        began = time.perf_counter()
        [stats] = materialize(store.registry, store.offline_engine, store.online_store, start, end,
                              batch_size=batch_size)
        seconds = time.perf_counter() - began
        peak_growth_mb = (_rss_kb("VmHWM") - rss_before) / 1024
    finally:
        store.teardown()
        store.online_store.close()
        if kind == "postgres":
            import psycopg

            with psycopg.connect(store.config.online_store.url.get_secret_value(), autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{project}" CASCADE')
    return {"rows": stats.rows, "seconds": seconds, "rows_per_s": stats.rows / seconds, "peak_mb": peak_growth_mb}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entities", type=int, default=1_000_000)
    parser.add_argument("--rows-per-entity", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=100_000)
    parser.add_argument("--stores", default="sqlite,redis,postgres")
    parser.add_argument("--duckdb-memory-limit", default=None,
                        help="offline_store.memory_limit for the run, e.g. 100MB (DuckDB spills beyond it)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="repast-bench-") as tmp:
        root = Path(tmp)
        table = generate_view_table(args.entities, args.rows_per_entity, FEATURES)
        pq.write_table(table, root / "bench.parquet", row_group_size=args.batch_size)
        ts = table.column("event_timestamp")
        start, end = ts[0].as_py() - timedelta(days=1), ts[-1].as_py() + timedelta(days=365)
        del table, ts
        print(f"materialize: {args.entities:,} entities x {args.rows_per_entity} rows x {FEATURES} features, "
              f"batch size {args.batch_size:,}, {os.cpu_count()} cores", flush=True)
        for kind in args.stores.split(","):
            r = run_store(kind, root, args.batch_size, start, end, args.duckdb_memory_limit)
            print(f"  {kind:9s} {r['rows']:>10,.0f} rows  {r['seconds']:7.2f} s  {r['rows_per_s']:>10,.0f} rows/s  "
                  f"peak RSS +{r['peak_mb']:,.0f} MB", flush=True)


if __name__ == "__main__":
    main()
