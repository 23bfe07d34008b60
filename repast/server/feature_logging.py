"""Feature logging: what the feature server served for a FeatureService with a LoggingConfig, kept
under the service's FileLoggingDestination (Feast's feature logging) as spools that are turned into
Parquet in the background (repast/jobs/served_log.py says how, and which columns the log has).

The request path is one call of the service's log function (`for_service`, which the feature
server keeps per service definition): it formats the served answer's bytes, with the request's
keys, its number and time, as one spool line (one bytes formatting), appends it to its log
directory's list and never waits or locks. When `queue_capacity` responses wait for a directory,
further rows are dropped and counted (`dropped`). One background thread takes the lines as soon as
`WAKE_LINES` wait, and at least every `flush_interval_secs`, and appends them to this process's
spool with one write: no parsing, no Arrow, no Parquet in the serving process. The spool is sealed
every flush interval, so what was served is readable a flush interval later (and, with
`background_conversion`, handed to the niced conversion process, `SpoolConversion`, which turns it
into the log's Parquet file without waiting for a reader). A killed server loses the responses not
yet written (under load fewer than `WAKE_LINES` per log directory; at most `flush_interval_secs` of
them, and `queue_capacity`); what reached the spool is kept (a line torn by the kill is skipped).
"""

from __future__ import annotations

import itertools
import os
import threading
import time
import uuid
from collections.abc import Callable
from random import random as _random
from time import time_ns as _time_ns
from typing import TYPE_CHECKING, Any

import orjson

from repast.jobs.served_log import REQUEST_OPTIONS, SPOOL_LINE, SpoolFile, read_feature_log
from repast.server.log_conversion import SpoolConversion
from repast.server.responses import online_response_json

if TYPE_CHECKING:
    from repast.config.repo_config import FeatureLoggingConfig
    from repast.definitions.feature_service import FeatureService
    from repast.jobs.online_read import OnlineResponse

__all__ = ["ServedRowLogger", "read_feature_log"]

# The writer wakes when this many lines of a log directory wait: answers are held for a few
# milliseconds only. Holding thousands of ~1 KB answers until a flush made the allocator trim and
# re-fault its heap after every flush (~3 us per logged request, measured: more than the rest of the
# logging).
WAKE_LINES = 64

_dumps = orjson.dumps
LogAnswer = Callable[[dict[str, list[Any]], bytes], None]  # (request's columns, served answer) -> logged


class ServedRowLogger:
    """The lines waiting per log directory and their writer thread (see the module docstring)."""

    def __init__(self, config: FeatureLoggingConfig, repo_path: str, autostart: bool = True) -> None:
        self.config = config
        self.repo_path = repo_path
        self.autostart = autostart  # False: the writer starts on start() (a test fills the lines first)
        self.dropped = 0  # served rows not logged because `queue_capacity` responses waited
        self.written = 0  # served responses written to the spool
        # config.background_conversion: sealed spools are handed to the conversion process (else readers convert them)
        self.conversion = SpoolConversion() if config.background_conversion else None
        # log directory -> its spool lines waiting; a list is never replaced: the request path appends,
        # the writer takes a prefix (each one step under the GIL, so neither needs a lock)
        self._lines: dict[str, list[bytes]] = {}
        self._capacity = config.queue_capacity
        self._wake = threading.Event()
        self._closing = False
        self._lock = threading.Lock()  # starting the thread, counting flushes
        self._flushes_wanted = 0  # flush() calls so far
        self._flushes_done = 0  # of those, written and sealed (writer thread)
        self._id_prefix = uuid.uuid4().hex[:16]  # request ids: this prefix + the response's number, in hex
        self._numbers = itertools.count()
        self._services: dict[int, tuple[FeatureService, LogAnswer | None]] = {}  # id(service) -> for_service
        self._spools: dict[str, SpoolFile] = {}  # log directory -> this process's spool there (writer thread)
        self._thread: threading.Thread | None = None

    def log(self, service: FeatureService, request: dict[str, list[Any]], response: OnlineResponse | bytes) -> None:
        """Buffer one served response of `service` (no-op without a logging_config); never blocks.
        An OnlineResponse is logged as the JSON answer it is served as."""
        self.log_answer(service, request, response if isinstance(response, bytes) else online_response_json(response))

    def log_answer(self, service: FeatureService, request: dict[str, list[Any]], answer: bytes) -> None:
        """Buffer one served JSON answer (Feast's get-online-features body) of `service`; never blocks."""
        log = self.for_service(service)
        if log is not None:
            log(request, answer)

    def for_service(self, service: FeatureService) -> LogAnswer | None:
        """What logs one served answer of `service` with its request (`log_answer` without the look-up
        of the service: the feature server keeps it per service); None when `service` is not logged."""
        known = self._services.get(id(service))
        return (known if known is not None and known[0] is service else self._resolve(service))[1]

    def _resolve(self, service: FeatureService) -> tuple[FeatureService, LogAnswer | None]:
        """The service's LogAnswer (None: not logged), made once per service definition (the
        registry's cached objects are reused until it changes)."""
        logging = service.logging_config
        append = None
        if logging is not None and self.config.enabled:
            path = logging.destination.to_dict()["path"]
            path = path if os.path.isabs(path) else os.path.join(self.repo_path, path)
            append = self._appender(self._lines.setdefault(path, []), logging.sample_rate)
            if self._thread is None and self.autostart:
                self.start()
        if len(self._services) > 1024:
            self._services.clear()
        known = self._services[id(service)] = (service, append)
        return known

    def _appender(self, lines: list[bytes], sample_rate: float) -> LogAnswer:
        """The request path: one spool line appended to `lines` (the answer sampled at `sample_rate`);
        a look at what waits only when the writer should be woken (see `_many_waiting`)."""
        numbers, busy = self._numbers, min(WAKE_LINES - 1, self._capacity)

        def log_answer(request: dict[str, list[Any]], answer: bytes) -> None:
            if len(lines) >= busy and not self._many_waiting(lines, request):
                return
            # spool_record, inlined: a Python call is ~4% of the logging's instructions
            lines.append(SPOOL_LINE % (next(numbers), _time_ns() // 1000,
                                       _dumps(request, option=REQUEST_OPTIONS, default=str), answer))

        def sampled(request: dict[str, list[Any]], answer: bytes) -> None:
            if _random() < sample_rate:
                log_answer(request, answer)

        return log_answer if sample_rate >= 1.0 else sampled

    def _many_waiting(self, lines: list[bytes], request: dict[str, list[Any]]) -> bool:
        """WAKE_LINES lines (or nearly) wait: wake the writer (started again if it was closed), or
        when `queue_capacity` wait, drop and count the response's rows (False)."""
        if len(lines) >= self._capacity:
            self.dropped += len(next(iter(request.values()), []))
            return False
        if self._thread is None and self.autostart:
            self.start()
        if not self._wake.is_set():
            self._wake.set()
        return True

    def start(self) -> None:
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="repast-feature-log", daemon=True)
                    self._thread.start()

    def _run(self) -> None:
        interval = self.config.flush_interval_secs
        seal_at = time.monotonic() + interval
        while True:
            self._wake.wait(max(0.0, seal_at - time.monotonic()))
            self._wake.clear()
            closing, flushes = self._closing, self._flushes_wanted
            self._write()
            if closing or flushes > self._flushes_done or time.monotonic() >= seal_at:
                self._seal()
                self._flushes_done = flushes
                seal_at = time.monotonic() + interval
            if closing:
                return

    def _write(self) -> None:
        """Append the lines waiting for each log directory to its spool, in one write."""
        for path, lines in list(self._lines.items()):
            taken = lines[:]
            del lines[:len(taken)]  # what the request path appended meanwhile stays, for the next write
            if not taken:
                continue
            spool = self._spools.get(path)
            if spool is None:
                spool = self._spools[path] = SpoolFile(path, self._id_prefix)
            spool.append(b"".join(taken))
            self.written += len(taken)

    def _seal(self) -> None:
        """Hand the spools written since the last seal to the readers and the conversion."""
        for path, spool in self._spools.items():
            if spool.seal() and self.conversion is not None:
                self.conversion.convert(path)

    def flush(self, timeout: float = 10.0) -> bool:
        """Write and seal every buffered response now and wait for it (tests, shutdown); True when it was."""
        with self._lock:
            self._flushes_wanted += 1
            wanted = self._flushes_wanted
        if self._thread is None:
            return not any(self._lines.values())
        deadline = time.monotonic() + timeout
        self._wake.set()
        while time.monotonic() < deadline:
            if self._flushes_done >= wanted:
                return True
            time.sleep(0.01)
        return False

    def close(self) -> None:
        if self._thread is not None:
            self._closing = True
            self._wake.set()
            self._thread.join(timeout=30)
            self._thread = None
        if self.conversion is not None:
            self.conversion.close()
