"""Monitoring benchmarks (issue 25), each next to a reference measured in the same run.

    python benchmarks/monitoring.py [--rows 10000000] [--features 20] [--skew-rows 10000] [--rounds 3]
                                    [--skip-statistics] [--skip-skew] [--logging-overhead]
                                    [--spool-rows 500000] [--only-spools]

1. Statistics of one day of --rows rows x --features float64 features in the DuckDB engine (the
   default configuration: its memory limit is half of what the process may use): every statistic of
   `repast stats compute` (counts, null rate, min/max/mean/stddev, 5 quantiles, histogram, distinct
   count). Reference: one DuckDB scan computing only count and mean of every feature over the same
   file. Target: <= 10 s. The process's peak RSS is printed beside the engine's memory limit.
2. Skew check of --skew-rows sampled served rows (one view of 10 features, 100,000 entities): the
   served log is read, sampled by key hash, replayed through point-in-time retrieval and compared.
   Reference: the point-in-time retrieval of the same entity rows alone. Target: <= 10 s.
3. Converting the served-feature log's spools to Parquet (what the first read of the log after
   serving pays): --spool-rows served responses (one entity, a join key and 10 features: 5 float,
   5 int, as benchmarks/serve.py's logged service) in spools of 50,000 (about what one server worker
   seals per flush interval at full load). Parsed in C++ (DuckDB's JSON reader + Arrow) against the
   line-by-line Python conversion it replaced, on the same files, each including its Parquet write;
   reference: reading the resulting Parquet log.
4. With --logging-overhead: benchmarks/serve.py's comparison of serving a FeatureService without and
   with feature logging (the same server, in turn). Target: logged >= 95% of unlogged throughput.
Figures are printed; nothing here is a pass/fail test.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

DAY = datetime(2024, 1, 1, tzinfo=UTC)
TS = pa.timestamp("us", tz="UTC")


def _write_day(path: Path, rows: int, features: int, chunk: int = 1_000_000) -> None:
    """One day of rows in row groups of `chunk`, generated a chunk at a time (bounded memory)."""
    rng = np.random.default_rng(0)
    schema = pa.schema([("entity_id", pa.int64()), ("event_timestamp", TS)] +
                       [(f"f{i}", pa.float64()) for i in range(features)])
    day_us = 86_400 * 1_000_000
    with pq.ParquetWriter(path, schema) as writer:
        for start in range(0, rows, chunk):
            n = min(chunk, rows - start)
            ts = int(DAY.timestamp() * 1_000_000) + (np.arange(start, start + n, dtype=np.int64) * day_us) // rows
            columns = [pa.array(np.arange(start, start + n) % 1_000_000), pa.array(ts, pa.int64()).cast(TS)]
            columns += [pa.array(rng.normal(i, 1 + i % 5, n)) for i in range(features)]
            writer.write_table(pa.Table.from_arrays(columns, schema=schema), row_group_size=n)


def _repo(root: Path, features: int, yaml_extra: str = "") -> Path:
    (root / "feature_store.yaml").write_text(
        "project: bench\nregistry: data/registry.db\nonline_store: {type: sqlite, path: data/online.db}\n"
        + yaml_extra)
    (root / "bench_repo.py").write_text(f'''
from datetime import timedelta
from repast import Entity, FeatureService, FeatureView, Field, FileSource
from repast.feature_logging import LoggingConfig
from repast.infra.offline_stores.file_source import FileLoggingDestination
from repast.types import Float64

entity = Entity(name="entity", join_keys=["entity_id"])
bench = FeatureView(name="bench", entities=[entity], ttl=timedelta(0),
                    source=FileSource(name="bench_source", path="data/bench", timestamp_field="event_timestamp"),
                    schema=[Field(name=f"f{{i}}", dtype=Float64) for i in range({features})])
logged = FeatureService(name="logged", features=[bench],
                        logging_config=LoggingConfig(destination=FileLoggingDestination(path="logs")))
''')
    return root


def statistics_run(root: Path, rows: int, features: int, rounds: int) -> None:
    from repast.store import FeatureStore

    (root / "data" / "bench").mkdir(parents=True)
    started = time.perf_counter()
    _write_day(root / "data" / "bench" / "day.parquet", rows, features)
    print(f"generated {rows:,} rows x {features} features in {time.perf_counter() - started:.1f} s", flush=True)
    store = FeatureStore(_repo(root, features))
    store.apply_repo()
    engine = store.offline_engine
    columns = ", ".join(f"count(f{i}), avg(f{i})" for i in range(features))
    reference_sql = f"SELECT {columns} FROM read_parquet('{root / 'data' / 'bench' / 'day.parquet'}')"
    timings: dict[str, list[float]] = {"statistics": [], "reference": []}
    for _ in range(rounds):
        t = time.perf_counter()
        frame = store.compute_feature_statistics(["bench"], DAY, DAY + timedelta(days=1))
        timings["statistics"].append(time.perf_counter() - t)
        t = time.perf_counter()
        engine.run_query(lambda: reference_sql)  # type: ignore[attr-defined]
        timings["reference"].append(time.perf_counter() - t)
    assert len(frame) == features and int(frame["rows"].iloc[0]) == rows
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    limit = engine.config.memory_limit or "default (half the process's memory)"  # type: ignore[attr-defined]
    print(f"statistics, {rows:,} rows x {features} features, one day, DuckDB: median "
          f"{statistics.median(timings['statistics']):.2f} s (rounds: "
          f"{' '.join(f'{x:.2f}' for x in timings['statistics'])}; target <= 10 s); reference scan "
          f"(count + mean only): median {statistics.median(timings['reference']):.2f} s; "
          f"{rows * features / statistics.median(timings['statistics']) / 1e6:,.0f} M values/s; "
          f"peak RSS of this process {peak_mb:,.0f} MB, DuckDB memory_limit {limit}", flush=True)


def _served_log(root: Path, entities: int, rows: int, features: int, served_at: datetime) -> None:
    """A served-feature log of `rows` rows, as the feature server writes it (values as stored online)."""
    rng = np.random.default_rng(2)
    keys = rng.integers(0, entities, rows)
    log = {"__request_id": pa.array([f"{i:032x}" for i in range(rows)]),
           "__log_timestamp": pa.array([served_at] * rows, TS), "entity_id": pa.array(keys)}
    for i in range(features):
        log[f"f{i}"] = pa.array(keys * 0.5 + i)  # what the source holds, below
        log[f"f{i}__status"] = pa.array(["PRESENT"] * rows)
        log[f"f{i}__timestamp"] = pa.array([served_at - timedelta(hours=1)] * rows, TS)
    (root / "logs").mkdir()
    pq.write_table(pa.table(log), root / "logs" / "served.parquet")


def skew_run(root: Path, rows: int, rounds: int, entities: int = 100_000, features: int = 10) -> None:
    from repast.store import FeatureStore

    (root / "data" / "bench").mkdir(parents=True)
    served_at = datetime.now(UTC) - timedelta(minutes=5)
    keys = np.arange(entities)
    source = {"entity_id": pa.array(keys), "event_timestamp": pa.array([served_at - timedelta(hours=1)] * entities, TS)}
    source.update({f"f{i}": pa.array(keys * 0.5 + i) for i in range(features)})
    pq.write_table(pa.table(source), root / "data" / "bench" / "part.parquet")
    _served_log(root, entities, rows, features, served_at)
    store = FeatureStore(_repo(root, features))
    store.apply_repo()
    log = pq.read_table(root / "logs" / "served.parquet")
    entity = pa.table({"entity_id": log.column("entity_id"), "event_timestamp": log.column("__log_timestamp")})
    timings: dict[str, list[float]] = {"skew": [], "reference": []}
    for _ in range(rounds):
        t = time.perf_counter()
        report = store.check_skew(sample=rows, window=timedelta(hours=1))
        timings["skew"].append(time.perf_counter() - t)
        t = time.perf_counter()
        store.get_historical_features(entity, store.get_feature_service("logged")).to_arrow()
        timings["reference"].append(time.perf_counter() - t)
    assert all(f.sampled == rows and f.mismatches == 0 for f in report.features), report.features
    print(f"skew check, {rows:,} sampled served rows x {features} features ({entities:,} entities): median "
          f"{statistics.median(timings['skew']):.2f} s (rounds: {' '.join(f'{x:.2f}' for x in timings['skew'])}; "
          f"target <= 10 s); reference: point-in-time retrieval of the same rows alone, median "
          f"{statistics.median(timings['reference']):.2f} s", flush=True)


def _spools(path: Path, rows: int, per_spool: int = 50_000) -> list[Path]:
    """Sealed spools of `rows` served responses, as the feature server writes them."""
    import orjson

    from repast.jobs.served_log import SpoolFile, spool_record

    names = ["entity_id"] + [f"f{i}" for i in range(10)]
    start_us = int(DAY.timestamp() * 1_000_000)
    for first in range(0, rows, per_spool):
        spool = SpoolFile(str(path), "feedfacefeedface")
        lines = []
        for n in range(first, min(rows, first + per_spool)):
            key = n % 10_000
            results = [{"values": [key], "statuses": ["PRESENT"], "event_timestamps": ["1970-01-01T00:00:00Z"]}]
            results += [{"values": [key * 0.5 + i if i % 2 == 0 else key + i], "statuses": ["PRESENT"],
                         "event_timestamps": ["2024-01-01T00:00:00Z"]} for i in range(10)]
            answer = orjson.dumps({"metadata": {"feature_names": names}, "results": results})
            lines.append(spool_record(n, start_us + n, {"entity_id": [key]}, answer))
        spool.append(lines)
        spool.seal()
    return sorted((path / "_spool").glob("*.sealed.jsonl"))


def spool_run(root: Path, rows: int, rounds: int) -> None:
    from repast.jobs.served_log import read_feature_log, served_tables, spool_items
    from repast.jobs.spool_convert import spool_table

    spools = _spools(root / "logs", rows)
    out = root / "converted"
    out.mkdir()
    print(f"spooled {rows:,} served responses in {len(spools)} spools "
          f"({sum(p.stat().st_size for p in spools) / 1e6:,.0f} MB)", flush=True)

    def line_by_line(spool: Path) -> pa.Table:
        return served_tables(spool_items(spool.read_bytes(), "feedfacefeedface")[0])

    def parsed(spool: Path) -> pa.Table:
        table = spool_table(str(spool), "feedfacefeedface", spool.read_bytes().count(b"\n"))
        assert table is not None, "the C++ conversion handed the spool back"
        return table

    timings: dict[str, list[float]] = {"python": [], "c++": [], "reference": []}
    for _ in range(rounds):
        for name, convert in (("python", line_by_line), ("c++", parsed)):
            t = time.perf_counter()
            for n, spool in enumerate(spools):
                pq.write_table(convert(spool), out / f"{name}-{n}.parquet")
            timings[name].append(time.perf_counter() - t)
        t = time.perf_counter()
        assert sum(pq.read_table(out / f"c++-{n}.parquet").num_rows for n in range(len(spools))) == rows
        timings["reference"].append(time.perf_counter() - t)
    assert pq.read_table(out / "c++-0.parquet").equals(pq.read_table(out / "python-0.parquet"))
    t = time.perf_counter()
    assert read_feature_log(str(root / "logs")).num_rows == rows  # the read path: converts, removes the spools, reads
    first_read = time.perf_counter() - t
    median = {name: statistics.median(values) for name, values in timings.items()}
    print(f"spool -> Parquet conversion, {rows:,} served responses x 11 outputs: C++ (DuckDB JSON + Arrow) median "
          f"{median['c++']:.2f} s = {rows / median['c++']:,.0f} rows/s (rounds: "
          f"{' '.join(f'{x:.2f}' for x in timings['c++'])}); line-by-line Python (before) median "
          f"{median['python']:.2f} s = {rows / median['python']:,.0f} rows/s (rounds: "
          f"{' '.join(f'{x:.2f}' for x in timings['python'])}); {median['python'] / median['c++']:.1f}x faster; "
          f"reference: reading the converted Parquet log {median['reference']:.2f} s; the first "
          f"read_feature_log of the spooled log (convert + read) {first_read:.2f} s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--skew-rows", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--skip-statistics", action="store_true")
    parser.add_argument("--skip-skew", action="store_true")
    parser.add_argument("--logging-overhead", action="store_true")
    parser.add_argument("--spool-rows", type=int, default=500_000)
    parser.add_argument("--only-spools", action="store_true", help="only the spool conversion benchmark")
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPUs; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        if args.spool_rows:
            spool_run(Path(tmp) / "spools", args.spool_rows, args.rounds)
        if not (args.skip_statistics or args.only_spools):
            statistics_run(Path(tmp) / "statistics", args.rows, args.features, args.rounds)
        if not (args.skip_skew or args.only_spools):
            skew_run(Path(tmp) / "skew", args.skew_rows, args.rounds)
    if args.logging_overhead and not args.only_spools:
        subprocess.run([sys.executable, str(Path(__file__).parent / "serve.py"), "--logging-overhead"], check=True)
    print(f"load average at the end {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)


if __name__ == "__main__":
    main()
