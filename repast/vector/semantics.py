"""Vector retrieval semantics: one definition of distance, ranking, keyword matching and fusion.

The rule every store and the offline path follow:
- a score is always a distance, lower is closer, under the metric declared on the field (or the
  one a request names): L2 = euclidean distance, COSINE = 1 - cosine similarity,
  INNER_PRODUCT = the negative inner product;
- reported distances are computed here, in float64, from the stored float32 (or float64) values,
  so every store reports the same number for the same document;
- ties are broken by the serialized entity key compared as text (code point order);
- keyword matching (`query_string`): the query's terms are its runs of ASCII letters and digits,
  lowercased; a document's terms are those of its String features; its `text_rank` is the number
  of distinct query terms it contains; documents with none are not keyword matches;
- hybrid ranking (a vector and a query string): reciprocal rank fusion, score(d) = sum over the
  two rankings of 1 / (RRF_K + rank(d)), ranks from 1, each ranking cut at `fusion_depth(top_k)`;
  higher score first, then entity key.

The exact search (`VectorMatrix`) is the reference approximate indexes are tested against; it
serves the SQLite online store and the offline `retrieve_documents`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from repast.vector.metric import Metric

if TYPE_CHECKING:
    from repast.definitions import FeatureView, Field

RRF_K = 60
_TERM = re.compile(r"[a-z0-9]+")


def vector_fields(view: FeatureView) -> list[Field]:
    """The view's features declared with vector_index=True."""
    return [f for f in view.features if getattr(f, "vector_index", False)]


def text_fields(view: FeatureView) -> list[str]:
    """The String features keyword matching reads."""
    return [f.name for f in view.features if getattr(f.dtype, "name", "") == "String"]


def terms(text: str | None) -> frozenset[str]:
    return frozenset(_TERM.findall(text.lower())) if text else frozenset()


def fusion_depth(top_k: int) -> int:
    """How deep each ranking is read for hybrid fusion."""
    return max(100, 10 * top_k)


# ---- distances -------------------------------------------------------------------------------

def exact_distances(vectors: np.ndarray, query: np.ndarray, metric: Metric) -> np.ndarray:
    """Distances (float64) of each row of `vectors` to `query`: the definition every path reports.
    Under COSINE each vector is scaled by its largest magnitude before its norm is taken, so no
    finite scale overflows or underflows; a zero vector has similarity 0 (distance 1)."""
    v = np.asarray(vectors, dtype=np.float64)
    q = np.asarray(query, dtype=np.float64)
    if metric is Metric.L2:
        return np.sqrt(((v - q) ** 2).sum(axis=1))  # type: ignore[no-any-return]
    if metric is Metric.INNER_PRODUCT:
        return -(v @ q)
    # Where every squared length is a normal float64 (any stored float32 vector: its length lies in
    # 1e-15..1e15), the lengths are taken directly: a quarter of the scaled path's cost, which a
    # search pays twice (ranking, then the reported distances). Otherwise each row is scaled first.
    squares = np.einsum("ij,ij->i", v, v)
    q_square = float(q @ q)
    if _NORMAL_SQUARE < q_square < np.inf and len(squares) and \
            _NORMAL_SQUARE < float(squares.min()) and float(squares.max()) < np.inf:
        return 1.0 - (v @ q) / (np.sqrt(squares) * np.sqrt(q_square))  # type: ignore[no-any-return]
    return 1.0 - _unit_rows(v) @ _unit_rows(q[None, :])[0]  # type: ignore[no-any-return]


_NORMAL_SQUARE = 1e-290  # squared lengths above this (and finite) lose no precision taken directly


def _unit_rows(v: np.ndarray) -> np.ndarray:
    """Each row divided by its length (zero rows stay zero), computed after scaling by its largest magnitude."""
    largest = np.abs(v).max(axis=1, keepdims=True) if v.shape[1] else np.zeros((len(v), 1))
    safe = np.where(largest > 0, largest, 1.0)
    scaled = v / safe
    lengths = np.linalg.norm(scaled, axis=1, keepdims=True)
    return scaled / np.where(lengths > 0, lengths, 1.0)


def order_hits(keys: Sequence[str], distances: Sequence[float]) -> list[int]:
    """Positions ordered by (distance, entity key)."""
    return sorted(range(len(keys)), key=lambda i: (distances[i], keys[i]))


def fuse(vector_keys: Sequence[str], keyword_keys: Sequence[str], top_k: int) -> list[str]:
    """Reciprocal rank fusion of two rankings (best first); the module docstring states the rule."""
    scores: dict[str, float] = {}
    for ranking in (vector_keys, keyword_keys):
        for rank, key in enumerate(ranking[:fusion_depth(top_k)], start=1):
            scores[key] = scores.get(key, 0.0) + 1.0 / (RRF_K + rank)
    return sorted(scores, key=lambda k: (-scores[k], k))[:top_k]


# ---- the exact index -------------------------------------------------------------------------

# Where float32 scoring is trusted: rows and queries no longer than this (products and squares stay
# far inside float32's 3.4e38) and, under COSINE, rows no shorter than its inverse square.
_FLOAT32_SAFE = 1e15
_DIRECT_RANKING = 256  # candidates ranked by their exact distances without a float32 pass first
_EXACT_CHUNK = 16_384  # rows converted to float64 at a time by the exact fallback


class VectorMatrix:
    """Documents' vectors as one float32 matrix with their entity keys, plus keyword postings.

    Rows are updated in place (upsert) and removed by marking them dead, so a change to one
    document costs O(dimension), not a rebuild. Search is one matrix-vector product over the
    live rows, then an exact float64 re-ranking of the candidates near the cut.
    """

    def __init__(self, dimension: int) -> None:
        self.dimension = dimension
        self.matrix = np.zeros((0, dimension), dtype=np.float32)
        self.norms = np.zeros(0, dtype=np.float64)
        self.neg_inv_norms = np.zeros(0, dtype=np.float32)  # -1/|m|, for COSINE scores
        self.squared_norms = np.zeros(0, dtype=np.float32)  # |m|^2, for L2 scores
        self.alive = np.zeros(0, dtype=bool)
        self.tiny = np.zeros(0, dtype=bool)  # 0 < |m| < 1e-30: COSINE scores them in float64
        self.tiny_rows = 0
        self.max_norm = 0.0  # an upper bound of the rows' lengths (it never shrinks: a bound is enough)
        self.event_us = np.zeros(0, dtype=np.int64)  # each row's event time (for a view's ttl), when given
        self.keys: list[str] = []
        self.row_of: dict[str, int] = {}  # the live documents' rows
        self._seeded: dict[str, int] = {}  # rows given by `seed`, not upserted yet
        self.row_terms: list[frozenset[str]] = []
        self.postings: dict[str, set[int]] = {}
        self.size = 0

    def __len__(self) -> int:
        return len(self.row_of)

    def reserve(self, rows: int) -> None:
        """Make room for `rows` rows in all, so a load does not copy the matrix as it grows."""
        self._grow(max(0, rows - self.size))

    def _grow(self, extra: int) -> None:
        need = self.size + extra
        if need <= len(self.matrix):
            return
        capacity = need if self.size == 0 else max(need, int(len(self.matrix) * 1.5) + 1024)
        matrix = np.zeros((capacity, self.dimension), dtype=np.float32)
        matrix[:self.size] = self.matrix[:self.size]
        norms = np.zeros(capacity, dtype=np.float64)
        norms[:self.size] = self.norms[:self.size]
        alive = np.zeros(capacity, dtype=bool)
        alive[:self.size] = self.alive[:self.size]
        neg_inv = np.zeros(capacity, dtype=np.float32)
        neg_inv[:self.size] = self.neg_inv_norms[:self.size]
        squared = np.zeros(capacity, dtype=np.float32)
        squared[:self.size] = self.squared_norms[:self.size]
        tiny = np.zeros(capacity, dtype=bool)
        tiny[:self.size] = self.tiny[:self.size]
        event_us = np.zeros(capacity, dtype=np.int64)
        event_us[:self.size] = self.event_us[:self.size]
        self.event_us = event_us
        self.matrix, self.norms, self.alive, self.tiny = matrix, norms, alive, tiny
        self.neg_inv_norms, self.squared_norms = neg_inv, squared

    def seed(self, keys: Sequence[str]) -> None:
        """Give `keys` the first rows, in order, without vectors (not alive until upserted): a
        persisted graph's labels are rows, so its documents get back the rows it knows them by."""
        start = self.size
        self._add_rows(list(keys), live=False)
        self._seeded.update((k, start + i) for i, k in enumerate(keys))

    def seeded_row(self, key: str) -> int | None:
        """The row `seed` gave a key that was not upserted since (a document now removed)."""
        return self._seeded.get(key)

    def _add_rows(self, new: list[str], live: bool = True) -> None:
        self._grow(len(new))
        for k in new:
            if live:
                self.row_of[k] = self.size
            self.keys.append(k)
            self.row_terms.append(frozenset())
            self.size += 1

    def upsert(self, keys: Sequence[str], vectors: np.ndarray, texts: Sequence[str | None] | None = None,
               event_us: np.ndarray | None = None) -> None:
        """Set the vector (and keyword text, event time) of each key; a key seen before keeps its row."""
        vectors = np.asarray(vectors, dtype=np.float32).reshape(len(keys), self.dimension)
        if self._seeded:
            for k in dict.fromkeys(keys):
                row = None if k in self.row_of else self._seeded.pop(k, None)
                if row is not None:
                    self.row_of[k] = row
        self._add_rows([k for k in dict.fromkeys(keys) if k not in self.row_of])
        rows = np.fromiter((self.row_of[k] for k in keys), dtype=np.int64, count=len(keys))
        if event_us is not None:
            self.event_us[rows] = event_us
        self.matrix[rows] = vectors
        norms = np.linalg.norm(vectors.astype(np.float64), axis=1)
        tiny = (norms > 0) & (norms < 1.0 / _FLOAT32_SAFE ** 2)
        self.tiny_rows += int(tiny.sum()) - int(self.tiny[rows].sum())
        self.tiny[rows] = tiny
        self.norms[rows] = norms
        if len(norms):
            self.max_norm = max(self.max_norm, float(norms.max()))
        with np.errstate(divide="ignore", over="ignore"):  # such rows are scored in float64 (_scores)
            self.neg_inv_norms[rows] = np.where(norms > 0, -1.0 / np.where(norms > 0, norms, 1.0), 0.0)
            self.squared_norms[rows] = norms ** 2
        self.alive[rows] = True
        if texts is not None:
            for row, text in zip(rows.tolist(), texts, strict=True):
                self._set_terms(row, terms(text))

    def set_texts(self, keys: Sequence[str], texts: Sequence[str | None]) -> None:
        """Set the keyword text of each key already in the index (others are ignored)."""
        for key, text in zip(keys, texts, strict=True):
            row = self.row_of.get(key)
            if row is not None:
                self._set_terms(row, terms(text))

    def _set_terms(self, row: int, new: frozenset[str]) -> None:
        old = self.row_terms[row]
        for t in old - new:
            self.postings[t].discard(row)
        for t in new - old:
            self.postings.setdefault(t, set()).add(row)
        self.row_terms[row] = new

    def remove(self, keys: Iterable[str]) -> None:
        for k in keys:
            row = self.row_of.pop(k, None)
            if row is not None:
                self.alive[row] = False
                self._set_terms(row, frozenset())

    def mask_of(self, keys: Iterable[str]) -> np.ndarray:
        """A row mask selecting `keys` (for filters)."""
        mask = np.zeros(self.size, dtype=bool)
        rows = [self.row_of[k] for k in keys if k in self.row_of]
        mask[rows] = True
        return mask

    def nearest(self, query: Sequence[float] | np.ndarray, metric: Metric, top_k: int,
                mask: np.ndarray | None = None) -> list[tuple[str, float]]:
        """The top_k (entity key, distance) by the module's rule, among live rows (and `mask`)."""
        q = np.asarray(query, dtype=np.float64)
        live = self.alive[:self.size] if mask is None else self.alive[:self.size] & mask
        n_live = len(self.row_of) if mask is None else int(live.sum())
        if n_live == 0 or top_k <= 0:
            return []
        score, margin = self._scores(q, metric)
        if n_live < self.size:
            score[~live] = np.inf
        return self._ranked(np.arange(self.size), score, margin, q, metric, min(top_k, n_live))

    def nearest_among(self, rows: np.ndarray, query: np.ndarray, metric: Metric,
                      top_k: int) -> list[tuple[str, float]]:
        """`nearest` over the given (live) rows only: an approximate index's candidates. Scored in
        float32 first, so thousands of candidates (rows changed but not in the graph yet) cost a
        small product, not a float64 distance and a sort each."""
        if len(rows) == 0 or top_k <= 0:
            return []
        q = np.asarray(query, dtype=np.float64)
        if len(rows) <= _DIRECT_RANKING:  # a graph's few candidates: their exact distances at once
            return self._best(rows, exact_distances(self.matrix[rows], q, metric), top_k)
        score, margin = self._scores(q, metric, rows)
        return self._ranked(rows, score, margin, q, metric, min(top_k, len(rows)))

    def _ranked(self, rows: np.ndarray, score: np.ndarray, margin: float, q: np.ndarray, metric: Metric,
                k: int) -> list[tuple[str, float]]:
        kth = np.partition(score, k - 1)[k - 1]
        # float32 products may misorder rows within their rounding error of the cut: every row that
        # close to it is re-ranked exactly, so the answer is the exact top-k.
        candidates = rows[np.flatnonzero(score <= kth + margin)]
        return self._best(candidates, exact_distances(self.matrix[candidates], q, metric), k)

    def _best(self, rows: np.ndarray, exact: np.ndarray, k: int) -> list[tuple[str, float]]:
        """The k (entity key, distance) of `rows` nearest by their `exact` distances, ties by key."""
        keys = [self.keys[i] for i in rows.tolist()]
        order = order_hits(keys, exact.tolist())[:k]
        return [(keys[i], float(exact[i])) for i in order]

    def _scores(self, q: np.ndarray, metric: Metric, rows: np.ndarray | None = None) -> tuple[np.ndarray, float]:
        """Per row (all, or `rows`) a score ordered as the distance, and a bound on its rounding
        error. One float32 matrix-vector product (in place) where float32 holds every product and
        sum; otherwise (rows or a query beyond 1e15 in length, or COSINE over rows shorter than
        1e-30) the exact float64 distances, so no scale a store accepts overflows, underflows or
        loses the ranking."""
        size = self.size
        pick: slice | np.ndarray = slice(0, size) if rows is None else rows
        max_norm = self.max_norm
        q_norm = float(np.linalg.norm(q))
        if max_norm > _FLOAT32_SAFE or q_norm > _FLOAT32_SAFE or (
                metric is Metric.COSINE and self.tiny_rows > 0) or (
                metric is Metric.L2 and max_norm < 1.0 / _FLOAT32_SAFE):
            if rows is not None:
                return exact_distances(self.matrix[rows], q, metric), 0.0
            return self._exact_scores(q, metric), 0.0
        if rows is None:  # BLAS, on every core: the product reads the whole matrix
            score = self.matrix[pick] @ q.astype(np.float32)
        else:
            # A few thousand candidates: NumPy's own single-threaded loop. OpenBLAS would split so
            # small a product across its threads, and on a busy machine waking them cost 20-120 ms
            # (5,000 rows: 0.3 ms here, 19 ms p50 through BLAS at load 10).
            score = np.einsum("ij,j->i", self.matrix[pick], q.astype(np.float32))
        unit = 2.0 * (self.dimension + 2) * 2.0 ** -24
        if metric is Metric.COSINE:  # -(m.q)/|m|: the cosine distance scaled by |q|, plus a constant
            score *= self.neg_inv_norms[pick]
            return score, unit * q_norm
        if metric is Metric.INNER_PRODUCT:
            np.negative(score, out=score)
            return score, unit * max_norm * q_norm
        score *= -2.0  # |m|^2 - 2 m.q: the squared distance less |q|^2
        score += self.squared_norms[pick]
        return score, unit * (2.0 * max_norm * q_norm + max_norm ** 2)

    def _exact_scores(self, q: np.ndarray, metric: Metric) -> np.ndarray:
        out = np.empty(self.size, dtype=np.float64)
        for start in range(0, self.size, _EXACT_CHUNK):
            stop = min(self.size, start + _EXACT_CHUNK)
            out[start:stop] = exact_distances(self.matrix[start:stop], q, metric)
        return out

    def keyword(self, query_string: str, top_k: int, mask: np.ndarray | None = None) -> list[tuple[str, int]]:
        """Keyword matches (entity key, matched terms), most terms first, then entity key."""
        counts: dict[int, int] = {}
        for t in terms(query_string):
            for row in self.postings.get(t, ()):
                counts[row] = counts.get(row, 0) + 1
        if mask is not None:
            counts = {r: c for r, c in counts.items() if mask[r]}
        ranked = sorted(counts, key=lambda r: (-counts[r], self.keys[r]))[:top_k]
        return [(self.keys[r], counts[r]) for r in ranked]
