"""One log line per kind of failure per interval, instead of one traceback per request.

An outage makes every request fail the same way; logging each (with its traceback) buries the
one line an operator needs under megabytes. `FailureLog.report` logs the first failure of a kind,
then counts the repeats and says how many there were with the next line of that kind after the
interval. A traceback is logged only for failures that are bugs (the caller decides).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass


@dataclass
class _Kind:
    logged_at: float
    suppressed: int = 0


class FailureLog:
    def __init__(self, logger: logging.Logger, interval_seconds: float = 10.0) -> None:
        self.logger = logger
        self.interval = interval_seconds
        self._kinds: dict[str, _Kind] = {}
        self._lock = threading.Lock()

    def report(self, kind: str, message: str, exc_info: BaseException | None = None,
               level: int = logging.ERROR) -> bool:
        """Log `message` unless `kind` was logged within the interval; True when it was logged."""
        now = time.monotonic()
        with self._lock:
            seen = self._kinds.get(kind)
            if seen is not None and now - seen.logged_at < self.interval:
                seen.suppressed += 1
                return False
            repeats = seen.suppressed if seen is not None else 0
            if len(self._kinds) > 1000:  # kinds come from exception classes and paths: bounded, but be safe
                self._kinds.clear()
            self._kinds[kind] = _Kind(now)
        if repeats:
            message += f" ({repeats} more like this since the last such line, not logged)"
        self.logger.log(level, message, exc_info=exc_info)
        return True
