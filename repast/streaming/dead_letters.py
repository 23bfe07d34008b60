"""Where refused messages go: a JSON-lines file, a Kafka topic, or both (docs/streaming.md).

They are handed over before the batch's writes move any store's position, and a batch is only
written once they are durable (the file synced, the topic's broker acknowledging every one), so a
refused message is never lost; a replay after a crash may hand one over again (at least once).

On the topic each refused message keeps its key and value, byte for byte, so it can be produced
back to its source once fixed; why it was refused and where it came from are headers:
`repast.reason`, `repast.topic`, `repast.partition`, `repast.offset`, `repast.timestamp_ms`.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from repast.errors import StoreUnavailable
from repast.streaming.messages import DeadLetter

log = logging.getLogger("repast.stream")
HEADER_PREFIX = "repast."


class DeadLetterSink:
    """Writes refused messages to `path` (JSON lines) and/or produces them to `topic`."""

    def __init__(self, path: Path | None, topic: str | None, producer_config: dict[str, Any]) -> None:
        self.path, self.topic = path, topic
        self._producer: Any = None
        if topic is not None:
            from confluent_kafka import Producer

            self._producer = Producer({"acks": "all", "linger.ms": 5, **producer_config})

    def __call__(self, dead: list[DeadLetter]) -> None:
        """Hand `dead` over durably (raises StoreUnavailable, a retryable error, when the topic's
        broker does not acknowledge them all)."""
        if not dead:
            return
        if self.path is not None:
            self._append(dead, self.path)
        if self.topic is not None:
            self._produce(dead, self.topic)
        where = " and ".join([str(self.path)] * (self.path is not None) + [f"topic {self.topic}"] * (
            self.topic is not None))
        log.warning("repast stream: %d message(s) refused to %s (first: %s)", len(dead), where, dead[0].reason)

    def _append(self, dead: list[DeadLetter], path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as out:
            for letter in dead:
                out.write(json.dumps(letter.to_dict()) + "\n")
            out.flush()
            os.fsync(out.fileno())

    def _produce(self, dead: list[DeadLetter], topic: str) -> None:
        failed: list[str] = []

        def delivered(error: Any, _: Any) -> None:
            if error is not None:
                failed.append(error.str())

        for letter in dead:
            m = letter.message
            headers = [(HEADER_PREFIX + "reason", letter.reason.encode()), (HEADER_PREFIX + "topic", m.topic.encode()),
                       (HEADER_PREFIX + "partition", str(m.partition).encode()),
                       (HEADER_PREFIX + "offset", str(m.offset).encode()),
                       (HEADER_PREFIX + "timestamp_ms", str(m.timestamp_ms).encode())]
            self._producer.produce(topic, value=m.value, key=m.key, headers=headers, on_delivery=delivered)
        left = self._producer.flush(30)
        if left or failed:
            raise StoreUnavailable(f"dead-letter topic {topic!r}: {left + len(failed)} of {len(dead)} refused "
                                   f"message(s) not acknowledged ({failed[0] if failed else 'timed out'})")
