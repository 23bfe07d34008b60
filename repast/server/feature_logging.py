"""Feature logging: what the feature server served for a FeatureService with a LoggingConfig, kept
under the service's FileLoggingDestination (Feast's feature logging) as spools that readers turn
into Parquet (repast/jobs/served_log.py says how, and which columns the log has).

The request path only appends (request id, time, service, entity rows, the answer's bytes) to a
bounded buffer and never waits or takes a lock: when `queue_capacity` responses wait, the rows are
dropped and counted (`dropped`). One background thread wakes every `flush_interval_secs` (or when
half the buffer is full) and appends the buffered responses to this process's spool, one line each
and one write per batch: no parsing, no Arrow, no Parquet in the serving process (converting them
took the GIL from the requests). The spool is sealed every flush interval, so what was served is
readable a flush interval later, as before. A killed server loses the responses still in the buffer
(at most `flush_interval_secs` of them, or `queue_capacity`); what reached the spool is kept (a
line torn by the kill is skipped). A general-path response (an OnlineResponse) is rendered as the
JSON answer it was served as, in the writer thread.
"""

from __future__ import annotations

import itertools
import os
import random
import threading
import time
import uuid
from collections import deque
from typing import TYPE_CHECKING, Any

from repast.jobs.served_log import SpoolFile, read_feature_log, request_json, spool_pieces
from repast.server.responses import online_response_json

if TYPE_CHECKING:
    from repast.config.repo_config import FeatureLoggingConfig
    from repast.definitions.feature_service import FeatureService
    from repast.jobs.online_read import OnlineResponse

__all__ = ["ServedRowLogger", "read_feature_log"]


# A buffered response: (number, served at in ns since the epoch, log directory, rows, request, response
# or the JSON answer served). A tuple, not an object: building it is most of the request path's cost.
# A fast-path answer's request is kept as its JSON bytes: a tuple of numbers, text and bytes only
# is dropped from the garbage collector's tracking at its first young collection, so thousands of
# buffered responses do not get promoted into and walked by old-generation collections (they were:
# ~2-6 us of collector time per logged request, and its full collections in the p99).
_Served = tuple[int, int, str, int, "dict[str, list[Any]] | bytes", "OnlineResponse | bytes"]


class ServedRowLogger:
    """The bounded buffer and its writer thread (see the module docstring)."""

    def __init__(self, config: FeatureLoggingConfig, repo_path: str, autostart: bool = True) -> None:
        self.config = config
        self.repo_path = repo_path
        self.autostart = autostart  # False: the writer starts on start() (a test fills the buffer first)
        self.dropped = 0  # served rows not logged because the buffer was full
        self.written = 0  # served rows written to the spool
        # A deque: append and popleft are atomic, so the request path takes no lock and never wakes
        # the writer per response (a Queue's notify per put cost a thread switch per request).
        self._pending: deque[_Served] = deque()
        self._wake_at = max(1, config.queue_capacity // 2)  # wake the writer early when this many wait
        self._wake = threading.Event()
        self._closing = False
        self._appended = 0  # responses buffered so far (request path)
        self._done = 0  # of those, written (writer thread)
        self._id_prefix = uuid.uuid4().hex[:16]  # request ids: this prefix + the response's number, in hex
        self._numbers = itertools.count()
        self._paths: dict[int, tuple[FeatureService, str]] = {}  # id(service) -> (service, its log directory)
        self._spools: dict[str, SpoolFile] = {}  # log directory -> this process's spool there (writer thread)
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
        rows = len(next(iter(request.values()), []))
        if len(self._pending) >= self.config.queue_capacity:
            self.dropped += rows
            return
        path = self._path(service)
        self._pending.append((next(self._numbers), time.time_ns(), path, rows,
                              request_json(request) if isinstance(response, bytes) else request, response))
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
        """Append every buffered response to its service's spool (one write per path), then seal
        the spools, so readers can convert what was served."""
        lines: dict[str, list[bytes]] = {}
        rows: dict[str, int] = {}
        taken = 0
        while self._pending:
            number, served_ns, path, served_rows, request, response = self._pending.popleft()
            taken += 1
            if not isinstance(response, bytes):
                response = online_response_json(response)
            if not isinstance(request, bytes):
                request = request_json(request)
            lines.setdefault(path, []).extend(spool_pieces(number, served_ns // 1000, request, response))
            rows[path] = rows.get(path, 0) + served_rows
        for path, batch in lines.items():
            spool = self._spools.get(path)
            if spool is None:
                spool = self._spools[path] = SpoolFile(path, self._id_prefix)
            spool.append(batch)
            self.written += rows[path]
        for spool in self._spools.values():
            spool.seal()
        self._done += taken

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

