"""Tile materialization regroups key-ordered event batches into tables of whole keys
(repast.jobs.tile_writes.key_groups): a tile must see every event of its key, or replacing it loses some."""

from __future__ import annotations

import pyarrow as pa

from repast.jobs.tile_writes import key_groups


def batches(keys: list[tuple[int | None, str]], size: int) -> list[pa.RecordBatch]:
    table = pa.table({"a": [k[0] for k in keys], "b": [k[1] for k in keys], "row": list(range(len(keys)))})
    return table.to_batches(size)


def test_every_group_holds_whole_keys_and_every_row_once() -> None:
    keys = sorted((i // 7, "x") for i in range(100))  # 15 keys of up to 7 rows, in batches of 3
    groups = list(key_groups(batches(keys, 3), ["a", "b"], group_rows=10))
    seen = [tuple(k) for g in groups for k in zip(g.column("a").to_pylist(), g.column("b").to_pylist(), strict=True)]
    assert seen == keys and sorted(r for g in groups for r in g.column("row").to_pylist()) == list(range(100))
    owners = [set(g.column("a").to_pylist()) for g in groups]
    assert all(not (x & y) for i, x in enumerate(owners) for y in owners[i + 1:])  # no key split between groups
    assert len(groups) > 3


def test_a_key_larger_than_a_group_stays_in_one_group() -> None:
    keys = [(1, "x")] * 2 + [(2, "x")] * 40 + [(3, "x")] * 2
    groups = list(key_groups(batches(keys, 4), ["a", "b"], group_rows=8))
    assert sum(g.num_rows for g in groups) == 44
    assert [g.column("a").to_pylist().count(2) for g in groups if 2 in g.column("a").to_pylist()] == [40]


def test_keys_of_several_columns_split_only_where_the_whole_key_changes() -> None:
    keys = [(1, "a")] * 3 + [(1, "b")] * 3 + [(2, "a")] * 3
    groups = list(key_groups(batches(keys, 2), ["a", "b"], group_rows=4))
    for g in groups:
        rows = list(zip(g.column("a").to_pylist(), g.column("b").to_pylist(), strict=True))
        for key in set(rows):
            assert rows.count(key) == 3


def test_null_keys_at_the_end_are_kept_together() -> None:
    keys = [(1, "x")] * 3 + [(None, "x")] * 5
    groups = list(key_groups(batches(keys, 2), ["a", "b"], group_rows=4))
    assert sum(g.num_rows for g in groups) == 8
    assert sum(g.column("a").null_count == 5 for g in groups) == 1
