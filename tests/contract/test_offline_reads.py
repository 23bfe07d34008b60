"""Contract: the reads materialization builds on, and offline push, identical on every engine."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest

from repast.errors import InputError
from repast.types import Int64
from tests.contract.offline_harness import OfflineHarness, offline, view  # noqa: F401

BASE = datetime(2024, 3, 1, tzinfo=UTC)
UTC_US = pa.timestamp("us", tz="UTC")


def at(minutes: float) -> datetime:
    return BASE + timedelta(minutes=minutes)


def rows(data: list[tuple[int, float, float, int]]) -> pa.Table:
    return pa.table({"id": pa.array([r[0] for r in data], pa.int64()),
                     "ts": pa.array([at(r[1]) for r in data], UTC_US),
                     "created": pa.array([at(r[2]) for r in data], UTC_US),
                     "raw": pa.array([r[3] for r in data], pa.int64())})


def make_view(offline: OfflineHarness, data: list[tuple[int, float, float, int]]):  # type: ignore[no-untyped-def] # noqa: F811
    source = offline.source("events", rows(data), timestamp_field="ts", created="created",
                            field_mapping={"raw": "amount"})
    return view("events", source, ["id"], {"amount": Int64})


def test_read_latest_gives_one_latest_row_per_key_in_half_open_range(offline: OfflineHarness) -> None:  # noqa: F811
    fv = make_view(offline, [(1, 0, 0, 10), (1, 5, 6, 11), (1, 5, 9, 12), (1, 10, 10, 13), (2, 2, 2, 20)])
    table = pa.Table.from_batches(list(offline.engine.read_latest(fv, at(0), at(10))))
    assert table.column_names == ["id", "amount", "event_timestamp", "created_timestamp"]
    got = sorted(zip(table.column("id").to_pylist(), table.column("amount").to_pylist(), strict=True))
    assert got == [(1, 12), (2, 20)]
    assert table.schema.field("event_timestamp").type == UTC_US


def test_read_latest_streams_record_batches(offline: OfflineHarness) -> None:  # noqa: F811
    fv = make_view(offline, [(i, 1, 1, i) for i in range(50)])
    batches = list(offline.engine.read_latest(fv, at(0), at(10), batch_size=8))
    assert all(isinstance(b, pa.RecordBatch) for b in batches)
    assert sum(b.num_rows for b in batches) == 50


def test_read_latest_comes_in_join_key_order(offline: OfflineHarness) -> None:  # noqa: F811
    ids = [37, 5, 901, 12, 640, 3, 88, 250, 1, 77] * 3
    fv = make_view(offline, [(k, i % 7, i % 7, k) for i, k in enumerate(ids)])
    batches = list(offline.engine.read_latest(fv, at(0), at(10), batch_size=4))
    assert [k for b in batches for k in b.column(0).to_pylist()] == sorted(set(ids))


def test_read_range_gives_every_row_in_half_open_range(offline: OfflineHarness) -> None:  # noqa: F811
    fv = make_view(offline, [(1, 0, 0, 10), (1, 5, 6, 11), (1, 10, 10, 13)])
    table = offline.engine.read_range(fv, at(0), at(10))
    assert sorted(table.column("amount").to_pylist()) == [10, 11]
    assert table.schema.field("created_timestamp").type == UTC_US


def test_read_range_by_key_streams_every_row_in_range_with_each_key_together(
        offline: OfflineHarness) -> None:  # noqa: F811
    ids = [37, 5, 901, 12, 640, 3, 88, 250, 1, 77] * 3
    fv = make_view(offline, [(k, i % 12, i % 12, i) for i, k in enumerate(ids)])
    batches = list(offline.engine.read_range_by_key(fv, at(0), at(10), batch_size=4))
    assert all(isinstance(b, pa.RecordBatch) and b.num_rows <= 4 for b in batches)
    keys = [k for b in batches for k in b.column("id").to_pylist()]
    assert keys == sorted(keys)  # what materialization of tiles relies on: a key's rows consecutive
    got = sorted(a for b in batches for a in b.column("amount").to_pylist())
    assert got == [i for i in range(len(ids)) if i % 12 < 10]
    assert batches[0].schema.field("event_timestamp").type == UTC_US


def test_source_without_created_column_reads_null_created(offline: OfflineHarness) -> None:  # noqa: F811
    source = offline.source("plain", rows([(1, 0, 0, 1)]).drop_columns(["created"]), timestamp_field="ts")
    fv = view("plain", source, ["id"], {"raw": Int64})
    table = offline.engine.read_range(fv, at(0), at(1))
    assert table.column("created_timestamp").to_pylist() == [None]


def test_written_rows_are_read_back(offline: OfflineHarness) -> None:  # noqa: F811
    fv = make_view(offline, [(1, 0, 0, 10)])
    offline.engine.write_rows(fv.batch_source, rows([(1, 3, 3, 30), (2, 4, 4, 40)]))
    table = offline.engine.read_range(fv, at(0), at(10))
    assert sorted(table.column("amount").to_pylist()) == [10, 30, 40]


def test_written_rows_must_have_the_source_columns(offline: OfflineHarness) -> None:  # noqa: F811
    fv = make_view(offline, [(1, 0, 0, 10)])
    with pytest.raises(InputError, match="raw"):
        offline.engine.write_rows(fv.batch_source, rows([(1, 3, 3, 30)]).drop_columns(["raw"]))
