"""The vector section of the online store contract: run on every store declaring vector search.

Each store's ranking is checked against a NumPy brute force (repast.vector.semantics.exact_distances, ties by
entity key) for every metric on generated data; approximate indexes must reach recall@10 >= 0.95.
The stores are driven through FeatureStore, as users call them, so the response shape is checked
too. Stores without the capability (Redis) refuse with an error naming the store.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from repast import Entity, FeatureStore, FeatureView, Field, FileSource, PushSource, RepoConfig
from repast.errors import DefinitionError, InputError, VectorSearchUnsupported
from repast.online import VECTOR_SEARCH
from repast.types import Array, Float32, String, ValueType
from repast.vector.metric import Metric
from repast.vector.semantics import exact_distances

NOW = datetime.now(UTC).replace(microsecond=0)
METRICS = [m.value for m in Metric]
STORES = [pytest.param(kind, marks=pytest.mark.pgvector) if kind == "postgres" else kind for kind in VECTOR_SEARCH]

doc = Entity(name="doc", join_keys=["doc_id"], value_type=ValueType.INT64)


def docs_view(dim: int, metric: str, name: str = "docs", path: str = "docs.parquet",
              extra: list[Field] | None = None) -> FeatureView:
    source = PushSource(name=f"{name}_push", batch_source=FileSource(path=path, timestamp_field="event_timestamp"))
    return FeatureView(name=name, entities=[doc], source=source, ttl=timedelta(0), schema=[
        Field(name="embedding", dtype=Array(Float32), vector_index=True, vector_length=dim,
              vector_search_metric=metric),
        Field(name="text", dtype=String), Field(name="lang", dtype=String), *(extra or [])])


class Docs:
    """A FeatureStore on one online store, with helpers to write documents and search them."""

    def __init__(self, store: FeatureStore) -> None:
        self.store = store
        # An empty source file of the right columns: apply checks view schemas against it.
        pa.parquet.write_table(pa.table({
            "doc_id": pa.array([], pa.int64()), "embedding": pa.array([], pa.list_(pa.float32())),
            "text": pa.array([], pa.string()), "lang": pa.array([], pa.string()), "title": pa.array([], pa.string()),
            "event_timestamp": pa.array([], pa.timestamp("us", tz="UTC"))}), store.repo_path / "docs.parquet")

    def apply(self, view: FeatureView) -> FeatureView:
        self.store.apply([doc, view])
        return view

    def write(self, view: FeatureView, ids: list[int], vectors: Any, texts: list[str] | None = None,
              langs: list[str] | None = None, ts: datetime = NOW) -> None:
        n = len(ids)
        self.store.write_to_online_store(view.name, pd.DataFrame({
            "doc_id": ids, "embedding": [None if v is None else list(map(float, v)) for v in vectors],
            "text": texts or [f"doc {i}" for i in ids], "lang": langs or ["en"] * n,
            "event_timestamp": [ts] * n}))

    def search(self, query: Any, top_k: int, view: str = "docs", **kwargs: Any) -> dict[str, list[Any]]:
        response = self.store.retrieve_online_documents_v2([f"{view}:embedding", f"{view}:text"],
                                                           query=list(query), top_k=top_k, **kwargs)
        return response.to_dict()  # type: ignore[no-any-return]


def online_store(kind: str, request: pytest.FixtureRequest, tmp_path: Path, name: str) -> dict[str, Any]:
    if kind == "sqlite":
        return {"type": "sqlite", "path": str(tmp_path / "online.db")}
    return {"type": "postgres", "url": request.getfixturevalue("pgvector_url"), "db_schema": name}


@pytest.fixture(params=STORES)
def docs(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Docs]:
    name = "v_" + uuid.uuid4().hex[:10]
    tmp = tmp_path_factory.mktemp(name)
    config = RepoConfig.model_validate({"project": name, "repo_path": tmp, "registry": str(tmp / "registry.db"),
                                        "online_store": online_store(request.param, request, tmp, name)})
    store = FeatureStore(config=config)
    yield Docs(store)
    store.teardown()
    store.online_store.close()


def reference(vectors: np.ndarray, ids: list[int], query: np.ndarray, metric: str, top_k: int,
              ) -> list[tuple[int, float]]:
    """Brute force: every distance, ordered by (distance, entity key as text)."""
    d = exact_distances(vectors, query, Metric(metric))
    order = sorted(range(len(ids)), key=lambda i: (d[i], str(ids[i])))[:top_k]
    return [(ids[i], float(d[i])) for i in order]


def assert_same_ranking(got: dict[str, list[Any]], expected: list[tuple[int, float]]) -> None:
    """Same distances in order; where two documents are equally near, either may come first."""
    assert len(got["doc_id"]) == len(expected)
    assert got["distance"] == pytest.approx([d for _, d in expected], rel=1e-6, abs=1e-9)
    by_distance = dict(expected)
    for position, (doc_id, (want, distance)) in enumerate(zip(got["doc_id"], expected, strict=True)):
        assert doc_id == want or by_distance.get(doc_id) == pytest.approx(distance, rel=1e-6), position


@pytest.mark.parametrize("metric", METRICS)
def test_exact_top_k_equals_the_numpy_reference(docs: Docs, metric: str) -> None:
    view = docs.apply(docs_view(16, metric))
    rng = np.random.default_rng(7)
    vectors = rng.normal(size=(300, 16)).astype(np.float32)
    ids = list(range(300))
    docs.write(view, ids, vectors)
    for query in rng.normal(size=(5, 16)):
        got = docs.search(query, 10, exact=True)
        assert_same_ranking(got, reference(vectors, ids, query, metric, 10))


@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(data=st.data())
def test_generated_documents_rank_as_the_reference_under_every_metric(docs: Docs, data: st.DataObject) -> None:
    # Small integer coordinates make exact ties common, so the entity key rule is exercised.
    dim = data.draw(st.integers(2, 6))
    n = data.draw(st.integers(1, 40))
    metric = data.draw(st.sampled_from(METRICS))
    ints = st.integers(-3, 3)
    rows = data.draw(st.lists(st.lists(ints, min_size=dim, max_size=dim).filter(any), min_size=n, max_size=n))
    query = np.array(data.draw(st.lists(ints, min_size=dim, max_size=dim).filter(any)), dtype=np.float64)
    top_k = data.draw(st.integers(1, 12))
    view = docs.apply(docs_view(dim, metric, name=f"docs_{uuid.uuid4().hex[:8]}"))  # fresh per example
    ids = [int(i) for i in data.draw(st.permutations(list(range(1, n + 1))))]
    vectors = np.array(rows, dtype=np.float32)
    docs.write(view, ids, vectors)
    got = docs.search(query, top_k, view.name, exact=True)
    assert_same_ranking(got, reference(vectors, ids, query, metric, top_k))


def test_equal_distances_are_ordered_by_entity_key_as_text(docs: Docs) -> None:
    view = docs.apply(docs_view(3, "L2"))
    docs.write(view, [9, 10, 11, 2], [[1, 0, 0]] * 4)
    assert docs.search([1, 0, 0], 3, exact=True)["doc_id"] == [10, 11, 2]


def test_response_has_join_keys_features_then_distance(docs: Docs) -> None:
    view = docs.apply(docs_view(2, "COSINE"))
    docs.write(view, [1, 2], [[1, 0], [0, 1]], texts=["first", "second"])
    got = docs.store.retrieve_online_documents_v2(["docs:text"], query=[1.0, 0.1], top_k=1)
    assert list(got.to_dict()) == ["doc_id", "text", "distance"]
    assert got.to_dict()["text"] == ["first"]
    assert got.statuses()["text"] == ["PRESENT"]
    assert got.event_timestamps()["text"] == [NOW]


def test_an_update_moves_a_document_at_once(docs: Docs) -> None:
    view = docs.apply(docs_view(2, "L2"))
    docs.write(view, [1, 2], [[0, 0], [5, 5]])
    assert docs.search([5, 5], 1)["doc_id"] == [2]
    docs.write(view, [1], [[5, 5.1]], ts=NOW + timedelta(seconds=1))
    docs.write(view, [2], [[-9, -9]], ts=NOW + timedelta(seconds=1))
    assert docs.search([5, 5], 1)["doc_id"] == [1]


def test_a_null_vector_removes_the_document_from_search(docs: Docs) -> None:
    view = docs.apply(docs_view(2, "L2"))
    docs.write(view, [1, 2], [[0, 0], [1, 1]])
    docs.write(view, [1], [None], ts=NOW + timedelta(seconds=1))
    assert docs.search([0, 0], 5)["doc_id"] == [2]


def test_an_older_write_does_not_replace_a_newer_vector(docs: Docs) -> None:
    view = docs.apply(docs_view(2, "L2"))
    docs.write(view, [1], [[0, 0]])
    docs.write(view, [1], [[9, 9]], ts=NOW - timedelta(hours=1))
    assert docs.search([0, 0], 1)["distance"] == [0.0]


def test_filters_keep_only_documents_with_equal_values(docs: Docs) -> None:
    view = docs.apply(docs_view(2, "L2"))
    docs.write(view, [1, 2, 3], [[0, 0], [0, 1], [0, 2]], langs=["en", "fr", "fr"])
    assert docs.search([0, 0], 5, filters={"lang": "fr"})["doc_id"] == [2, 3]


def test_text_rank_counts_the_distinct_query_terms_a_document_contains(docs: Docs) -> None:
    view = docs.apply(docs_view(2, "L2"))
    docs.write(view, [1, 2, 3, 4], [[0, 0]] * 4,
               texts=["Feature stores serve features", "a store of FEATURES", "nothing here", "stores"])
    got = docs.store.retrieve_online_documents_v2(["docs:text"], top_k=5, query_string="feature-stores?").to_dict()
    # Terms match exactly, without stemming: "store" and "features" are not "stores" and "feature".
    assert (got["doc_id"], got["text_rank"]) == ([1, 4], [2, 1])
    assert "distance" not in got


def test_keyword_search_after_vector_searches_sees_every_text(docs: Docs) -> None:
    view = docs.apply(docs_view(2, "L2"))
    docs.write(view, [1, 2], [[1, 0], [0, 1]], texts=["apple pie", "banana split"])
    assert docs.search([1, 0], 1)["doc_id"] == [1]  # searched by vector first
    docs.write(view, [2], [[0, 1]], texts=["cherry tart"], ts=NOW + timedelta(seconds=1))

    def by_keyword(text: str) -> dict[str, list[Any]]:
        got = docs.store.retrieve_online_documents_v2(["docs:text"], query_string=text, top_k=5)
        return got.to_dict()  # type: ignore[no-any-return]

    assert by_keyword("cherry banana") == {"doc_id": [2], "text": ["cherry tart"], "text_rank": [1]}
    docs.write(view, [1], [[1, 0]], texts=["cherry pie"], ts=NOW + timedelta(seconds=2))
    assert by_keyword("cherry tart")["doc_id"] == [2, 1]
    assert by_keyword("apple")["doc_id"] == []


def test_hybrid_ranking_is_reciprocal_rank_fusion(docs: Docs) -> None:
    view = docs.apply(docs_view(2, "L2"))
    # Vector ranking: 1, 2, 3. Keyword ranking ("cats"): 3 (two terms), then 2.
    docs.write(view, [1, 2, 3], [[0, 0], [0, 1], [0, 2]], texts=["dogs", "cats", "cats cats and more"])
    got = docs.store.retrieve_online_documents_v2(["docs:text"], query=[0, 0], top_k=3,
                                                  query_string="cats more").to_dict()
    # 2: 1/62 + 1/62; 3: 1/63 + 1/61; 1: 1/61.
    assert got["doc_id"] == [3, 2, 1]
    assert got["text_rank"] == [2, 1, 0]


def test_distance_metric_overrides_the_declared_metric(docs: Docs) -> None:
    view = docs.apply(docs_view(2, "L2"))
    docs.write(view, [1, 2], [[1, 0], [10, 1]])
    assert docs.search([10, 0], 1)["doc_id"] == [2]
    assert docs.search([10, 0], 1, distance_metric="COSINE")["doc_id"] == [1]


@pytest.mark.pgvector
def test_hnsw_recall_at_10_is_at_least_095(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    name = "v_recall"
    config = RepoConfig.model_validate({"project": name, "repo_path": tmp_path,
                                        "registry": str(tmp_path / "registry.db"),
                                        "online_store": online_store("postgres", request, tmp_path, name)})
    docs = Docs(FeatureStore(config=config))
    try:
        view = docs.apply(docs_view(32, "COSINE"))
        rng = np.random.default_rng(3)
        vectors = rng.normal(size=(3000, 32)).astype(np.float32)
        docs.write(view, list(range(3000)), vectors)
        hits = 0
        queries = rng.normal(size=(30, 32))
        for query in queries:
            want = {i for i, _ in reference(vectors, list(range(3000)), query, "COSINE", 10)}
            hits += len(want & set(docs.search(query, 10)["doc_id"]))
        assert hits / (10 * len(queries)) >= 0.95
    finally:
        docs.store.teardown()
        docs.store.online_store.close()


@pytest.mark.pgvector
def test_an_exact_request_ignores_the_hnsw_index(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    """With enough rows, PostgreSQL's planner would answer `ORDER BY distance, key` by reading the
    (approximate) HNSW index in distance order; an exact request must still scan every document."""
    import psycopg

    name = "v_exact_indexed"
    settings = online_store("postgres", request, tmp_path, name)
    config = RepoConfig.model_validate({"project": name, "repo_path": tmp_path,
                                        "registry": str(tmp_path / "registry.db"), "online_store": settings})
    docs = Docs(FeatureStore(config=config))
    try:
        view = docs.apply(docs_view(384, "COSINE"))
        rng = np.random.default_rng(4)
        vectors = rng.normal(size=(3000, 384)).astype(np.float32)
        docs.write(view, list(range(3000)), vectors)
        with psycopg.connect(settings["url"]) as conn:  # the first write into the empty table built it
            assert conn.execute("SELECT count(*) FROM pg_indexes WHERE schemaname = %s AND indexdef LIKE %s",
                                (name, "%USING hnsw%")).fetchone() == (1,)
        for query in rng.normal(size=(10, 384)):
            assert_same_ranking(docs.search(query, 10, exact=True),
                                reference(vectors, list(range(3000)), query, "COSINE", 10))
    finally:
        docs.store.teardown()
        docs.store.online_store.close()


def test_a_store_without_vector_search_refuses_naming_itself(tmp_path: Path) -> None:
    config = RepoConfig.model_validate({"project": "p", "repo_path": tmp_path, "registry": str(tmp_path / "r.db"),
                                        "online_store": {"type": "redis", "connection_string": "127.0.0.1:1"}})
    with pytest.raises(VectorSearchUnsupported, match="online store 'redis' \\(RedisOnlineStore\\)"):
        FeatureStore(config=config).retrieve_online_documents_v2(["docs:embedding"], query=[1.0], top_k=1)


def test_a_wrong_length_is_refused_naming_the_row_and_nothing_is_written(docs: Docs) -> None:
    view = docs.apply(docs_view(3, "L2"))
    with pytest.raises(InputError, match="row 1 \\(entity key 8\\): vector field 'embedding' has 2 values"):
        docs.write(view, [7, 8], [[1, 2, 3], [1, 2]])
    assert docs.search([1, 2, 3], 5)["doc_id"] == []


def test_a_non_number_in_an_embedding_is_refused_naming_the_row(docs: Docs) -> None:
    view = docs.apply(docs_view(2, "L2"))
    frame = pd.DataFrame({"doc_id": [1, 2], "embedding": [[1.0, 2.0], [1.0, "x"]], "text": ["a", "b"],
                          "lang": ["en", "en"], "event_timestamp": [NOW, NOW]})
    with pytest.raises(InputError, match="column 'embedding', row 1"):
        docs.store.write_to_online_store(view.name, frame)


def test_feasts_older_call_returns_the_same_hits(docs: Docs) -> None:
    view = docs.apply(docs_view(2, "COSINE"))
    docs.write(view, [1, 2, 3], [[1, 0], [0, 1], [1, 1]])
    v2 = docs.store.retrieve_online_documents_v2(["docs:embedding"], query=[1.0, 0.2], top_k=2).to_dict()
    assert docs.store.retrieve_online_documents(query=[1.0, 0.2], top_k=2, features=["docs:embedding"]).to_dict() == v2
    assert docs.store.retrieve_online_documents("docs:embedding", [1.0, 0.2], 2).to_dict() == v2


@pytest.mark.postgres
def test_a_server_without_pgvector_refuses_vector_fields_at_apply_and_serves_the_rest(
        postgres_url: str, tmp_path: Path, unique_name: str) -> None:
    import psycopg

    with psycopg.connect(postgres_url) as conn:
        if conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'").fetchone():
            pytest.skip(f"the PostgreSQL at {postgres_url} has pgvector; this test needs one without")
    config = RepoConfig.model_validate({
        "project": unique_name, "repo_path": tmp_path, "registry": str(tmp_path / "r.db"),
        "online_store": {"type": "postgres", "url": postgres_url, "db_schema": unique_name}})
    docs = Docs(FeatureStore(config=config))
    plain = FeatureView(name="plain", entities=[doc], source=docs_view(2, "L2").source, schema=[
        Field(name="text", dtype=String)])
    try:
        docs.store.apply([doc, plain])
        with pytest.raises(DefinitionError, match="feature view 'docs': vector field 'embedding' needs the "
                                                  "pgvector extension"):
            docs.apply(docs_view(2, "L2"))
        assert [v.name for v in docs.store.list_feature_views()] == ["plain"]
        docs.store.write_to_online_store("plain", pd.DataFrame({"doc_id": [1], "text": ["kept"],
                                                                "event_timestamp": [NOW]}))
        got = docs.store.get_online_features(["plain:text"], {"doc_id": [1]}).to_dict()
        assert got["text"] == ["kept"]
    finally:
        docs.store.teardown()
        docs.store.online_store.close()
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{unique_name}" CASCADE')


def test_a_write_through_another_store_object_is_seen_by_the_next_search(docs: Docs) -> None:
    view = docs.apply(docs_view(2, "L2"))
    docs.write(view, [1, 2], [[0, 0], [5, 5]])
    assert docs.search([5, 5], 1)["doc_id"] == [2]  # this process has loaded its index
    other = Docs(FeatureStore(config=docs.store.config))  # other connections, as another process has
    other.write(view, [3], [[5, 5]], ts=NOW + timedelta(seconds=1))
    other.write(view, [2], [None], ts=NOW + timedelta(seconds=1))
    assert docs.search([5, 5], 2)["doc_id"] == [3, 1]
    other.store.online_store.close()


def test_a_rebuilt_view_does_not_serve_its_old_documents(docs: Docs) -> None:
    view = docs.apply(docs_view(2, "L2"))
    docs.write(view, [1], [[0, 0]])
    assert docs.search([0, 0], 1)["doc_id"] == [1]
    docs.apply(docs_view(2, "L2", extra=[Field(name="title", dtype=String)]))  # new feature: storage rebuilt
    assert docs.search([0, 0], 1)["doc_id"] == []
