"""The HTTP protocol `repast serve` and `repast ui` run: uvicorn's httptools protocol with header
bounds, and the hot endpoint answered in the protocol itself.

uvicorn bounds neither how long a client may take to send a request's headers nor how large
they may be: 3,000 connections trickling a header byte now and then stayed open, and a 1 MB
header was accepted. Here a request's headers must arrive within `HeaderBounds.timeout_seconds` of
their first byte (or of the connection opening), else the connection is closed with 408; header
bytes beyond `HeaderBounds.max_bytes` are refused with 431. Both answers are JSON like every other
refusal. The bounds are the served app's own (`bounds` of the server's middleware or of
`BoundedApp`), built from feature_server in feature_store.yaml by every worker process. A request
asking to switch protocols (`Connection: Upgrade`: websocket, h2c) is refused at once with a JSON
400 and its connection closed (httptools hands what follows such a request, its body included, to
the other protocol, so it cannot be answered as HTTP/1.1). Without
httptools, uvicorn's h11 protocol is used with its own header size bound and no header timeout
(install "repast[server]" for both).

The hot endpoint (the server middleware's `fast_routes`: POST /get-online-features) is answered
here, in the protocol, when the request allows it: the endpoint turns the body into the answer and
the response goes out in one write, as uvicorn would have written it (its default headers, then
ours), with its access line queued to repast.server.access_log. uvicorn's per-request ASGI
machinery (a task, the request-response cycle, the proxy-headers wrapper, the send/receive messages
and a second socket write) cost more than repast's own work for a one-entity read. A read that must
wait on a thread (the store is slow) is awaited here in a task of its own; requests pipelined behind
it wait for its answer. Everything else takes the ASGI path: other endpoints, HTTP/1.0 or
`Connection: close`, `Expect: 100-continue`, bodies without a declared length, a request that fails
auth or the body limit (the ASGI path answers the refusal), and requests pipelined behind one still
in flight.

This subclasses uvicorn's HttpToolsProtocol, which is not a public API: pyproject.toml pins uvicorn
to the minor version this is tested on, and tests/unit/test_server_protocol_contract.py checks that
every inherited name used here exists with the signature relied on (docs/server.md says why a
subclass and not a protocol of our own).
"""

from __future__ import annotations

import asyncio
from time import perf_counter
from typing import Any

import httptools
import orjson
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from repast.server.limits import HeaderBounds
from repast.server.middleware import FastHandler, ServerMiddleware, ok_headers


class _StopParsing(Exception):
    """Stops the parser inside a callback (headers too large, or a request refused there)."""


_REASONS = {400: b"Bad Request", 408: b"Request Timeout", 431: b"Request Header Fields Too Large"}


class BoundedApp:
    """An ASGI app served with header bounds but no hot endpoint (the web UI)."""

    def __init__(self, app: Any, bounds: HeaderBounds) -> None:
        self.app = app
        self.bounds = bounds

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


class _AwaitedAnswer:
    """Stands where uvicorn keeps a request's cycle while the hot endpoint's answer is awaited, so
    uvicorn queues requests pipelined behind it, and a graceful stop or a lost connection finds
    the fields it looks at."""

    def __init__(self) -> None:
        self.response_complete = False
        self.keep_alive = True
        self.disconnected = False
        self.message_event = asyncio.Event()


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        served = _served_app(self.app)
        bounds = served.bounds if served is not None else HeaderBounds()
        self.header_timeout = bounds.timeout_seconds
        self.max_header_bytes = bounds.max_bytes
        self._awaiting_headers = True
        self._header_bytes = 0  # raw bytes received while the headers are incomplete
        self._headers_too_large = False
        self._header_timer: asyncio.TimerHandle | None = None
        # Loop time the awaited headers started to count from (None: no headers are being awaited
        # in earnest: they are complete, or the connection idles between requests).
        self._headers_since: float | None = None
        self._entry = served if isinstance(served, ServerMiddleware) else None
        self._fast: FastHandler | None = None  # the hot endpoint's handler while its request is under way
        self._client_text = ""  # the client's address as the access log shows it
        self._upgrade_refused = False  # an Upgrade request was refused: the connection closes
        self._fast_path = ""
        self._fast_start = 0.0
        self._fast_body: list[bytes] = []
        self._close_after_answer = False  # the server shuts down: close once the queued answers are out
        self._queued_writes = 0  # answers queued by _queue_write, not yet written
        # Keep-alive after answers given here: one timer per connection, re-armed when it fires,
        # instead of uvicorn's timer scheduled and cancelled per request.
        self._answered_at = 0.0
        self._keepalive_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._headers_since = self.loop.time()
        self._arm_header_timer(self.header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        if self._keepalive_timer is not None:
            self._keepalive_timer.cancel()
            self._keepalive_timer = None
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
            return  # refused when its headers completed; what follows is not HTTP/1.1
        except httptools.HttpParserError:
            if self._headers_too_large:
                self._refuse_too_large()
                return
            if self._upgrade_refused:
                return
            self.logger.warning("Invalid HTTP request received.")
            self.send_400_response("Invalid HTTP request received.")
            return
        # Headers still incomplete after this chunk: their raw bytes so far count against the bound.
        if self._awaiting_headers and self._header_bytes > self.max_header_bytes:
            self._refuse_too_large()

    def on_message_begin(self) -> None:
        # What uvicorn resets per request, without its ASGI scope: that is built only for a request
        # that takes the ASGI path (_begin_asgi), not for the hot endpoint answered here.
        self.url = b""
        self.expect_100_continue = False
        self.headers = []

    def _begin_asgi(self) -> None:
        """uvicorn's own start of a request (its scope), keeping what was parsed since."""
        url, headers, expect = self.url, self.headers, self.expect_100_continue
        super().on_message_begin()
        self.url, self.expect_100_continue = url, expect
        self.headers.extend(headers)  # the list the new scope holds

    def _should_upgrade(self) -> bool:
        return False  # never switch protocols (uvicorn would hand a websocket request to its ws protocol)

    def _refuse_upgrade(self) -> None:
        """A request asking to switch protocols (websocket, h2c): refused at once, the connection
        closed after the answers before it (what follows the request is in the other protocol)."""
        self._upgrade_refused = True
        wanted = next((value for name, value in self.headers if name == b"upgrade"), b"")
        self._refuse(400, "upgrade_not_supported",
                     f"this server speaks HTTP/1.1 only and does not switch to "
                     f"'{wanted.decode('latin-1')}': send the request without Connection: Upgrade")

    def _refuse_too_large(self) -> None:
        self._refuse(431, "header_too_large", f"request headers exceed {self.max_header_bytes} bytes "
                     "(feature_server.max_header_bytes)")

    def on_headers_complete(self) -> None:
        # The timer stays armed: scheduling and cancelling one per request cost more than the
        # check it makes when it fires (it then re-arms itself for whatever is awaited).
        self._awaiting_headers = False
        self._header_bytes = 0
        self._headers_since = None
        size = len(self.url)
        for name, value in self.headers:
            size += len(name) + len(value) + 4
        if size > self.max_header_bytes:  # arrived in one chunk (larger ones are counted as received)
            self._headers_too_large = True
            raise _StopParsing  # stops the parser; data_received answers 431
        if self.parser.should_upgrade():
            self._refuse_upgrade()
            raise _StopParsing  # stops the parser: nothing after this request is read
        self._fast = self._fast_handler()
        if self._fast is None:
            self._begin_asgi()
            super().on_headers_complete()
        else:
            self._fast_start = perf_counter()
            self._fast_body = []

    def on_body(self, body: bytes) -> None:
        if self._fast is None:
            super().on_body(body)
        else:
            self._fast_body.append(body)

    def on_message_complete(self) -> None:
        self._awaiting_headers = True  # what comes next on this connection is the next request
        if self._fast is None:
            super().on_message_complete()
        else:
            # _fast is only ever set when the server's entry was found
            self._answer_fast(self._entry, self._fast, b"".join(self._fast_body))  # type: ignore[arg-type]

    # ---- the hot endpoint, answered here ---------------------------------------------------------

    def _fast_handler(self) -> Any:
        """The hot endpoint's handler when this request can be answered without ASGI: a plain
        keep-alive HTTP/1.1 POST with its length declared, no request of this connection still in
        flight; else None."""
        entry = self._entry
        if entry is None or self.expect_100_continue or self.flow.write_paused:
            return None
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            return None
        parser = self.parser
        if parser.get_http_version() != "1.1" or not parser.should_keep_alive() or parser.should_upgrade():
            return None
        path = httptools.parse_url(self.url).path
        if b"%" in path:
            return None
        self._fast_path = self.root_path + path.decode("ascii")
        return entry.fast_handler(parser.get_method(), self._fast_path, self.headers)

    def _answer_fast(self, entry: ServerMiddleware, handler: FastHandler, body: bytes) -> None:
        """Answer the hot endpoint's request with one write, as uvicorn would write it."""
        try:
            answer = handler(body)
            if not isinstance(answer, bytes):
                self._await_answer(entry, answer)
                return
            status, headers = 200, ok_headers(answer)
        except Exception as exc:
            status, headers, answer = entry.refusal(exc, "POST", self._fast_path)
        self._send_fast(entry, status, headers, answer)

    def _await_answer(self, entry: ServerMiddleware, pending: Any) -> None:
        """A read that waits on a thread: awaited in a task of its own; this connection reads
        nothing more until the answer is written (uvicorn queues a request already received)."""
        waiting = _AwaitedAnswer()
        self.cycle = waiting  # type: ignore[assignment]
        self.flow.pause_reading()
        task = self.loop.create_task(self._answer_awaited(entry, pending, waiting))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _answer_awaited(self, entry: ServerMiddleware, pending: Any, waiting: _AwaitedAnswer) -> None:
        try:
            answer = await pending
            status, headers = 200, ok_headers(answer)
        except Exception as exc:
            status, headers, answer = entry.refusal(exc, "POST", self._fast_path)
        if self.transport.is_closing():
            self._fast = None
            return
        if not waiting.keep_alive:  # the server stops (shutdown): close once this is written
            self._close_after_answer = True
        self._send_fast(entry, status, headers, answer)
        waiting.response_complete = True
        self.on_response_complete()  # counts it, resumes reading, starts a request queued behind it

    def _send_fast(self, entry: ServerMiddleware, status: int, headers: list[tuple[bytes, bytes]],
                   answer: bytes) -> None:
        path = self._fast_path
        content = [STATUS_LINE[status]]
        for name, value in (*self.server_state.default_headers, *headers):
            content += (name, b": ", value, b"\r\n")
        content += (b"\r\n", answer)
        # Written once the loop has read what else is ready (as uvicorn's ASGI task would write it):
        # a write made at once, inside data_received, measured 13-15% more CPU per request under
        # concurrent load, each answer waking the client before the next read.
        self._queue_write(b"".join(content))
        entry.metrics.observe(path, status, perf_counter() - self._fast_start)
        if self.access_log:
            if not self._client_text and self.client:
                self._client_text = f"{self.client[0]}:{self.client[1]}"
            target = self.root_path + self.url.decode("latin-1")
            entry.access_log.record(self.loop, (self._client_text, "POST", target, "1.1", status))
        self._fast = None
        if isinstance(self.cycle, _AwaitedAnswer):
            return  # _answer_awaited completes it as uvicorn completes a response
        # What uvicorn does when a response completes (no request waits behind this one: the hot
        # path is taken only when none is in flight), with the keep-alive timer kept per connection.
        self.server_state.total_requests += 1
        if self._close_after_answer:
            return
        self._answered_at = self.loop.time()
        if self._keepalive_timer is None:
            self._keepalive_timer = self.loop.call_later(self.timeout_keep_alive, self._keepalive_expired)

    def _queue_write(self, data: bytes, close: bool = False) -> None:
        self._queued_writes += 1
        self.loop.call_soon(self._write, data, close)

    def _write(self, data: bytes, close: bool) -> None:
        self._queued_writes -= 1
        if self.transport.is_closing():
            return
        self.transport.write(data)
        if close or (self._close_after_answer and not self._queued_writes and self._fast is None
                     and (self.cycle is None or self.cycle.response_complete)):
            self.transport.close()

    def on_response_complete(self) -> None:
        self._answered_at = self.loop.time()  # an ASGI answer counts as activity for the timer above
        super().on_response_complete()

    def _keepalive_expired(self) -> None:
        self._keepalive_timer = None
        if self.transport.is_closing():
            return
        cycle = self.cycle
        if self._fast is not None or not self._awaiting_headers or self._header_bytes \
                or (cycle is not None and not cycle.response_complete):
            return  # a request is under way; its answer re-arms the timer
        left = self._answered_at + self.timeout_keep_alive - self.loop.time()
        if left > 0:
            self._keepalive_timer = self.loop.call_later(left, self._keepalive_expired)
        else:
            self.transport.close()

    def shutdown(self) -> None:
        if self._fast is not None or self._queued_writes:
            self._close_after_answer = True  # answer what was asked, then close (_write)
            if self.cycle is not None and not self.cycle.response_complete:
                self.cycle.keep_alive = False  # a request pipelined behind: uvicorn closes after it
        else:
            super().shutdown()

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
        self._cancel_header_timer()
        # After the answers to earlier requests of this connection, which may still be queued (_write).
        self.transport.pause_reading()
        self._queue_write(head % (status, _REASONS[status], len(body)) + body, close=True)

    def send_400_response(self, msg: str) -> None:
        # uvicorn's answer to a request it cannot parse, after any answer still queued (_write).
        self.transport.pause_reading()
        self.loop.call_soon(super().send_400_response, msg)


def _served_app(app: Any) -> ServerMiddleware | BoundedApp | None:
    """The server's middleware (or the UI's BoundedApp) inside what uvicorn runs (its proxy-headers
    wrapper, our app)."""
    for _ in range(8):
        if isinstance(app, ServerMiddleware | BoundedApp):
            return app
        entry = getattr(app, "entry", None)
        if isinstance(entry, ServerMiddleware):
            return entry
        app = getattr(app, "app", None)
        if app is None:
            return None
    return None
