"""The HTTP protocol `repast serve` runs: uvicorn's httptools protocol with header bounds.

uvicorn bounds neither how long a client may take to send a request's headers nor how large
they may be: 3,000 connections trickling a header byte now and then stayed open, and a 1 MB
header was accepted. Here a request's headers must arrive within `header_timeout_seconds` of
their first byte (or of the connection opening), else the connection is closed with 408; header
bytes beyond `max_header_bytes` are refused with 431. Both answers are JSON like every other
refusal. The bounds come from feature_server in feature_store.yaml, through the environment so
`--workers` processes see them too. Without httptools, uvicorn's h11 protocol is used with its
own header size bound and no header timeout (install "repast[server]" for both).
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import httptools
import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from repast.server.limits import ENV_HEADER_TIMEOUT, ENV_MAX_HEADER_BYTES


class _HeadersTooLarge(Exception):
    pass


_REASONS = {408: b"Request Timeout", 431: b"Request Header Fields Too Large"}


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.header_timeout = float(os.environ.get(ENV_HEADER_TIMEOUT, "10"))
        self.max_header_bytes = int(os.environ.get(ENV_MAX_HEADER_BYTES, "16384"))
        self._awaiting_headers = True
        self._header_bytes = 0  # raw bytes received while the headers are incomplete
        self._header_size = 0  # bytes of the request line and headers parsed so far
        self._headers_too_large = False
        self._header_timer: asyncio.TimerHandle | None = None
        # Loop time the awaited headers started to count from (None: no headers are being awaited
        # in earnest: they are complete, or the connection idles between requests).
        self._headers_since: float | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._headers_since = self.loop.time()
        self._arm_header_timer(self.header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._awaiting_headers:
            self._header_bytes += len(data)
            if self._headers_since is None:
                self._headers_since = self.loop.time()
            if self._header_timer is None:
                self._arm_header_timer(self.header_timeout)
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._unsupported_upgrade_warning()  # no websockets here
        except httptools.HttpParserError:
            if self._headers_too_large:
                self._refuse_too_large()
                return
            self.logger.warning("Invalid HTTP request received.")
            self.send_400_response("Invalid HTTP request received.")
            return
        # Headers still incomplete after this chunk: their raw bytes so far count against the bound.
        if self._awaiting_headers and self._header_bytes > self.max_header_bytes:
            self._refuse_too_large()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_size = 0

    def on_url(self, url: bytes) -> None:
        self._count_header(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count_header(len(name) + len(value) + 4)
        super().on_header(name, value)

    def _count_header(self, size: int) -> None:
        self._header_size += size
        if self._header_size > self.max_header_bytes:
            self._headers_too_large = True
            raise _HeadersTooLarge  # stops the parser; data_received answers 431

    def _refuse_too_large(self) -> None:
        self._refuse(431, "header_too_large", f"request headers exceed {self.max_header_bytes} bytes "
                     "(feature_server.max_header_bytes)")

    def on_headers_complete(self) -> None:
        # The timer stays armed: scheduling and cancelling one per request cost more than the
        # check it makes when it fires (it then re-arms itself for whatever is awaited).
        self._awaiting_headers = False
        self._header_bytes = 0
        self._headers_since = None
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._awaiting_headers = True  # what comes next on this connection is the next request

    def _arm_header_timer(self, delay: float) -> None:
        self._header_timer = self.loop.call_later(delay, self._headers_too_slow)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self.transport.is_closing():
            return
        since = self._headers_since
        left = self.header_timeout if since is None else since + self.header_timeout - self.loop.time()
        if not self._awaiting_headers or since is None or left > 0:
            self._arm_header_timer(max(left, 0.001))  # later headers get their own full time
            return
        if self._header_bytes == 0:
            self.transport.close()  # an idle connection: nothing was asked, nothing to answer
            return
        self._refuse(408, "header_timeout", f"request headers did not arrive within {self.header_timeout:g} s "
                     "(feature_server.header_timeout_seconds)")

    def _refuse(self, status: int, kind: str, detail: str) -> None:
        if self.transport.is_closing():
            return
        body = orjson.dumps({"error": kind, "detail": detail})
        head = b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n\r\n"
        self.transport.write(head % (status, _REASONS[status], len(body)) + body)
        self.transport.close()
        self._cancel_header_timer()
