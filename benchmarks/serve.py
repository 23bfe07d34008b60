"""HTTP feature server latency and throughput: 1 entity x 10 features, SQLite online store, loopback.

    python benchmarks/serve.py [--entities 10000] [--duration 10] [--rounds 3] [--sustain 60] [--skip-sustain]
    python benchmarks/serve.py --logging-overhead [--duration 1] [--rounds 40]

Runs `repast serve` as a real process and drives it with wrk (`apt-get install wrk`; without it,
a small asyncio keep-alive load generator in this file stands in). Runs 1 and 2 also measure, in
the same run and under the same uvicorn settings, the bare ASGI reference app (bare_app.py: reads
the body, answers repast's bytes for the first request, parses and reads nothing) and the floor
app (floor_app.py: parses the body, reads the row from the same SQLite file, answers it as orjson
encodes it; no checks, no metrics: the store read and JSON alone). The three run side by side and
are loaded in turn, --rounds times; medians and each round's ratios are printed, as the machine's
noise moves single runs by 10-20%:
  1. one worker, one connection: latency percentiles, repast, the reference and the floor
  2. two workers, eight connections: throughput and p99, repast, the reference and the floor
  3. two workers, eight connections sustained for --sustain seconds: errors and server RSS over time
repast runs twice: as a user starts it (access log on, written to a file) and with --no-access-log.
Targets (issues 10 and 19): repast as started by default >= 90% of its --no-access-log throughput and
>= 70% of the reference's in 2, and a p50 <= 2x the reference's in 1; 3 -> 0 errors, flat memory.
With --logging-overhead (issue 25): one server, two workers, eight connections, requests for the
same features through a FeatureService without and with a LoggingConfig (every served row logged),
in --rounds rounds of --duration seconds, each round unlogged, logged, unlogged again (every other
round in the reverse order). Printed: the median of the per-round ratios logged/unlogged (unlogged:
the mean of the round's two unlogged runs) with its middle half and extremes, the same for the A/A
ratio (unlogged again/unlogged: what the method shows when nothing differs, the noise floor), p50
and p99 of both, the server's CPU time per request (all its processes, from /proc: it moves less
with the machine's other load than throughput does) and the load average over the rounds.
Then the same comparison side by side: two identical servers (one worker each) loaded at the same
time, one answering the logged service and one the unlogged, the roles swapped every round (every
third round both unlogged: the A/A ratio), so both share each instant of the machine's other load.
Target: logged throughput >= 95% of unlogged. The log is read after the load (spools not yet
converted by the server are converted then; timed and printed).
Figures are printed; nothing here is a pass/fail test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
from datagen import generate_view_table  # noqa: E402

FEATURES = 10
DEFINITIONS = '''
from datetime import timedelta
from repast import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
from repast.feature_logging import LoggingConfig
from repast.infra.offline_stores.file_source import FileLoggingDestination
from repast.types import Float32, Int64

entity = Entity(name="entity", join_keys=["entity_id"], value_type=ValueType.INT64)
source = FileSource(name="bench_source", path="data/bench.parquet", timestamp_field="event_timestamp",
                    created_timestamp_column="created")
bench = FeatureView(name="bench", entities=[entity], ttl=timedelta(0), source=source,
                    schema=[Field(name=f"f{i}", dtype=Float32 if i % 2 == 0 else Int64) for i in range(10)])
# The same features with and without feature logging (--logging-overhead).
bench_unlogged = FeatureService(name="bench_unlogged", features=[bench])
bench_logged = FeatureService(name="bench_logged", features=[bench],
                              logging_config=LoggingConfig(destination=FileLoggingDestination(path="logs")))
'''


def make_repo(root: Path, entities: int) -> Path:
    from repast.store import FeatureStore

    repo = root / "repo"
    (repo / "data").mkdir(parents=True)
    (repo / "feature_store.yaml").write_text(
        "project: bench\nregistry: data/registry.db\nonline_store: {type: sqlite, path: data/online.db}\n")
    (repo / "bench_repo.py").write_text(DEFINITIONS)
    table = generate_view_table(entities, 2, FEATURES)
    pq.write_table(table, repo / "data" / "bench.parquet")
    store = FeatureStore(repo)
    store.apply_repo()
    ts = table.column("event_timestamp").to_pylist()
    store.materialize(min(ts), max(ts) + (max(ts) - min(ts)))
    return repo


def request_bodies(entities: int, count: int = 200, service: str = "") -> list[str]:
    wanted: dict[str, Any] = {"feature_service": service} if service else \
        {"features": [f"bench:f{i}" for i in range(FEATURES)]}
    step = max(1, entities // count)
    return [json.dumps({**wanted, "entities": {"entity_id": [i * step % entities]}}) for i in range(count)]


def logging_overhead(repo: Path, entities: int, seconds: int, pairs: int) -> dict[str, float]:
    """One server answering the same features through a FeatureService without and with feature
    logging, in many short rounds in alternating order (unlogged, logged, unlogged-again; then the
    reverse), so the machine's other load falls on both alike. Each round's logged throughput is
    divided by the mean of its two unlogged neighbours; the second unlogged run divided by the first
    is the A/A ratio: the spread this method shows when nothing differs."""
    plain, logged = request_bodies(entities, service="bench_unlogged"), request_bodies(entities, service="bench_logged")
    server = Server(repo, _free_port(), workers=2)
    runs: dict[str, list[dict[str, float]]] = {"unlogged": [], "logged": [], "unlogged again": []}
    loads = [os.getloadavg()[0]]
    conversion_cpu = 0.0
    try:
        for bodies in (plain, logged, plain, logged):
            load(server.url, bodies, 2, 8, 2)  # warm-up
        for k in range(pairs):
            order = (("unlogged", plain), ("logged", logged), ("unlogged again", plain))
            for name, bodies in (order if k % 2 == 0 else order[::-1]):
                cpu, converting = server.cpu_seconds(), server.cpu_seconds(conversion=True)
                result = load(server.url, bodies, 2, 8, seconds)
                result["cpu_us"] = (server.cpu_seconds() - cpu) / max(1, result["requests"]) * 1e6
                conversion_cpu += server.cpu_seconds(conversion=True) - converting
                runs[name].append(result)
            loads.append(os.getloadavg()[0])
    finally:
        server.stop()
    for name, results in runs.items():
        _report(f"2 workers, 8 connections, FeatureService {name} (median of {pairs} rounds of {seconds} s)",
                {k: _median([r[k] for r in results]) for k in ("p50_ms", "p99_ms", "rps", "requests", "errors")})
    unlogged = [(a["rps"] + b["rps"]) / 2 for a, b in zip(runs["unlogged"], runs["unlogged again"], strict=True)]
    ratios = [lg["rps"] / un for lg, un in zip(runs["logged"], unlogged, strict=True)]
    same = [b["rps"] / a["rps"] for a, b in zip(runs["unlogged"], runs["unlogged again"], strict=True)]
    cpu_un = [(a["cpu_us"] + b["cpu_us"]) / 2 for a, b in zip(runs["unlogged"], runs["unlogged again"], strict=True)]
    cpu = [lg["cpu_us"] / un for lg, un in zip(runs["logged"], cpu_un, strict=True)]
    print(f"logged/unlogged throughput: median {_spread(ratios)} (target >= 95%); A/A (unlogged again/"
          f"unlogged, the method's noise): median {_spread(same)}", flush=True)
    logged_requests = sum(r["requests"] for r in runs["logged"])
    print(f"served-log conversion processes (niced): {conversion_cpu / max(1, logged_requests) * 1e6:.0f} us of CPU "
          f"per logged request, over the rounds", flush=True)
    print(f"server CPU per request (from /proc; conversion aside): unlogged {_median(cpu_un):.0f} us, logged "
          f"{_median([r['cpu_us'] for r in runs['logged']]):.0f} us; logged/unlogged median {_spread(cpu)}",
          flush=True)
    print(f"load average (1 min) over the rounds: {min(loads):.2f}-{max(loads):.2f}, median {_median(loads):.2f}",
          flush=True)
    from repast.server.feature_logging import read_feature_log

    started = time.perf_counter()
    logged_rows = read_feature_log(str(repo / "logs")).num_rows  # converts the spools not yet converted
    print(f"feature logging: {logged_rows:,} served rows logged; reading the log took "
          f"{time.perf_counter() - started:.1f} s", flush=True)
    return {"ratio": _median(ratios)}


def side_by_side(repo: Path, entities: int, seconds: int, rounds: int) -> None:
    """Two identical servers (one worker each) loaded at the same time, one with the logged service's
    requests and one with the unlogged ones, the roles swapped every round: both see the same
    instant of the machine's other load, so their ratio moves with what differs between them only.
    Every third round both get unlogged requests: the A/A ratio, the method's own noise."""
    from concurrent.futures import ThreadPoolExecutor

    plain, logged = request_bodies(entities, service="bench_unlogged"), request_bodies(entities, service="bench_logged")
    servers = [Server(repo, _free_port(), workers=1), Server(repo, _free_port(), workers=1)]
    ratios, same, loads = [], [], [os.getloadavg()[0]]
    runs: dict[str, list[dict[str, float]]] = {"unlogged": [], "logged": []}
    try:
        with ThreadPoolExecutor(2) as pool:
            for pair in ((plain, logged), (logged, plain)):  # warm-up
                list(pool.map(lambda sb: load(sb[0].url, sb[1], 1, 4, 2), zip(servers, pair, strict=True)))
            for k in range(rounds):
                aa = k % 3 == 2
                first, second = (plain, plain) if aa else (plain, logged) if k % 2 == 0 else (logged, plain)
                results = list(pool.map(lambda sb: load(sb[0].url, sb[1], 1, 4, seconds),
                                        zip(servers, (first, second), strict=True)))
                loads.append(os.getloadavg()[0])
                if aa:
                    same.append(results[1]["rps"] / results[0]["rps"])
                    continue
                unlogged, served = results if first is plain else results[::-1]
                runs["unlogged"].append(unlogged)
                runs["logged"].append(served)
                ratios.append(served["rps"] / unlogged["rps"])
    finally:
        for server in servers:
            server.stop()
    for name, results in runs.items():
        _report(f"side by side, 1 worker and 4 connections each, FeatureService {name} (median of {len(results)} "
                f"rounds of {seconds} s)",
                {k: _median([r[k] for r in results]) for k in ("p50_ms", "p99_ms", "rps", "requests", "errors")})
    print(f"side by side: logged/unlogged throughput median {_spread(ratios)} (target >= 95%); A/A (both unlogged) "
          f"median {_spread(same)}; load average (1 min) {min(loads):.2f}-{max(loads):.2f}, median "
          f"{_median(loads):.2f}", flush=True)


def _spread(values: list[float]) -> str:
    """The median of per-round ratios, with its interquartile range and extremes."""
    q = statistics.quantiles(values, n=4) if len(values) > 1 else values * 3
    return (f"{_median(values):.1%} (middle half {q[0]:.1%}-{q[2]:.1%}, all {min(values):.1%}-{max(values):.1%}, "
            f"{len(values)} rounds)")


class Server:
    """`repast serve` on the benchmark repo (as a user starts it: access log on, written to a file;
    or with `access_log=False`, --no-access-log), or with `bare_body` the reference app
    (bare_app.py) under the same uvicorn settings, answering those bytes."""

    def __init__(self, repo: Path, port: int, workers: int, bare_body: Path | None = None,
                 app: str = "bare_app", access_log: bool = False) -> None:
        self.url = f"http://127.0.0.1:{port}"
        output: Any = subprocess.DEVNULL
        if bare_body is None:
            command = [str(Path(sys.executable).parent / "repast"), "serve", "--port", str(port),
                       "--workers", str(workers), *([] if access_log else ["--no-access-log"])]
            env = None
            if access_log:  # a real file, as a container runtime or a log shipper reads stdout
                output = (repo / f"access-{port}.log").open("wb")
        else:
            command = [sys.executable, "-m", "uvicorn", f"{app}:app", "--port", str(port), "--workers",
                       str(workers), "--no-access-log", "--log-level", "warning"]
            env = {**os.environ, "BARE_APP_BODY": str(bare_body), "FLOOR_APP_DB": str(repo / "data" / "online.db"),
                   "FLOOR_APP_FEATURES": str(FEATURES), "PYTHONPATH": str(Path(__file__).resolve().parent)}
        self.proc = subprocess.Popen(command, cwd=repo, stdout=output, stderr=output,
                                     start_new_session=True, env=env)
        import httpx

        for _ in range(300):
            try:
                if httpx.get(self.url + "/ready", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("server did not become ready")

    def rss_mb(self) -> float:
        """Resident memory of the server and its worker processes."""
        pids = [self.proc.pid] + [int(p) for p in subprocess.run(
            ["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True).stdout.split()]
        total = 0
        for pid in pids:
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            match = re.search(r"VmRSS:\s+(\d+) kB", status)
            total += int(match.group(1)) if match else 0
        return total / 1024

    def cpu_seconds(self, conversion: bool = False) -> float:
        """CPU time (user + system) used so far by the server and its worker processes, or with
        `conversion` by the served-log conversion processes under them (niced: they take the CPU
        serving leaves)."""
        pids, parents = [], [self.proc.pid]
        while parents:
            pids += parents
            parents = [int(p) for p in subprocess.run(["pgrep", "-P", ",".join(map(str, parents))],
                                                      capture_output=True, text=True).stdout.split()]
        ticks = 0
        for pid in pids:
            try:
                converts = b"convert_served_log" in Path(f"/proc/{pid}/cmdline").read_bytes()
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if converts == conversion:
                ticks += int(fields[11]) + int(fields[12])  # utime, stime
        return ticks / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


# ---- load generation ---------------------------------------------------------------------------

WRK_SCRIPT = """
local bodies = {%s}
local i = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  i = i %% #bodies + 1
  return wrk.format(nil, nil, nil, bodies[i])
end
"""


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def run_wrk(url: str, bodies: list[str], threads: int, connections: int, seconds: int) -> dict[str, float]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(WRK_SCRIPT % ",".join("[[" + b + "]]" for b in bodies))
    out = subprocess.run(["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", f.name,
                          url + "/get-online-features"], capture_output=True, text=True, check=True).stdout
    Path(f.name).unlink()
    pct = {p: _ms(v) for p, v in re.findall(r"^\s+(50|75|90|99)%\s+(\S+)\s*$", out, re.M)}
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = (int(non2xx.group(1)) if non2xx else 0) + (sum(map(int, socket.groups())) if socket else 0)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    return {"p50_ms": pct["50"], "p99_ms": pct["99"], "rps": rps, "requests": requests, "errors": errors}


async def _connection(port: int, bodies: list[bytes], deadline: float, latencies: list[float]) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    errors, i = 0, 0
    while time.perf_counter() < deadline:
        body = bodies[i % len(bodies)]
        i += 1
        start = time.perf_counter()
        writer.write(b"POST /get-online-features HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(re.search(rb"content-length: (\d+)", head.lower()).group(1))  # type: ignore[union-attr]
        await reader.readexactly(length)
        latencies.append(time.perf_counter() - start)
        errors += not head.startswith(b"HTTP/1.1 200")
    writer.close()
    return errors


def _load_process(port: int, bodies: list[str], connections: int, seconds: int, queue: Any) -> None:
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    encoded = [b.encode() for b in bodies]

    async def main() -> list[int]:
        return await asyncio.gather(*[_connection(port, encoded, deadline, latencies) for _ in range(connections)])
    errors = sum(asyncio.run(main()))
    queue.put((latencies, errors))


def run_python_load(url: str, bodies: list[str], threads: int, connections: int, seconds: int) -> dict[str, float]:
    """The stand-in for wrk: `threads` processes, keep-alive connections, closed loop."""
    port = int(url.rsplit(":", 1)[1])
    queue: Any = multiprocessing.Queue()
    procs = [multiprocessing.Process(target=_load_process, args=(port, bodies, connections // threads, seconds, queue))
             for _ in range(threads)]
    for p in procs:
        p.start()
    results = [queue.get() for _ in procs]
    for p in procs:
        p.join()
    latencies = sorted(x for lat, _ in results for x in lat)
    return {"p50_ms": latencies[len(latencies) // 2] * 1000, "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000,
            "rps": len(latencies) / seconds, "requests": len(latencies), "errors": sum(e for _, e in results)}


def load(url: str, bodies: list[str], threads: int, connections: int, seconds: int) -> dict[str, float]:
    if shutil.which("wrk"):
        return run_wrk(url, bodies, threads, connections, seconds)
    return run_python_load(url, bodies, threads, connections, seconds)


# ---- the runs ------------------------------------------------------------------------------------

def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _report(name: str, r: dict[str, float]) -> None:
    print(f"{name}: p50 {r['p50_ms']:.3f} ms  p99 {r['p99_ms']:.3f} ms  {r['rps']:,.0f} req/s  "
          f"{int(r['requests']):,} requests  {int(r['errors'])} errors", flush=True)


def sustained(server: Server, bodies: list[str], seconds: int) -> None:
    samples = [server.rss_mb()]
    chunk = 10
    totals = {"requests": 0.0, "errors": 0.0}
    worst_p99 = 0.0
    for _ in range(max(1, seconds // chunk)):
        r = load(server.url, bodies, 2, 8, chunk)
        totals["requests"] += r["requests"]
        totals["errors"] += r["errors"]
        worst_p99 = max(worst_p99, r["p99_ms"])
        samples.append(server.rss_mb())
    rss = " ".join(f"{s:.0f}" for s in samples)
    print(f"sustained {seconds}s, 2 workers x 8 connections: {int(totals['requests']):,} requests, "
          f"{int(totals['errors'])} errors, {totals['requests'] / seconds:,.0f} req/s, worst 10 s p99 "
          f"{worst_p99:.3f} ms; server RSS MB every {chunk}s: {rss}", flush=True)


def _median(values: list[float]) -> float:
    return statistics.median(values)


def _compare(name: str, runs: list[list[dict[str, float]]]) -> None:
    """Each app's median over the rounds, and the ratios of each round (paired: run back to back)."""
    names = ("repast serve (default: access log on)", "repast serve --no-access-log", "bare ASGI reference",
             "floor (SQLite read + orjson only)")
    medians = []
    for app, app_runs in zip(names, runs, strict=True):
        m = {k: _median([r[k] for r in app_runs]) for k in ("p50_ms", "p99_ms", "rps", "cpu_us")}
        m["requests"] = sum(r["requests"] for r in app_runs)
        m["errors"] = sum(r["errors"] for r in app_runs)
        medians.append(m)
        _report(f"{name}, {app} (median of {len(app_runs)} rounds)", m)
    repast, quiet, bare, floor = runs
    throughput = [r["rps"] / b["rps"] for r, b in zip(repast, bare, strict=True)]
    logged = [r["rps"] / q["rps"] for r, q in zip(repast, quiet, strict=True)]
    latency = [r["p50_ms"] / b["p50_ms"] for r, b in zip(repast, bare, strict=True)]
    floor_throughput = [f["rps"] / b["rps"] for f, b in zip(floor, bare, strict=True)]
    print(f"{name}: repast/bare throughput {_median(throughput):.0%} "
          f"(rounds: {' '.join(f'{x:.0%}' for x in throughput)}; target >= 70% at 8 connections), "
          f"repast/--no-access-log throughput {_median(logged):.0%} "
          f"(rounds: {' '.join(f'{x:.0%}' for x in logged)}; target >= 90%), "
          f"p50 {_median(latency):.2f}x the bare p50 (rounds: {' '.join(f'{x:.2f}' for x in latency)}; "
          f"target <= 2x at 1 connection); floor/bare throughput {_median(floor_throughput):.0%}; "
          f"server CPU per request {medians[0]['cpu_us']:.0f} us repast, {medians[1]['cpu_us']:.0f} us "
          f"--no-access-log, {medians[2]['cpu_us']:.0f} us bare, {medians[3]['cpu_us']:.0f} us floor "
          "(independent of other load on the machine)", flush=True)


def _side_by_side(repo: Path, bodies: list[str], bare_body: Path, workers: int, connections: int,
                  seconds: int, rounds: int) -> list[list[dict[str, float]]]:
    """repast (as started by default, and with --no-access-log), the bare reference and the floor,
    all started and warmed up, then loaded in turn for `rounds` rounds, so each round compares them
    under the same conditions."""
    servers = []
    try:
        for reference, app, logged in ((None, "", True), (None, "", False), (bare_body, "bare_app", False),
                                       (bare_body, "floor_app", False)):
            servers.append(Server(repo, _free_port(), workers=workers, bare_body=reference, app=app,
                                  access_log=logged))
        for server in servers:
            load(server.url, bodies, min(2, connections), connections, 2)  # warm-up
        runs: list[list[dict[str, float]]] = [[] for _ in servers]
        for _ in range(rounds):
            for server, app_runs in zip(servers, runs, strict=True):
                cpu = server.cpu_seconds()
                result = load(server.url, bodies, min(2, connections), connections, seconds)
                result["cpu_us"] = (server.cpu_seconds() - cpu) / max(1, result["requests"]) * 1e6
                app_runs.append(result)
        return runs
    finally:
        for server in servers:
            server.stop()


def _first_answer(repo: Path, body: str, path: Path) -> Path:
    """What repast answers to `body`: the bytes the bare reference app will answer every request."""
    import httpx

    server = Server(repo, _free_port(), workers=1)
    try:
        path.write_bytes(httpx.post(server.url + "/get-online-features", content=body).content)
    finally:
        server.stop()
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entities", type=int, default=10_000)
    parser.add_argument("--duration", type=int, default=None,
                        help="seconds per latency/throughput run (10; 1 with --logging-overhead)")
    parser.add_argument("--rounds", type=int, default=None,
                        help="rounds of repast, bare and floor in turn (3; 40 with --logging-overhead)")
    parser.add_argument("--sustain", type=int, default=60)
    parser.add_argument("--skip-sustain", action="store_true")
    parser.add_argument("--logging-overhead", action="store_true",
                        help="only compare serving a FeatureService without and with feature logging")
    args = parser.parse_args()
    args.duration = args.duration or (1 if args.logging_overhead else 10)
    args.rounds = args.rounds or (40 if args.logging_overhead else 3)
    print(f"load generator: {'wrk' if shutil.which('wrk') else 'python asyncio (wrk not installed)'}; "
          f"{args.entities:,} entities x {FEATURES} features, SQLite online store, 1 entity per request; "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        repo = make_repo(Path(tmp), args.entities)
        if args.logging_overhead:
            logging_overhead(repo, args.entities, args.duration, args.rounds)
            side_by_side(repo, args.entities, args.duration, args.rounds)
            return
        bodies = request_bodies(args.entities)
        bare_body = _first_answer(repo, bodies[0], Path(tmp) / "bare_body.json")
        _compare("1 worker, 1 connection", _side_by_side(repo, bodies, bare_body, 1, 1, args.duration, args.rounds))
        _compare("2 workers, 8 connections", _side_by_side(repo, bodies, bare_body, 2, 8, args.duration, args.rounds))
        if not args.skip_sustain:
            server = Server(repo, _free_port(), workers=2)
            try:
                sustained(server, bodies, args.sustain)
            finally:
                server.stop()
    print(f"load average at the end {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
