"""Where the consumer reads a partition from, given each store's position there."""

from __future__ import annotations

from repast.streaming.positions import next_offsets, part_name, start_offset


def test_a_store_without_a_position_reads_the_partition_from_its_beginning() -> None:
    assert start_offset([None, None]) is None  # no store has written: --from decides
    assert start_offset([40, None]) == 0  # e.g. killed between two views' writes: the second needs 0..39
    assert start_offset([40, 25]) == 25


def test_the_offline_position_is_one_past_the_last_offset_in_the_part_names() -> None:
    names = [part_name("trips.v1-eu", 0, 0, 39) + ".parquet", part_name("trips.v1-eu", 0, 40, 99) + ".parquet",
             part_name("trips.v1-eu", 3, 7, 7) + ".parquet", "part-00000000001733-abc.parquet"]
    assert next_offsets(names) == {"trips.v1-eu": {0: 100, 3: 8}}
