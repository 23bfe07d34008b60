"""HTTP errors of the feature server: the one place exceptions become statuses and JSON bodies.

Every error body is `{"error": <kind>, "detail": <what and where>}`. repast's own exceptions map
by class (a user or environment problem), anything else is a real fault (500). The client maps
kinds back to the same exception classes, so a caller catches `FeatureNotFound` whether it talks
to the SDK or to the server. This module imports no web framework, so the client can use it.
"""

from __future__ import annotations

import orjson

from repast.errors import (
    ConfigError,
    DefinitionError,
    EntityKeyError,
    FeatureNotFound,
    InputError,
    MissingExtra,
    RegistryConflict,
    RepastError,
    StoreUnavailable,
)

# exception class -> (HTTP status, error kind). Checked in order: subclasses before bases.
ERROR_TABLE: list[tuple[type[RepastError], int, str]] = [
    (FeatureNotFound, 404, "not_found"),
    (EntityKeyError, 400, "entity_key_error"),
    (InputError, 400, "invalid_input"),
    (DefinitionError, 400, "invalid_definition"),
    (RegistryConflict, 409, "registry_conflict"),
    (StoreUnavailable, 503, "store_unavailable"),
    (ConfigError, 500, "config_error"),
    (MissingExtra, 500, "missing_extra"),
]

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


def error_body(kind: str, detail: str) -> bytes:
    return orjson.dumps({"error": kind, "detail": detail})


def exception_body(exc: BaseException) -> tuple[int, bytes]:
    """Status and JSON body for `exc`; a real fault's detail does not leak internals."""
    status, kind = status_and_kind(exc)
    detail = str(exc) if status != 500 or isinstance(exc, RepastError) else "internal server error; see the server log"
    return status, error_body(kind, detail)


def exception_for(kind: str, detail: str, status: int) -> Exception:
    """The exception a client raises for an error body: the server's class, by kind."""
    for cls, _, table_kind in ERROR_TABLE:
        if table_kind == kind:
            return cls(detail)
    if status in (400, 413, 422):
        return InputError(f"{kind}: {detail}")
    return ServerError(status, kind, detail)


class ServerError(RepastError):
    """The feature server refused a request for a reason with no SDK counterpart (auth, 500, ...)."""

    def __init__(self, status: int, kind: str, detail: str) -> None:
        super().__init__(f"HTTP {status} {kind}: {detail}")
        self.status = status
        self.kind = kind
        self.detail = detail
