"""The UI's HTML pages, rendered on the server from Jinja2 templates over the same data as the API.

Pages work without JavaScript (forms are plain GETs, the lineage graph is inline SVG); the small
static script only adds copy buttons and keyboard focus on search.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.templating import Jinja2Templates

from repast.errors import FeatureNotFound, RepastError
from repast.ui import history as hist
from repast.ui import tryit
from repast.ui.api import freshness_json, object_history, object_json, online_json, project_json, resolve
from repast.ui.catalog import KIND_SLUGS, KIND_TITLES, SLUGS, Catalog, Ref, feature_fields
from repast.ui.lineage import lineage, render_svg
from repast.ui.search import all_tags, find, make_query
from repast.ui.state import TOKEN_COOKIE, UiState

TEMPLATES = Jinja2Templates(directory=Path(__file__).parent / "templates")
TEMPLATES.env.filters["tojson_pretty"] = lambda v: json.dumps(v, indent=2, sort_keys=True, default=str)
TEMPLATES.env.filters["age"] = lambda s: _age(s)


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"


def render(state: UiState, request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    project = context.get("project")
    base = {"request": request, "root": state.root_path, "state": state, "slugs": KIND_SLUGS,
            "titles": KIND_TITLES, "slug_items": list(SLUGS.items()), "project": project,
            "auth": state.auth is not None,
            "link": lambda kind, name: state.object_url(project or "", Ref(kind, str(name))),
            "view_link": lambda name: state.object_url(project or "", _view_ref(state, project or "", name))}
    return TEMPLATES.TemplateResponse(request, template, {**base, **context}, status_code=status)


def _view_ref(state: UiState, project: str, name: str) -> Ref:
    odfvs = state.catalog(project).specs["on_demand_feature_view"]
    return Ref("on_demand_feature_view" if name in odfvs else "feature_view", name)


def render_error(state: UiState, request: Request, status: int, detail: str) -> Response:
    project = request.path_params.get("project") if status != 404 else None
    return render(state, request, "error.html", status=status, status_code=status, detail=detail, project=project)


def page_router(state: UiState) -> APIRouter:
    router = APIRouter(include_in_schema=False, default_response_class=HTMLResponse)

    async def catalog_of(project: str) -> Catalog:
        return await run_in_threadpool(state.catalog, project)

    @router.get("/")
    async def index() -> Response:
        return RedirectResponse(state.project_url(state.store.project), status_code=307)

    @router.get("/projects")
    async def projects(request: Request) -> Response:
        names = await run_in_threadpool(state.projects)
        items = [project_json(state, await catalog_of(n)) for n in names]
        return render(state, request, "projects.html", items=items)

    @router.get("/projects/{project}")
    async def project(request: Request, project: str) -> Response:
        catalog = await catalog_of(project)
        overview = await run_in_threadpool(_overview, state, catalog)
        return render(state, request, "project.html", project=project, info=project_json(state, catalog), **overview)

    @router.get("/projects/{project}/search")
    async def search(request: Request, project: str, q: str = "", kind: list[str] = Query(default=[]),
                     tag: str = "", offset: int = 0) -> Response:
        catalog = await catalog_of(project)
        page = find(catalog, make_query(q, kind, tag, None, offset))
        return render(state, request, "search.html", project=project, page=page, q=q, kinds=page.query.kinds,
                      tag=tag, tags=all_tags(catalog), more=_pages(request, page.total, page.query.limit, offset))

    @router.get("/projects/{project}/lineage")
    async def project_lineage(request: Request, project: str) -> Response:
        catalog = await catalog_of(project)
        svg = render_svg(lineage(catalog), lambda r: state.object_url(project, r))
        return render(state, request, "lineage.html", project=project, svg=svg)

    @router.get("/projects/{project}/history")
    async def history(request: Request, project: str, offset: int = 0) -> Response:
        make_query(offset=offset)
        entries = await run_in_threadpool(state.history, project)
        return render(state, request, "history.html", project=project,
                      items=[hist.entry_json(e) for e in entries[offset:offset + 50]],
                      more=_pages(request, len(entries), 50, offset))

    @router.get("/projects/{project}/history/{version}")
    async def history_version(request: Request, project: str, version: int) -> Response:
        entries = await run_in_threadpool(state.history, project)
        entry, changes = hist.version_diffs(entries, version)
        return render(state, request, "version.html", project=project, entry=hist.entry_json(entry),
                      changes=changes)

    @router.get("/projects/{project}/freshness")
    async def project_freshness(request: Request, project: str) -> Response:
        catalog = await catalog_of(project)
        report = await run_in_threadpool(freshness_json, state, catalog)
        return render(state, request, "freshness.html", project=project, report=report)

    @router.get("/projects/{project}/{slug}")
    async def list_kind(request: Request, project: str, slug: str, q: str = "", tag: str = "",
                        offset: int = 0) -> Response:
        if slug not in SLUGS:
            raise FeatureNotFound(f"no kind '{slug}'; kinds: {sorted(SLUGS)}")
        catalog = await catalog_of(project)
        page = find(catalog, make_query(q, [slug], tag, None, offset))
        return render(state, request, "list.html", project=project, page=page, slug=slug, kind=SLUGS[slug],
                      q=q, tag=tag, tags=all_tags(catalog),
                      more=_pages(request, page.total, page.query.limit, offset))

    @router.get("/projects/{project}/{slug}/{name}")
    async def get_object(request: Request, project: str, slug: str, name: str) -> Response:
        catalog = await catalog_of(project)
        ref = resolve(catalog, slug, name)
        context = await run_in_threadpool(_object_context, state, catalog, ref, request)
        return render(state, request, "object.html", project=project, **context)

    @router.get("/login")
    async def login_form(request: Request, next: str = "") -> Response:
        return render(state, request, "login.html", next=_safe_next(state, next), failed=False)

    @router.post("/login")
    async def login(request: Request) -> Response:
        # A urlencoded form parsed here: python-multipart is not needed for two fields.
        form = parse_qs((await request.body())[:8192].decode("utf-8", "replace"))
        token, next = form.get("token", [""])[0], form.get("next", [""])[0]
        if state.auth is None or not state.token_is_valid(token):
            return render(state, request, "login.html", status=401, next=_safe_next(state, next), failed=True)
        response = RedirectResponse(_safe_next(state, next), status_code=303)
        response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="strict", path=state.root_path or "/")
        return response

    return router


def _overview(state: UiState, catalog: Catalog) -> dict[str, Any]:
    """Stale views and the latest applies, for the project page."""
    context: dict[str, Any] = {"stale": freshness_json(state, catalog)["stale"]}
    try:
        context["recent"] = [hist.entry_json(e) for e in state.history(catalog.project)[:5]]
    except hist.HistoryUnavailable as e:
        context["history_note"] = str(e)
    return context


def _object_context(state: UiState, catalog: Catalog, ref: Ref, request: Request) -> dict[str, Any]:
    obj = object_json(state, catalog, ref)
    context: dict[str, Any] = {"obj": obj, "ref": ref, "kind_title": KIND_TITLES[ref.kind]}
    context["svg"] = render_svg(lineage(catalog, ref), lambda r: state.object_url(catalog.project, r))
    if ref.kind in ("feature_view", "on_demand_feature_view"):
        context["features"] = {f.get("name") for f in feature_fields(catalog, ref.kind, obj["spec"])}
    if ref.kind == "feature_view":
        context["freshness"] = freshness_json(state, catalog, [ref.name])["views"][0]
    try:
        context["history"] = object_history(state, catalog, ref)[:20]
    except hist.HistoryUnavailable as e:
        context["history_note"] = str(e)
    if ref.kind in ("feature_view", "feature_service"):
        context.update(_try_context(state, catalog, ref, request))
    return context


def _try_context(state: UiState, catalog: Catalog, ref: Ref, request: Request) -> dict[str, Any]:
    inputs = tryit.inputs_of(catalog, ref)
    given = {i.name: request.query_params.getlist(i.name) for i in inputs if i.name in request.query_params}
    context: dict[str, Any] = {"try_inputs": inputs, "try_given": {k: ",".join(v) for k, v in given.items()}}
    if "try" in request.query_params:
        try:
            context["try_result"] = online_json(state, catalog, ref, given)
            return context
        except RepastError as e:
            context["try_error"] = str(e)
    columns = tryit.example_columns(inputs)
    context["try_result_snippets"] = tryit.snippets(catalog, ref, columns, state.server_url, state.auth is not None)
    return context


def _pages(request: Request, total: int, limit: int, offset: int) -> dict[str, str | None]:
    """Previous/next links keeping the other query parameters."""
    def link(new_offset: int) -> str:
        params = [(k, v) for k, v in request.query_params.multi_items() if k != "offset"]
        return "?" + urlencode([*params, ("offset", str(new_offset))])
    return {"prev": link(max(0, offset - limit)) if offset > 0 else None,
            "next": link(offset + limit) if offset + limit < total else None}


def _safe_next(state: UiState, target: str) -> str:
    """Only a path of this UI: never an absolute URL someone slipped into the login link."""
    if target.startswith(state.root_path + "/") and not target.startswith("//"):
        return target
    return state.url("/")
