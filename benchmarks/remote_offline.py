"""Benchmark: training data through the offline server (Arrow Flight, loopback) vs the same engine in-process.

Data: W1 of benchmarks/historical.py (--scale 1: 1,000,000 + 500,000 view rows, 100,000 entity rows).
In the same run, each a fresh process so its peak RSS is its own: the DuckDB engine in-process, and a
client of `repast serve-offline` (a server process over the same files), each writing the result to
Parquet (`to_parquet`: the remote client streams it batch by batch) and to pandas (`to_df`). Prints
total time and the client's peak RSS during the retrieval (VmHWM, reset when it starts: imports and
the entity frame included) and its growth over the RSS before the retrieval started, per run, and the
result's Arrow size; for remote runs, the server process's peak RSS during the run (VmHWM, reset
before each run) and its growth over the server's RSS before the run. The server process stays up
across runs (as a deployed one does), so its caches are warm; each local run starts cold.
`--entity-scale N` multiplies the entity rows (so the result's rows) only: `--entity-scale 100`
gives a 10M-row result over the x1 views.

    python benchmarks/remote_offline.py [--scale 1] [--entity-scale 1] [--repeat 2]
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from datagen import generate_entity_frame  # noqa: E402
from historical import FEATURES, engine_and_views, generate  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(workdir: Path, port: int, memory_limit: str = "") -> None:
    """The offline server over DuckDB and `workdir`'s files (run in its own process)."""
    from repast.config.repo_config import parse_config
    from repast.jobs.backends import Backends
    from repast.server.offline_flight import OfflineFlightServer

    offline_store = {"type": "duckdb", **({"memory_limit": memory_limit} if memory_limit else {})}
    config = parse_config({"project": "bench", "registry": str(workdir / "registry.db"),
                           "offline_store": offline_store}, "bench server", workdir)
    OfflineFlightServer(Backends(config), f"grpc+tcp://127.0.0.1:{port}").serve()


def timed_run(mode: str, output: str, workdir: Path, port: int) -> dict[str, float]:
    """One retrieval as a notebook runs it: entity DataFrame in, Parquet file or DataFrame out."""
    import pyarrow.parquet as pq

    from repast.definitions import RepoContents
    from repast.definitions.feature_refs import resolve_features
    from repast.jobs.retrieval import entity_input

    entity_df = pq.read_table(workdir / "entity.parquet").to_pandas()
    engine, views = engine_and_views("duckdb", workdir)
    if mode == "remote":
        from repast.config.repo_config import RepoConfig
        from repast.offline.remote import RemoteOfflineConfig, RemoteOfflineEngine

        engine = RemoteOfflineEngine(RemoteOfflineConfig(host="127.0.0.1", port=port),
                                     RepoConfig.model_construct(project="bench", repo_path=workdir))
    contents = RepoContents()
    for view in views:
        contents.feature_views[view.name] = view  # type: ignore[attr-defined]
        contents.entities[view.entity_objects[0].name] = view.entity_objects[0]  # type: ignore[attr-defined]
    features = [f"driver_stats:f{i}" for i in range(FEATURES)] + [f"merchant_stats:g{i}" for i in range(FEATURES)]
    before_flight = current_rss_mb()
    import pyarrow.flight  # noqa: F401 - the Flight/gRPC library: a one-time cost, counted in the baseline
    flight_mb = current_rss_mb() - before_flight
    baseline_mb = current_rss_mb()  # imports, the entity frame: what the process held before the retrieval
    Path("/proc/self/clear_refs").write_text("5")  # Linux: the peak (VmHWM) restarts from here
    start = time.perf_counter()
    request = resolve_features(contents, features, False)
    job = engine.get_historical_features(entity_input(entity_df, request, None, None), request, False)  # type: ignore[attr-defined]
    out = workdir / f"result-{mode}.parquet"
    if output == "parquet":
        job.to_parquet(str(out))
    else:
        rows = len(job.to_df())
    seconds = time.perf_counter() - start
    peak_mb = proc_status_mb("VmHWM")  # before the result is read back below
    arrow_mb = 0.0
    if output == "parquet":
        rows = pq.read_metadata(out).num_rows
        arrow_mb = pq.read_table(out).nbytes / 1e6
    return {"seconds": seconds, "peak_mb": peak_mb, "growth_mb": peak_mb - baseline_mb, "flight_mb": flight_mb,
            "rows": rows, "arrow_mb": arrow_mb}


def current_rss_mb() -> float:
    return proc_status_mb("VmRSS")


def proc_status_mb(key: str, pid: str = "self") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1]) / 1024
    return 0.0


def run_child(mode: str, output: str, workdir: Path, port: int, server_pid: int) -> dict[str, float]:
    """One client process's run; with the server's peak RSS during it and its RSS before it."""
    server_before = proc_status_mb("VmRSS", str(server_pid))
    Path(f"/proc/{server_pid}/clear_refs").write_text("5")  # the server's peak restarts from here
    done = subprocess.run([sys.executable, __file__, "--child", mode, output, str(workdir), str(port)],
                          capture_output=True, text=True, check=True)
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    result["server_peak_mb"] = proc_status_mb("VmHWM", str(server_pid))
    result["server_growth_mb"] = result["server_peak_mb"] - server_before
    return result


def report(mode: str, output: str, runs: list[dict[str, float]]) -> str:
    best = min(runs, key=lambda r: r["seconds"])
    size = f", result {best['arrow_mb']:.0f} MB as Arrow" if best["arrow_mb"] else ""
    server = (f"; server peak RSS {max(r['server_peak_mb'] for r in runs):.0f} MB "
              f"(+{max(r['server_growth_mb'] for r in runs):.0f} MB over its RSS before the run)"
              if mode == "remote" else "")
    return (f"  {mode:6} to_{output:7}: {best['seconds']:.2f} s (best of {len(runs)}), client peak RSS "
            f"{max(r['peak_mb'] for r in runs):.0f} MB (+{max(r['growth_mb'] for r in runs):.0f} MB over the "
            f"process before the retrieval; flight import {best['flight_mb']:.0f} MB), {int(best['rows']):,} rows"
            f"{size}{server}")


def wait_for(port: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise SystemExit("the offline server did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=1)
    parser.add_argument("--entity-scale", type=int, default=1, help="Multiplies the entity (result) rows only.")
    parser.add_argument("--server-memory-limit", default="",
                        help="The server's offline_store.memory_limit (DuckDB's; default: half the memory).")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--outputs", default="parquet,df", help="Comma-separated: parquet, df.")
    parser.add_argument("--modes", default="local,remote", help="Comma-separated: local, remote.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        generate(workdir, args.scale)
        entity_rows = 100_000 * args.scale * args.entity_scale
        if args.entity_scale != 1:
            import pyarrow.parquet as pq

            pq.write_table(generate_entity_frame(10_000 * args.scale, entity_rows, key="driver_id",
                                                 extra_keys={"merchant_id": 5_000 * args.scale}),
                           workdir / "entity.parquet")
        port = free_port()
        server = subprocess.Popen([sys.executable, __file__, "--serve", str(workdir), str(port),
                                   args.server_memory_limit])
        try:
            wait_for(port)
            print(f"W1 x{args.scale}: {1_500_000 * args.scale:,} view rows, {entity_rows:,} entity rows")
            for output in args.outputs.split(","):
                for mode in args.modes.split(","):
                    runs = [run_child(mode, output, workdir, port, server.pid) for _ in range(args.repeat)]
                    print(report(mode, output, runs), flush=True)
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve"]:
        serve(Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4] if len(sys.argv) > 4 else "")
    elif sys.argv[1:2] == ["--child"]:
        print(json.dumps(timed_run(sys.argv[2], sys.argv[3], Path(sys.argv[4]), int(sys.argv[5]))))
    else:
        main()
