"""The server's one middleware, pure ASGI: auth, body size limit, metrics, and the last-resort 500.

Pure ASGI (not BaseHTTPMiddleware) so a request costs one extra await and no extra task. Auth
and the declared body size are checked before the app sees the request; a body without a
Content-Length is counted while it is received. Hot endpoints (`fast_routes`: POST path ->
body-to-JSON handler) are answered here directly, skipping FastAPI's routing and dependency
machinery, which measured at about half the latency of a one-entity read; under `repast serve`
most of them are answered one layer further out, by the HTTP protocol (repast.server.protocol),
through `fast_handler` and `refusal`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from time import perf_counter
from typing import Any

from repast.errors import RepastError
from repast.log_limit import FailureLog
from repast.server.access_log import AccessLog
from repast.server.auth import TokenAuth
from repast.server.errors import JSON_HEADERS, ApiError, exception_body
from repast.server.limits import HeaderBounds
from repast.server.metrics import ServerMetrics, endpoint_label
from repast.server.online_endpoint import AnswerWithHeaders

log = logging.getLogger("repast.server")
_failures = FailureLog(log)

Scope = dict[str, Any]
Message = dict[str, Any]
FastHandler = Callable[[bytes], bytes | Awaitable[bytes]]  # bytes at once, or to await


def too_large(limit: int) -> ApiError:
    return ApiError(413, "payload_too_large",
                    f"request body exceeds the limit of {limit} bytes (feature_server.max_body_bytes)")


def ok_headers(answer: bytes) -> list[tuple[bytes, bytes]]:
    """The headers of a hot endpoint's 200: JSON, its length, and any the answer carries."""
    headers = [*JSON_HEADERS, (b"content-length", b"%d" % len(answer))]
    if isinstance(answer, AnswerWithHeaders):
        headers += answer.headers
    return headers


def error_answer(exc: BaseException) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """The status, headers and JSON body answering `exc`."""
    status, body = exception_body(exc)
    headers = list(JSON_HEADERS)
    if isinstance(exc, ApiError):
        headers += [(k.encode(), v.encode()) for k, v in exc.headers.items()]
    headers.append((b"content-length", str(len(body)).encode()))
    return status, headers, body


async def send_error(send: Any, exc: BaseException) -> None:
    status, headers, body = error_answer(exc)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class ServerMiddleware:
    def __init__(self, app: Any, metrics: ServerMetrics, auth: TokenAuth | None, max_body_bytes: int,
                 fast_routes: dict[str, FastHandler] | None = None, bounds: HeaderBounds | None = None) -> None:
        self.app = app
        self.metrics = metrics
        self.auth = auth
        self.max_body_bytes = max_body_bytes
        self.fast_routes = fast_routes or {}
        self.bounds = bounds or HeaderBounds()  # header bounds the HTTP protocol enforces
        self.access_log = AccessLog()  # lines of answers the HTTP protocol gives itself

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = perf_counter()
        handler = self.fast_routes.get(scope["path"]) if scope["method"] == "POST" else None
        if handler is None:
            await self._framework(scope, receive, send, start)
            return
        # A hot endpoint, answered here (one coroutine less than a call to a helper): the handler
        # turns the whole body into the response body; nothing is sent before it returns, so any
        # failure still gets its JSON error.
        try:
            receive = self._checked(scope, receive)
            message = await receive()
            body = message.get("body", b"")
            if message.get("more_body"):
                chunks = [body]
                while message.get("more_body"):
                    message = await receive()
                    chunks.append(message.get("body", b""))
                body = b"".join(chunks)
            if message["type"] == "http.disconnect":
                self.metrics.observe(scope["path"], 499, perf_counter() - start)  # the client left
                return
            answer = handler(body)
            if not isinstance(answer, bytes):
                answer = await answer
        except Exception as exc:
            status, headers, error = self.refusal(exc, scope["method"], scope["path"])
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": error})
            self.metrics.observe(scope["path"], status, perf_counter() - start)
            return
        await send({"type": "http.response.start", "status": 200, "headers": ok_headers(answer)})
        await send({"type": "http.response.body", "body": answer})
        self.metrics.observe(scope["path"], 200, perf_counter() - start)

    def refusal(self, exc: Exception, method: str, path: str) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """The error answer to a hot endpoint's failure (status, headers, JSON body), reported once
        per kind and interval when it is the server's fault."""
        answer = error_answer(exc)
        if answer[0] >= 500 and not isinstance(exc, ApiError):
            _report(exc, {"method": method, "path": path}, "request failed")
        return answer

    def fast_handler(self, method: bytes, path: str, headers: list[tuple[bytes, bytes]]) -> FastHandler | None:
        """For the HTTP protocol (repast.server.protocol): the handler of a hot endpoint whose request
        passes auth and declares an acceptable Content-Length, else None (the request then takes the
        ASGI path, which answers any refusal)."""
        if method != b"POST":
            return None
        handler = self.fast_routes.get(path)
        if handler is None:
            return None
        try:
            declared = self._declared_length_checked("POST", path, headers)
        except ApiError:
            return None
        return handler if declared else None

    async def _framework(self, scope: Scope, receive: Any, send: Any, start: float) -> None:
        """Every other request: into FastAPI, with auth, the body limit and the last-resort 500."""
        state = {"status": 500, "started": False}

        async def send_tracked(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
                state["started"] = True
            await send(message)

        try:
            receive = self._checked(scope, receive)
            await self.app(scope, receive, send_tracked)
        except Exception as exc:
            if state["started"]:
                _report(exc, scope, "error after the response started")
            else:
                if exception_body(exc)[0] >= 500 and not isinstance(exc, ApiError):
                    _report(exc, scope, "request failed")
                await send_error(send_tracked, exc)
        finally:
            self.metrics.observe(endpoint_label(scope["path"]), int(state["status"]), perf_counter() - start)

    def _checked(self, scope: Scope, receive: Any) -> Any:
        """Check auth and the declared size; returns `receive`, wrapped to count undeclared bodies."""
        if self._declared_length_checked(scope["method"], scope["path"], scope["headers"]):
            return receive
        return self._counting(receive)

    def _declared_length_checked(self, method: str, path: str, headers: list[tuple[bytes, bytes]]) -> bool:
        """Check auth and the declared body size (ApiError when refused); whether a length was declared."""
        authorization = None
        length = None
        for name, value in headers:
            if name == b"authorization":
                authorization = value
            elif name == b"content-length":
                length = value
        if self.auth is not None:
            self.auth.check(method, path, authorization)
        if length is None:
            return False
        if not length.isdigit():
            raise ApiError(400, "invalid_request", "Content-Length must be a whole number of bytes")
        if int(length) > self.max_body_bytes:
            raise too_large(self.max_body_bytes)
        return True

    def _counting(self, receive: Any) -> Any:
        limit = self.max_body_bytes
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message: Message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise too_large(limit)
            return message
        return counted


class ErrorMiddleware:
    """Inside FastAPI's own stack: an exception a route raises becomes its JSON error answer
    (FastAPI's outermost layer would answer a plain-text 500 first)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, send_tracked)
        except Exception as exc:
            if started:
                _report(exc, scope, "error after the response started")
                return
            if exception_body(exc)[0] >= 500 and not isinstance(exc, ApiError):
                _report(exc, scope, "request failed")
            await send_error(send_tracked, exc)


def _report(exc: Exception, scope: Scope, what: str) -> None:
    """One line per kind of failure and endpoint per interval; a traceback only for a bug."""
    endpoint = endpoint_label(scope["path"])
    kind = f"{type(exc).__name__} {scope['method']} {endpoint}"
    if isinstance(exc, RepastError):  # an outage or a misconfiguration: the message says it all
        _failures.report(kind, f"{what}: {scope['method']} {endpoint}: {type(exc).__name__}: {exc}",
                         level=logging.WARNING)
    else:
        _failures.report(kind, f"{what}: {scope['method']} {endpoint}", exc_info=exc)
