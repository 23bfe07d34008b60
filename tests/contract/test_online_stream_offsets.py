"""StreamOffsetStore, on every online store that writes: stream offsets are stored with the rows of
the same write and read back; they go with the view's storage (a deleted or rebuilt view starts
without them). repast/streaming/ relies on this for exactly-once in effect."""

from __future__ import annotations

from datetime import timedelta

from repast import Field
from repast.online.base import StreamOffsetStore
from repast.types import Float32
from tests.contract import test_online_store as suite
from tests.contract.test_online_store import T0, Harness, stats_view, table

kind, harness = suite.kind, suite.harness  # the online store suite's fixtures: every store that writes


def _offsets_store(h: Harness) -> StreamOffsetStore:
    assert isinstance(h.store, StreamOffsetStore), f"{type(h.store).__name__} records no stream offsets"
    return h.store


def _rows(n: int) -> list[dict[str, object]]:
    return [{"driver_id": i, "ts": T0 + timedelta(seconds=i), "created": None, "conv_rate": i / 2,
             "trips": i, "city": "x"} for i in range(n)]


def test_rows_and_offsets_written_together_are_both_stored(harness: Harness) -> None:
    view = stats_view()
    harness.apply(view)
    store = _offsets_store(harness)
    assert store.stream_offsets(harness.project, view.name) == {}
    store.write_batch_at_offsets(harness.project, view, table(view, _rows(3)), {("trips", 0): 10, ("trips", 1): 4})
    store.write_batch_at_offsets(harness.project, view, table(view, _rows(2)), {("trips", 1): 9})
    assert store.stream_offsets(harness.project, view.name) == {("trips", 0): 10, ("trips", 1): 9}
    assert [r[2] if r else None for r in harness.read(view, [0, 2, 3], ["conv_rate", "trips"])] == [0, 2, None]


def test_offsets_of_a_batch_without_rows_are_stored(harness: Harness) -> None:
    view = stats_view()
    harness.apply(view)
    store = _offsets_store(harness)
    store.write_batch_at_offsets(harness.project, view, None, {("trips", 0): 7})
    assert store.stream_offsets(harness.project, view.name) == {("trips", 0): 7}


def test_offsets_are_kept_per_view(harness: Harness) -> None:
    first, second = stats_view("first"), stats_view("second")
    harness.apply(first, second)
    store = _offsets_store(harness)
    store.write_batch_at_offsets(harness.project, first, table(first, _rows(1)), {("trips", 0): 5})
    assert store.stream_offsets(harness.project, second.name) == {}


def test_a_deleted_or_rebuilt_view_loses_its_offsets_with_its_rows(harness: Harness) -> None:
    view = stats_view()
    harness.apply(view)
    store = _offsets_store(harness)
    store.write_batch_at_offsets(harness.project, view, table(view, _rows(1)), {("trips", 0): 5})
    rebuilt = stats_view(schema=[Field(name="conv_rate", dtype=Float32), Field(name="trips", dtype=Float32)])
    harness.apply(rebuilt)
    assert store.stream_offsets(harness.project, view.name) == {}
    store.write_batch_at_offsets(harness.project, rebuilt, table(rebuilt, _rows(1)), {("trips", 0): 6})
    harness.store.update(harness.project, [], [rebuilt])
    assert store.stream_offsets(harness.project, view.name) == {}
