"""HTTP errors of the feature server: the one place exceptions become statuses and JSON bodies.

Every error body is `{"error": <kind>, "detail": <what and where>}` plus the keys of Feast's error
body, `{"module": "feast.errors", "class": <Feast's exception name>, "message": <the detail>}`, so
scripts and clients written for either server read it. repast's own exceptions map by class (a
user or environment problem), anything else is a real fault (500). The client maps kinds (or
Feast's class names) back to the same exception classes, so a caller catches `FeatureNotFound`
whether it talks to the SDK or to a server. This module imports no web framework, so the client
can use it.
"""

from __future__ import annotations

import orjson

from repast.errors import (
    ERROR_TABLE,
    FEAST_CLASSES,
    RepastError,
)

JSON_HEADERS = [(b"content-type", b"application/json")]


class ApiError(Exception):
    """A request the server refuses before it reaches the feature store (parsing, auth, size)."""

    def __init__(self, status: int, kind: str, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.kind = kind
        self.detail = detail
        self.headers = headers or {}


def malformed_json(detail: str) -> ApiError:
    return ApiError(400, "malformed_json", detail)


def invalid_request(detail: str) -> ApiError:
    return ApiError(422, "invalid_request", detail)


def status_and_kind(exc: BaseException) -> tuple[int, str]:
    """The HTTP status and error kind for any exception; 500 "internal_error" for real faults."""
    if isinstance(exc, ApiError):
        return exc.status, exc.kind
    for cls, status, kind in ERROR_TABLE:
        if isinstance(exc, cls):
            return status, kind
    if isinstance(exc, RepastError):
        return 400, "repast_error"
    return 500, "internal_error"


def error_body(kind: str, detail: str, feast_class: str = "FeastError") -> bytes:
    return orjson.dumps({"error": kind, "detail": detail, "module": "feast.errors", "class": feast_class,
                         "message": detail})


def feast_class(exc: BaseException) -> str:
    """The name of Feast's exception for `exc` (Feast's error body names it)."""
    for cls, name in FEAST_CLASSES:
        if isinstance(exc, cls):
            return name
    return "FeastError"


def exception_body(exc: BaseException) -> tuple[int, bytes]:
    """Status and JSON body for `exc`; a real fault's detail does not leak internals."""
    status, kind = status_and_kind(exc)
    detail = str(exc) if status != 500 or isinstance(exc, RepastError) else "internal server error; see the server log"
    return status, error_body(kind, detail, feast_class(exc))


