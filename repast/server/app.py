"""The feature server's ASGI app: Feast-compatible endpoints over one repo's Backends.

The request path is lean: the body is read and orjson-parsed by the handler, definitions come
from the store's TTL-cached Registry (no registry read per request), and responses are orjson
bytes. Errors of every kind become `{"error", "detail"}` in repast.server.errors.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson
from fastapi import FastAPI, Request, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from repast.definitions import PushSource
from repast.errors import FeatureNotFound, StoreUnavailable
from repast.jobs.materialize import materialize, materialize_incremental
from repast.jobs.push import push, write_to_online_store
from repast.server.auth import auth_from_config
from repast.server.dispatch import StoreCalls
from repast.server.documents import DocumentsEndpoint, document_routes
from repast.server.errors import error_body
from repast.server.feature_logging import ServedRowLogger
from repast.server.limits import HeaderBounds, RequestLimits
from repast.server.metrics import ServerMetrics
from repast.server.middleware import ErrorMiddleware, ServerMiddleware
from repast.server.online_endpoint import OnlineFeaturesEndpoint
from repast.server.registry_routes import add_registry_routes
from repast.server.responses import json_response
from repast.server.schemas import (
    IGNORED_FIELDS_HEADER,
    Body,
    GetOnlineFeaturesRequest,
    MaterializeIncrementalRequest,
    MaterializeRequest,
    PushRequest,
    RequestBody,
    WriteToOnlineStoreRequest,
    frame_from_json,
    parse_body,
    request_schema,
)
from repast.types.timestamps import as_utc

if TYPE_CHECKING:
    from repast.jobs.backends import Backends

# Where `repast serve --workers N` tells each worker process which feature_store.yaml to serve.
ENV_SERVE_CONFIG = "REPAST_SERVE_CONFIG"

Handler = Callable[[Request], Any]


class FeatureServer:
    """The endpoint handlers, bound to one repo's backends and the server's metrics."""

    def __init__(self, backends: Backends, metrics: ServerMetrics) -> None:
        self.backends = backends
        self.project = backends.project
        self.metrics = metrics
        config = backends.config.feature_server
        self.reads = StoreCalls(deadline_seconds=config.read_deadline_seconds,
                                always_threaded=backends.online_store.capabilities.reads_on_own_thread)
        self._registry_json: tuple[int, str, bytes] | None = None  # (version, ETag, body)
        self.feature_log = ServedRowLogger(config.feature_logging, str(backends.config.repo_path))
        self.strict = config.strict_requests
        self.online = OnlineFeaturesEndpoint(backends.registry, backends.online_store, self.reads,
                                             RequestLimits.from_config(config), metrics, self.feature_log,
                                             strict=self.strict)
        self.documents = DocumentsEndpoint(backends)

    def _parsed(self, body: bytes, model: type[Body]) -> Body:
        return parse_body(body, model, strict=self.strict)

    async def get_online_features(self, request: Request) -> Response:
        # Served by the middleware's fast lane; this route documents it and serves if mounted alone.
        answer = self.online.answer(await request.body())
        body = answer if isinstance(answer, bytes) else await answer
        headers = {k.decode(): v.decode() for k, v in getattr(body, "headers", [])}
        return Response(body, media_type="application/json", headers=headers)

    async def push(self, request: Request) -> Response:
        req = self._parsed(await request.body(), PushRequest)
        source = self.backends.registry.contents().get("data_source", req.push_source_name)
        if not isinstance(source, PushSource):
            raise FeatureNotFound(f"data source '{req.push_source_name}' is a {type(source).__name__}, "
                                  "not a PushSource; push only to push sources")
        table = frame_from_json(req.df, _timestamp_columns(source))
        b = self.backends
        await run_in_threadpool(lambda: push(b.registry, b.offline_engine, b.online_store, req.push_source_name,
                                             table, req.to))
        return _with_ignored(json_response({"status": "ok", "rows": table.num_rows}), req)

    async def write_to_online_store(self, request: Request) -> Response:
        req = self._parsed(await request.body(), WriteToOnlineStoreRequest)
        view = self.backends.registry.contents().get("feature_view", req.feature_view_name)
        table = frame_from_json(req.df, _timestamp_columns(view.batch_source))
        await run_in_threadpool(write_to_online_store, self.backends.registry, self.backends.online_store,
                                req.feature_view_name, table)
        return _with_ignored(json_response({"status": "ok", "rows": table.num_rows}), req)

    async def materialize(self, request: Request) -> Response:
        req = self._parsed(await request.body(), MaterializeRequest)
        views = self._known_views(req.feature_views)
        b = self.backends
        await run_in_threadpool(lambda: materialize(b.registry, b.offline_engine, b.online_store,
                                                    as_utc(req.start_ts), as_utc(req.end_ts), views))
        return _with_ignored(json_response({"status": "ok"}), req)

    async def materialize_incremental(self, request: Request) -> Response:
        req = self._parsed(await request.body(), MaterializeIncrementalRequest)
        views = self._known_views(req.feature_views)
        b = self.backends
        await run_in_threadpool(lambda: materialize_incremental(b.registry, b.offline_engine, b.online_store,
                                                                as_utc(req.end_ts), views))
        return _with_ignored(json_response({"status": "ok"}), req)

    def close(self) -> None:
        """Release the server's own threads (store calls, served-row log); the store is its owner's."""
        self.feature_log.close()
        self.reads.close()
        self.documents.close()

    def _known_views(self, names: list[str] | None) -> list[str] | None:
        """Check every named view before any is materialized, so a typo writes nothing."""
        for name in names or []:
            self.backends.registry.contents().get("feature_view", name)  # FeatureNotFound names the registered views
        return names

    async def registry(self, request: Request) -> Response:
        """The project's definitions as `{version, specs}`; re-serialized only when the version moves."""
        project = request.query_params.get("project", self.project)
        if project != self.project:
            raise FeatureNotFound(f"project '{project}' is not served here; this server serves "
                                  f"'{self.project}'")
        version = self.backends.registry.version  # TTL-cached: no registry read per request
        cached = self._registry_json
        if cached is None or cached[0] != version:
            snapshot = await run_in_threadpool(self.backends.registry.snapshot, project)
            body = orjson.dumps({"project": project, "version": snapshot.version, "specs": snapshot.specs})
            cached = self._registry_json = (version, f'"{project}-{snapshot.version}"', body)
        _, etag, body = cached
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers={"etag": etag})
        return Response(body, media_type="application/json", headers={"etag": etag})

    async def health(self, request: Request) -> Response:
        return json_response({"status": "ok"})

    async def ready(self, request: Request) -> Response:
        """200 while reads can be served (from cached definitions, if the registry is away: said in
        `registry`); 503 when the online store does not answer within the read deadline."""
        try:
            await self.reads.threaded(check_online_store, self.backends)
        except StoreUnavailable as e:
            return Response(error_body("store_unavailable", str(e)), status_code=503,
                            media_type="application/json")
        registry = self.backends.registry
        if registry.stale_since is None:
            return json_response({"status": "ready"})
        since = datetime.fromtimestamp(registry.stale_since, UTC).isoformat().replace("+00:00", "Z")
        return json_response({"status": "ready", "registry": {
            "status": "stale", "since": since, "version": registry.cached_version,
            "detail": f"serving cached definitions: {registry.stale_reason}"}})

    async def metrics_page(self, request: Request) -> Response:
        body, content_type = self.metrics.render()
        return Response(body, media_type=content_type)


def _with_ignored(response: Response, req: RequestBody) -> Response:
    """The response, naming the request's ignored fields in X-Repast-Ignored-Fields."""
    if req.ignored_fields:
        response.headers[IGNORED_FIELDS_HEADER] = ", ".join(req.ignored_fields)
    return response


def check_online_store(backends: Backends) -> None:
    """Raise StoreUnavailable unless the online store answers (and the registry can be read)."""
    backends.registry.contents()
    backends.online_store.ping()


def _timestamp_columns(source: Any) -> list[str]:
    return [c for c in (source.timestamp_field, source.created_timestamp_column) if c]


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    details = {404: ("not_found", f"no endpoint {request.url.path}"),
               405: ("method_not_allowed", f"{request.method} is not allowed on {request.url.path}")}
    kind, detail = details.get(exc.status_code, ("http_error", str(exc.detail)))
    return Response(error_body(kind, detail), status_code=exc.status_code, media_type="application/json",
                    headers=dict(exc.headers or {}))


def create_app(backends: Backends) -> FeatureServerApp:
    """The ASGI app serving one repo's `backends` (FeatureStore.backends). Definitions are read
    once here, then refreshed on the TTL."""
    from repast.version import __version__

    backends.config.require_section("feature_server")  # the server's tokens: needed here, not elsewhere
    backends.registry.contents()
    # Requests may re-check the registry inline on the event loop: never for longer than a moment.
    backends.registry.check_off_the_caller()
    metrics = ServerMetrics(backends.registry, lambda: backends.online_store)
    server = FeatureServer(backends, metrics)
    app = FeatureServerApp(title="repast feature server", version=__version__,
                           description="Feast-compatible HTTP API of a repast feature store.")
    posts: list[tuple[str, Handler, Any, str]] = [
        ("/get-online-features", server.get_online_features, GetOnlineFeaturesRequest,
         "Latest feature values, statuses and event timestamps per entity."),
        ("/push", server.push, PushRequest, "Write rows of a push source online, offline or both."),
        ("/write-to-online-store", server.write_to_online_store, WriteToOnlineStoreRequest,
         "Write rows of one feature view to the online store."),
        ("/materialize", server.materialize, MaterializeRequest,
         "Load the latest row per entity with start_ts <= event_ts < end_ts online."),
        ("/materialize-incremental", server.materialize_incremental, MaterializeIncrementalRequest,
         "Materialize each view from where its last run ended up to end_ts."),
        *document_routes(server.documents),
    ]
    for path, handler, model, summary in posts:
        app.add_api_route(path, handler, methods=["POST"], summary=summary, openapi_extra=request_schema(model))
    app.add_api_route("/health", server.health, methods=["GET"], summary="Liveness: the process answers.")
    app.add_api_route("/ready", server.ready, methods=["GET"], summary="Readiness: the online store answers.")
    app.add_api_route("/registry", server.registry, methods=["GET"],
                      summary="The project's definitions as JSON (read-only), with an ETag.")
    app.add_api_route("/metrics", server.metrics_page, methods=["GET"], summary="Prometheus metrics.")
    add_registry_routes(app, backends.registry)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.router.on_shutdown.append(server.close)  # served rows still queued are written, threads released
    app.state.feature_server = server
    app.add_middleware(ErrorMiddleware)
    config = backends.config.feature_server
    app.entry = ServerMiddleware(app.framework, metrics=metrics, auth=auth_from_config(config),
                                 max_body_bytes=config.max_body_bytes,
                                 fast_routes={"/get-online-features": server.online.answer,
                                              "/retrieve-online-documents": server.documents.answer},
                                 bounds=HeaderBounds.from_config(config))
    app.router.on_shutdown.append(app.entry.access_log.close)
    return app


class FeatureServerApp(FastAPI):
    """FastAPI, entered through the server's middleware placed outside FastAPI's own stack.

    FastAPI wraps every request in several middlewares of its own (errors, telemetry, body limits)
    that cost more than the hot endpoint's whole work; ours runs first and answers
    /get-online-features itself, so that request never enters them.
    """

    entry: ServerMiddleware

    async def framework(self, scope: Any, receive: Any, send: Any) -> None:
        await super().__call__(scope, receive, send)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.entry(scope, receive, send)

