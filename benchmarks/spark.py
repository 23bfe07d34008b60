"""Benchmark: the Spark engine next to DuckDB, in the same run, on the same Parquet files.

Training data (W1 of benchmarks/historical.py): view `driver_stats` 10,000 entities x 100 rows x
10 features (1,000,000 rows), `merchant_stats` 5,000 x 100 x 10 (500,000 rows), 100,000 entity
rows; --scales 1 10 also runs x10 (15M view rows, 1M entity rows). Each retrieval is a fresh
process taking the result by one output path (--paths):

- to_parquet: streamed through the staging location, batch by batch (must stay flat);
- spark_write: to_spark_df().write.parquet, written by the executors (nothing reaches Python);
- to_arrow: the whole result in the Python driver, by definition (grows with the result).

Each reports the wall time and, during the retrieval only (session start-up excluded), the peak
RSS of the Python driver (VmHWM, reset before) and the Arrow pool's peak; for Spark also the JVM's
peak RSS and its peak heap in use (with local[N] one JVM runs the Spark driver and the executors;
its heap is bounded by spark.driver.memory, --driver-memory). `spark` takes the entity frame as
pandas (held in the driver, as DuckDB does); `spark-sql` as Spark SQL over the entity Parquet, so
the entity rows never enter the Python driver. A summary prints each peak at x1 -> x10.

Materialization: 1,000,000 entities x 10 features from Spark into Redis, written by the executors.

    python benchmarks/spark.py [--scales 1 10] [--engines duckdb spark spark-sql]
        [--paths to_parquet spark_write to_arrow] [--driver-memory 2g] [--data-root DIR]
        [--materialize-entities 1000000] [--skip-materialize]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from datagen import generate_view_table  # noqa: E402
from historical import FEATURES, engine_and_views, generate  # noqa: E402

REDIS_URL = os.environ.get("REPAST_TEST_REDIS", "redis://127.0.0.1:6379/0")


DRIVER_MEMORY = os.environ.get("REPAST_BENCH_SPARK_DRIVER_MEMORY", "2g")


def spark_conf(master: str) -> dict[str, str]:
    return {"spark.master": master, "spark.ui.enabled": "false", "spark.driver.host": "127.0.0.1",
            "spark.driver.bindAddress": "127.0.0.1", "spark.driver.memory": DRIVER_MEMORY,
            "spark.sql.shuffle.partitions": "8"}


def spark_engine(workdir: Path, master: str) -> tuple[object, list[object]]:
    """The Spark engine over the same files, as SparkSources."""
    from repast.config.repo_config import RepoConfig
    from repast.definitions import FeatureView, SparkSource
    from repast.offline.spark import SparkOfflineConfig, SparkOfflineEngine

    _, views = engine_and_views("duckdb", workdir)
    spark_views = []
    for view in views:
        src = view.batch_source  # type: ignore[attr-defined]
        source = SparkSource(name=src.name, path=str(workdir / src.path), file_format="parquet",
                             timestamp_field=src.timestamp_field, created_timestamp_column=src.created_timestamp_column)
        spark_views.append(FeatureView(name=view.name, entities=view.entity_objects, ttl=view.ttl,  # type: ignore[attr-defined]
                                       schema=view.schema, source=source))  # type: ignore[attr-defined]
    config = SparkOfflineConfig(spark_conf=spark_conf(master), staging_location=str(workdir / "staging"))
    return SparkOfflineEngine(config, RepoConfig.model_construct(project="bench", repo_path=workdir)), spark_views


def _status_mb(pid: int | str, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def _reset_peak_rss(pid: int | str) -> None:
    """Linux: VmHWM (peak RSS) starts again from the current RSS, so it measures what follows."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


class JvmMemory:
    """The Spark JVM's memory, seen from the Python driver (local master: the one JVM runs the
    Spark driver and the executors): its process RSS, and the Java heap in use, sampled every
    0.2 s (the heap is bounded by spark.driver.memory; G1 lets it fill before collecting)."""

    def __init__(self, engine: object) -> None:
        self.jvm = engine.spark.sparkContext._gateway.jvm  # type: ignore[attr-defined]
        self.pid = self.jvm.java.lang.ProcessHandle.current().pid()
        self.heap_peak = 0
        self.sampling = threading.Event()

    def _heap_used(self) -> int:
        return int(self.jvm.java.lang.management.ManagementFactory.getMemoryMXBean().getHeapMemoryUsage().getUsed())

    def _sample(self) -> None:
        while self.sampling.is_set():
            self.heap_peak = max(self.heap_peak, self._heap_used())
            time.sleep(0.2)

    def start(self) -> None:
        self.jvm.java.lang.System.gc()
        _reset_peak_rss(self.pid)
        self.sampling.set()
        threading.Thread(target=self._sample, daemon=True).start()

    def figures(self) -> dict[str, float]:
        self.sampling.clear()
        return {"jvm_rss_peak_mb": round(_status_mb(self.pid, "VmHWM")),
                "jvm_heap_used_peak_mb": round(max(self.heap_peak, self._heap_used()) / 2**20),
                "jvm_heap_max_mb": round(self.jvm.java.lang.Runtime.getRuntime().maxMemory() / 2**20)}


def write_result(job: object, path: str, out: Path) -> int:
    """Run the retrieval through one output path; returns the rows written or held."""
    if path == "to_parquet":  # streamed through the staging location
        job.to_parquet(str(out))  # type: ignore[attr-defined]
    elif path == "spark_write":  # distributed: the executors write, nothing comes to the driver
        job.to_spark_df().write.mode("overwrite").parquet(str(out))  # type: ignore[attr-defined]
    elif path == "to_arrow":  # the whole result in the driver, by definition
        return int(job.to_arrow().num_rows)  # type: ignore[attr-defined]
    return int(pq.ParquetDataset(str(out)).read(columns=[]).num_rows)


def timed_retrieval(engine_kind: str, path: str, workdir: Path, master: str) -> dict[str, float]:
    from repast.definitions import RepoContents
    from repast.definitions.feature_refs import resolve_features
    from repast.jobs.retrieval import entity_input

    # spark-sql: the entity rows stay in Spark (an SQL string), so the driver holds only batches.
    entity_df: object = f"SELECT * FROM parquet.`{workdir / 'entity.parquet'}`" if engine_kind == "spark-sql" \
        else pq.read_table(workdir / "entity.parquet").to_pandas()
    on_spark = engine_kind.startswith("spark")
    engine, views = spark_engine(workdir, master) if on_spark else engine_and_views("duckdb", workdir)
    jvm = JvmMemory(engine) if on_spark else None  # session start-up is not part of the retrieval
    contents = RepoContents()
    for view in views:
        contents.feature_views[view.name] = view  # type: ignore[attr-defined]
        contents.entities[view.entity_objects[0].name] = view.entity_objects[0]  # type: ignore[attr-defined]
    features = [f"driver_stats:f{i}" for i in range(FEATURES)] + [f"merchant_stats:g{i}" for i in range(FEATURES)]
    out = workdir / f"result-{engine_kind}-{path}.parquet"
    if jvm is not None:
        jvm.start()
    py_before = _status_mb("self", "VmRSS")
    _reset_peak_rss("self")
    start = time.perf_counter()
    request = resolve_features(contents, features, False)
    job = engine.get_historical_features(entity_input(entity_df, request, None, None), request, False)  # type: ignore[attr-defined]
    rows = write_result(job, path, out)
    wall = time.perf_counter() - start
    result = {"wall_s": round(wall, 2), "rows": rows, "py_rss_before_mb": round(py_before),
              "py_rss_peak_mb": round(_status_mb("self", "VmHWM")),
              "arrow_pool_peak_mb": round(pa.default_memory_pool().max_memory() / 2**20)}
    if jvm is not None:
        result.update(jvm.figures())
    return result


def timed_materialization(entities: int, master: str) -> dict[str, float]:
    """1 row per entity x 10 features, from Spark into Redis, written by the executors."""
    from repast.config.repo_config import RepoConfig
    from repast.definitions import Entity, FeatureView, Field, SparkSource
    from repast.jobs.materialize import OnlineSink
    from repast.offline.spark import SparkOfflineConfig, SparkOfflineEngine
    from repast.online.redis import RedisOnlineConfig, RedisOnlineStore
    from repast.types import Float32, Int64

    workdir = Path(tempfile.mkdtemp(prefix="repast-bench-spark-mat-"))
    (workdir / "stats").mkdir()
    pq.write_table(generate_view_table(entities, 1, FEATURES, seed=3, key="driver_id"),
                   workdir / "stats" / "part-0.parquet")
    schema = [Field(name=f"f{i}", dtype=Float32 if i % 2 == 0 else Int64) for i in range(FEATURES)]
    source = SparkSource(name="stats", path=str(workdir / "stats"), timestamp_field="event_timestamp",
                         created_timestamp_column="created")
    view = FeatureView(name="stats", entities=[Entity(name="driver", join_keys=["driver_id"])], schema=schema,
                       source=source, ttl=timedelta(0))
    repo_config = RepoConfig.model_construct(project="bench", repo_path=workdir)
    engine = SparkOfflineEngine(SparkOfflineConfig(spark_conf=spark_conf(master)), repo_config)
    engine.spark  # noqa: B018 - start-up is not part of the run
    online_config = RedisOnlineConfig(connection_string=REDIS_URL)  # type: ignore[arg-type]
    store = RedisOnlineStore(online_config, repo_config)
    project = f"bench_spark_{uuid.uuid4().hex[:8]}"
    store.update(project, [view], [])
    try:
        sink = OnlineSink(RedisOnlineStore, online_config, repo_config, project, view)
        start = time.perf_counter()
        rows = engine.write_latest_online(view, datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC),
                                          sink, 10_000)
        wall = time.perf_counter() - start
    finally:
        store.teardown(project, [view])
    return {"wall_s": round(wall, 2), "rows": rows, "rows_per_s": round(rows / wall)}


def child(args: argparse.Namespace) -> None:
    if args.child == "materialize":
        print(json.dumps(timed_materialization(args.materialize_entities, args.master)))
    else:
        print(json.dumps(timed_retrieval(args.child, args.path, args.workdir, args.master)))


def run_child(*argv: str) -> dict[str, float]:
    out = subprocess.run([sys.executable, __file__, *argv], capture_output=True, text=True)
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else f"exit {out.returncode}"}
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


PATHS = ("to_parquet", "spark_write", "to_arrow")
MEMORY_FIELDS = ("py_rss_peak_mb", "arrow_pool_peak_mb", "jvm_rss_peak_mb", "jvm_heap_used_peak_mb")


def memory_summary(results: dict[tuple[str, str, int], dict[str, float]], scales: list[int]) -> None:
    """Per engine and output path: each peak at every scale, side by side (x1 -> x10)."""
    print("peak memory during the retrieval (MB), " + " -> ".join(f"x{s}" for s in scales) + ":")
    for engine, path in dict.fromkeys((e, p) for e, p, _ in results):
        runs = [results.get((engine, path, s), {}) for s in scales]
        cells = [f"{f.removesuffix('_mb')} " + " -> ".join(str(r.get(f, "-")) for r in runs)
                 for f in MEMORY_FIELDS if any(f in r for r in runs)]
        print(f"  {engine:9s} {path:11s} " + "; ".join(cells), flush=True)


def retrievals(args: argparse.Namespace) -> None:
    results: dict[tuple[str, str, int], dict[str, float]] = {}
    for scale in args.scales:
        if args.data_root:
            workdir = args.data_root / f"x{scale}"
            if not (workdir / "entity.parquet").exists():
                generate(workdir, scale)
        else:
            workdir = Path(tempfile.mkdtemp(prefix=f"repast-bench-spark-x{scale}-"))
            generate(workdir, scale)
        print(f"W1 x{scale}: {1_500_000 * scale:,} view rows, {100_000 * scale:,} entity rows "
              f"(load average {os.getloadavg()[0]:.2f})", flush=True)
        for engine in args.engines:
            for path in args.paths:
                if engine == "duckdb" and path == "spark_write":
                    continue
                result = run_child("--child", engine, "--path", path, "--workdir", str(workdir),
                                   "--master", args.master)
                results[(engine, path, scale)] = result
                print(f"  {engine:9s} {path:11s} {json.dumps(result)} (load average {os.getloadavg()[0]:.2f})",
                      flush=True)
    memory_summary(results, args.scales)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scales", type=int, nargs="+", default=[1, 10])
    parser.add_argument("--materialize-entities", type=int, default=1_000_000)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--engines", nargs="+", default=["duckdb", "spark", "spark-sql"],
                        help="spark: pandas entity frame; spark-sql: entity rows read by Spark")
    parser.add_argument("--paths", nargs="+", default=list(PATHS), choices=PATHS,
                        help="how the result is taken: to_parquet (streamed), spark_write "
                             "(to_spark_df().write, Spark only), to_arrow (held in the driver)")
    parser.add_argument("--data-root", type=Path, default=None,
                        help="keep the generated data in DIR/x<scale> and reuse it on later runs")
    parser.add_argument("--driver-memory", default=None,
                        help="spark.driver.memory (default 2g); with local[N] it bounds the heap of the one "
                             "JVM that runs the driver and the executors")
    parser.add_argument("--skip-materialize", action="store_true")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--path", default="to_parquet", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.driver_memory:  # the children read it
        os.environ["REPAST_BENCH_SPARK_DRIVER_MEMORY"] = args.driver_memory
    if args.child:
        child(args)
        return
    retrievals(args)
    if args.skip_materialize:
        return
    result = run_child("--child", "materialize", "--materialize-entities", str(args.materialize_entities),
                       "--master", args.master)
    print(f"materialize {args.materialize_entities:,} entities x {FEATURES} features, Spark -> Redis: "
          f"{json.dumps(result)}", flush=True)


if __name__ == "__main__":
    main()
