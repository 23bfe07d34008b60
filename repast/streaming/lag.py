"""Stream lag where the web UI can read it: with each batch's online write of a view, the consumer
records, per partition of the batch, the partition's high watermark as it last saw it and when,
beside the view's positions and in the same transaction (StreamOffsetStore; for a view with
aggregations, the tiles' marks, see below). So `high watermark - position` is the lag at that
moment, and its age says how old that moment is: a consumer that stopped shows an old, growing age
rather than a lag of 0.

They are stored as two more (topic, partition) entries per partition, under the topic's name with a
`#` suffix: `#` is not allowed in Kafka topic names, and the consumer's positions are read for its
topic's own name only.

A view with aggregations keeps its positions as tile marks `kafka:<topic>:<partition>`; the same
entries are marks of that form too (`kafka:<topic>#high_watermark:<partition>`), written with the
tiles. Marks are read by name, so one more entry, `<topic>#partitions` (partition 0), says how many
partitions the writing consumer knew of: which names to read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from repast.definitions import FeatureView, KafkaSource
from repast.errors import ConfigError
from repast.online.base import StreamOffsetStore, tile_storage
from repast.streaming.positions import tile_mark

HIGH_WATERMARK = "#high_watermark"
SEEN_AT = "#seen_at_ms"
PARTITIONS = "#partitions"


def lag_marks(topic: str, high_watermarks: Mapping[int, int], at_ms: int,
              partitions: int | None = None) -> dict[tuple[str, int], int]:
    """The entries recording each partition's high watermark seen at `at_ms` (epoch milliseconds);
    with `partitions` (a view whose entries are tile marks), the topic's partition count too."""
    marks = {(topic + HIGH_WATERMARK, p): hw for p, hw in high_watermarks.items()}
    count = {(topic + PARTITIONS, 0): partitions} if partitions is not None else {}
    return {**marks, **{(topic + SEEN_AT, p): at_ms for p in high_watermarks}, **count}


def recorded_lag(store: Any, project: str, view: FeatureView) -> list[PartitionLag]:
    """The view's recorded lag, from its stream offsets or (with aggregations) its tile marks.
    ConfigError when the store keeps neither; StoreUnavailable when it is down."""
    if not view.aggregations:
        if not isinstance(store, StreamOffsetStore):
            raise ConfigError(f"online store {type(store).__name__} keeps no stream offsets")
        return read_lag(store.stream_offsets(project, view.name))
    assert isinstance(view.source, KafkaSource)
    tiles, topic = tile_storage(store, view), view.source.topic
    counted = tiles.read_marks(project, view, [tile_mark(topic + PARTITIONS, 0)])
    entries = {tile_mark(name, p): (name, p) for name in (topic, topic + HIGH_WATERMARK, topic + SEEN_AT)
               for p in range(int(next(iter(counted.values()), 0)))}
    found = tiles.read_marks(project, view, list(entries)) if entries else {}
    return read_lag({entries[name]: int(value) for name, value in found.items()})


@dataclass(frozen=True)
class PartitionLag:
    topic: str
    partition: int
    position: int  # the next offset the view needs
    high_watermark: int  # one past the partition's last message, as last seen
    seen_at: datetime

    @property
    def lag(self) -> int:
        return max(0, self.high_watermark - self.position)


def read_lag(offsets: Mapping[tuple[str, int], int]) -> list[PartitionLag]:
    """Each partition's recorded lag, from a view's stored offsets (partitions with no record left out)."""
    out = []
    for (name, partition), high in sorted(offsets.items()):
        if not name.endswith(HIGH_WATERMARK):
            continue
        topic = name.removesuffix(HIGH_WATERMARK)
        position, seen = offsets.get((topic, partition)), offsets.get((topic + SEEN_AT, partition))
        if position is not None and seen is not None:
            out.append(PartitionLag(topic, partition, position, high, datetime.fromtimestamp(seen / 1000, UTC)))
    return out
