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
import pyarrow.compute as pc
import pyarrow.parquet as pq

if TYPE_CHECKING:
    from repast.config.repo_config import FeatureLoggingConfig
    from repast.definitions.feature_service import FeatureService
    from repast.jobs.online_read import OnlineResponse

_MAX_ROWS_PER_FILE = 50_000
_EPOCH_ISO = "1970-01-01T00:00:00Z"  # the event time an answer gives a value without one
_UTC_US = pa.timestamp("us", tz="UTC")


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


def _parts(item: _Served) -> tuple[tuple[str, ...], list[list[Any]], list[list[Any]], list[list[Any]]]:
    """(names, values, statuses, event times) of one served response, positionally; from a JSON
    answer the event times are ISO text (the epoch where a value has none, nulled in `_typed`)."""
    if isinstance(item.response, bytes):
        body = orjson.loads(item.response)
        results = body["results"]
        return (tuple(body["metadata"]["feature_names"]), [r["values"] for r in results],
                [r["statuses"] for r in results], [r["event_timestamps"] for r in results])
    values, statuses, stamps = item.response.to_dict(), item.response.statuses(), item.response.event_timestamps()
    return tuple(values), list(values.values()), [statuses[n] for n in values], [stamps[n] for n in values]


class _Columns:
    """The log columns of responses of one shape (request columns and output names), as Python
    lists laid out once, so adding a response is a few list extends."""

    def __init__(self, request: tuple[str, ...], names: tuple[str, ...]) -> None:
        self.request_only = [k for k in request if k not in names]
        self.names = names
        self.features = [i for i, n in enumerate(names) if n not in request]  # join keys get no status/time
        self.ids: list[str] = []
        self.times: list[datetime] = []
        self.requested: list[list[Any]] = [[] for _ in self.request_only]
        self.values: list[list[Any]] = [[] for _ in names]
        self.statuses: list[list[Any]] = [[] for _ in names]
        self.stamps: list[list[Any]] = [[] for _ in names]

    def add(self, item: _Served, values: list[list[Any]], statuses: list[list[Any]], stamps: list[list[Any]]) -> None:
        n = len(values[0]) if values else 0
        self.ids.extend([item.request_id] * n)
        self.times.extend([item.logged_at] * n)
        for column, name in zip(self.requested, self.request_only, strict=True):
            column.extend(item.request[name])
        for column, v in zip(self.values, values, strict=True):
            column.extend(v)
        for i in self.features:
            self.statuses[i].extend(statuses[i])
            self.stamps[i].extend(stamps[i])

    def table(self) -> pa.Table:
        columns: dict[str, pa.Array] = {"__request_id": pa.array(self.ids, pa.string()),
                                        "__log_timestamp": pa.array(self.times, _UTC_US)}
        for name, column in zip(self.request_only, self.requested, strict=True):
            columns[name] = _column(column)
        features = set(self.features)
        for i, name in enumerate(self.names):
            columns[name] = _column(self.values[i])
            if i in features:
                columns[f"{name}__status"] = pa.array(self.statuses[i], pa.string())  # FieldStatus: str enum
                columns[f"{name}__timestamp"] = _times(self.stamps[i])
        return pa.table(columns)


def served_tables(items: list[_Served]) -> pa.Table:
    """Served responses as log rows, in order: responses of one shape (one service's, normally all)
    are joined as Python lists and converted with one Arrow array per column."""
    groups: list[tuple[tuple[tuple[str, ...], tuple[str, ...]], _Columns]] = []
    for item in items:
        names, values, statuses, stamps = _parts(item)
        key = (tuple(item.request), names)
        if not groups or groups[-1][0] != key:
            groups.append((key, _Columns(key[0], names)))
        groups[-1][1].add(item, values, statuses, stamps)
    tables = [columns.table() for _, columns in groups]
    return pa.concat_tables(tables, promote_options="permissive") if len(tables) > 1 else tables[0]


def _times(column: list[Any]) -> pa.Array:
    """Event times (datetimes, or ISO text from JSON answers, whose epoch means none) as timestamps."""
    if not any(isinstance(t, str) for t in column):
        return pa.array(column, _UTC_US)
    text = pa.array([t.isoformat() if isinstance(t, datetime) else t for t in column], pa.string())
    text = pc.if_else(pc.equal(text, _EPOCH_ISO), pa.scalar(None, pa.string()), text)
    return text.cast(_UTC_US)


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
