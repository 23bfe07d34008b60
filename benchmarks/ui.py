"""Web UI load times on a generated registry of 1,000 feature views.

    python benchmarks/ui.py [--views 1000] [--features 10] [--requests 50]

The registry: --views feature views of --features features each (tags, owners, descriptions),
one file source per view, 20 entities, a feature service per 10 views and an on-demand view per
20 views. `repast ui` runs as a real process on a loopback port; each URL is fetched once cold
(first request after start builds the catalog), then --requests times; latency percentiles are
printed per URL. The issue's target: search results under 200 ms. Figures only, no pass/fail.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

PROJECT = "bench"
TEAMS = ["risk", "growth", "pricing", "fraud", "search"]


def registry_changes(views: int, features: int) -> list[object]:
    from repast import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
    from repast.registry import Change
    from repast.types import Float32, Int64

    entities = [Entity(name=f"entity_{i}", join_keys=[f"entity_{i}_id"], value_type=ValueType.INT64,
                       description=f"Entity number {i}") for i in range(20)]
    changes = [Change("add", "entity", e.name, e.to_dict()) for e in entities]
    fvs = []
    for v in range(views):
        team = TEAMS[v % len(TEAMS)]
        source = FileSource(name=f"source_{v}", path=f"data/source_{v}.parquet", timestamp_field="event_timestamp")
        fv = FeatureView(name=f"{team}_view_{v}", entities=[entities[v % 20]], source=source,
                         schema=[Field(name=f"feature_{v}_{f}", dtype=Float32 if f % 2 else Int64,
                                       description=f"{team} signal {f} of view {v}") for f in range(features)],
                         description=f"{team.title()} features, batch {v}", owner=f"{team}@example.com",
                         tags={"team": team, "tier": "gold" if v % 7 == 0 else "silver"})
        fvs.append(fv)
        changes.append(Change("add", "data_source", source.name, source.to_dict()))
        changes.append(Change("add", "feature_view", fv.name, fv.to_dict()))
    for s in range(0, views, 10):
        service = FeatureService(name=f"service_{s // 10}", features=fvs[s:s + 10], owner="ml@example.com")
        changes.append(Change("add", "feature_service", service.name, service.to_dict()))
    for o in range(0, views, 20):
        spec = {"name": f"odfv_{o}", "mode": "python", "schema": [{"name": "score", "dtype": "Float64"}],
                "source_views": [fvs[o].projection.to_dict()], "request_sources": [],
                "udf_source": "def score(inputs):\n    return {'score': [1.0]}\n", "udf_pickle": "",
                "description": "a derived score", "tags": {}, "owner": ""}
        changes.append(Change("add", "on_demand_feature_view", spec["name"], spec))
    return changes


def make_repo(root: Path, views: int, features: int) -> Path:
    from repast.store import FeatureStore

    repo = root / "repo"
    (repo / "data").mkdir(parents=True)
    (repo / "feature_store.yaml").write_text(
        f"project: {PROJECT}\nregistry: data/registry.db\nonline_store: {{type: sqlite, path: data/online.db}}\n")
    store = FeatureStore(repo)
    store.registry.apply(registry_changes(views, features), 0, "benchmark")  # type: ignore[arg-type]
    return repo


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def urls(views: int) -> list[tuple[str, str]]:
    p = f"/projects/{PROJECT}"
    return [
        ("API search 'fraud signal' (10k features, all kinds)", f"/api/v1{p}/search?q=fraud+signal"),
        ("API search q=view_99, kind=feature-views", f"/api/v1{p}/search?q=view_99&kind=feature-views"),
        ("API search tag=tier=gold", f"/api/v1{p}/search?tag=tier%3Dgold"),
        ("API list features (limit 50)", f"/api/v1{p}/features"),
        ("API one feature view", f"/api/v1{p}/feature-views/risk_view_0"),
        ("page search 'pricing' (HTML)", f"{p}/search?q=pricing"),
        ("page search kind+tag (HTML)", f"{p}/search?q=signal&kind=features&tag=team%3Drisk"),
        ("page feature views list", f"{p}/feature-views"),
        ("page feature view", f"{p}/feature-views/risk_view_{views // 2 // 5 * 5}"),
        ("page feature", f"{p}/features/risk_view_0:feature_0_0"),
        ("page feature service", f"{p}/feature-services/service_0"),
        ("page project", p),
        ("page freshness (all views)", f"{p}/freshness"),
        ("page lineage (whole project)", f"{p}/lineage"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--views", type=int, default=1000)
    parser.add_argument("--features", type=int, default=10)
    parser.add_argument("--requests", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="repast-ui-bench-") as tmp:
        began = time.perf_counter()
        repo = make_repo(Path(tmp), args.views, args.features)
        print(f"registry: {args.views} feature views x {args.features} features, generated and applied "
              f"in {time.perf_counter() - began:.1f} s")
        port = free_port()
        proc = subprocess.Popen([str(Path(sys.executable).parent / "repast"), "ui", "--port", str(port),
                                 "--no-access-log"], cwd=repo, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            run(f"http://127.0.0.1:{port}", args)
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=15)


def run(base: str, args: argparse.Namespace) -> None:
    with httpx.Client(base_url=base, timeout=60) as http:
        deadline = time.monotonic() + 60
        while True:
            try:
                http.get("/healthz")
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "repast ui did not start"
                time.sleep(0.1)
        print(f"\n{'URL':58} {'cold ms':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'KB':>7}")
        for label, url in urls(args.views):
            cold, response = timed(http, url)
            assert response.status_code == 200, (url, response.status_code, response.text[:300])
            times = [timed(http, url)[0] for _ in range(args.requests)]
            q = statistics.quantiles(times, n=100)
            print(f"{label:58} {cold:8.1f} {q[49]:8.1f} {q[94]:8.1f} {q[98]:8.1f} {len(response.content) / 1024:7.0f}")


def timed(http: httpx.Client, url: str) -> tuple[float, httpx.Response]:
    began = time.perf_counter()
    response = http.get(url)
    return (time.perf_counter() - began) * 1000, response


if __name__ == "__main__":
    main()
