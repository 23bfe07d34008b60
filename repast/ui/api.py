"""The UI's JSON API under /api/v1: what the pages show, for scripts too. Read-only: GET only.

Lists: `{"items": [...], "total", "limit", "offset"}` with `q`, `tag`, `limit` (1..500, default 50)
and `offset`. An unknown project, kind or object is 404 `{"error": "not_found", "detail"}`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from repast.errors import FeatureNotFound, InputError
from repast.server.responses import json_response
from repast.ui import history as hist
from repast.ui import tryit
from repast.ui.catalog import KIND_SLUGS, SLUGS, Catalog, Ref
from repast.ui.freshness import freshness
from repast.ui.lineage import lineage
from repast.ui.search import all_tags, find, make_query
from repast.ui.state import UiState


def resolve(catalog: Catalog, slug: str, name: str) -> Ref:
    """The object a URL names; FeatureNotFound (404) for an unknown kind or name."""
    if slug not in SLUGS:
        raise FeatureNotFound(f"no kind '{slug}'; kinds: {sorted(SLUGS)}")
    ref = Ref(SLUGS[slug], name)
    catalog.spec(ref)
    return ref


def object_json(state: UiState, catalog: Catalog, ref: Ref) -> dict[str, Any]:
    entry = catalog.entry(ref)
    return {**entry.to_json(), "project": catalog.project, "url": state.object_url(catalog.project, ref),
            "spec": catalog.spec(ref),
            "neighbours": [{"relation": rel, **other.to_json(), "url": state.object_url(catalog.project, other)}
                           for rel, other in catalog.neighbours(ref)]}


def project_json(state: UiState, catalog: Catalog) -> dict[str, Any]:
    return {"name": catalog.project, "version": catalog.version, "counts": catalog.counts(),
            "tags": all_tags(catalog), "url": state.project_url(catalog.project),
            "configured": catalog.project == state.backends.project}


def object_history(state: UiState, catalog: Catalog, ref: Ref) -> list[dict[str, Any]]:
    if ref.kind == "feature":  # a feature changes with its view
        view = catalog.spec(ref)
        ref = Ref(view["view_kind"], view["view"])
    return hist.object_history(state.history(catalog.project), ref.kind, ref.name)


def freshness_json(state: UiState, catalog: Catalog, views: list[str] | None = None) -> dict[str, Any]:
    online = state.backends.online_store if catalog.project == state.backends.project else None
    return freshness(catalog, state.backends.registry, online, datetime.now(UTC), views).to_json()


def online_json(state: UiState, catalog: Catalog, ref: Ref, given: dict[str, list[str]]) -> dict[str, Any]:
    if ref.kind not in ("feature_view", "feature_service"):
        raise InputError("try it reads feature views and feature services only")
    inputs = tryit.inputs_of(catalog, ref)
    columns = tryit.parse_keys(inputs, given)
    result = tryit.read_online(state.backends, catalog, ref, columns)
    return {**result, **tryit.snippets(catalog, ref, columns, state.server_url, state.auth is not None)}


class ApiRoutes:
    """The /api/v1 handlers, bound to the UI's state. Registry reads run in the thread pool."""

    def __init__(self, state: UiState) -> None:
        self.state = state

    async def catalog(self, project: str) -> Catalog:
        return await run_in_threadpool(self.state.catalog, project)

    async def projects(self) -> Response:
        names = await run_in_threadpool(self.state.projects)
        return json_response({"items": [project_json(self.state, await self.catalog(n)) for n in names]})

    async def project(self, project: str) -> Response:
        return json_response(project_json(self.state, await self.catalog(project)))

    async def search(self, project: str, q: str = "", kind: list[str] = Query(default=[]), tag: str = "",
                     limit: int | None = None, offset: int | None = None) -> Response:
        page = find(await self.catalog(project), make_query(q, kind, tag, limit, offset))
        return json_response(_with_urls(self.state, project, page.to_json()))

    async def project_lineage(self, project: str) -> Response:
        return json_response(lineage(await self.catalog(project)).to_json())

    async def history(self, project: str, limit: int = 50, offset: int = 0) -> Response:
        make_query(limit=limit, offset=offset)  # same bounds as lists
        entries = await run_in_threadpool(self.state.history, project)
        return json_response({"items": [hist.entry_json(e) for e in entries[offset:offset + limit]],
                              "total": len(entries), "limit": limit, "offset": offset})

    async def history_version(self, project: str, version: int) -> Response:
        entries = await run_in_threadpool(self.state.history, project)
        entry, changes = hist.version_diffs(entries, version)
        return json_response({**hist.entry_json(entry), "changes": changes})

    async def freshness(self, project: str) -> Response:
        catalog = await self.catalog(project)
        return json_response(await run_in_threadpool(freshness_json, self.state, catalog))

    async def list_kind(self, project: str, slug: str, q: str = "", tag: str = "", limit: int | None = None,
                        offset: int | None = None) -> Response:
        if slug not in SLUGS:
            raise FeatureNotFound(f"no kind '{slug}'; kinds: {sorted(SLUGS)}")
        page = find(await self.catalog(project), make_query(q, [slug], tag, limit, offset))
        return json_response(_with_urls(self.state, project, page.to_json()))

    async def get_object(self, project: str, slug: str, name: str) -> Response:
        catalog = await self.catalog(project)
        return json_response(object_json(self.state, catalog, resolve(catalog, slug, name)))

    async def object_lineage(self, project: str, slug: str, name: str) -> Response:
        catalog = await self.catalog(project)
        return json_response(lineage(catalog, resolve(catalog, slug, name)).to_json())

    async def object_history(self, project: str, slug: str, name: str) -> Response:
        catalog = await self.catalog(project)
        ref = resolve(catalog, slug, name)
        return json_response({"items": await run_in_threadpool(object_history, self.state, catalog, ref)})

    async def online(self, request: Request, project: str, slug: str, name: str) -> Response:
        catalog = await self.catalog(project)
        ref = resolve(catalog, slug, name)
        given = {k: request.query_params.getlist(k) for k in request.query_params}
        return json_response(await run_in_threadpool(online_json, self.state, catalog, ref, given))


def api_router(state: UiState) -> APIRouter:
    """GET routes only: the UI never writes. Fixed paths come before `/{slug}` ones."""
    api = ApiRoutes(state)
    # A name may hold '/' (data sources named by their path): the routes with a suffix come first.
    p, o = "/projects/{project}", "/projects/{project}/{slug}/{name:path}"
    routes: list[tuple[str, Callable[..., Awaitable[Response]], str]] = [
        ("/projects", api.projects, "Projects in the registry."),
        (p, api.project, "One project: registry version and object counts."),
        (f"{p}/search", api.search, "Search names, descriptions, tags and owners."),
        (f"{p}/lineage", api.project_lineage, "The project's lineage graph."),
        (f"{p}/history", api.history, "Applies, newest first: who, when, what changed."),
        (f"{p}/history/{{version}}", api.history_version, "One apply with a diff per changed object."),
        (f"{p}/freshness", api.freshness, "Per feature view: watermark, last run, newest value."),
        (f"{p}/{{slug}}", api.list_kind, "Objects of one kind, filtered and paginated."),
        (f"{o}/lineage", api.object_lineage, "Lineage around one object."),
        (f"{o}/history", api.object_history, "Applies that changed one object."),
        (f"{o}/online", api.online, "Online values for entity keys given as query parameters (join key=value)."),
        (o, api.get_object, "One object, its spec and its neighbours."),
    ]
    router = APIRouter(prefix="/api/v1")
    for path, handler, summary in routes:
        router.add_api_route(path, handler, methods=["GET"], summary=summary)
    return router


def _with_urls(state: UiState, project: str, page: dict[str, Any]) -> dict[str, Any]:
    for item in page["items"]:
        item["url"] = state.object_url(project, Ref(item["kind"], item["name"]))
        item["kind_slug"] = KIND_SLUGS[item["kind"]]
    return page
