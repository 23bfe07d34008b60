"""repast.vector.semantics: the metric semantics, the exact index, fusion, and the checks on vector fields."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from repast import Field
from repast.errors import DefinitionError, InputError
from repast.types import Array, Float32, Float64, Int64, String
from repast.vector.metric import Metric
from repast.vector.numbers import check_vector_column
from repast.vector.semantics import VectorMatrix, exact_distances, fuse, terms


def embedding(dim: int = 3, metric: str | None = "L2") -> Field:
    return Field(name="embedding", dtype=Array(Float32), vector_index=True, vector_length=dim,
                 vector_search_metric=metric)


@pytest.mark.parametrize(("metric", "expected"), [
    ("L2", math.sqrt(1 + 4)),  # euclidean distance
    ("COSINE", 1 - (1 * 2) / (math.sqrt(1 + 4) * 2)),  # 1 - cosine similarity
    ("INNER_PRODUCT", -(1 * 2)),  # negative inner product
])
def test_each_metric_is_a_distance_lower_is_closer(metric: str, expected: float) -> None:
    d = exact_distances(np.array([[1.0, 2.0]]), np.array([2.0, 0.0]), Metric(metric))
    assert d.tolist() == pytest.approx([expected])


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_matrix_top_k_equals_brute_force(data: st.DataObject) -> None:
    dim = data.draw(st.integers(1, 8))
    n = data.draw(st.integers(1, 60))
    # Away from zero without filtering (a filter rejected too many draws for hypothesis's health check).
    floats = st.one_of(st.floats(0.0009765625, 100, width=32), st.floats(-100, -0.0009765625, width=32))  # 2**-10
    vectors = data.draw(hnp.arrays(np.float32, (n, dim), elements=floats))
    query = data.draw(hnp.arrays(np.float64, dim, elements=floats))
    metric = data.draw(st.sampled_from(list(Metric)))
    top_k = data.draw(st.integers(1, n + 2))
    keys = [f"k{i:03d}" for i in range(n)]
    matrix = VectorMatrix(dim)
    matrix.upsert(keys, vectors)
    d = exact_distances(vectors, query, metric)
    expected = sorted(range(n), key=lambda i: (d[i], keys[i]))[:top_k]
    assert [k for k, _ in matrix.nearest(query, metric, top_k)] == [keys[i] for i in expected]


def test_matrix_upsert_replaces_and_remove_hides_a_document() -> None:
    matrix = VectorMatrix(2)
    matrix.upsert(["a", "b"], np.array([[0, 0], [5, 5]]), ["red fox", "blue fox"])
    matrix.upsert(["a"], np.array([[9, 9]]), ["green"])
    assert matrix.nearest([0, 0], Metric.L2, 2)[0][0] == "b"
    assert matrix.keyword("fox", 5) == [("b", 1)]
    matrix.remove(["b"])
    assert [k for k, _ in matrix.nearest([0, 0], Metric.L2, 2)] == ["a"]
    assert matrix.keyword("fox", 5) == []


def test_keyword_terms_are_lowercase_ascii_letter_and_digit_runs() -> None:
    assert terms("Feature-Store, v2.0!") == {"feature", "store", "v2", "0"}


def test_fusion_is_reciprocal_rank_with_key_tie_break() -> None:
    # a: 1/61 + 1/62, b: 1/62 + 1/61 (tie: key order), c: 1/63.
    assert fuse(["a", "b", "c"], ["b", "a"], 3) == ["a", "b", "c"]
    assert fuse(["a"], ["c", "b"], 2) == ["a", "c"]


def test_vector_field_declaration_is_registered_and_read_back() -> None:
    field = embedding(384, "cosine")
    assert field.vector_search_metric == "COSINE"
    assert Field.from_dict(field.to_dict()) == field


def test_a_plain_field_keeps_its_registered_shape() -> None:
    assert Field(name="x", dtype=Int64).to_dict() == {"name": "x", "dtype": "Int64", "description": "", "tags": {}}


def test_the_metric_defaults_to_l2() -> None:
    assert embedding(3, None).vector_search_metric == "L2"


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"dtype": Array(Int64)}, "Array\\(Float32\\) or Array\\(Float64\\)"),
    ({"dtype": String}, "Array\\(Float32\\)"),
    ({"vector_length": 0}, "vector_length, a positive integer"),
    ({"vector_search_metric": "HAMMING"}, "not one of L2, COSINE, INNER_PRODUCT"),
    ({"vector_index": False}, "need vector_index=True"),
])
def test_a_bad_vector_declaration_is_refused(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"name": "e", "dtype": Array(Float64), "vector_index": True, "vector_length": 3,
                               "vector_search_metric": "L2", **kwargs}
    with pytest.raises(DefinitionError, match=message):
        Field(**args)  # type: ignore[arg-type]


@pytest.mark.parametrize(("values", "message"), [
    ([[1.0, 2.0, 3.0], [1.0, 2.0]], "row 1 \\(entity key 11\\): .* has 2 values, but vector_length is 3"),
    ([[1.0, 2.0, 3.0], None, [1.0, float("nan"), 0.0]], "row 2 \\(entity key 12\\): .* NaN"),
    ([[1.0, None, 3.0]], "row 0 \\(entity key 10\\): .* null"),
])
def test_a_bad_vector_is_refused_naming_the_row(values: list[object], message: str) -> None:
    keys = pa.array([10, 11, 12][:len(values)])
    with pytest.raises(InputError, match=message):
        check_vector_column(pa.array(values, pa.list_(pa.float32())), embedding(3), "docs", keys)


def test_a_zero_vector_is_refused_under_cosine() -> None:
    with pytest.raises(InputError, match=r"row 1 .* all zeros"):
        check_vector_column(pa.array([[1.0, 0, 0], [0.0, 0, 0]], pa.list_(pa.float32())), embedding(3, "COSINE"),
                            "docs", pa.array([1, 2]))


def test_a_null_vector_is_accepted() -> None:
    check_vector_column(pa.array([None, [1.0, 2.0, 3.0]], pa.list_(pa.float32())), embedding(3), "docs")


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_cosine_distance_is_the_same_at_every_scale(data: st.DataObject) -> None:
    """Rows of any finite scale (float32's, and float64's beyond it, where the lengths are no longer
    taken directly) get the distance of their direction: the direct and the scaled paths agree."""
    rows = data.draw(hnp.arrays(np.int64, (5, 8), elements=st.integers(-1000, 1000))) / 1000.0
    rows[np.abs(rows).max(axis=1) == 0, 0] = 1.0
    query = data.draw(hnp.arrays(np.int64, 8, elements=st.integers(-1000, 1000))) / 1000.0
    query[0] = query[0] or 0.5
    unit = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    expected = 1.0 - unit @ (query / np.linalg.norm(query))
    for scale in (1e-300, 1e-15, 1.0, 1e15, 1e300):
        got = exact_distances(rows * scale, query / scale if scale > 1e-200 else query, Metric.COSINE)
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)


def test_an_8_bit_graph_reports_a_changed_vector_as_stale_and_an_unchanged_one_not() -> None:
    """A saved COSINE graph keeps 8-bit copies; on reopen the rows whose stored vector moved are
    re-inserted, and the others (whose copies are equal to within the quantization) are kept."""
    pytest.importorskip("usearch")
    from repast.vector.sqlite_hnsw import Graph, GraphSettings

    rng = np.random.default_rng(3)
    matrix = rng.normal(size=(300, 32)).astype(np.float32) * rng.uniform(1e-10, 1e10, size=(300, 1)).astype(
        np.float32)
    alive = np.ones(300, dtype=bool)
    graph = Graph(32, Metric.COSINE, GraphSettings())
    assert graph.dtype == "i8"
    graph.build(matrix, alive)
    assert graph.stale(matrix, alive).tolist() == []
    moved = matrix.copy()
    moved[[5, 77]] = rng.normal(size=(2, 32)).astype(np.float32)
    moved[100] *= 1000.0  # the same direction: the same 8-bit copy
    alive[200] = False
    assert graph.stale(moved, alive).tolist() == [5, 77, 200]
    assert Graph(32, Metric.L2, GraphSettings()).dtype == "f32"  # L2 keeps the scale
