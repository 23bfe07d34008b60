"""The cut-over time of an aggregated stream view's first start (repast/streaming/cutover.py): the
--from time, the start time for --from latest, else just past the batch source's newest event;
none without batch data."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from repast import FileSource
from repast.jobs.aggregated_read import micros
from repast.streaming.cutover import at_or_after, choose_cutover

NEWEST = datetime(2025, 3, 1, 12, 0, 0, 250, tzinfo=UTC)


def _source(tmp_path: Path, with_data: bool) -> FileSource:
    directory = tmp_path / "trips"
    directory.mkdir()
    if with_data:
        times = [datetime(2025, 1, 1, tzinfo=UTC), NEWEST, datetime(2025, 2, 1, tzinfo=UTC)]
        table = pa.table({"driver_id": [1, 2, 3], "event_timestamp": pa.array(times, pa.timestamp("us", "UTC"))})
        pq.write_table(table, directory / "history.parquet")
    return FileSource(name="trips", path=str(directory), timestamp_field="event_timestamp")


def test_the_cutover_follows_from_or_the_batch_datas_newest_event(tmp_path: Path) -> None:
    source = _source(tmp_path, with_data=True)
    assert choose_cutover("2025-02-10T00:00:00", True, source, str(tmp_path), None) == \
        micros(datetime(2025, 2, 10, tzinfo=UTC))
    before = time.time_ns() // 1000
    assert before <= (choose_cutover("latest", True, source, str(tmp_path), None) or 0) <= time.time_ns() // 1000
    assert choose_cutover("earliest", True, source, str(tmp_path), None) == micros(NEWEST) + 1
    # A view joining a stream other views read starts from the partitions' beginning: as earliest.
    assert choose_cutover("latest", False, source, str(tmp_path), None) == micros(NEWEST) + 1
    assert choose_cutover(None, False, source, str(tmp_path), None) == micros(NEWEST) + 1


def test_without_batch_data_there_is_no_cutover(tmp_path: Path) -> None:
    source = _source(tmp_path, with_data=False)
    for start in ("earliest", "latest", "2025-02-10T00:00:00"):
        assert choose_cutover(start, True, source, str(tmp_path), None) is None


def test_only_events_at_or_after_the_cutover_go_to_the_tiles() -> None:
    t = micros(NEWEST)
    rows = pa.table({"event_timestamp": pa.array([t - 1, t, t + 1, None], pa.timestamp("us", "UTC")),
                     "trips": [1, 2, 3, 4]})
    assert at_or_after(rows, "event_timestamp", t).column("trips").to_pylist() == [2, 3]
    assert at_or_after(rows, "event_timestamp", None).num_rows == 4
    naive = rows.cast(pa.schema([("event_timestamp", pa.timestamp("us")), ("trips", pa.int64())]))  # no zone: UTC
    assert at_or_after(naive, "event_timestamp", t).column("trips").to_pylist() == [2, 3]
