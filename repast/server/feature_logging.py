"""Feature logging: what the feature server served for a FeatureService with a LoggingConfig, as
Parquet files under the service's FileLoggingDestination (Feast's feature logging).

The request path only appends (request id, time, service, entity rows, response) to a bounded
queue and never waits: when the queue is full the rows are dropped and counted (`dropped`). One
background thread turns queued responses into Arrow, and every `flush_interval_secs` (or when
many rows are waiting) writes one Parquet file per service, beside its final name first and then
renamed, so a reader never sees a half-written file. Columns per served row: `__request_id`,
`__log_timestamp` (UTC), the join keys and request data as sent, then per feature its value,
`<feature>__status` and `<feature>__timestamp`. `read_feature_log(path)` reads them back.
"""

from __future__ import annotations

import os
import queue
import random
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

if TYPE_CHECKING:
    from repast.config.repo_config import FeatureLoggingConfig
    from repast.definitions.feature_service import FeatureService
    from repast.jobs.online_read import OnlineResponse

_MAX_ROWS_PER_FILE = 50_000


@dataclass
class _Served:
    request_id: str
    logged_at: datetime
    service: str
    path: str
    request: dict[str, list[Any]]
    response: OnlineResponse


class ServedRowLogger:
    """The bounded queue and its writer thread (see the module docstring)."""

    def __init__(self, config: FeatureLoggingConfig, repo_path: str, autostart: bool = True) -> None:
        self.config = config
        self.repo_path = repo_path
        self.autostart = autostart  # False: the writer starts on start() (a test fills the queue first)
        self.dropped = 0  # served rows not logged because the queue was full
        self.written = 0  # served rows written to Parquet
        self._queue: queue.Queue[_Served | None] = queue.Queue(maxsize=config.queue_capacity)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._idle = threading.Event()
        self._idle.set()

    def log(self, service: FeatureService, request: dict[str, list[Any]], response: OnlineResponse) -> None:
        """Queue one served response of `service` (no-op without a logging_config); never blocks."""
        logging = service.logging_config
        if logging is None or not self.config.enabled:
            return
        if logging.sample_rate < 1.0 and random.random() >= logging.sample_rate:
            return
        path = logging.destination.to_dict()["path"]
        path = path if os.path.isabs(path) else os.path.join(self.repo_path, path)
        item = _Served(uuid.uuid4().hex, datetime.now(UTC), service.name, path, request, response)
        if self.autostart:
            self.start()
        try:
            self._idle.clear()
            self._queue.put_nowait(item)
        except queue.Full:
            self.dropped += len(next(iter(request.values()), []))

    def start(self) -> None:
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="repast-feature-log", daemon=True)
                    self._thread.start()

    def _run(self) -> None:
        pending: dict[str, list[pa.Table]] = {}
        rows = 0
        deadline = time.monotonic() + self.config.flush_interval_secs
        while True:
            try:
                item = self._queue.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                item = None
                if self._queue.empty():
                    self._write(pending)
                    pending, rows = {}, 0
                    deadline = time.monotonic() + self.config.flush_interval_secs
                    self._idle.set()
                continue
            if item is None:  # close(): write what is left and stop
                self._write(pending)
                self._idle.set()
                return
            table = served_table(item)
            pending.setdefault(item.path, []).append(table)
            rows += table.num_rows
            if rows >= _MAX_ROWS_PER_FILE or time.monotonic() >= deadline:
                self._write(pending)
                pending, rows = {}, 0
                deadline = time.monotonic() + self.config.flush_interval_secs

    def _write(self, pending: dict[str, list[pa.Table]]) -> None:
        for path, tables in pending.items():
            table = pa.concat_tables(tables, promote_options="permissive")
            os.makedirs(path, exist_ok=True)
            name = f"{datetime.now(UTC):%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:8]}.parquet"
            final = os.path.join(path, name)
            pq.write_table(table, final + ".partial")
            os.replace(final + ".partial", final)
            self.written += table.num_rows

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued response is written (tests, shutdown); True when it was."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._queue.empty() and self._idle.wait(0.05):
                return True
        return False

    def close(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=30)
            self._thread = None


def served_table(item: _Served) -> pa.Table:
    """One served response as log rows: ids, request columns, then value/status/timestamp per feature."""
    values = item.response.to_dict()
    statuses = item.response.statuses()
    stamps = item.response.event_timestamps()
    n = len(next(iter(values.values()), []))
    columns: dict[str, Any] = {"__request_id": pa.array([item.request_id] * n),
                               "__log_timestamp": pa.array([item.logged_at] * n, pa.timestamp("us", tz="UTC"))}
    for name, column in item.request.items():
        if name not in values:
            columns[name] = _column(column)
    for name, column in values.items():
        columns[name] = _column(column)
        if name in item.request:
            continue
        columns[f"{name}__status"] = pa.array([str(s) for s in statuses[name]], pa.string())
        columns[f"{name}__timestamp"] = pa.array(stamps[name], pa.timestamp("us", tz="UTC"))
    return pa.table(columns)


def _column(values: list[Any]) -> pa.Array:
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed or unusual values: keep their text
        return pa.array([None if v is None else str(v) for v in values], pa.string())


def read_feature_log(path: str) -> pa.Table:
    """Every row logged under a FileLoggingDestination path (finished files only)."""
    files = sorted(os.path.join(path, f) for f in os.listdir(path) if f.endswith(".parquet"))
    if not files:
        return pa.table({})
    return pa.concat_tables([pq.read_table(f) for f in files], promote_options="permissive")
