"""The web UI's ASGI app: HTML pages, the JSON API under /api/v1, static assets. Read-only.

Behind a path prefix (`root_path`, e.g. /repast under Istio), the app answers both the prefixed
path and the path with the prefix already stripped by the proxy, and writes every URL with the
prefix. When the feature server has token auth, every page and API call needs a token (a read
token is enough): an `Authorization: Bearer` header, or the cookie the login form sets.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import RedirectResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from repast.errors import RepastError
from repast.server.auth import auth_from_config
from repast.server.errors import ApiError, error_body, status_and_kind
from repast.ui.api import api_router
from repast.ui.history import HistoryUnavailable
from repast.ui.pages import page_router, render_error
from repast.ui.state import TOKEN_COOKIE, UiState

if TYPE_CHECKING:
    from repast.jobs.backends import Backends

HERE = Path(__file__).parent
OPEN_PATHS = ("/healthz", "/login", "/static/")


def normalize_root_path(root_path: str) -> str:
    """'/repast/' -> '/repast'; '' and '/' -> ''."""
    root = "/" + root_path.strip("/") if root_path.strip("/") else ""
    if any(c in root for c in " ?#\"'<>"):
        from repast.errors import InputError

        raise InputError(f"--root-path must be a URL path like /repast, got {root_path!r}")
    return root


def create_ui_app(backends: Backends, root_path: str = "", server_url: str = "http://localhost:6566",
                  registry_ttl_sec: float | None = None) -> ASGIApp:
    """The UI for one repo's registry (FeatureStore.backends), every URL under `root_path`."""
    state = UiState(backends, normalize_root_path(root_path), server_url,
                    auth_from_config(backends.config.feature_server), registry_ttl_sec)
    try:
        state.catalog(backends.project)  # built now, not on the first visitor's request
    except RepastError:
        pass  # an unreachable registry is reported by the pages, and retried on each request
    app = FastAPI(title="repast UI", docs_url=None, redoc_url=None, openapi_url="/api/v1/openapi.json")
    app.include_router(api_router(state))
    app.include_router(page_router(state))
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.add_api_route("/healthz", _healthz, methods=["GET"], include_in_schema=False)

    async def on_error(request: Request, exc: Exception) -> Response:
        return _error_response(state, request, exc)

    for exc_class in (RepastError, ApiError, StarletteHTTPException, RequestValidationError):
        app.add_exception_handler(exc_class, on_error)
    return RootPathMiddleware(AuthMiddleware(app, state), state.root_path)


async def _healthz() -> Response:
    return Response(b'{"status":"ok"}', media_type="application/json")


def _error_response(state: UiState, request: Request, exc: Exception) -> Response:
    if isinstance(exc, HistoryUnavailable):
        status, kind = 501, "not_available"
    elif isinstance(exc, StarletteHTTPException):
        status, kind = exc.status_code, "not_found" if exc.status_code == 404 else "http_error"
    elif isinstance(exc, RequestValidationError):
        status, kind = 422, "invalid_request"
    else:
        status, kind = status_and_kind(exc)
    detail = _detail(request, exc)
    headers = dict(getattr(exc, "headers", None) or {})
    if request.url.path.startswith("/api/"):
        return Response(error_body(kind, detail), status_code=status, media_type="application/json",
                        headers=headers)
    return render_error(state, request, status, detail)


def _detail(request: Request, exc: Exception) -> str:
    if isinstance(exc, StarletteHTTPException):
        return f"nothing at {request.url.path}" if exc.status_code == 404 else str(exc.detail)
    if isinstance(exc, RequestValidationError):
        return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
    return str(exc)


class AuthMiddleware:
    """Token check for every request but /healthz, the login form and static assets."""

    def __init__(self, app: ASGIApp, state: UiState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.state.auth is None or scope["path"].startswith(OPEN_PATHS):
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        token = request.headers.get("authorization") or _cookie_header(request.cookies.get(TOKEN_COOKIE))
        try:
            self.state.auth.access_of(token.encode() if token else None)  # read or write: both may look
        except ApiError as e:
            if scope["path"].startswith("/api/"):
                response: Response = Response(error_body(e.kind, e.detail), status_code=e.status,
                                              media_type="application/json", headers=e.headers)
            else:
                target = quote(self.state.root_path + scope["path"], safe="/")
                response = RedirectResponse(self.state.url(f"/login?next={target}"), status_code=303)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _cookie_header(token: str | None) -> str | None:
    return f"Bearer {token}" if token else None


class RootPathMiddleware:
    """Serve under `root_path` whether or not the proxy stripped it; tell the app the prefix."""

    def __init__(self, app: ASGIApp, root_path: str) -> None:
        self.app = app
        self.root_path = root_path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and self.root_path:
            path: str = scope["path"]
            if path == self.root_path or path.startswith(self.root_path + "/"):
                path = path[len(self.root_path):] or "/"
            scope = {**scope, "path": path, "raw_path": path.encode(), "root_path": ""}
        await self.app(scope, receive, send)
