"""The vector section of the contract for approximate indexes: on every store whose capabilities
declare `approximate_vector_index`, searches answered by the index reach recall@10 >= 0.95
against the exact answer, see an update, a removal and a view's ttl at the next query, and (SQLite's
graph, persisted beside the online file) survive a reopen and a writer killed at any point."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from repast import FeatureStore, RepoConfig
from repast.errors import InputError
from repast.online import VECTOR_SEARCH
from repast.plugins.capabilities import capabilities_of
from repast.plugins.table import ONLINE, plugin_class
from repast.vector.sqlite_hnsw import available
from tests.contract.test_online_vectors import NOW, Docs, assert_same_ranking, docs_view, reference

INDEXED = [pytest.param(kind, marks=pytest.mark.pgvector) if kind == "postgres" else kind for kind in VECTOR_SEARCH
           if capabilities_of(plugin_class(ONLINE, kind, object)).approximate_vector_index]
needs_usearch = pytest.mark.skipif(not available(), reason="usearch (the `vector` extra) is not installed")


def indexed_store(kind: str, request: pytest.FixtureRequest, tmp: Path, name: str) -> dict[str, Any]:
    if kind == "sqlite":  # the graph from the first document on (by default from 10,000)
        return {"type": "sqlite", "path": str(tmp / "online.db"), "vector_index_min_documents": 0}
    return {"type": "postgres", "url": request.getfixturevalue("pgvector_url"), "db_schema": name}


def open_docs(tmp: Path, name: str, online: dict[str, Any]) -> Docs:
    config = RepoConfig.model_validate({"project": name, "repo_path": tmp, "registry": str(tmp / "registry.db"),
                                        "online_store": online})
    return Docs(FeatureStore(config=config))


@pytest.fixture(params=INDEXED)
def docs(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Docs]:
    if request.param == "sqlite" and not available():
        pytest.skip("usearch (the `vector` extra) is not installed: SQLite scans exactly")
    name = "vi_" + uuid.uuid4().hex[:10]
    tmp = tmp_path_factory.mktemp(name)
    store = open_docs(tmp, name, indexed_store(request.param, request, tmp, name))
    yield store
    store.store.teardown()
    store.store.online_store.close()


def clustered(n: int, dim: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(max(1, n // 30), dim))
    return (centers[rng.integers(0, len(centers), n)] + 0.4 * rng.normal(size=(n, dim))).astype(np.float32)


def recall(docs: Docs, vectors: np.ndarray, ids: list[int], queries: np.ndarray, metric: str) -> float:
    hits = 0
    for query in queries:
        want = {i for i, _ in reference(vectors, ids, query, metric, 10)}
        hits += len(want & set(docs.search(query, 10)["doc_id"]))
    return hits / (10 * len(queries))


@pytest.mark.parametrize("metric", ["COSINE", "L2", "INNER_PRODUCT"])
def test_index_recall_at_10_is_at_least_095_against_the_exact_answer(docs: Docs, metric: str) -> None:
    view = docs.apply(docs_view(32, metric))
    vectors = clustered(3000, 32, seed=3)
    docs.write(view, list(range(3000)), vectors)
    queries = clustered(40, 32, seed=4)
    assert recall(docs, vectors, list(range(3000)), queries, metric) >= 0.95


def test_an_exact_request_equals_the_reference_where_an_index_exists(docs: Docs) -> None:
    view = docs.apply(docs_view(16, "COSINE"))
    vectors = clustered(2000, 16, seed=5)
    docs.write(view, list(range(2000)), vectors)
    for query in clustered(5, 16, seed=6):
        assert_same_ranking(docs.search(query, 10, exact=True), reference(vectors, list(range(2000)), query,
                                                                          "COSINE", 10))


def test_an_update_and_a_removal_are_seen_by_the_next_indexed_query(docs: Docs) -> None:
    view = docs.apply(docs_view(16, "L2"))
    vectors = clustered(1500, 16, seed=7)
    docs.write(view, list(range(1500)), vectors)
    target = np.full(16, 50.0)
    assert 7 not in docs.search(target, 3)["doc_id"]
    docs.write(view, [7], [target], ts=NOW + timedelta(seconds=1))  # moved next to the target
    assert docs.search(target, 1)["doc_id"] == [7]
    docs.write(view, [7], [None], ts=NOW + timedelta(seconds=2))  # removed
    assert 7 not in docs.search(target, 10)["doc_id"]
    docs.write(view, [1600], [target], ts=NOW + timedelta(seconds=3))  # a new document
    assert docs.search(target, 1)["doc_id"] == [1600]


def test_filters_leaving_few_documents_are_answered_exactly(docs: Docs) -> None:
    view = docs.apply(docs_view(16, "COSINE"))
    vectors = clustered(2000, 16, seed=8)
    langs = ["fr" if i % 40 == 0 else "en" for i in range(2000)]  # 2.5%: below the index's share
    docs.write(view, list(range(2000)), vectors, langs=langs)
    fr = [i for i in range(2000) if langs[i] == "fr"]
    for query in clustered(5, 16, seed=9):
        got = docs.search(query, 10, filters={"lang": "fr"})
        assert_same_ranking(got, reference(vectors[fr], fr, query, "COSINE", 10))


def test_a_document_older_than_the_views_ttl_is_not_returned(docs: Docs) -> None:
    view = docs_view(8, "L2")
    view.ttl = timedelta(days=1)
    docs.apply(view)
    vectors = clustered(1000, 8, seed=10)
    docs.write(view, list(range(1000)), vectors)
    docs.write(view, [5000], [np.full(8, 9.0)], ts=NOW - timedelta(days=3))  # expired
    for exact in (False, True):
        got = docs.search(np.full(8, 9.0), 10, exact=exact)["doc_id"]
        assert 5000 not in got and len(got) == 10


# ---- SQLite's graph on disk -----------------------------------------------------------------------

def sqlite_docs(tmp: Path) -> Docs:
    return open_docs(tmp, "p", {"type": "sqlite", "path": str(tmp / "online.db"), "vector_index_min_documents": 0})


def graph_files(tmp: Path) -> list[str]:
    return sorted(p.name for p in (tmp / "online.db.vectors").glob("*.usearch"))


@needs_usearch
def test_the_graph_is_persisted_and_reopened_without_a_rebuild(tmp_path: Path) -> None:
    docs = sqlite_docs(tmp_path)
    view = docs.apply(docs_view(16, "COSINE"))
    vectors = clustered(2000, 16, seed=11)
    docs.write(view, list(range(2000)), vectors)
    docs.search(vectors[0], 10)
    saved = graph_files(tmp_path)
    assert len(saved) == 1
    docs.store.online_store.close()
    reopened = sqlite_docs(tmp_path)
    reopened.write(view, [3], [vectors[9]], ts=NOW + timedelta(seconds=1))  # logged after the save
    assert reopened.search(vectors[9], 2)["doc_id"] == sorted([3, 9])
    assert graph_files(tmp_path) == saved  # adopted and brought up to date from the log, not rebuilt
    queries = clustered(20, 16, seed=12)
    vectors[3] = vectors[9]
    assert recall(reopened, vectors, list(range(2000)), queries, "COSINE") >= 0.95


@needs_usearch
def test_an_unreadable_graph_is_rebuilt_from_the_table(tmp_path: Path) -> None:
    docs = sqlite_docs(tmp_path)
    view = docs.apply(docs_view(16, "L2"))
    vectors = clustered(1000, 16, seed=13)
    docs.write(view, list(range(1000)), vectors)
    docs.search(vectors[0], 1)
    docs.store.online_store.close()
    (graph,) = (tmp_path / "online.db.vectors").glob("*.usearch")
    graph.write_bytes(graph.read_bytes()[:100])  # a torn file
    reopened = sqlite_docs(tmp_path)
    assert recall(reopened, vectors, list(range(1000)), clustered(20, 16, seed=14), "L2") >= 0.95


@needs_usearch
def test_a_search_during_a_long_background_insert_answers_without_waiting_for_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The background sync's graph insertion is held inside usearch (an Event) while a search runs:
    the search must answer, exactly as the table says, before the insertion ends."""
    import threading

    from repast.vector import sqlite_keeper
    from repast.vector.sqlite_hnsw import Graph

    inserting, release, finished = threading.Event(), threading.Event(), threading.Event()
    original = Graph.update

    def held_update(self: Graph, rows: np.ndarray, matrix: np.ndarray, alive: np.ndarray, threads: int = 0) -> None:
        if threading.current_thread().name == "repast-hnsw-sync":
            inserting.set()
            release.wait(60)  # a safety bound only: the search below must not need it
            original(self, rows, matrix, alive, threads)
            finished.set()
            return
        original(self, rows, matrix, alive, threads)

    monkeypatch.setattr(Graph, "update", held_update)
    docs = sqlite_docs(tmp_path)
    view = docs.apply(docs_view(16, "L2"))
    vectors = clustered(2000, 16, seed=31)
    ids = list(range(2000))
    docs.write(view, ids, vectors)
    docs.search(vectors[0], 10)  # the graph, built by this search
    moved = list(range(sqlite_keeper.SYNC_INLINE + 50))  # more than a catch-up inserts itself: pending
    vectors[moved] = clustered(len(moved), 16, seed=32)
    docs.write(view, moved, vectors[moved], ts=NOW + timedelta(seconds=1))
    try:
        docs.search(vectors[0], 10)  # catches up: the changed rows go to the background sync
        assert inserting.wait(60), "the background sync did not start"
        for probe in (3, 100, 1500):
            got = docs.search(vectors[probe], 10)
            assert_same_ranking(got, reference(vectors, ids, vectors[probe], "L2", 10))
        assert not finished.is_set()  # answered while the insertion was still held
    finally:
        release.set()
    index = next(iter(docs.store.online_store._repast_vector_search._indexes.values()))
    for _ in range(600):  # the swap, then nothing is pending
        if not index.pending and not index.syncing:
            break
        time.sleep(0.05)
    assert finished.is_set() and not index.pending
    assert_same_ranking(docs.search(vectors[7], 10), reference(vectors, ids, vectors[7], "L2", 10))
    assert recall(docs, vectors, ids, clustered(20, 16, seed=33), "L2") >= 0.95


@needs_usearch
def test_documents_moved_away_but_still_in_the_graph_do_not_hide_the_nearest(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The documents nearest a query are moved far away in one batch; while their move waits for the
    background sync (held), the graph still holds their old vectors around the query. The answer
    must be the table's: the next nearest documents, not the moved ones."""
    import threading

    from repast.vector import sqlite_keeper
    from repast.vector.sqlite_hnsw import Graph

    release = threading.Event()
    original = Graph.update

    def held_update(self: Graph, rows: np.ndarray, matrix: np.ndarray, alive: np.ndarray, threads: int = 0) -> None:
        if threading.current_thread().name == "repast-hnsw-sync":
            release.wait(60)
        original(self, rows, matrix, alive, threads)

    monkeypatch.setattr(Graph, "update", held_update)
    docs = sqlite_docs(tmp_path)
    view = docs.apply(docs_view(16, "L2"))
    vectors = clustered(2000, 16, seed=41)
    ids = list(range(2000))
    docs.write(view, ids, vectors)
    query = vectors[0].astype(np.float64)
    docs.search(query, 10)  # the graph, built by this search
    nearest = [i for i, _ in reference(vectors, ids, query, "L2", sqlite_keeper.SYNC_INLINE + 40)]
    vectors[nearest] = vectors[nearest] + 1_000.0  # far from everything
    docs.write(view, nearest, vectors[nearest], ts=NOW + timedelta(seconds=1))
    try:
        assert_same_ranking(docs.search(query, 10), reference(vectors, ids, query, "L2", 10))
    finally:
        release.set()


@needs_usearch
def test_a_large_update_is_seen_by_the_very_next_query_whichever_store_object_wrote_it(tmp_path: Path) -> None:
    """Batches of more rows than a catch-up inserts itself (they wait for the background sync),
    written through the searching store object (whose background catch-up may still be running) and
    through another one (another connection, as another process would: the search catches up
    itself): the very next search finds each moved document at its new place, not at its old one."""
    from repast.vector import sqlite_keeper

    docs, other = sqlite_docs(tmp_path), sqlite_docs(tmp_path)
    view = docs.apply(docs_view(16, "L2"))
    vectors = clustered(3000, 16, seed=51)
    docs.write(view, list(range(3000)), vectors)
    docs.search(vectors[0], 10)  # the graph, built by this search
    rng = np.random.default_rng(52)
    for step, writer in enumerate((docs, other, docs)):
        moved = rng.choice(3000, 4 * sqlite_keeper.SYNC_INLINE, replace=False)
        old = vectors[moved[1]].copy()
        vectors[moved] = clustered(len(moved), 16, seed=53 + step) + 100.0  # away from every old place
        writer.write(view, moved.tolist(), vectors[moved], ts=NOW + timedelta(seconds=step + 1))
        assert docs.search(vectors[moved[0]], 1)["doc_id"] == [moved[0]]
        assert int(moved[1]) not in docs.search(old, 10)["doc_id"]
    docs.store.online_store.close()
    other.store.online_store.close()


@needs_usearch
def test_a_write_through_the_store_is_caught_up_with_before_the_next_search(tmp_path: Path) -> None:
    """The index of a view written through this store object reads the written rows in the
    background, right after the write, so the next search does not read them itself."""
    docs = sqlite_docs(tmp_path)
    view = docs.apply(docs_view(16, "L2"))
    vectors = clustered(2000, 16, seed=61)
    docs.write(view, list(range(2000)), vectors)
    docs.search(vectors[0], 10)
    (index,) = docs.store.online_store._repast_vector_search._indexes.values()
    before = index.last_change
    docs.write(view, list(range(600)), vectors[:600] + 1.0, ts=NOW + timedelta(seconds=1))
    for _ in range(1200):  # no search meanwhile: only the background catch-up moves it
        if index.last_change > before:
            break
        time.sleep(0.05)
    assert index.last_change > before and index.matrix.matrix[5].tolist() == (vectors[5] + 1.0).tolist()
    docs.store.online_store.close()


WRITER = """
import sys, numpy as np
sys.path.insert(0, {root!r})
from datetime import timedelta
from tests.contract.test_vector_index import sqlite_docs, clustered
from tests.contract.test_online_vectors import docs_view, NOW
from pathlib import Path
import repast.vector.sqlite_keeper as k; k.SAVE_EVERY = 40; k.SYNC_INLINE = 10  # saves and syncs often
docs = sqlite_docs(Path({tmp!r}))
view = docs_view(16, {metric!r})
rng = np.random.default_rng({seed})
for step in range(10_000):
    ids = rng.integers(0, 1500, 50).tolist()
    docs.write(view, ids, clustered(50, 16, seed=step + {seed}), ts=NOW + timedelta(seconds=step + 1))
    docs.search(np.ones(16), 5)  # catches up the graph, saving it now and then
    print(step, flush=True)
"""


@needs_usearch
@pytest.mark.parametrize("metric", ["L2", "COSINE"])  # a graph of float32 vectors, and one of 8-bit ones
def test_writers_killed_at_any_point_leave_a_graph_that_is_repaired(tmp_path: Path, metric: str) -> None:
    """Two writer processes update documents and search (each saving its graph under the lock);
    both are SIGKILLed mid-stride, possibly between a table write and the graph's save or inside
    the save. The next open must answer as the table says."""
    docs = sqlite_docs(tmp_path)
    view = docs.apply(docs_view(16, metric))
    docs.write(view, list(range(1500)), clustered(1500, 16, seed=15))
    docs.search(np.ones(16), 1)
    docs.store.online_store.close()
    root = str(Path(__file__).resolve().parents[2])
    writers = [subprocess.Popen([sys.executable, "-c", WRITER.format(root=root, tmp=str(tmp_path), seed=seed,
                                                                    metric=metric)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for seed in (100, 200)]
    try:
        for writer in writers:
            assert writer.stdout is not None
            for _ in range(4):  # some writes and saves (the writer saves every 40 changed rows) are done
                assert writer.stdout.readline(), writer.stderr.read() if writer.stderr else ""
        time.sleep(0.05)
    finally:
        for writer in writers:
            os.kill(writer.pid, signal.SIGKILL)
            writer.wait()
    reopened = sqlite_docs(tmp_path)
    table = reopened.store.get_online_features(["docs:embedding"], {"doc_id": list(range(1500))}).to_dict()
    vectors = np.array(table["embedding"], dtype=np.float32)
    assert recall(reopened, vectors, list(range(1500)), clustered(30, 16, seed=16), metric) >= 0.95
    for i in (0, 700, 1499):  # each document is found where the table says it is
        assert i in reopened.search(vectors[i], 3)["doc_id"]
    assert json.loads(next((tmp_path / "online.db.vectors").glob("*.json")).read_text())["generation"] > 0


@pytest.mark.pgvector
def test_postgres_builds_its_hnsw_index_with_the_configured_m_and_ef_construction(
        request: pytest.FixtureRequest, tmp_path: Path) -> None:
    import psycopg

    name = "vi_hnsw_" + uuid.uuid4().hex[:8]
    online = {**indexed_store("postgres", request, tmp_path, name), "vector_index_m": 8,
              "vector_index_ef_construction": 40}
    docs = open_docs(tmp_path, name, online)
    try:
        view = docs.apply(docs_view(8, "COSINE"))
        vectors = clustered(500, 8, seed=17)
        docs.write(view, list(range(500)), vectors)
        with psycopg.connect(online["url"]) as conn:
            (definition,) = conn.execute("SELECT indexdef FROM pg_indexes WHERE schemaname = %s AND indexdef LIKE %s",
                                         (name, "%USING hnsw%")).fetchone()
        assert "m='8'" in definition and "ef_construction='40'" in definition
        assert recall(docs, vectors, list(range(500)), clustered(10, 8, seed=18), "COSINE") >= 0.95
    finally:
        docs.store.teardown()
        docs.store.online_store.close()


@pytest.mark.pgvector
def test_postgres_stores_an_embedding_once_and_converts_an_older_table_in_place(
        request: pytest.FixtureRequest, tmp_path: Path) -> None:
    """Before, a vector field kept its real[] column plus a generated `_vec__<field> vector(n)` copy;
    now the column itself is vector(n). An apply converts an older table without losing a document."""
    import psycopg

    name = "vi_once_" + uuid.uuid4().hex[:8]
    online = indexed_store("postgres", request, tmp_path, name)
    docs = open_docs(tmp_path, name, online)
    table = f'"{name}"."{name}__docs"'
    try:
        view = docs.apply(docs_view(8, "COSINE"))
        vectors = clustered(300, 8, seed=19)
        docs.write(view, list(range(300)), vectors)
        with psycopg.connect(online["url"], autocommit=True) as conn:
            def columns() -> dict[str, str]:
                return dict(conn.execute(
                    "SELECT column_name, udt_name FROM information_schema.columns WHERE table_schema = %s "
                    "AND table_name = %s", (name, f"{name}__docs")).fetchall())

            assert columns()["embedding"] == "vector" and not any(c.startswith("_vec__") for c in columns())
            # The older layout, as an earlier version left it.
            conn.execute(f"DROP INDEX IF EXISTS \"{name}\".\"{name}__docs__embedding__cosine\"")
            conn.execute(f"ALTER TABLE {table} ALTER COLUMN embedding TYPE real[] USING embedding::real[]")
            conn.execute(f"ALTER TABLE {table} ADD COLUMN _vec__embedding vector(8) "
                         "GENERATED ALWAYS AS (embedding::vector(8)) STORED")
            conn.execute(f"CREATE INDEX ON {table} USING hnsw (_vec__embedding vector_cosine_ops)")
            docs.store.online_store.close()
            docs = open_docs(tmp_path, name, online)
            with pytest.raises(InputError, match="run `repast apply`"):  # until the apply converts it
                docs.search(vectors[0], 1)
            assert docs.store.get_online_features(["docs:embedding"], {"doc_id": [0]}).to_dict()["embedding"] \
                == [vectors[0].tolist()]
            docs.apply(view)
            assert columns()["embedding"] == "vector" and "_vec__embedding" not in columns()
            (indexes,) = conn.execute("SELECT count(*) FROM pg_indexes WHERE schemaname = %s AND indexdef LIKE %s",
                                      (name, "%USING hnsw (embedding %")).fetchone()
            assert indexes == 1
        got = docs.store.get_online_features(["docs:embedding"], {"doc_id": [0, 299]}).to_dict()
        assert np.array(got["embedding"], dtype=np.float32).tolist() == vectors[[0, 299]].tolist()
        for query in clustered(5, 8, seed=20):
            assert_same_ranking(docs.search(query, 10, exact=True), reference(vectors, list(range(300)), query,
                                                                              "COSINE", 10))
    finally:
        docs.store.teardown()
        docs.store.online_store.close()


@pytest.mark.pgvector
def test_postgres_keeps_a_float64_embedding_exact_beside_its_vector_copy(
        request: pytest.FixtureRequest, tmp_path: Path) -> None:
    from repast.types import Array, Float64

    name = "vi_f64_" + uuid.uuid4().hex[:8]
    docs = open_docs(tmp_path, name, indexed_store("postgres", request, tmp_path, name))
    try:
        view = docs_view(3, "L2")
        view.features[0].dtype = Array(Float64)
        docs.apply(view)
        exact = [0.1, 1 / 3, 2 ** -40]  # not float32 values
        docs.write(view, [1, 2], [exact, [5.0, 5.0, 5.0]])
        assert docs.store.get_online_features(["docs:embedding"], {"doc_id": [1]}).to_dict()["embedding"] == [exact]
        assert docs.search([0.1, 0.3, 0.0], 1)["doc_id"] == [1]
    finally:
        docs.store.teardown()
        docs.store.online_store.close()


@needs_usearch
def test_a_large_graph_is_built_in_the_background_while_searches_scan_exactly(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import repast.vector.sqlite_keeper as keeper

    monkeypatch.setattr(keeper, "FOREGROUND_BUILD", 500)  # "large": above 500 documents here
    docs = sqlite_docs(tmp_path)
    view = docs.apply(docs_view(16, "L2"))
    vectors = clustered(4000, 16, seed=21)
    ids = list(range(4000))
    docs.write(view, ids, vectors)
    assert_same_ranking(docs.search(vectors[5], 10), reference(vectors, ids, vectors[5], "L2", 10))
    docs.write(view, [6], [vectors[5]], ts=NOW + timedelta(seconds=1))  # during the build
    vectors[6] = vectors[5]
    headers = tmp_path / "online.db.vectors"
    deadline = time.monotonic() + 120
    while not list(headers.glob("*.json")) and time.monotonic() < deadline:
        docs.search(vectors[5], 10)
        time.sleep(0.05)
    assert list(headers.glob("*.json")), "the graph was not built within 120 s"
    assert sorted(docs.search(vectors[5], 2)["doc_id"]) == [5, 6]
    assert recall(docs, vectors, ids, clustered(20, 16, seed=22), "L2") >= 0.95


EXITER = """
import sys
sys.path.insert(0, {root!r})
import repast.vector.sqlite_keeper as k; k.FOREGROUND_BUILD = 100
from tests.contract.test_vector_index import sqlite_docs, clustered
from tests.contract.test_online_vectors import docs_view
from pathlib import Path
docs = sqlite_docs(Path({tmp!r}))
view = docs.apply(docs_view(256, "L2"))
docs.write(view, list(range(30000)), clustered(30000, 256, seed=1))
docs.search(clustered(1, 256, seed=2)[0], 5)  # starts the build in the background, then the process ends
"""


@needs_usearch
def test_a_process_ending_while_its_graph_builds_exits_cleanly(tmp_path: Path) -> None:
    root = str(Path(__file__).resolve().parents[2])
    done = subprocess.run([sys.executable, "-c", EXITER.format(root=root, tmp=str(tmp_path))],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "terminate called" not in done.stderr


@pytest.mark.pgvector
def test_postgres_a_request_deeper_than_ef_search_returns_top_k_hits(request: pytest.FixtureRequest,
                                                                     tmp_path: Path) -> None:
    """pgvector's HNSW scan returns at most hnsw.ef_search rows (64 by default): a deeper request
    widens the search for itself (in the same round trip)."""
    name = "vi_deep_" + uuid.uuid4().hex[:8]
    docs = open_docs(tmp_path, name, {**indexed_store("postgres", request, tmp_path, name), "vector_ef_search": 20})
    try:
        view = docs.apply(docs_view(384, "COSINE"))  # enough rows and width that the planner reads the index
        rng = np.random.default_rng(25)
        docs.write(view, list(range(3000)), rng.normal(size=(3000, 384)).astype(np.float32))
        got = docs.search(rng.normal(size=384), 30)
        assert len(got["doc_id"]) == 30 and got["distance"] == sorted(got["distance"])
    finally:
        docs.store.teardown()
        docs.store.online_store.close()
