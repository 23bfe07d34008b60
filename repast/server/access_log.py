"""The access log of answers the HTTP protocol gives itself, written in batches off the event loop.

uvicorn writes its access line inside the request, through `logging`, one stream write per line:
about as much CPU as the whole answer to a one-entity read. Here a request only appends its five
fields to a list; every `FLUSH_SECONDS` the batch is formatted as uvicorn's `uvicorn.access` logger
would format it (about half a microsecond a line, on the loop) and the text goes to one writer
thread, which writes it in one call with the GIL released. A slow or full stdout therefore never
holds the loop, and the loop and the writer thread meet once per batch (formatting on the thread
measured about 16 GIL hand-offs per batch and 20 us more latency per request at one connection).
Lines may reach the log up to `FLUSH_SECONDS` after the answer, and may interleave with uvicorn's
own lines (requests answered through ASGI) out of order by that much.

When `uvicorn.access` has the handler uvicorn's default logging configuration gives it (one stream
handler with its AccessFormatter, no colours), lines are formatted here directly; any other
configuration (a file, JSON, colours on a terminal) gets every line through `logger.info`, as
uvicorn would call it, on the writer thread.
"""

from __future__ import annotations

import asyncio
import http
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

FLUSH_SECONDS = 0.05
# uvicorn's default access format (uvicorn.config.LOGGING_CONFIG): what the direct formatting reproduces.
UVICORN_ACCESS_FORMAT = '%(levelprefix)s %(client_addr)s - "%(request_line)s" %(status_code)s'

Line = tuple[str, str, str, str, int]  # client address, method, path with query, HTTP version, status


def _phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return ""


_STATUS_TEXT = {status: f"{status} {_phrase(status)}" for status in range(100, 600)}


class AccessLog:
    """Access lines of one process, written in batches by one thread (see the module docstring)."""

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self.logger = logger or logging.getLogger("uvicorn.access")
        self._pending: list[Line] = []
        self._flush_timer: asyncio.TimerHandle | None = None
        self._writer: ThreadPoolExecutor | None = None

    def record(self, loop: asyncio.AbstractEventLoop, line: Line) -> None:
        """Queue one request's line; written within FLUSH_SECONDS."""
        self._pending.append(line)
        if self._flush_timer is None:
            self._flush_timer = loop.call_later(FLUSH_SECONDS, self.flush)

    def flush(self) -> None:
        """Format the queued lines and hand them to the writer thread."""
        self._flush_timer = None
        batch, self._pending = self._pending, []
        if not batch:
            return
        if self._writer is None:
            self._writer = ThreadPoolExecutor(1, thread_name_prefix="repast-access-log")
        direct = _default_stream_handler(self.logger)
        if direct is None:
            self._writer.submit(self._emit, batch)
        else:
            self._writer.submit(_write_text, direct, format_lines(batch))

    def close(self) -> None:
        """Write what is queued and stop the writer thread (waits for it)."""
        if self._flush_timer is not None:
            self._flush_timer.cancel()
        self.flush()
        if self._writer is not None:
            self._writer.shutdown(wait=True)
            self._writer = None

    def _emit(self, batch: list[Line]) -> None:
        for line in batch:
            self.logger.info('%s - "%s %s HTTP/%s" %d', *line)


def format_lines(batch: list[Line]) -> str:
    """The lines as uvicorn's default access format writes them, without colours."""
    return "".join(f'INFO:     {client} - "{method} {path} HTTP/{version}" {_STATUS_TEXT.get(status, status)}\n'
                   for client, method, path, version, status in batch)


def _write_text(handler: logging.StreamHandler[Any], text: str) -> None:
    with handler.lock or _NO_LOCK:
        handler.stream.write(text)
        handler.flush()


class _NoLock:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


_NO_LOCK = _NoLock()


def _default_stream_handler(logger: logging.Logger) -> logging.StreamHandler[Any] | None:
    """The logger's one handler when it is uvicorn's default access handler without colours."""
    if not logger.isEnabledFor(logging.INFO) or logger.filters or logger.propagate or len(logger.handlers) != 1:
        return None
    handler = logger.handlers[0]
    formatter = handler.formatter
    if type(handler) is not logging.StreamHandler or handler.filters or formatter is None \
            or handler.level > logging.INFO:
        return None
    if type(formatter).__name__ != "AccessFormatter" or getattr(formatter, "use_colors", True) \
            or getattr(formatter, "_fmt", None) != UVICORN_ACCESS_FORMAT:
        return None
    return handler
