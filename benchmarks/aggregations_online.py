"""Online aggregations (issue 23, tiles): read latency of aggregated features next to an ordinary
read of the same store, and tile materialization next to ordinary materialization.

    python benchmarks/aggregations_online.py [--stores sqlite,redis] [--calls 3000] [--events 5000000]
    python benchmarks/aggregations.py --part online        (the same)

Reads: 1 entity x 10 aggregated features (count, sum, mean, min, max, first, last, stddev,
variance, last_n(5) of one column) over a 24 h window of 5-minute tiles (289 tiles per read, one
event a minute for 26 h), next to 1 entity x 10 features of an ordinary view in the same store;
p50/p99 in-process (store.get_online_features(...).to_dict()) and over HTTP (`repast serve`, one
keep-alive connection). Target: aggregated p50 <= 2x the ordinary p50. Merged rows are kept
between reads (docs/aggregations.md), so the aggregated read is mostly a version check; the row
"merged at every read" forgets them before each read: the cost of a read after a write.
Materialization: `--events` events of 10,000 entities over 24 h, written as tiles (aggregated
view) and as latest rows (ordinary view over the same file), events read per second (SQLite).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from materialize import online_config  # noqa: E402

DEFINITIONS = """
from datetime import timedelta
from repast import Aggregation, Entity, FeatureView, Field, FileSource
from repast.types import Float64, Int64

rider = Entity(name="rider", join_keys=["rider_id"])
events = FileSource(name="events", path="data/events.parquet", timestamp_field="event_timestamp")
W, S = timedelta(hours=24), timedelta(minutes=5)
FIELDS = [Field(name="rider_id", dtype=Int64)] + [Field(name=f"f{i}", dtype=Float64) for i in range(10)]
agg = FeatureView(name="agg", entities=[rider], source=events, schema=FIELDS,
                  aggregations=[Aggregation(column="f0", function=f, time_window=W, slide_interval=S,
                                            n=5 if f == "last_n" else None)
                                for f in ("count", "sum", "mean", "min", "max", "first", "last", "stddev",
                                          "variance", "last_n")])
plain = FeatureView(name="plain", entities=[rider], source=events, schema=FIELDS)
"""
AGG = ["agg:" + n for n in ("count_f0", "sum_f0", "mean_f0", "min_f0", "max_f0", "first_f0", "last_f0",
                            "stddev_f0", "variance_f0", "last_n_f0")]
PLAIN = [f"plain:f{i}" for i in range(10)]


def events_table(entities: int, per_entity_minutes: int, end: datetime) -> Any:
    import numpy as np
    import pyarrow as pa

    n = entities * per_entity_minutes
    rng = np.random.default_rng(1)
    ids = np.repeat(np.arange(entities, dtype=np.int64), per_entity_minutes)
    minutes = np.tile(np.arange(per_entity_minutes, dtype=np.int64), entities)
    end_us = int(end.timestamp()) * 1_000_000
    ts = end_us - minutes * 60_000_000 - rng.integers(0, 60_000_000, n)
    cols = {"rider_id": pa.array(ids), "event_timestamp": pa.array(ts, pa.timestamp("us", "UTC"))}
    cols.update({f"f{i}": pa.array(rng.normal(100, 20, n)) for i in range(10)})
    return pa.table(cols)


def make_repo(root: Path, kind: str, table: Any) -> Path:
    import pyarrow.parquet as pq

    repo = root / kind
    (repo / "data").mkdir(parents=True)
    pq.write_table(table, repo / "data" / "events.parquet")
    project = f"bench_agg_{kind}_{os.getpid()}"
    (repo / "feature_store.yaml").write_text(
        f"project: {project}\nregistry: data/registry.db\nonline_store: {online_config(kind, project)}\n")
    (repo / "views.py").write_text(DEFINITIONS)
    return repo


def percentiles(ns: list[int]) -> tuple[float, float]:
    ns = sorted(ns)
    return ns[len(ns) // 2] / 1000, ns[min(len(ns) - 1, int(len(ns) * 0.99))] / 1000


def in_process(store: Any, features: list[str], calls: int, merged_each_time: bool = False) -> tuple[float, float]:
    """`merged_each_time`: forget the merged rows kept between reads before each read (what a read
    costs after any write to the store: the window's tiles read and merged)."""
    from repast.jobs.aggregated_read import merged_value_cache

    get = store.get_online_features
    rows = [{"rider_id": 0}]
    kept = merged_value_cache(store.online_store)
    for _ in range(200):
        get(features, rows).to_dict()
    out = []
    for _ in range(calls):
        if merged_each_time:
            kept.clear()
        t0 = time.perf_counter_ns()
        get(features, rows).to_dict()
        out.append(time.perf_counter_ns() - t0)
    return percentiles(out)


def over_http(port: int, features: list[str], calls: int) -> tuple[float, float]:
    body = json.dumps({"features": features, "entities": {"rider_id": [0]}}).encode()
    conn = http.client.HTTPConnection("127.0.0.1", port)
    headers = {"Content-Type": "application/json"}
    out = []
    for i in range(calls + 200):
        t0 = time.perf_counter_ns()
        conn.request("POST", "/get-online-features", body, headers)
        answer = conn.getresponse().read()
        if i >= 200:
            out.append(time.perf_counter_ns() - t0)
    assert b'"results"' in answer, answer[:200]
    conn.close()
    return percentiles(out)


def serve(repo: Path, port: int) -> subprocess.Popen[bytes]:
    import httpx

    proc = subprocess.Popen([str(Path(sys.executable).parent / "repast"), "serve", "--port", str(port),
                             "--workers", "1", "--no-access-log"], cwd=repo, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    for _ in range(300):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError("server did not become ready")


def reads(kind: str, root: Path, calls: int, port: int) -> None:
    from repast.store import FeatureStore

    end = datetime.now(UTC)
    repo = make_repo(root, kind, events_table(20, 26 * 60, end))
    store = FeatureStore(repo)
    store.apply_repo()
    store.materialize(end - timedelta(hours=27), end)
    for name, features, merged in (("ordinary 1x10", PLAIN, False), ("aggregated 1x10 (24h / 5m tiles)", AGG, False),
                                   ("aggregated, merged at every read", AGG, True)):
        p50, p99 = in_process(store, features, calls, merged)
        print(f"{kind:7} in-process {name:34} p50 {p50:8.1f} us  p99 {p99:8.1f} us", flush=True)
    proc = serve(repo, port)
    try:
        for name, features in (("ordinary 1x10", PLAIN), ("aggregated 1x10 (24h / 5m tiles)", AGG)):
            p50, p99 = over_http(port, features, calls)
            print(f"{kind:7} HTTP       {name:34} p50 {p50:8.1f} us  p99 {p99:8.1f} us", flush=True)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    store.teardown()
    store.online_store.close()


def materialization(root: Path, events: int) -> None:
    from repast.store import FeatureStore

    end = datetime.now(UTC)
    entities = 10_000
    repo = make_repo(root, "mat", events_table(entities, max(1, events // entities), end))
    store = FeatureStore(repo)
    store.apply_repo()
    for view in ("plain", "agg"):
        t0 = time.perf_counter()
        result = store.materialize(end - timedelta(hours=25), end, feature_views=[view])
        seconds = time.perf_counter() - t0
        n = entities * max(1, events // entities)
        print(f"sqlite  materialize {view:5} {n:,} events in {seconds:6.1f} s = {n / seconds:12,.0f} events/s "
              f"({result[0].rows:,} {'tile rows' if view == 'agg' else 'latest rows'} written)", flush=True)
    store.online_store.close()


def run(args: argparse.Namespace) -> None:
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores", flush=True)
    with tempfile.TemporaryDirectory(prefix="repast-agg-online-") as tmp:
        for i, kind in enumerate(s for s in args.stores.split(",") if s):
            reads(kind, Path(tmp), args.calls, 18230 + i)
        if args.events:
            materialization(Path(tmp), args.events)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stores", default="sqlite,redis")
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--events", type=int, default=5_000_000)
    run(parser.parse_args())


if __name__ == "__main__":
    main()
