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
    ConfigError,
    DataSourceNotFound,
    DefinitionError,
    EntityKeyError,
    EntityNotFound,
    FeatureNotFound,
    FeatureServiceNotFound,
    FeatureViewNotFound,
    InputError,
    MissingExtra,
    ProjectNotFound,
    RegistryConflict,
    RepastError,
    SavedDatasetNotFound,
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

# repast's class -> the name of Feast's exception for it (feast.errors), for Feast's error keys.
# Checked in order: subclasses before bases. Anything else is Feast's base class, FeastError.
FEAST_CLASSES: list[tuple[type[Exception], str]] = [
    (FeatureViewNotFound, "FeatureViewNotFoundException"),
    (EntityNotFound, "EntityNotFoundException"),
    (FeatureServiceNotFound, "FeatureServiceNotFoundException"),
    (DataSourceNotFound, "DataSourceNotFoundException"),
    (ProjectNotFound, "ProjectNotFoundException"),
    (SavedDatasetNotFound, "SavedDatasetNotFound"),
    (FeatureNotFound, "FeastObjectNotFoundException"),
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


def exception_for(kind: str, detail: str, status: int) -> Exception:
    """The exception a client raises for an error body: the server's class, by kind (repast's
    body) or by Feast's exception name (Feast's body; `kind` is then that name)."""
    for cls, _, table_kind in ERROR_TABLE:
        if table_kind == kind:
            return cls(detail)
    for feast_cls, name in FEAST_CLASSES:
        if name == kind:
            return feast_cls(detail)
    if status == 404:
        return FeatureNotFound(detail)
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
