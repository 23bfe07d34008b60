"""Benchmark: the Spark engine next to DuckDB, in the same run, on the same Parquet files.

Training data (W1 of benchmarks/historical.py): view `driver_stats` 10,000 entities x 100 rows x
10 features (1,000,000 rows), `merchant_stats` 5,000 x 100 x 10 (500,000 rows), 100,000 entity
rows; --scales 1 10 also runs x10 (15M view rows, 1M entity rows). Each retrieval is a fresh
process writing the result with `to_parquet` (the streaming path); it reports the wall time, the
Python driver's peak RSS and, for Spark, the JVM's peak RSS (local[2]: driver and executors).
`spark` takes the entity frame as pandas (in the driver, as DuckDB does); `spark-sql` as Spark
SQL over the entity Parquet, so the entity rows never enter the Python driver.

Materialization: 1,000,000 entities x 10 features from Spark into Redis, written by the executors.

    python benchmarks/spark.py [--scales 1 10] [--engines duckdb spark spark-sql] [--materialize-entities 1000000]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from datagen import generate_view_table  # noqa: E402
from historical import FEATURES, engine_and_views, generate  # noqa: E402

REDIS_URL = os.environ.get("REPAST_TEST_REDIS", "redis://127.0.0.1:6379/0")


def spark_conf(master: str) -> dict[str, str]:
    return {"spark.master": master, "spark.ui.enabled": "false", "spark.driver.host": "127.0.0.1",
            "spark.driver.bindAddress": "127.0.0.1", "spark.driver.memory": "2g",
            "spark.sql.shuffle.partitions": "8"}


def spark_engine(workdir: Path, master: str) -> tuple[object, list[object]]:
    """The Spark engine over the same files, as SparkSources."""
    from repast.config import RepoConfig
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


def _jvm_peak_mb(engine: object) -> float:
    pid = engine.spark.sparkContext._gateway.jvm.java.lang.ProcessHandle.current().pid()  # type: ignore[attr-defined]
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def timed_retrieval(engine_kind: str, workdir: Path, master: str) -> dict[str, float]:
    from repast.definitions import RepoContents
    from repast.feature_refs import resolve_features
    from repast.retrieval import entity_input

    # spark-sql: the entity rows stay in Spark (an SQL string), so the driver holds only batches.
    entity_df: object = f"SELECT * FROM parquet.`{workdir / 'entity.parquet'}`" if engine_kind == "spark-sql" \
        else pq.read_table(workdir / "entity.parquet").to_pandas()
    on_spark = engine_kind.startswith("spark")
    engine, views = spark_engine(workdir, master) if on_spark else engine_and_views("duckdb", workdir)
    if on_spark:
        engine.spark  # type: ignore[attr-defined] # noqa: B018 - session start-up is not part of the retrieval
    contents = RepoContents()
    for view in views:
        contents.feature_views[view.name] = view  # type: ignore[attr-defined]
        contents.entities[view.entity_objects[0].name] = view.entity_objects[0]  # type: ignore[attr-defined]
    features = [f"driver_stats:f{i}" for i in range(FEATURES)] + [f"merchant_stats:g{i}" for i in range(FEATURES)]
    out = workdir / f"result-{engine_kind}.parquet"
    start = time.perf_counter()
    request = resolve_features(contents, features, False)
    job = engine.get_historical_features(entity_input(entity_df, request, None, None), request, False)  # type: ignore[attr-defined]
    job.to_parquet(str(out))
    wall = time.perf_counter() - start
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result = {"wall_s": round(wall, 2), "driver_rss_mb": round(rss_mb), "rows": pq.ParquetFile(out).metadata.num_rows}
    if on_spark:
        result["jvm_rss_mb"] = round(_jvm_peak_mb(engine))
    return result


def timed_materialization(entities: int, master: str) -> dict[str, float]:
    """1 row per entity x 10 features, from Spark into Redis, written by the executors."""
    from repast.config import RepoConfig
    from repast.definitions import Entity, FeatureView, Field, SparkSource
    from repast.materialize import OnlineSink
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
        print(json.dumps(timed_retrieval(args.child, args.workdir, args.master)))


def run_child(*argv: str) -> dict[str, float]:
    out = subprocess.run([sys.executable, __file__, *argv], capture_output=True, text=True)
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else f"exit {out.returncode}"}
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scales", type=int, nargs="+", default=[1, 10])
    parser.add_argument("--materialize-entities", type=int, default=1_000_000)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--engines", nargs="+", default=["duckdb", "spark", "spark-sql"],
                        help="spark: pandas entity frame; spark-sql: entity rows read by Spark")
    parser.add_argument("--skip-materialize", action="store_true")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    for scale in args.scales:
        workdir = Path(tempfile.mkdtemp(prefix=f"repast-bench-spark-x{scale}-"))
        generate(workdir, scale)
        print(f"W1 x{scale}: {1_500_000 * scale:,} view rows, {100_000 * scale:,} entity rows", flush=True)
        for engine in args.engines:
            result = run_child("--child", engine, "--workdir", str(workdir), "--master", args.master)
            print(f"  {engine:6s} {json.dumps(result)}", flush=True)
    if args.skip_materialize:
        return
    result = run_child("--child", "materialize", "--materialize-entities", str(args.materialize_entities),
                       "--master", args.master)
    print(f"materialize {args.materialize_entities:,} entities x {FEATURES} features, Spark -> Redis: "
          f"{json.dumps(result)}", flush=True)


if __name__ == "__main__":
    main()
