"""Keeping a SQLite vector field's HNSW graph in step with its matrix, without making writes or
searches wait for graph insertions (repast.vector.sqlite calls these under the field's lock).

- A graph over up to FOREGROUND_BUILD documents is built by the search that finds it missing; a
  larger one in a background thread (searches scan exactly meanwhile).
- Rows changed by a catch-up go into the graph at once when they are few (SYNC_INLINE) and no
  backlog exists; otherwise they join `pending`, which a background thread moves into a copy of
  the graph without holding the field's lock, then swaps in: a search never waits for graph
  insertions, only for the swap (the previous design inserted 32 rows per hold of the lock, and
  searches waited behind those holds: 595 ms and 252 ms for the first queries after 5,000 updates).
- A search answered by the graph also scans the pending rows exactly, so an update is visible to
  the next query however large the backlog (repast.vector.sqlite_hnsw.approximate).
- The graph is saved only when nothing is pending: its header's generation then says exactly
  which changes it holds. A graph built or synced in the background is saved before it is
  published, by the thread that made it, with the generation it was made from (so no search
  waits for the file either).
- A graph whose removed-and-re-added rows exceed half its size is rebuilt from the matrix (HNSW
  routes worse as removals accumulate).
"""

from __future__ import annotations

import atexit
import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from repast.vector.sqlite_hnsw import Graph, GraphSettings

if TYPE_CHECKING:
    from repast.vector.metric import Metric
    from repast.vector.semantics import VectorMatrix

SAVE_EVERY = 10_000  # graph rows changed between saves
FOREGROUND_BUILD = 20_000  # documents a search waits for the graph to be built over (a few seconds)
REBUILD_SHARE, REBUILD_MIN = 0.5, 500  # rows churned (see Graph.churned) past which a graph is rebuilt
SYNC_INLINE = 256  # changed rows a catch-up puts into the graph itself
_SYNC_CHUNK = 256  # rows the background sync inserts between checks for the process exiting

# Background builds and syncs stop between chunks when the interpreter exits: a thread inside
# usearch's C++ code at exit would abort the process.
_EXITING = threading.Event()
_THREADS: list[threading.Thread] = []


def _stop_background() -> None:
    _EXITING.set()
    for thread in list(_THREADS):
        thread.join(timeout=30)


atexit.register(_stop_background)


def exiting() -> bool:
    """The interpreter is exiting: background work stops at its next check."""
    return _EXITING.is_set()


def start_background(target: Callable[[], None], name: str) -> None:
    """Run `target` in a daemon thread that the interpreter's exit waits for (it checks `exiting()`)."""
    thread = threading.Thread(target=target, name=name, daemon=True)
    _THREADS[:] = [t for t in _THREADS if t.is_alive()] + [thread]
    thread.start()


@dataclass
class FieldIndex:
    """One vector field of one view in one process: its matrix, its graph and their state."""

    matrix: VectorMatrix
    last_change: int = 0  # the change-log id the matrix reflects
    keywords: bool = False  # the documents' keyword terms are loaded (at the first keyword search)
    lock: threading.Lock = field(default_factory=threading.Lock)
    graph: Graph | None = None  # the approximate index, for the field's declared metric
    project: str = ""
    # Matrix rows changed, not in the graph yet, each with the stamp of its latest change (a row
    # changed again while the background sync inserts it stays pending).
    pending: dict[int, int] = field(default_factory=dict)
    stamps: itertools.count[int] = field(default_factory=itertools.count)
    building: bool = False
    syncing: bool = False

    def pending_rows(self) -> np.ndarray | None:
        return np.fromiter(self.pending, dtype=np.int64, count=len(self.pending)) if self.pending else None

    def saving(self) -> tuple[int, list[str]]:
        """What a graph saved from this state is saved with: the change id the matrix reflects and
        the rows' keys in label order (taken under the lock)."""
        return self.last_change, self.matrix.keys[:self.matrix.size]


@dataclass(frozen=True)
class GraphPolicy:
    """How the store builds graphs: the field's shape, HNSW settings, the threshold, and how to save."""

    dimension: int
    metric: Metric
    settings: GraphSettings
    min_documents: int
    save: Callable[[Graph, int, list[str]], None]  # graph, generation, keys in label order


def keep_graph(index: FieldIndex, policy: GraphPolicy) -> None:
    """Build the graph once the field has enough documents; save it when due and consistent."""
    graph = index.graph
    if graph is not None and graph.churned > max(REBUILD_MIN, REBUILD_SHARE * len(graph)):
        graph = index.graph = None  # rebuilt below (exact scans meanwhile, if in the background)
        index.pending.clear()
    if graph is None:
        count = len(index.matrix)
        if count < policy.min_documents or index.building:
            return
        if count > FOREGROUND_BUILD:
            _build_in_background(index, policy)
            return
        graph = index.graph = Graph(policy.dimension, policy.metric, policy.settings)
        graph.build(index.matrix.matrix[:index.matrix.size], index.matrix.alive[:index.matrix.size])
        graph.unsaved = SAVE_EVERY
        index.pending.clear()
    if graph.unsaved >= SAVE_EVERY and not index.pending:
        policy.save(graph, *index.saving())


def note_changed(index: FieldIndex, rows: np.ndarray, policy: GraphPolicy) -> None:
    """Rows a catch-up changed in the matrix: into the graph now, or pending."""
    if index.graph is None and not index.building:
        return
    if index.graph is not None and not index.pending and len(rows) <= SYNC_INLINE:
        index.graph.update(rows, index.matrix.matrix, index.matrix.alive)
        return
    index.pending.update(dict.fromkeys(rows.tolist(), next(index.stamps)))
    if index.graph is not None:
        _sync_in_background(index, policy)


def _build_in_background(index: FieldIndex, policy: GraphPolicy) -> None:
    """Build from the matrix as it is (rows written meanwhile are pending), save, then adopt the
    graph unless the matrix was reloaded since."""
    matrix = index.matrix
    rows, alive = matrix.matrix, matrix.alive[:matrix.size].copy()
    made_from = index.saving()
    index.building = True
    index.pending.clear()

    def build() -> None:
        try:
            graph = Graph(policy.dimension, policy.metric, policy.settings)
            if not graph.build(rows[:len(alive)], alive, _EXITING.is_set):
                index.building = False
                return
            policy.save(graph, *made_from)  # before anyone searches it: a search never waits for the file
            with index.lock:
                index.building = False
                if index.matrix is matrix:
                    index.graph = graph
                    if index.pending:
                        _sync_in_background(index, policy)
        except BaseException:
            index.building = False
            raise

    start_background(build, "repast-hnsw-build")


def _sync_in_background(index: FieldIndex, policy: GraphPolicy) -> None:
    """Move the pending rows into a copy of the graph, outside the lock, and swap it in: searches
    meanwhile use the current graph plus an exact scan of the pending rows."""
    if index.syncing:
        return
    index.syncing = True
    matrix = index.matrix

    def sync() -> None:
        try:
            while _sync_once(index, matrix, policy):
                pass
        finally:
            index.syncing = False  # also when stopped by the process exiting or a failure

    start_background(sync, "repast-hnsw-sync")


def _sync_once(index: FieldIndex, matrix: VectorMatrix, policy: GraphPolicy) -> bool:
    """One round: the pending rows as of now into a copy, swapped in; whether rows are left."""
    with index.lock:
        graph = index.graph
        if graph is None or index.matrix is not matrix or not index.pending or _EXITING.is_set():
            return False
        taken = dict(index.pending)
        made_from = index.saving()
    work = graph.copy()  # searches keep reading `graph`: copying only reads it too
    rows = np.fromiter(taken, dtype=np.int64, count=len(taken))
    for start in range(0, len(rows), _SYNC_CHUNK):
        if _EXITING.is_set():
            return False
        # The matrix is read without the lock: a row a catch-up rewrites meanwhile has a new stamp
        # and stays pending, so the next round re-inserts it.
        work.update(rows[start:start + _SYNC_CHUNK], matrix.matrix, matrix.alive, threads=1)  # a core for searches
    if work.unsaved >= SAVE_EVERY:
        policy.save(work, *made_from)  # holds every change up to made_from's generation
    with index.lock:
        if index.graph is not graph or index.matrix is not matrix:
            return index.graph is not None and index.matrix is matrix  # rebuilt or reloaded meanwhile
        index.graph = work
        for row, stamp in taken.items():
            if index.pending.get(row) == stamp:
                del index.pending[row]
        if index.pending:
            return True
        keep_graph(index, policy)
        return False
