"""The approximate index of the SQLite online store: an HNSW graph (usearch) per vector field,
persisted beside the online file, with the exact scan as the fallback when usearch is missing.

usearch was chosen by measurement (docs/vector.md, "Approximate index"): it builds fastest of
usearch, hnswlib and faiss-cpu, answers within their spread, and (unlike faiss' HNSW) removes a
document, which updates and null vectors need.

The graph's labels are the rows of the field's in-process `VectorMatrix`, so a hit is re-ranked
exactly from the matrix. It is kept in step by the same change log as the matrix
(repast.vector.sqlite): before each search the changed rows are removed from the graph and the
live ones added again, so an update is visible to the next query.

Persistence: `<online file>.vectors/<name>.json` records the generation the graph reflects (the
id of the last entry of the change log, written by the triggers in the writing transaction
itself), the table's storage id, the metric, the parameters and the rows' entity keys in label
order; it names the graph file, `<name>.<token>.usearch`. Both are written to temporary files
and renamed, under a file lock, header last: a reader sees the old pair or the new one, never a
mixture, whichever process writes or dies. On open a graph is adopted when its header matches and
the change log still holds every entry after its generation (then those entries are applied); a
graph that is missing, unreadable, of another table or layout, or older than the log's oldest
entry is rebuilt from the table. A process killed between a table write and the index write
thus leaves a graph behind by a few entries, which the next open applies.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from repast.vector.metric import Metric

_USEARCH_METRIC = {Metric.COSINE: "cos", Metric.L2: "l2sq", Metric.INNER_PRODUCT: "ip"}
_VERSION = 1
_BUILD_CHUNK = 4_096  # rows added between checks for the process exiting
# usearch's parallel insertion loses links on small graphs: 2 threads over 1,000 clustered documents
# gave recall@10 as low as 0.90 in 1 build of 15 (one thread: 1.0 in every build; at 10,000
# documents parallel builds stay >= 0.99). So a graph's first rows go in on one thread.
SERIAL_BELOW = 4_096


def available() -> bool:
    """usearch is installed (the `vector` extra)."""
    try:
        import usearch.index  # noqa: F401
    except ImportError:
        return False
    return True


@dataclass(frozen=True)
class GraphSettings:
    """HNSW parameters: connectivity (M), expansion at build (ef_construction) and at search
    (ef_search), and how a COSINE graph keeps its vectors (`i8` or `f32`; see `graph_dtype`)."""

    connectivity: int = 16
    expansion_add: int = 64
    expansion_search: int = 64
    cosine_dtype: str = "i8"


def graph_dtype(metric: Metric, settings: GraphSettings) -> str:
    """The graph's copy of each vector: under COSINE, `settings.cosine_dtype` (usearch normalizes
    each vector and keeps trunc(127 x component) in one byte: every finite vector fits, and
    candidates are re-ranked from the stored vectors, so answers stay exact and only recall can
    move); under L2 and INNER_PRODUCT f32, as their scale must be kept."""
    return settings.cosine_dtype if metric is Metric.COSINE else "f32"


class Graph:
    """One field's HNSW graph over the rows of its VectorMatrix."""

    def __init__(self, dimension: int, metric: Metric, settings: GraphSettings, index: Any = None) -> None:
        from usearch.index import Index

        self.dimension, self.metric, self.settings = dimension, metric, settings
        self.dtype = graph_dtype(metric, settings)
        if index is None:
            index = Index(ndim=dimension, metric=_USEARCH_METRIC[metric], dtype=self.dtype,
                          connectivity=settings.connectivity, expansion_add=settings.expansion_add,
                          expansion_search=settings.expansion_search)
        self.index: Any = index  # Any: usearch types expansion_search read-only, but it is settable
        self.index.expansion_search = settings.expansion_search
        self.unsaved = 0  # rows changed since the graph was last saved
        # Rows removed (and added again) since the graph was built: HNSW search degrades as
        # removals accumulate (recall 1.0 -> 0.94 after ten times its size in updates), so the
        # keeper rebuilds past a share of the graph's size.
        self.churned = 0

    def __len__(self) -> int:
        return len(self.index)

    def copy(self) -> Graph:
        """An independent copy (the background sync inserts into one while searches read this)."""
        twin = Graph(self.dimension, self.metric, self.settings, self.index.copy())
        twin.unsaved, twin.churned = self.unsaved, self.churned
        return twin

    def build(self, matrix: np.ndarray, alive: np.ndarray, stop: Callable[[], bool] = lambda: False) -> bool:
        """Add every live row, a chunk at a time; False when `stop()` said so between chunks."""
        rows = np.flatnonzero(alive).astype(np.uint64)
        for start in range(0, len(rows), _BUILD_CHUNK):
            if stop():
                return False
            chunk = rows[start:start + _BUILD_CHUNK]
            self.index.add(chunk, np.ascontiguousarray(matrix[chunk.astype(np.int64)]), threads=self._threads(0))
        return True

    def update(self, rows: np.ndarray, matrix: np.ndarray, alive: np.ndarray, threads: int = 0) -> None:
        """Bring `rows` in step with the matrix: removed, then added again where alive (on `threads`
        threads; 0: every core)."""
        labels = np.unique(rows).astype(np.uint64)
        if not len(labels):
            return
        present = labels[self.index.contains(labels)]
        if len(present):
            self.index.remove(present)
            self.churned += len(present)
        live = labels[alive[labels.astype(np.int64)]]
        if len(live):
            self.index.add(live, np.ascontiguousarray(matrix[live.astype(np.int64)]), threads=self._threads(threads))
        self.unsaved += len(labels)

    def _threads(self, wanted: int) -> int:
        """Threads for the next insertion: `wanted` (0: every core), one while the graph is small."""
        if len(self.index) < SERIAL_BELOW:
            return 1
        return wanted or os.cpu_count() or 1

    def stale(self, matrix: np.ndarray, alive: np.ndarray) -> np.ndarray:
        """The labels where the graph and the matrix disagree: a live row missing or held with
        another vector, or a label held for a row no longer live. Checked when a saved graph is
        adopted, so whatever happened between its save and now (a killed writer, a change the log
        lost), the graph is repaired rather than trusted."""
        live = np.flatnonzero(alive)
        held = self.index.get(live.astype(np.uint64)) if len(live) else ()
        missing = np.fromiter((v is None for v in held), dtype=bool, count=len(live))
        found = np.flatnonzero(~missing)
        vectors = np.stack([held[i] for i in found.tolist()]) if len(found) else np.zeros((0, self.dimension))
        moved = found[self._moved(vectors, matrix[live[found]])] if len(found) else found
        dead = np.setdiff1d(np.asarray(self.index.keys, dtype=np.int64), live)
        return np.unique(np.concatenate([live[missing], live[moved], dead]))

    def _moved(self, held: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Per row, whether the graph's copy `held` is not the vector `rows` holds. An i8 copy is
        trunc(127 x the unit vector), compared within one step (the normalization's rounding may
        differ from usearch's by an ulp): a change smaller than that leaves the graph's candidates
        as they were, and the answer is re-ranked from the stored vector anyway."""
        if self.dtype != "i8":
            return (held != rows).any(axis=1)  # type: ignore[no-any-return]
        moved = np.zeros(len(rows), dtype=bool)
        for start in range(0, len(rows), _BUILD_CHUNK):  # a chunk at a time: no float copy of the whole matrix
            chunk = rows[start:start + _BUILD_CHUNK].astype(np.float64)
            lengths = np.linalg.norm(chunk, axis=1, keepdims=True)
            expected = np.trunc(chunk / np.where(lengths > 0, lengths, 1.0) * 127.0)
            moved[start:start + len(chunk)] = (np.abs(expected - held[start:start + len(chunk)]) > 1.0).any(axis=1)
        return moved

    def search(self, query: np.ndarray, count: int) -> np.ndarray:
        """Up to `count` labels (matrix rows), nearest first by the graph's metric."""
        if count <= 0 or len(self.index) == 0:
            return np.zeros(0, dtype=np.int64)
        if count > self.settings.expansion_search:
            self.index.expansion_search = count  # a deeper request widens its own search
        try:
            found = self.index.search(query.astype(np.float32), count)
        finally:
            self.index.expansion_search = self.settings.expansion_search
        return np.asarray(found.keys, dtype=np.int64)


@dataclass
class Saved:
    """A persisted graph as its header describes it."""

    graph: Graph
    generation: int
    keys: list[str]


class GraphFiles:
    """Where one field's graph is persisted, and the lock writers of it take."""

    def __init__(self, online_path: str, project: str, view: str, field: str) -> None:
        stem = hashlib.sha1(json.dumps([project, view, field]).encode()).hexdigest()[:20]
        self.folder = Path(f"{online_path}.vectors")
        self.header = self.folder / f"{stem}.json"
        self.stem = stem

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.folder / f"{self.stem}.lock", "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def save(self, graph: Graph, generation: int, storage: str | None, keys: list[str]) -> None:
        """Write the graph, then its header, each to a temporary file renamed into place."""
        token = uuid.uuid4().hex[:12]
        name = f"{self.stem}.{token}.usearch"
        header = {"version": _VERSION, "generation": generation, "storage": storage, "dimension": graph.dimension,
                  "metric": graph.metric.value,
                  "settings": [graph.settings.connectivity, graph.settings.expansion_add, graph.dtype],
                  "count": len(graph), "churned": graph.churned, "graph": name, "keys": keys}
        with self._locked():
            tmp = self.folder / f".{name}.tmp"
            graph.index.save(str(tmp))
            _fsync(tmp)
            os.replace(tmp, self.folder / name)
            tmp_header = self.folder / f".{self.stem}.{token}.json.tmp"
            tmp_header.write_text(json.dumps(header))
            _fsync(tmp_header)
            os.replace(tmp_header, self.header)
            for old in self.folder.glob(f"{self.stem}.*.usearch"):  # graphs no header names any more
                if old.name != name:
                    old.unlink(missing_ok=True)
        graph.unsaved = 0

    def load(self, dimension: int, metric: Metric, settings: GraphSettings, storage: str | None) -> Saved | None:
        """The persisted graph when its header matches this field and table; None otherwise."""
        from usearch.index import Index

        try:
            header = json.loads(self.header.read_text())
            if header.get("version") != _VERSION or header["dimension"] != dimension \
                    or header["metric"] != metric.value or header["storage"] != storage \
                    or header["settings"] != [settings.connectivity, settings.expansion_add,
                                              graph_dtype(metric, settings)]:
                return None
            index = Index.restore(str(self.folder / header["graph"]))
            if index is None or index.ndim != dimension or len(index) != header["count"]:
                return None
        except (OSError, ValueError, KeyError, TypeError, RuntimeError):
            return None  # missing, half-written by a killed process, or of another layout: rebuilt
        graph = Graph(dimension, metric, settings, index)
        graph.churned = int(header.get("churned", 0))
        return Saved(graph, int(header["generation"]), list(header["keys"]))

    def remove(self) -> None:
        with self._locked():
            self.header.unlink(missing_ok=True)
            for old in self.folder.glob(f"{self.stem}.*.usearch"):
                old.unlink(missing_ok=True)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# ---- answering from the graph --------------------------------------------------------------------

_PAD = 10  # candidates read beyond top_k, so ties and near-ties at the cut are ranked exactly
MIN_FRACTION = 0.1  # below this share of documents passing filters / ttl, the exact scan answers


def approximate(matrix: Any, graph: Graph, query: np.ndarray, top_k: int, mask: np.ndarray | None,
                pending: np.ndarray | None = None) -> list[tuple[str, float]] | None:
    """The top_k (entity key, distance) from the graph's candidates and the `pending` rows (changed,
    not in the graph yet), re-ranked exactly from the matrix; None where the graph cannot answer
    (the caller scans exactly): fewer than MIN_FRACTION of the documents pass `mask`, or fewer
    than top_k of the candidates do."""
    size = matrix.size
    passing = matrix.alive[:size] if mask is None else matrix.alive[:size] & mask
    live = len(matrix) if mask is None else int(passing.sum())
    if live == 0:
        return []
    fraction = live / max(1, len(matrix))
    if fraction < MIN_FRACTION:
        return None
    count = min(len(graph), int(np.ceil((top_k + _PAD) / fraction)))
    rows = graph.search(query, count)
    if pending is not None:
        # The graph still holds the pending rows' old vectors: where they sat near the query they
        # would take the candidates' places (and the answer would miss documents the graph holds
        # right), so the graph is asked again, deeper, until `count` candidates are not pending.
        wanted, depth = count, count
        while depth < len(graph) and len(rows) - int(np.isin(rows, pending).sum()) < wanted:
            depth = min(len(graph), 2 * depth + wanted)
            rows = graph.search(query, depth)
        rows = np.unique(np.concatenate([rows, pending]))
    rows = rows[(rows >= 0) & (rows < size)]
    rows = rows[passing[rows]]
    if len(rows) < min(top_k, live):
        return None
    return matrix.nearest_among(rows, query, graph.metric, top_k)  # type: ignore[no-any-return]
