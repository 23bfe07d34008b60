"""Scanning a FileSource on object storage through pyarrow datasets, for DuckDB to read as Arrow.

DuckDB's own S3/GCS support is an extension downloaded at run time, which clusters without
internet cannot rely on; pyarrow.fs ships with pyarrow. A scan streams record batches file by
file in the source's order, each row tagged with its place in that order (file index * 2^40 +
row number among the file's rows read), which the tie rule needs. A time window given to the scan
reaches pyarrow as a filter on the timestamp field: Parquet row groups whose statistics lie outside
it are never downloaded (nor hive partitions on that field).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs

from repast.types.timestamps import as_utc

if TYPE_CHECKING:
    from repast.definitions import FileSource

PLACE_COLUMN = "__repast_place"
FILE_SHIFT = 2**40


@dataclass
class ScanStats:
    """What the last scans read, for benchmarks: files and row groups kept after pruning."""

    files: int = 0
    row_groups_total: int = 0
    row_groups_read: int = 0
    rows: int = 0
    history: list[tuple[int, int, int]] = field(default_factory=list)


STATS = ScanStats()


def remote_dataset(source: FileSource, fs: pafs.FileSystem, files: list[str], directory: str | None) -> ds.Dataset:
    """The source's files as one dataset (hive partition columns of a directory source included)."""
    fmt: ds.FileFormat = ds.CsvFileFormat() if source.file_format == "csv" else ds.ParquetFileFormat()
    if directory is None:
        return ds.dataset(files, filesystem=fs, format=fmt)
    return ds.dataset(files, filesystem=fs, format=fmt, partitioning="hive", partition_base_dir=directory)


def window_filter(dataset: ds.Dataset, timestamp_field: str,
                  window: tuple[datetime, datetime] | None) -> ds.Expression | None:
    """start <= ts < end as a dataset filter, typed like the column; None when it cannot be pushed."""
    if window is None or timestamp_field not in dataset.schema.names:
        return None
    column_type = dataset.schema.field(timestamp_field).type
    if not pa.types.is_timestamp(column_type):
        return None
    # A zone-less column holds UTC wall times; compare with zone-less UTC values.
    start, end = (as_utc(t) if column_type.tz else as_utc(t).replace(tzinfo=None) for t in window)
    col = ds.field(timestamp_field)
    return (col >= pa.scalar(start, type=column_type)) & (col < pa.scalar(end, type=column_type))


def scan_batches(dataset: ds.Dataset, files: list[str], expr: ds.Expression | None) -> Iterator[pa.RecordBatch]:
    """Every row (matching `expr`) in source order, with PLACE_COLUMN appended."""
    index = {path: i for i, path in enumerate(files)}
    schema = dataset.schema
    for fragment in dataset.get_fragments(filter=expr):
        place = index[fragment.path] * FILE_SHIFT
        _count_row_groups(fragment, expr)
        for batch in fragment.to_batches(schema=schema, filter=expr, use_threads=True):
            n = batch.num_rows
            places = pa.array(np.arange(place, place + n, dtype=np.int64))
            place += n
            STATS.rows += n
            yield pa.RecordBatch.from_arrays([*batch.columns, places], names=[*schema.names, PLACE_COLUMN])


def _count_row_groups(fragment: ds.Fragment, expr: ds.Expression | None) -> None:
    STATS.files += 1
    if not isinstance(fragment, ds.ParquetFileFragment):
        return
    STATS.row_groups_total += fragment.num_row_groups
    kept = fragment.split_by_row_group(filter=expr) if expr is not None else None
    STATS.row_groups_read += len(kept) if kept is not None else fragment.num_row_groups


def scan_reader(dataset: ds.Dataset, files: list[str], expr: ds.Expression | None) -> pa.RecordBatchReader:
    schema = dataset.schema.append(pa.field(PLACE_COLUMN, pa.int64()))
    return pa.RecordBatchReader.from_batches(schema, scan_batches(dataset, files, expr))
