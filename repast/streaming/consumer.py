"""The Kafka consumer behind `repast stream`: one consumer group per project, partitions shared by
every replica, batches written by SourceIngest, then the offsets committed to Kafka.

The stores' own positions (repast/streaming/positions.py) decide where each assigned partition
is read from; Kafka's committed offsets only report progress (lag, tools). `--from` applies to a
partition no store has a position for, and is required when no store has any.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path
from typing import TYPE_CHECKING, Any

from repast.definitions import FeatureView, KafkaSource, RepoContents
from repast.errors import (
    ConfigError,
    FeatureViewNotFound,
    InputError,
    StoreUnavailable,
    TransientError,
    require_module,
)
from repast.online.base import OnlineStore
from repast.streaming.dead_letters import DeadLetterSink
from repast.streaming.ingest import IngestResult, SourceIngest, SourceViews, failpoint
from repast.streaming.messages import Message
from repast.streaming.metrics import StreamMetrics
from repast.types.timestamps import parse_time

if TYPE_CHECKING:
    from repast.offline.base import OfflineEngine

log = logging.getLogger("repast.stream")


@dataclass
class StreamOptions:
    """How `repast stream` runs (the CLI's options)."""

    start: str | None = None  # earliest | latest | a timestamp
    batch_size: int = 10_000
    poll_seconds: float = 0.05
    dead_letters: Path | None = Path("dead_letters.jsonl")  # a JSON-lines file (None: none)
    dead_letter_topic: str | None = None  # a Kafka topic, on the source's cluster (None: none)
    group_id: str | None = None
    kafka_options: dict[str, str] = field(default_factory=dict)
    until_caught_up: bool = False  # stop once every assigned partition is read to its end


def stream_views(contents: RepoContents, names: Sequence[str] | None) -> list[SourceViews]:
    """The registered views fed by Kafka sources (all, or the ones named), grouped by source."""
    kafka = {v.name: v for v in contents.feature_views.values() if isinstance(v.source, KafkaSource)}
    if names:
        unknown = [n for n in names if n not in kafka]
        if unknown:
            raise FeatureViewNotFound(f"--views: {unknown} are not views fed by a Kafka source; those are "
                                      f"{sorted(kafka)}")
        kafka = {n: kafka[n] for n in names}
    if not kafka:
        raise FeatureViewNotFound("no registered feature view reads a KafkaSource; define a StreamFeatureView "
                                  "with a KafkaSource and run `repast apply` (docs/streaming.md)")
    groups: dict[str, list[FeatureView]] = defaultdict(list)
    for view in kafka.values():
        groups[view.source.name].append(view)
    out = [SourceViews(views[0].source, views) for views in groups.values()]  # type: ignore[arg-type]
    topics = [g.source.topic for g in out]
    if len(set(topics)) != len(topics):
        raise ConfigError(f"two Kafka sources read one topic ({topics}); give each topic one KafkaSource")
    if len({g.source.kafka_bootstrap_servers for g in out}) > 1:
        raise ConfigError("the Kafka sources name different kafka_bootstrap_servers; run one `repast stream "
                          "--views ...` per cluster")
    for g in out:
        udf_view = g.udf_view  # refuses views of one source with different udfs, before anything runs
        if udf_view is not None:
            udf_view.udf  # noqa: B018 - with registry.signing_key, an unsigned or altered udf is refused here, unrun
    return out


class StreamConsumer:
    """Consume until stopped (SIGTERM/SIGINT: the batch in hand is finished and committed, then the
    consumer leaves its group)."""

    def __init__(self, project: str, groups: list[SourceViews], online: OnlineStore, repo_path: str,
                 endpoint: str | None, options: StreamOptions, metrics: StreamMetrics) -> None:
        require_module("confluent_kafka", "kafka")
        self.project, self.options, self.metrics = project, options, metrics
        self.ingests = {g.source.topic: SourceIngest(project, g, online, repo_path, endpoint) for g in groups}
        self.servers = groups[0].source.kafka_bootstrap_servers
        self.stopping = threading.Event()
        self.outage_since: float | None = None
        self.at_end: set[tuple[str, int]] = set()
        self.assignment: set[tuple[str, int]] = set()
        if options.start not in (None, "earliest", "latest"):
            _millis(options.start)  # a bad --from fails here, before anything is read
        self.partitions = self._partitions()
        self.dead_letters = DeadLetterSink(options.dead_letters, options.dead_letter_topic,
                                           {**self._client_config(), "logger": _QUIET})
        self.starts = {topic: ingest.load_positions(self.partitions[topic]) for topic, ingest in self.ingests.items()}
        self.first_start = not any(self.starts.values())
        if options.start is None and self.first_start:
            raise InputError("first start: no store has a position for these views yet; say where to begin with "
                             "--from earliest, --from latest or --from TIMESTAMP (docs/streaming.md)")

    def backfill_tiles(self, engine: OfflineEngine, enabled: bool = True) -> list[str]:
        """Before consuming: the cut-over and backfill of aggregated views starting now (their tiles
        from the batch source before T, from the stream at and after T); the views backfilled."""
        done = [name for ingest in self.ingests.values()
                for name in ingest.backfill_tiles(engine, self.options.start, self.first_start, enabled)]
        if done:
            failpoint("after_backfill")
        return done

    def _partitions(self) -> dict[str, list[int]]:
        """Each topic's partitions (the broker's metadata); ConfigError for a topic that is not there."""
        from confluent_kafka import KafkaException
        from confluent_kafka.admin import AdminClient

        admin = AdminClient(self._client_config(), logger=_QUIET)
        try:
            found = admin.list_topics(timeout=30).topics
        except KafkaException as e:
            raise StoreUnavailable(f"Kafka at {self.servers} cannot be reached: {e.args[0].str()}") from None
        wanted = [*self.ingests, *[self.options.dead_letter_topic] * (self.options.dead_letter_topic is not None)]
        missing = [t for t in wanted if t not in found or found[t].error is not None]
        if missing:
            raise ConfigError(f"Kafka at {self.servers} has no topic {missing[0]!r}; create it first")
        return {t: sorted(found[t].partitions) for t in self.ingests}

    # ---- the loop --------------------------------------------------------------------------------
    def run(self) -> None:
        from confluent_kafka import Consumer

        consumer = Consumer(self._config(), logger=_QUIET)
        consumer.subscribe(list(self.ingests), on_assign=self._on_assign, on_revoke=self._on_revoke,
                           on_lost=self._on_revoke)
        log.info("repast stream: consuming %s as group '%s'", ", ".join(self.ingests), self._group())
        try:
            while not self.stopping.is_set():
                messages = consumer.consume(self.options.batch_size, self.options.poll_seconds)
                self._process(consumer, messages)
                if self._caught_up():
                    break
        finally:
            consumer.close()  # commits nothing more (every batch was committed) and leaves the group
            log.info("repast stream: stopped; left group '%s'", self._group())

    def _process(self, consumer: Any, raw: list[Any]) -> None:
        """Write one polled batch, then commit it."""
        from confluent_kafka import KafkaError

        by_topic: dict[str, list[Message]] = defaultdict(list)
        for m in raw:
            error = m.error()
            if error is None:
                by_topic[m.topic()].append(Message(m.topic(), m.partition(), m.offset(), m.value(),
                                                   m.timestamp()[1], m.key()))
                self.at_end.discard((m.topic(), m.partition()))  # an end event after it in this batch re-adds
            elif error.code() == KafkaError._PARTITION_EOF:
                self.at_end.add((m.topic(), m.partition()))
            else:
                self._broker_error(error)
        if not by_topic:
            return
        self._broker_back()
        commits = []
        for topic, messages in by_topic.items():
            self.ingests[topic].high_watermarks = _high_watermarks(consumer, topic, {m.partition for m in messages})
            result = self._ingest(topic, messages)
            if result is None:  # stopped while a store was unavailable: nothing to commit
                return
            now_ms = int(time.time() * 1000)
            self.metrics.observe_latencies(now_ms, [m.timestamp_ms for m in messages[::max(1, len(messages) // 100)]])
            self.metrics.events.labels(topic).inc(result.events)
            self.metrics.dead_letters.labels(topic).inc(len(result.dead_letters))
            self.metrics.late.labels(topic).inc(result.late)
            commits += self._commit_offsets(topic, messages)
        self._commit(consumer, commits)

    def _ingest(self, topic: str, messages: list[Message]) -> IngestResult | None:
        """Write the batch; while a store is unavailable (a timeout, a restart), wait and write it
        again: every store skips what it already holds, so a write that did land is not repeated.
        One log line when a store becomes unavailable, one when it is back. None when stopped."""
        wait, since = 0.5, None
        while True:
            try:
                result = self.ingests[topic].ingest(messages, self.dead_letters)
            except TransientError as e:
                if since is None:
                    since = time.monotonic()
                    log.warning("repast stream: a store is unavailable (%s); retrying the batch", e)
                if self.stopping.wait(wait):
                    return None
                wait = min(wait * 2, 10.0)
                continue
            if since is not None:
                log.warning("repast stream: the stores answer again after %.0f s", time.monotonic() - since)
            return result

    def _commit_offsets(self, topic: str, messages: list[Message]) -> list[Any]:
        from confluent_kafka import TopicPartition

        last: dict[int, int] = {}
        for m in messages:
            last[m.partition] = max(last.get(m.partition, -1), m.offset)
        return [TopicPartition(topic, p, o + 1) for p, o in last.items()]

    def _commit(self, consumer: Any, offsets: list[Any]) -> None:
        """After both writes: Kafka's committed offsets follow the stores' (they report progress)."""
        from confluent_kafka import KafkaException

        try:
            consumer.commit(offsets=offsets, asynchronous=True)
        except KafkaException as e:  # the stores hold the positions; the next commit catches up
            self._broker_error(e.args[0])

    def _caught_up(self) -> bool:
        return self.options.until_caught_up and bool(self.assignment) and self.assignment <= self.at_end

    # ---- assignment ------------------------------------------------------------------------------
    def _on_assign(self, consumer: Any, partitions: list[Any]) -> None:
        """Read each assigned partition from the stores' position (reloaded: another replica may have
        written it since), else from --from."""
        from confluent_kafka import OFFSET_BEGINNING, OFFSET_END

        starts = {topic: self.ingests[topic].load_positions([tp.partition for tp in partitions if tp.topic == topic])
                  for topic in {tp.topic for tp in partitions}}
        by_time = []
        for tp in partitions:
            if tp.partition in starts[tp.topic]:
                tp.offset = starts[tp.topic][tp.partition]
            elif self.options.start == "latest":
                tp.offset = OFFSET_END
            elif self.options.start in (None, "earliest"):
                tp.offset = OFFSET_BEGINNING
            else:
                tp.offset = _millis(self.options.start)
                by_time.append(tp)
        if by_time:  # a timestamp: the first offset at or after it (the end when there is none)
            found = {(f.topic, f.partition): f.offset for f in consumer.offsets_for_times(by_time, timeout=30)}
            for tp in by_time:
                offset = found.get((tp.topic, tp.partition), -1)
                tp.offset = offset if offset >= 0 else OFFSET_END
        consumer.assign(partitions)
        self.assignment = {(tp.topic, tp.partition) for tp in partitions}
        self.metrics.assigned = set(self.assignment)
        log.info("repast stream: assigned %s",
                 ", ".join(f"{tp.topic}[{tp.partition}]@{tp.offset}" for tp in partitions))

    def _on_revoke(self, consumer: Any, partitions: list[Any]) -> None:
        self.assignment -= {(tp.topic, tp.partition) for tp in partitions}
        self.metrics.assigned = set(self.assignment)
        for tp in partitions:
            self.metrics.lags.pop((tp.topic, tp.partition), None)

    # ---- broker outages, stats, dead letters ---------------------------------------------------
    def _broker_error(self, error: Any) -> None:
        if self.outage_since is None:
            self.outage_since = time.monotonic()
            log.warning("repast stream: Kafka at %s is unreachable (%s); waiting for it, the position is kept",
                        self.servers, error.str() if hasattr(error, "str") else error)

    def _broker_back(self) -> None:
        if self.outage_since is not None:
            log.warning("repast stream: Kafka at %s is back after %.0f s; resuming", self.servers,
                        time.monotonic() - self.outage_since)
            self.outage_since = None

    def _stats(self, text: str) -> None:
        """librdkafka's statistics (once a second): each assigned partition's lag."""
        stats = json.loads(text)
        if self.outage_since is not None and any(b.get("state") == "UP" for b in stats.get("brokers", {}).values()
                                                 if b.get("nodeid", -1) >= 0):
            self._broker_back()
        for topic, t in stats.get("topics", {}).items():
            for p, part in t.get("partitions", {}).items():
                if int(p) >= 0 and (topic, int(p)) in self.assignment and part.get("consumer_lag", -1) >= 0:
                    self.metrics.set_lag(topic, int(p), int(part["consumer_lag"]))

    def _client_config(self) -> dict[str, Any]:
        """The connection settings of an admin client or producer (--kafka-option, group settings aside)."""
        return {"bootstrap.servers": self.servers, **{k: v for k, v in self.options.kafka_options.items()
                                                      if not k.startswith(("session.", "group."))}}

    def _group(self) -> str:
        return self.options.group_id or f"repast-{self.project}"

    def _config(self) -> dict[str, Any]:
        return {"bootstrap.servers": self.servers, "group.id": self._group(), "enable.auto.commit": False,
                "auto.offset.reset": "earliest", "enable.partition.eof": True,
                "statistics.interval.ms": 1000, "stats_cb": self._stats, "error_cb": self._broker_error,
                "fetch.wait.max.ms": 50, **self.options.kafka_options}

    def stop(self, *_: Any) -> None:
        """Finish the batch in hand, commit, leave the group (SIGTERM, SIGINT)."""
        self.stopping.set()


def install_signal_handlers(consumer: StreamConsumer) -> None:
    signal.signal(signal.SIGTERM, consumer.stop)
    signal.signal(signal.SIGINT, consumer.stop)


def _high_watermarks(consumer: Any, topic: str, partitions: set[int]) -> dict[int, int]:
    """Each partition's high watermark from the last fetch (no request to the broker)."""
    from confluent_kafka import TopicPartition

    found = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), cached=True) for p in partitions}
    return {p: hw[1] for p, hw in found.items() if hw is not None and hw[1] >= 0}


def _millis(text: str) -> int:
    when = parse_time(text, "--from")
    return int(when.astimezone(UTC).timestamp() * 1000)


class _Quiet(logging.Logger):
    """librdkafka's own log lines (a line per failed connection attempt) are not shown: the
    consumer says once per outage that the broker is gone, and once that it is back."""

    def __init__(self) -> None:
        super().__init__("repast.stream.librdkafka", logging.CRITICAL)


_QUIET = _Quiet()
