"""How fast the feature server answers while a backend is down or frozen (issue 10, item 1).

    python benchmarks/outage.py [--requests 20]

Starts its own redis-server and PostgreSQL (never the shared ones), serves the sample repo with
each as the online store (and PostgreSQL as the registry, SQLite online), then stops or freezes
(SIGSTOP) the backend and times get-online-features answers from 8 concurrent clients: status
codes, p50/max latency, and the server log size. Also times the SDK's get_online_features and
`repast materialize-incremental` against a stopped Redis. Figures only; nothing here is a test.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from repast.cli.scaffold import init_repo  # noqa: E402
from repast.store import FeatureStore  # noqa: E402
from tests.e2e.backend_processes import PostgresProcess  # noqa: E402
from tests.e2e.test_server_harness import RedisProcess, ServerProcess  # noqa: E402

ONLINE = {"features": ["driver_hourly_stats:conv_rate"], "entities": {"driver_id": [1001, 1002]}}
SQLITE = "  type: sqlite          # embedded; also: redis, postgres\n  path: data/online.db"


def make_repo(root: Path, online: str | None = None, registry: str | None = None) -> Path:
    repo = init_repo(root / "repo", "outage")
    text = (repo / "feature_store.yaml").read_text()
    text = text.replace(SQLITE, online) if online else text
    text = text.replace("registry: data/registry.db", registry) if registry else text
    (repo / "feature_store.yaml").write_text(text)
    store = FeatureStore(repo)
    store.apply_repo()
    now = datetime.now(UTC)
    store.materialize(now - timedelta(days=8), now, ["driver_hourly_stats"])
    return repo


def hammer(url: str, requests: int) -> str:
    """`requests` reads from 8 clients, each on its own keep-alive connection."""
    def client(count: int) -> list[tuple[int, float]]:
        timings = []
        with httpx.Client(base_url=url, timeout=30) as http:
            for _ in range(count):
                start = time.perf_counter()
                try:
                    status = http.post("/get-online-features", json=ONLINE).status_code
                except httpx.HTTPError:
                    status = 0
                timings.append((status, time.perf_counter() - start))
        return timings

    with ThreadPoolExecutor(8) as pool:
        results = [r for part in pool.map(client, [requests // 8] * 8) for r in part]
    seconds = [s for _, s in results]
    statuses = dict(Counter(st for st, _ in results))
    return f"statuses {statuses}, p50 {statistics.median(seconds):.3f} s, max {max(seconds):.3f} s"


def scenario(name: str, repo: Path, outage: object, requests: int) -> None:
    with ServerProcess(repo, "--no-access-log") as server:
        httpx.post(server.url + "/get-online-features", json=ONLINE, timeout=30)
        before = len(server.output())
        outage()  # type: ignore[operator]
        time.sleep(1.5)  # past the registry cache TTL of the registry scenario
        result = hammer(server.url, requests)
        start = time.perf_counter()
        ready = httpx.get(server.url + "/ready", timeout=30).status_code
        ready_s = time.perf_counter() - start
        log = len(server.output()) - before
    print(f"{name}: {result}; /ready {ready} in {ready_s:.3f} s; server log +{log} bytes", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=40)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for frozen in (False, True):
            redis = RedisProcess(root / f"redis{frozen}").start()
            repo = make_repo(root / f"r{frozen}", online=f"  type: redis\n  connection_string: \"{redis.address}\"")
            assert redis.proc is not None
            proc = redis.proc
            scenario(f"Redis {'frozen' if frozen else 'stopped'}", repo,
                     (lambda p=proc: os.kill(p.pid, signal.SIGSTOP)) if frozen else redis.stop, args.requests)
            if frozen:
                os.kill(proc.pid, signal.SIGCONT)
            else:
                start = time.perf_counter()
                try:
                    FeatureStore(repo).get_online_features(ONLINE["features"], ONLINE["entities"])
                except Exception as e:  # noqa: BLE001 - the timing is what is reported
                    print(f"SDK get_online_features, Redis stopped: {type(e).__name__} after "
                          f"{time.perf_counter() - start:.3f} s", flush=True)
                start = time.perf_counter()
                done = subprocess.run([str(Path(sys.executable).parent / "repast"), "materialize-incremental"],
                                      cwd=repo, capture_output=True, text=True)
                print(f"repast materialize-incremental, Redis stopped: exit {done.returncode} after "
                      f"{time.perf_counter() - start:.3f} s: {done.stderr.strip()[:120]}", flush=True)
            redis.stop()
        for frozen in (False, True):
            pg = PostgresProcess().start()
            try:
                repo = make_repo(root / f"pg{frozen}", online=f"  type: postgres\n  url: \"{pg.url}\"")
                scenario(f"PostgreSQL online store {'frozen' if frozen else 'stopped'}", repo,
                         pg.freeze if frozen else pg.stop, args.requests)
            finally:
                pg.close()
        pg = PostgresProcess().start()
        try:
            url = pg.url.replace("postgresql://", "postgresql+psycopg://")
            repo = make_repo(root / "reg", registry=f"registry: {{path: \"{url}\", cache_ttl_seconds: 1}}")
            scenario("PostgreSQL registry stopped (SQLite online)", repo, pg.stop, args.requests)
        finally:
            pg.close()


if __name__ == "__main__":
    main()
