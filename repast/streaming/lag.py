"""Stream lag where the web UI can read it: with each batch's online write of a (non-aggregated)
view, the consumer records, per partition of the batch, the partition's high watermark as it last
saw it and when, beside the view's positions and in the same transaction (StreamOffsetStore). So
`high watermark - position` is the lag at that moment, and its age says how old that moment is: a
consumer that stopped shows an old, growing age rather than a lag of 0.

They are stored as two more (topic, partition) entries per partition, under the topic's name with a
`#` suffix: `#` is not allowed in Kafka topic names, and the consumer's positions are read for its
topic's own name only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

HIGH_WATERMARK = "#high_watermark"
SEEN_AT = "#seen_at_ms"


def lag_marks(topic: str, high_watermarks: Mapping[int, int], at_ms: int) -> dict[tuple[str, int], int]:
    """The entries recording each partition's high watermark seen at `at_ms` (epoch milliseconds)."""
    marks = {(topic + HIGH_WATERMARK, p): hw for p, hw in high_watermarks.items()}
    return {**marks, **{(topic + SEEN_AT, p): at_ms for p in high_watermarks}}


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
