"""Where the consumer stands: per (topic, partition), the next offset each store still needs.

Two records, each written with the data it describes, so neither can claim data that is not there:
- online, per view: the offsets stored by the online store in the transaction of the rows
  (StreamOffsetStore);
- offline, per batch source: the part files themselves, named by topic, partition and offset
  range (`part-kafka-<topic>-<partition>-<first>-<last>`), so the next offset is one past the
  highest `last` found. A part is renamed into place whole, so a part that exists is complete. A
  range whose messages gave no rows (all dead letters) leaves an empty marker of the same name
  with a `_` in front, which readers of the source skip (names starting with `_` are not data).

A partition is read from the lowest of these (no store misses an event; a store with no position
there needs it from the beginning) and each store is given only the events at or past its own
position (no store gets one twice).
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Iterable

import pyarrow.fs as pafs

from repast.definitions import FileSource
from repast.errors import DefinitionError
from repast.offline.file_sources import list_source_files, parts_directory, source_filesystem

_PART = re.compile(r"^part-kafka-(?P<topic>.+)-(?P<partition>\d{5})-(?P<first>\d{20})-(?P<last>\d{20})\.")


def part_name(topic: str, partition: int, first: int, last: int) -> str:
    """The name (without extension) of the part holding offsets first..last of one partition."""
    return f"part-kafka-{topic}-{partition:05d}-{first:020d}-{last:020d}"


def tile_mark(topic: str, partition: int) -> str:
    """The tile mark holding a view with aggregations' position in a partition (and its lag entries)."""
    return f"kafka:{topic}:{partition}"


def offline_positions(source: FileSource, repo_path: str, endpoint: str | None, topic: str) -> dict[int, int]:
    """Per partition of `topic`, one past the last offset the batch source's stream parts (and
    markers) hold."""
    fs, _ = source_filesystem(source, repo_path, endpoint)
    directory = parts_directory(source, repo_path, endpoint)
    found = fs.get_file_info(pafs.FileSelector(directory, allow_not_found=True))
    return next_offsets(posixpath.basename(f.path).removeprefix("_") for f in found
                        if f.type == pafs.FileType.File).get(topic, {})


def write_marker(source: FileSource, repo_path: str, endpoint: str | None, name: str) -> None:
    """Record a range that gave no rows: an empty `_<name>` file beside the parts (durable)."""
    fs, _ = source_filesystem(source, repo_path, endpoint)
    directory = parts_directory(source, repo_path, endpoint)
    fs.create_dir(directory, recursive=True)
    path = posixpath.join(directory, f"_{name}.{source.file_format}")
    with fs.open_output_stream(path):
        pass
    if isinstance(fs, pafs.LocalFileSystem):
        for synced in (path, directory):
            fd = os.open(synced, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


def has_files(source: FileSource, repo_path: str, endpoint: str | None) -> bool:
    try:
        return bool(list_source_files(source, repo_path, endpoint))
    except DefinitionError:
        return False


def next_offsets(names: Iterable[str]) -> dict[str, dict[int, int]]:
    """topic -> partition -> one past the highest last offset among the part names."""
    out: dict[str, dict[int, int]] = {}
    for name in names:
        found = _PART.match(name)
        if found:
            partitions = out.setdefault(found["topic"], {})
            partition = int(found["partition"])
            partitions[partition] = max(partitions.get(partition, 0), int(found["last"]) + 1)
    return out


def start_offset(positions: Iterable[int | None]) -> int | None:
    """Where to read a partition from: the lowest position of its stores, a store without one
    (nothing written there yet: a view added later, a first start killed between two stores'
    writes) counting as the partition's beginning; None when no store has a position."""
    found = list(positions)
    if all(p is None for p in found):
        return None
    return min(p if p is not None else 0 for p in found)
