"""The consumer's Prometheus metrics and its small HTTP port: GET /metrics, GET /ready.

/ready answers 200 once the consumer has its partitions and every one's lag (messages not yet
written) is at most the threshold, else 503 with the reason: a Kubernetes readiness probe then
says whether the online store is fresh.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0, 600.0)
SAMPLES_PER_BATCH = 100  # latencies observed per batch: evenly spaced events, not every one


class StreamMetrics:
    """Counters and gauges of one consumer process, in their own registry."""

    def __init__(self, ready_lag: int) -> None:
        self.registry = CollectorRegistry()
        self.events = Counter("repast_stream_events", "Events written (online and offline).", ["topic"],
                              registry=self.registry)
        self.dead_letters = Counter("repast_stream_dead_letters", "Messages refused (dead letters).",
                                    ["topic"], registry=self.registry)
        self.late = Counter("repast_stream_late_events",
                            "Events older than the newest seen minus watermark_delay_threshold.", ["topic"],
                            registry=self.registry)
        self.lag = Gauge("repast_stream_consumer_lag", "Messages in the partition not yet written.",
                         ["topic", "partition"], registry=self.registry)
        self.latency = Histogram("repast_stream_event_to_online_seconds",
                                 "From the broker's timestamp of a message to its rows being readable online "
                                 "(sampled).", buckets=LATENCY_BUCKETS, registry=self.registry)
        self.ready_lag = ready_lag
        self.lags: dict[tuple[str, int], int] = {}
        self.assigned: set[tuple[str, int]] = set()  # the partitions this process reads

    def set_lag(self, topic: str, partition: int, lag: int) -> None:
        self.lags[(topic, partition)] = lag
        self.lag.labels(topic, str(partition)).set(lag)

    def observe_latencies(self, now_ms: int, broker_times_ms: list[int]) -> None:
        if not broker_times_ms:
            return
        step = max(1, len(broker_times_ms) // SAMPLES_PER_BATCH)
        for t in broker_times_ms[::step]:
            self.latency.observe(max(0.0, (now_ms - t) / 1000))

    def readiness(self) -> tuple[bool, str]:
        if not self.assigned:
            return False, "no partitions assigned yet"
        unknown = sorted(self.assigned - set(self.lags))
        if unknown:
            return False, f"lag of {unknown[0][0]}[{unknown[0][1]}] not known yet"
        behind = {k: v for k, v in self.lags.items() if k in self.assigned and v > self.ready_lag}
        if behind:
            (topic, partition), lag = max(behind.items(), key=lambda kv: kv[1])
            return False, f"partition {topic}[{partition}] is {lag} messages behind (ready at <= {self.ready_lag})"
        return True, "ready"


def serve_metrics(metrics: StreamMetrics, host: str, port: int) -> ThreadingHTTPServer:
    """Start the HTTP port in a daemon thread; returns the server (its `server_port` is the port)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
            if self.path == "/metrics":
                self._answer(200, CONTENT_TYPE_LATEST, generate_latest(metrics.registry))
            elif self.path == "/ready":
                ok, reason = metrics.readiness()
                self._answer(200 if ok else 503, "text/plain", reason.encode() + b"\n")
            else:
                self._answer(404, "text/plain", b"not found: GET /metrics or /ready\n")

        def _answer(self, status: int, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's signature
            return  # scrapes every few seconds would flood the log

    server = ThreadingHTTPServer((host, port), Handler)
    threading.Thread(target=server.serve_forever, name="repast-stream-metrics", daemon=True).start()
    return server
