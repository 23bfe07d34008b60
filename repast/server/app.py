"""The feature server's ASGI app: Feast-compatible endpoints over one FeatureStore.

The request path is lean: the body is read and orjson-parsed by the handler, definitions come
from the store's TTL-cached Registry (no registry read per request), and responses are orjson
bytes. Errors of every kind become `{"error", "detail"}` in repast.server.errors.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson
from fastapi import FastAPI, Request, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from repast.definitions import FeatureService, PushSource
from repast.errors import FeatureNotFound, StoreUnavailable
from repast.jobs.online_read import get_online_features
from repast.server.auth import auth_from_config
from repast.server.dispatch import StoreCalls
from repast.server.documents import document_routes
from repast.server.errors import error_body
from repast.server.feature_logging import ServedRowLogger
from repast.server.limits import RequestLimits
from repast.server.metrics import ServerMetrics
from repast.server.middleware import ErrorMiddleware, ServerMiddleware
from repast.server.online_json import OnlineJsonAnswers
from repast.server.registry_routes import add_registry_routes
from repast.server.responses import json_response, online_response_json
from repast.server.schemas import (
    IGNORED_FIELDS_HEADER,
    Body,
    GetOnlineFeaturesRequest,
    MaterializeIncrementalRequest,
    MaterializeRequest,
    OnlineRequest,
    PushRequest,
    RequestBody,
    WriteToOnlineStoreRequest,
    frame_from_json,
    parse_body,
    parse_online_request,
    request_schema,
)
from repast.types.timestamps import as_utc

if TYPE_CHECKING:
    from repast.store import FeatureStore

# Where `repast serve --workers N` tells each worker process which feature_store.yaml to serve.
ENV_SERVE_CONFIG = "REPAST_SERVE_CONFIG"

Handler = Callable[[Request], Any]


class FeatureServer:
    """The endpoint handlers, bound to one store and its metrics."""

    def __init__(self, store: FeatureStore, metrics: ServerMetrics) -> None:
        self.store = store
        self.metrics = metrics
        self.limits = RequestLimits.from_config(store.config.feature_server)
        self.reads = StoreCalls(deadline_seconds=store.config.feature_server.read_deadline_seconds,
                                always_threaded=type(store.online_store).reads_on_own_thread)
        self.answers = OnlineJsonAnswers(store.registry)
        self._registry_json: tuple[int, str, bytes] | None = None  # (version, ETag, body)
        self.feature_log = ServedRowLogger(store.config.feature_server.feature_logging, str(store.repo_path))
        self.strict = store.config.feature_server.strict_requests

    def _parsed(self, body: bytes, model: type[Body]) -> Body:
        return parse_body(body, model, strict=self.strict)

    def online_features(self, body: bytes) -> bytes | Awaitable[bytes]:
        """The hot path: a get-online-features body in, Feast's response JSON out. Answered at once
        while the store is read inline (no coroutine to create and await), else an awaitable."""
        req = parse_online_request(body, strict=self.strict)
        rows = req.rows
        self.limits.check_rows(rows)
        store = self.store
        features: Any = req.features
        if req.feature_service is not None:
            features = store.get_feature_service(req.feature_service)
            self.limits.check_values(rows, len(features.feature_refs()))
            if features.logging_config is not None and self.feature_log.config.enabled:
                return self._served_and_logged(features, req)
        else:
            self.limits.check_values(rows, len(features))
        args = (store.online_store, features, req.entities, req.full_feature_names)
        if not self.reads.inline:
            return self._answered_on_a_thread(args, rows, req.ignored)
        answer = self.reads.call_inline(self.answers.answer, *args)
        self.metrics.count_rows(rows)
        return AnswerWithHeaders.of(answer, req.ignored) if req.ignored else answer

    async def _answered_on_a_thread(self, args: tuple[Any, ...], rows: int, ignored: tuple[str, ...]) -> bytes:
        answer = await self.reads.threaded(self.answers.answer, *args)
        self.metrics.count_rows(rows)
        return AnswerWithHeaders.of(answer, ignored) if ignored else answer

    async def _served_and_logged(self, service: FeatureService, req: OnlineRequest) -> bytes:
        """A feature service whose served rows are logged: the log needs the response itself."""
        store = self.store
        response = await self.reads.call(get_online_features, store.registry, store.online_store, service,
                                         req.entities, req.full_feature_names)
        self.metrics.count_rows(req.rows)
        self.feature_log.log(service, req.entities, response)  # queued, written off the request path
        answer = online_response_json(response)
        return AnswerWithHeaders.of(answer, req.ignored) if req.ignored else answer

    async def get_online_features(self, request: Request) -> Response:
        # Served by the middleware's fast lane; this route documents it and serves if mounted alone.
        answer = self.online_features(await request.body())
        body = answer if isinstance(answer, bytes) else await answer
        headers = {k.decode(): v.decode() for k, v in getattr(body, "headers", [])}
        return Response(body, media_type="application/json", headers=headers)

    async def push(self, request: Request) -> Response:
        req = self._parsed(await request.body(), PushRequest)
        source = self.store.get_data_source(req.push_source_name)
        if not isinstance(source, PushSource):
            raise FeatureNotFound(f"data source '{req.push_source_name}' is a {type(source).__name__}, "
                                  "not a PushSource; push only to push sources")
        table = frame_from_json(req.df, _timestamp_columns(source))
        await run_in_threadpool(self.store.push, req.push_source_name, table, to=req.to)
        return _with_ignored(json_response({"status": "ok", "rows": table.num_rows}), req)

    async def write_to_online_store(self, request: Request) -> Response:
        req = self._parsed(await request.body(), WriteToOnlineStoreRequest)
        view = self.store.get_feature_view(req.feature_view_name)
        table = frame_from_json(req.df, _timestamp_columns(view.batch_source))
        await run_in_threadpool(self.store.write_to_online_store, req.feature_view_name, table)
        return _with_ignored(json_response({"status": "ok", "rows": table.num_rows}), req)

    async def materialize(self, request: Request) -> Response:
        req = self._parsed(await request.body(), MaterializeRequest)
        views = self._known_views(req.feature_views)
        await run_in_threadpool(self.store.materialize, as_utc(req.start_ts), as_utc(req.end_ts), views)
        return _with_ignored(json_response({"status": "ok"}), req)

    async def materialize_incremental(self, request: Request) -> Response:
        req = self._parsed(await request.body(), MaterializeIncrementalRequest)
        views = self._known_views(req.feature_views)
        await run_in_threadpool(self.store.materialize_incremental, as_utc(req.end_ts), views)
        return _with_ignored(json_response({"status": "ok"}), req)

    def _known_views(self, names: list[str] | None) -> list[str] | None:
        """Check every named view before any is materialized, so a typo writes nothing."""
        for name in names or []:
            self.store.get_feature_view(name)  # FeatureNotFound names the registered views
        return names

    async def registry(self, request: Request) -> Response:
        """The project's definitions as `{version, specs}`; re-serialized only when the version moves."""
        project = request.query_params.get("project", self.store.project)
        if project != self.store.project:
            raise FeatureNotFound(f"project '{project}' is not served here; this server serves "
                                  f"'{self.store.project}'")
        version = self.store.registry.version  # TTL-cached: no registry read per request
        cached = self._registry_json
        if cached is None or cached[0] != version:
            snapshot = await run_in_threadpool(self.store.registry.store.read, project)
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
            await self.reads.threaded(check_online_store, self.store)
        except StoreUnavailable as e:
            return Response(error_body("store_unavailable", str(e)), status_code=503,
                            media_type="application/json")
        registry = self.store.registry
        if registry.stale_since is None:
            return json_response({"status": "ready"})
        since = datetime.fromtimestamp(registry.stale_since, UTC).isoformat().replace("+00:00", "Z")
        return json_response({"status": "ready", "registry": {
            "status": "stale", "since": since, "version": registry.cached_version,
            "detail": f"serving cached definitions: {registry.stale_reason}"}})

    async def metrics_page(self, request: Request) -> Response:
        body, content_type = self.metrics.render()
        return Response(body, media_type=content_type)


class AnswerWithHeaders(bytes):
    """A hot endpoint's answer (bytes, so every path sends it as before) that also carries response
    headers; the server middleware and protocol send `headers` once they read them (see
    docs/server.md: until then the ignored fields of /get-online-features are in the log only)."""

    headers: list[tuple[bytes, bytes]]

    @classmethod
    def of(cls, answer: bytes, ignored: tuple[str, ...]) -> AnswerWithHeaders:
        headed = cls(answer)
        headed.headers = [(IGNORED_FIELDS_HEADER.encode(), ", ".join(ignored).encode())]
        return headed


def _with_ignored(response: Response, req: RequestBody) -> Response:
    """The response, naming the request's ignored fields in X-Repast-Ignored-Fields."""
    if req.ignored_fields:
        response.headers[IGNORED_FIELDS_HEADER] = ", ".join(req.ignored_fields)
    return response


def check_online_store(store: FeatureStore) -> None:
    """Raise StoreUnavailable unless the online store answers (and the registry can be read)."""
    store.registry.contents()
    store.online_store.ping()


def _timestamp_columns(source: Any) -> list[str]:
    return [c for c in (source.timestamp_field, source.created_timestamp_column) if c]


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    details = {404: ("not_found", f"no endpoint {request.url.path}"),
               405: ("method_not_allowed", f"{request.method} is not allowed on {request.url.path}")}
    kind, detail = details.get(exc.status_code, ("http_error", str(exc.detail)))
    return Response(error_body(kind, detail), status_code=exc.status_code, media_type="application/json",
                    headers=dict(exc.headers or {}))


def create_app(store: FeatureStore) -> FeatureServerApp:
    """The ASGI app serving `store`. Definitions are read once here, then refreshed on the TTL."""
    from repast.version import __version__

    store.config.require_section("feature_server")  # the server's tokens: needed here, not elsewhere
    store.registry.contents()
    metrics = ServerMetrics(store)
    server = FeatureServer(store, metrics)
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
        *document_routes(store),
    ]
    for path, handler, model, summary in posts:
        app.add_api_route(path, handler, methods=["POST"], summary=summary, openapi_extra=request_schema(model))
    app.add_api_route("/health", server.health, methods=["GET"], summary="Liveness: the process answers.")
    app.add_api_route("/ready", server.ready, methods=["GET"], summary="Readiness: the online store answers.")
    app.add_api_route("/registry", server.registry, methods=["GET"],
                      summary="The project's definitions as JSON (read-only), with an ETag.")
    app.add_api_route("/metrics", server.metrics_page, methods=["GET"], summary="Prometheus metrics.")
    add_registry_routes(app, store)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.router.on_shutdown.append(server.feature_log.close)  # served rows still queued are written
    app.state.feature_server = server
    app.add_middleware(ErrorMiddleware)
    app.entry = ServerMiddleware(app.framework, metrics=metrics, auth=auth_from_config(store.config.feature_server),
                                 max_body_bytes=store.config.feature_server.max_body_bytes,
                                 fast_routes={"/get-online-features": server.online_features})
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

