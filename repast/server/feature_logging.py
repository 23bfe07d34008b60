"""Feature logging: what the feature server served for a FeatureService with a LoggingConfig, as
Parquet files under the service's FileLoggingDestination (Feast's feature logging).

The request path only appends (request id, time, service, entity rows, response) to a bounded
buffer and never waits or takes a lock: when `queue_capacity` responses wait, the rows are dropped
and counted (`dropped`). One background thread wakes every `flush_interval_secs` (or when half the
buffer is full), turns the buffered responses into Arrow a batch at a time (one Arrow array per
column per batch: per response it cost more CPU than serving it) and writes one Parquet file per
service, beside its final name first and then renamed, so a reader never sees a half-written file.
Columns per served row: `__request_id`, `__log_timestamp` (UTC), the join keys and request data as
sent, then per feature its value, `<feature>__status` and `<feature>__timestamp`.
`read_feature_log(path)` reads them back.
"""

from __future__ import annotations

import itertools
import os
import random
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

if TYPE_CHECKING:
    from repast.config.repo_config import FeatureLoggingConfig
    from repast.definitions.feature_service import FeatureService
    from repast.jobs.online_read import OnlineResponse

_MAX_ROWS_PER_FILE = 50_000
_EPOCH_ISO = "1970-01-01T00:00:00Z"  # the event time an answer gives a value without one


@dataclass
class _Served:
    request_id: str
    logged_at: datetime
    service: str
    path: str
    request: dict[str, list[Any]]
    response: OnlineResponse | bytes  # the response, or the JSON answer served (parsed when written)


class ServedRowLogger:
    """The bounded buffer and its writer thread (see the module docstring)."""

    def __init__(self, config: FeatureLoggingConfig, repo_path: str, autostart: bool = True) -> None:
        self.config = config
        self.repo_path = repo_path
        self.autostart = autostart  # False: the writer starts on start() (a test fills the buffer first)
        self.dropped = 0  # served rows not logged because the buffer was full
        self.written = 0  # served rows written to Parquet
        # A deque: append and popleft are atomic, so the request path takes no lock and never wakes
        # the writer per response (a Queue's notify per put cost a thread switch per request).
        self._pending: deque[_Served] = deque()
        self._wake_at = max(1, config.queue_capacity // 2)  # wake the writer early when this many wait
        self._wake = threading.Event()
        self._closing = False
        self._appended = 0  # responses buffered so far (request path)
        self._done = 0  # of those, written (writer thread)
        prefix = uuid.uuid4().hex[:16]
        self._ids = (f"{prefix}{n:016x}" for n in itertools.count())  # unique, without a uuid per response
        self._paths: dict[int, tuple[FeatureService, str]] = {}  # id(service) -> (service, its log directory)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def log_answer(self, service: FeatureService, request: dict[str, list[Any]], answer: bytes) -> None:
        """Buffer one served JSON answer (Feast's get-online-features body) of `service`; never blocks."""
        self.log(service, request, answer)

    def log(self, service: FeatureService, request: dict[str, list[Any]], response: OnlineResponse | bytes) -> None:
        """Buffer one served response of `service` (no-op without a logging_config); never blocks."""
        logging = service.logging_config
        if logging is None or not self.config.enabled:
            return
        if logging.sample_rate < 1.0 and random.random() >= logging.sample_rate:
            return
        if len(self._pending) >= self.config.queue_capacity:
            self.dropped += len(next(iter(request.values()), []))
            return
        path = self._path(service)
        self._pending.append(_Served(next(self._ids), datetime.now(UTC), service.name, path, request, response))
        self._appended += 1
        if self.autostart and self._thread is None:
            self.start()
        if len(self._pending) >= self._wake_at and not self._wake.is_set():
            self._wake.set()

    def _path(self, service: FeatureService) -> str:
        """The service's log directory, resolved once per service definition (the registry's cached
        objects are reused until it changes)."""
        known = self._paths.get(id(service))
        if known is None or known[0] is not service:
            assert service.logging_config is not None
            path = service.logging_config.destination.to_dict()["path"]
            if len(self._paths) > 1024:
                self._paths.clear()
            known = self._paths[id(service)] = (service, path if os.path.isabs(path) else
                                                os.path.join(self.repo_path, path))
        return known[1]

    def start(self) -> None:
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="repast-feature-log", daemon=True)
                    self._thread.start()

    def _run(self) -> None:
        while True:
            self._wake.wait(self.config.flush_interval_secs)
            self._wake.clear()
            closing = self._closing
            self._drain()
            if closing:
                return

    def _drain(self) -> None:
        """Write every buffered response: one Parquet file per service path and batch of rows."""
        items: list[_Served] = []
        while self._pending:
            items.append(self._pending.popleft())
        by_path: dict[str, list[_Served]] = {}
        for item in items:
            by_path.setdefault(item.path, []).append(item)
        for path, served in by_path.items():
            rows, batch = 0, []
            for item in served:
                batch.append(item)
                rows += len(next(iter(item.request.values()), []))
                if rows >= _MAX_ROWS_PER_FILE:
                    self._write(path, batch)
                    rows, batch = 0, []
            if batch:
                self._write(path, batch)
        self._done += len(items)

    def _write(self, path: str, items: list[_Served]) -> None:
        table = served_tables(items)
        os.makedirs(path, exist_ok=True)
        name = f"{datetime.now(UTC):%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:8]}.parquet"
        final = os.path.join(path, name)
        pq.write_table(table, final + ".partial")
        os.replace(final + ".partial", final)
        self.written += table.num_rows

    def flush(self, timeout: float = 10.0) -> bool:
        """Write every buffered response now and wait for it (tests, shutdown); True when it was."""
        target = self._appended
        deadline = time.monotonic() + timeout
        self._wake.set()
        while time.monotonic() < deadline:
            if self._done >= target:
                return True
            time.sleep(0.01)
        return False

    def close(self) -> None:
        if self._thread is not None:
            self._closing = True
            self._wake.set()
            self._thread.join(timeout=30)
            self._thread = None


def served_table(item: _Served) -> pa.Table:
    """One served response as log rows: ids, request columns, then value/status/timestamp per feature."""
    return served_tables([item])


def _answer_columns(answer: bytes) -> tuple[dict[str, list[Any]], dict[str, list[Any]], dict[str, list[Any]]]:
    """(values, statuses, event times) of a served JSON answer; an event time is ISO text, or None
    where the answer has the epoch (a value without one)."""
    body = orjson.loads(answer)
    values, statuses, stamps = {}, {}, {}
    for name, result in zip(body["metadata"]["feature_names"], body["results"], strict=True):
        values[name], statuses[name] = result["values"], result["statuses"]
        stamps[name] = [None if t == _EPOCH_ISO else t for t in result["event_timestamps"]]
    return values, statuses, stamps


def _log_columns(item: _Served) -> dict[str, list[Any]]:
    """One served response's log columns as Python lists (see `served_tables`)."""
    if isinstance(item.response, bytes):
        values, statuses, stamps = _answer_columns(item.response)
    else:
        values, statuses, stamps = item.response.to_dict(), item.response.statuses(), item.response.event_timestamps()
    n = len(next(iter(values.values()), []))
    columns: dict[str, list[Any]] = {"__request_id": [item.request_id] * n, "__log_timestamp": [item.logged_at] * n}
    for name, column in item.request.items():
        if name not in values:
            columns[name] = column
    for name, column in values.items():
        columns[name] = column
        if name in item.request:
            continue
        columns[f"{name}__status"] = statuses[name]
        columns[f"{name}__timestamp"] = stamps[name]
    return columns


def served_tables(items: list[_Served]) -> pa.Table:
    """Served responses as log rows, in order: responses with the same columns (one service's,
    normally all) are joined as Python lists and converted with one Arrow array per column."""
    groups: list[tuple[tuple[str, ...], dict[str, list[Any]]]] = []
    for item in items:
        columns = _log_columns(item)
        names = tuple(columns)
        if not groups or groups[-1][0] != names:
            groups.append((names, {name: [] for name in names}))
        merged = groups[-1][1]
        for name, column in columns.items():
            merged[name].extend(column)
    tables = [pa.table({name: _typed(name, column) for name, column in merged.items()}) for _, merged in groups]
    return pa.concat_tables(tables, promote_options="permissive") if len(tables) > 1 else tables[0]


def _typed(name: str, column: list[Any]) -> pa.Array:
    if name == "__log_timestamp" or name.endswith("__timestamp"):
        if any(isinstance(t, str) for t in column):  # ISO text from a JSON answer: Arrow parses it
            return pa.array([None if t is None else t if isinstance(t, str) else t.isoformat() for t in column],
                            pa.string()).cast(pa.timestamp("us", tz="UTC"))
        return pa.array(column, pa.timestamp("us", tz="UTC"))
    if name.endswith("__status"):
        return pa.array(column, pa.string())  # FieldStatus is a str enum: its text
    return _column(column)


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
