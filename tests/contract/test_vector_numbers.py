"""The vector section of the contract at the edges of float32 (docs/vector.md, "Numbers"): stored
vectors and queries of any scale get the exact ranking or a clear InputError (a 400 over HTTP),
never a silent empty or NaN-ordered answer, on every store declaring vector search and offline."""

from __future__ import annotations

import math
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest
from starlette.testclient import TestClient

from repast.errors import InputError
from repast.types import Array, Float64
from tests.contract.test_online_vectors import NOW, Docs, assert_same_ranking, docs, docs_view, reference

__all__ = ["docs"]  # the fixture, parametrized over the stores


# ---- queries ------------------------------------------------------------------------------------

@pytest.mark.parametrize("scale", [1e300, 1e-320, 1e-30, 3.0], ids=["overflow", "subnormal", "tiny", "plain"])
def test_a_cosine_query_ranks_by_its_direction_at_any_finite_scale(docs: Docs, scale: float) -> None:
    view = docs.apply(docs_view(8, "COSINE"))
    rng = np.random.default_rng(11)
    vectors = rng.normal(size=(100, 8)).astype(np.float32)
    ids = list(range(100))
    docs.write(view, ids, vectors)
    direction = rng.integers(-3, 4, size=8).astype(np.float64)
    for exact in (True, False):
        got = docs.search(direction * scale, 10, exact=exact)
        assert_same_ranking(got, reference(vectors, ids, direction, "COSINE", 10))


@pytest.mark.parametrize("metric", ["L2", "INNER_PRODUCT"])
@pytest.mark.parametrize("scale", [1e300, 1e-320], ids=["overflow", "underflow"])
def test_an_l2_or_inner_product_query_float32_cannot_hold_is_refused_naming_the_field(
        docs: Docs, metric: str, scale: float) -> None:
    view = docs.apply(docs_view(8, metric))
    docs.write(view, [1, 2], np.ones((2, 8), dtype=np.float32))
    with pytest.raises(InputError, match=r"^(?=.*float32)(?=.*docs:embedding)"):
        docs.search(np.full(8, scale), 2)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_a_nan_or_infinite_query_is_refused(docs: Docs, value: float) -> None:
    view = docs.apply(docs_view(2, "COSINE"))
    docs.write(view, [1], [[1, 0]])
    with pytest.raises(InputError, match="NaN or infinite"):
        docs.search([1.0, value], 1)


def test_a_two_dimensional_query_is_refused_saying_it_must_be_one_dimensional(docs: Docs) -> None:
    view = docs.apply(docs_view(8, "L2"))
    with pytest.raises(InputError, match=r"1-D") as refused:
        docs.store.retrieve_online_documents_v2([f"{view.name}:embedding"], query=np.ones((1, 8)), top_k=1)
    assert "has 8 values" not in str(refused.value)


# ---- stored vectors -----------------------------------------------------------------------------

@pytest.mark.parametrize("metric", ["COSINE", "L2", "INNER_PRODUCT"])
@pytest.mark.parametrize("scale", [1e-14, 1e-6, 1e14], ids=["tiny", "small", "large"])
def test_stored_vectors_at_any_accepted_length_rank_as_the_reference(docs: Docs, metric: str, scale: float) -> None:
    view = docs.apply(docs_view(8, metric))
    rng = np.random.default_rng(5)
    vectors = (rng.normal(size=(60, 8)) * scale).astype(np.float32)
    ids = list(range(60))
    docs.write(view, ids, vectors)
    # The query at the documents' scale for L2 (else every distance is |query|); unit otherwise.
    query = rng.normal(size=8) * (scale if metric == "L2" else 1.0)
    for exact in (True, False):
        assert_same_ranking(docs.search(query, 10, exact=exact), reference(vectors, ids, query, metric, 10))


@pytest.mark.parametrize("metric", ["COSINE", "L2", "INNER_PRODUCT"])
@pytest.mark.parametrize("scale", [1e-40, 1e-20, 1e18, 1e36], ids=["subnormal", "tiny", "large", "huge"])
def test_a_stored_vector_float32_cannot_rank_is_refused_naming_the_row_and_the_range(
        docs: Docs, metric: str, scale: float) -> None:
    view = docs.apply(docs_view(2, metric))
    with pytest.raises(InputError, match=r"row 1 \(entity key 2\).*outside 1e-15\.\.1e\+15"):
        docs.write(view, [1, 2], np.array([[1, 0], [scale, scale]], dtype=np.float32))
    assert docs.search([1, 0], 5)["doc_id"] == []


@pytest.mark.parametrize(("metric", "scale"), [("L2", 1e20), ("INNER_PRODUCT", 1e20), ("INNER_PRODUCT", 1e-20)])
def test_an_l2_or_inner_product_query_of_a_length_float32_cannot_rank_is_refused(
        docs: Docs, metric: str, scale: float) -> None:
    view = docs.apply(docs_view(2, metric))
    docs.write(view, [1, 2], [[1, 0], [0, 1]])
    with pytest.raises(InputError, match=r"query length .* outside 1e-15\.\.1e\+15"):
        docs.search([scale, scale], 2)


@pytest.mark.parametrize("value", [1e300, -1e39])
def test_a_stored_value_beyond_float32_is_refused_naming_the_row_and_float32(docs: Docs, value: float) -> None:
    view = docs.apply(docs_view(2, "COSINE", extra=[]))
    with pytest.raises(InputError, match=r"row 1 \(entity key 2\).*beyond float32's range"):
        docs.write(view, [1, 2], [[1, 0], [value, 1]])
    assert docs.search([1, 0], 5)["doc_id"] == []


def test_a_float64_field_refuses_a_value_beyond_float32(docs: Docs) -> None:
    view = docs_view(2, "COSINE")
    view.features[0].dtype = Array(Float64)
    docs.apply(view)
    with pytest.raises(InputError, match=r"entity key 1\).*beyond float32's range"):
        docs.write(view, [1], [[1e300, 1e300]])


def test_a_cosine_vector_that_rounds_to_zero_in_float32_is_refused_saying_so(docs: Docs) -> None:
    view = docs.apply(docs_view(2, "COSINE"))
    with pytest.raises(InputError, match=r"entity key 1\).*all zeros in float32"):
        docs.write(view, [1], [[1e-320, 0.0]])


# ---- offline (point in time) --------------------------------------------------------------------

def offline_store(docs: Docs, vectors: list[list[float]], metric: str) -> None:
    docs.apply(docs_view(len(vectors[0]), metric))
    pd.DataFrame({"doc_id": range(len(vectors)), "embedding": vectors, "text": "t", "lang": "en", "title": "x",
                  "event_timestamp": NOW - timedelta(hours=1)}).to_parquet(docs.store.repo_path / "docs.parquet")


@pytest.mark.parametrize("scale", [1e300, 1e-320])
def test_offline_a_cosine_query_ranks_by_its_direction_at_any_scale(docs: Docs, scale: float) -> None:
    vectors = np.random.default_rng(2).normal(size=(50, 4)).astype(np.float32)
    offline_store(docs, vectors.tolist(), "COSINE")
    direction = np.array([1.0, -2.0, 0.5, 3.0])
    got = docs.store.retrieve_documents(["docs:embedding", "docs:text"], query=list(direction * scale), top_k=10)
    assert_same_ranking(got.to_dict(), reference(vectors, list(range(50)), direction, "COSINE", 10))


@pytest.mark.parametrize("bad", [math.nan, 1e300], ids=["nan", "beyond-float32"])
def test_offline_a_stored_vector_search_cannot_rank_is_refused_naming_its_entity(docs: Docs, bad: float) -> None:
    offline_store(docs, [[1.0, 0.0], [bad, 1.0]], "COSINE")
    with pytest.raises(InputError, match=r"offline documents.*entity key 1\)"):
        docs.store.retrieve_documents(["docs:embedding"], query=[1.0, 0.0], top_k=2)


# ---- over HTTP ------------------------------------------------------------------------------------

def post(docs: Docs, body: dict[str, Any] | bytes) -> Any:
    from repast.server.app import create_app

    with TestClient(create_app(docs.store.backends)) as client:
        content = body if isinstance(body, bytes) else orjson.dumps(body)
        return client.post("/retrieve-online-documents", content=content,
                           headers={"content-type": "application/json"})


def test_over_http_a_huge_cosine_query_ranks_by_its_direction(docs: Docs) -> None:
    view = docs.apply(docs_view(2, "COSINE"))
    docs.write(view, [1, 2, 3], [[1, 0], [0, 1], [1, 1]])
    answer = post(docs, {"features": ["docs:text"], "query": [1e300, 2e299], "top_k": 3})
    assert answer.status_code == 200, answer.text
    assert [row["values"] for row in answer.json()["results"][:1]] == [[1, 3, 2]]


@pytest.mark.parametrize(("query", "named"), [(b"[1e300, 1e300]", "float32"), (b"[1e-320, 0]", "float32"),
                                               (b"[NaN, 1]", "not valid JSON")], ids=["huge", "tiny", "nan"])
def test_over_http_an_l2_query_search_cannot_rank_is_a_400_naming_it(docs: Docs, query: bytes, named: str) -> None:
    view = docs.apply(docs_view(2, "L2"))
    docs.write(view, [1], [[1, 0]])
    answer = post(docs, b'{"features": ["docs:text"], "top_k": 1, "query": ' + query + b"}")
    assert answer.status_code == 400, answer.text
    assert named in answer.json()["detail"]


_ = Path  # the fixture's type names


@pytest.mark.parametrize(("body", "status", "named"), [
    (b'{"features": ["docs:text"], "top_k": 1, "query": [1, 0, 0]}', 400, "vector_length 2"),
    (b'{"features": ["nope:text"], "top_k": 1, "query": [1, 0]}', 404, "nope"),
    (b'{"features": ["docs:text"], "top_k": 1, "query": [true, 0]}', 422, "query"),
    (b'{"features": ["docs:text"], "top_k": 0, "query": [1, 0]}', 422, "top_k"),
    (b'{"features": ["docs:text"], "top_k": 1, "query": [1, 0], "exact": "yes"}', 422, "exact"),
    (b'{"features": ["docs:text"], "top_k": 1, "query": [1, 0', 400, "not valid JSON"),
], ids=["wrong-length", "unknown-view", "bool-in-query", "top-k-0", "exact-not-bool", "bad-json"])
def test_over_http_a_bad_request_is_a_4xx_naming_what_is_wrong(docs: Docs, body: bytes, status: int,
                                                               named: str) -> None:
    view = docs.apply(docs_view(2, "L2"))
    docs.write(view, [1], [[1, 0]])
    answer = post(docs, body)
    assert answer.status_code == status, answer.text
    assert named in answer.json()["detail"]


def test_over_http_the_answer_is_the_sdks(docs: Docs) -> None:
    view = docs.apply(docs_view(2, "COSINE"))
    docs.write(view, [1, 2, 3], [[1, 0], [0, 1], [1, 1]])
    body = {"features": ["docs:text", "docs:embedding"], "query": [1, 0.5], "top_k": 2, "exact": True}
    answer = post(docs, body)
    assert answer.status_code == 200, answer.text
    sdk = docs.store.retrieve_online_documents_v2(["docs:text", "docs:embedding"], query=[1, 0.5], top_k=2)
    assert answer.json()["results"][0]["values"] == sdk.to_dict()["doc_id"]
    assert answer.json()["metadata"]["feature_names"] == list(sdk.to_dict())


def test_over_http_searches_run_inline_while_cheap_and_on_threads_while_costly(docs: Docs) -> None:
    import asyncio

    from repast.server.documents import INLINE_SEARCH_SECONDS, DocumentsEndpoint

    view = docs.apply(docs_view(2, "L2"))
    docs.write(view, [1, 2], [[1, 0], [0, 1]])
    endpoint = DocumentsEndpoint(docs.store.backends)
    body = orjson.dumps({"features": ["docs:text"], "query": [1, 0], "top_k": 1})

    async def answered() -> tuple[bool, Any]:
        answer = endpoint.answer(body)
        inline = isinstance(answer, bytes)
        return inline, orjson.loads(answer if inline else await answer)  # type: ignore[arg-type]

    try:
        threaded_store = docs.store.online_store.capabilities.reads_on_own_thread
        inline, got = asyncio.run(answered())
        assert inline is not threaded_store and got["results"][0]["values"] == [1]
        endpoint.cpu_seconds = 10 * INLINE_SEARCH_SECONDS  # as after exact scans of many documents
        inline, got = asyncio.run(answered())
        assert not inline and got["results"][0]["values"] == [1]
    finally:
        endpoint.close()
