"""The UI's HTML pages, rendered on the server from Jinja2 templates over the same data as the API.

Pages work without JavaScript (forms are plain GETs, the lineage graph is inline SVG); the small
static script only adds copy buttons and keyboard focus on search.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
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
from repast.ui.monitoring import monitoring_pictures
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


class PageRoutes:
    """The HTML page handlers, bound to the UI's state. Registry reads run in the thread pool."""

    def __init__(self, state: UiState) -> None:
        self.state = state

    async def catalog(self, project: str) -> Catalog:
        return await run_in_threadpool(self.state.catalog, project)

    async def index(self) -> Response:
        return RedirectResponse(self.state.project_url(self.state.backends.project), status_code=307)

    async def projects(self, request: Request) -> Response:
        names = await run_in_threadpool(self.state.projects)
        items = [project_json(self.state, await self.catalog(n)) for n in names]
        return render(self.state, request, "projects.html", items=items)

    async def project(self, request: Request, project: str) -> Response:
        catalog = await self.catalog(project)
        overview = await run_in_threadpool(_overview, self.state, catalog)
        return render(self.state, request, "project.html", project=project, info=project_json(self.state, catalog),
                      **overview)

    async def search(self, request: Request, project: str, q: str = "", kind: list[str] = Query(default=[]),
                     tag: str = "", offset: int = 0) -> Response:
        catalog = await self.catalog(project)
        page = find(catalog, make_query(q, kind, tag, None, offset))
        return render(self.state, request, "search.html", project=project, page=page, q=q, kinds=page.query.kinds,
                      tag=tag, tags=all_tags(catalog), more=_pages(request, page.total, page.query.limit, offset))

    async def project_lineage(self, request: Request, project: str) -> Response:
        catalog = await self.catalog(project)
        svg = render_svg(lineage(catalog), lambda r: self.state.object_url(project, r))
        return render(self.state, request, "lineage.html", project=project, svg=svg)

    async def history(self, request: Request, project: str, offset: int = 0) -> Response:
        make_query(offset=offset)
        entries = await run_in_threadpool(self.state.history, project)
        return render(self.state, request, "history.html", project=project,
                      items=[hist.entry_json(e) for e in entries[offset:offset + 50]],
                      more=_pages(request, len(entries), 50, offset))

    async def history_version(self, request: Request, project: str, version: int) -> Response:
        entries = await run_in_threadpool(self.state.history, project)
        entry, changes = hist.version_diffs(entries, version)
        return render(self.state, request, "version.html", project=project, entry=hist.entry_json(entry),
                      changes=changes)

    async def freshness(self, request: Request, project: str) -> Response:
        catalog = await self.catalog(project)
        report = await run_in_threadpool(freshness_json, self.state, catalog)
        return render(self.state, request, "freshness.html", project=project, report=report)

    async def monitoring(self, request: Request, project: str) -> Response:
        await self.catalog(project)  # an unknown project is a 404 like everywhere else
        pictures = await run_in_threadpool(monitoring_pictures, self.state.backends.registry, project)
        return render(self.state, request, "monitoring.html", project=project, **pictures)

    async def list_kind(self, request: Request, project: str, slug: str, q: str = "", tag: str = "",
                        offset: int = 0) -> Response:
        if slug not in SLUGS:
            raise FeatureNotFound(f"no kind '{slug}'; kinds: {sorted(SLUGS)}")
        catalog = await self.catalog(project)
        page = find(catalog, make_query(q, [slug], tag, None, offset))
        return render(self.state, request, "list.html", project=project, page=page, slug=slug, kind=SLUGS[slug],
                      q=q, tag=tag, tags=all_tags(catalog), more=_pages(request, page.total, page.query.limit, offset))

    async def get_object(self, request: Request, project: str, slug: str, name: str) -> Response:
        catalog = await self.catalog(project)
        ref = resolve(catalog, slug, name)
        context = await run_in_threadpool(_object_context, self.state, catalog, ref, request)
        return render(self.state, request, "object.html", project=project, **context)

    async def login_form(self, request: Request, next: str = "") -> Response:
        return render(self.state, request, "login.html", next=_safe_next(self.state, next), failed=False)

    async def login(self, request: Request) -> Response:
        """Check a token and keep it in an HttpOnly cookie; this writes nothing to the store."""
        # A urlencoded form parsed here: python-multipart is not needed for two fields.
        form = parse_qs((await request.body())[:8192].decode("utf-8", "replace"))
        token, target = form.get("token", [""])[0], _safe_next(self.state, form.get("next", [""])[0])
        if self.state.auth is None or not self.state.token_is_valid(token):
            return render(self.state, request, "login.html", status=401, next=target, failed=True)
        response = RedirectResponse(target, status_code=303)
        # https: TLS here, or X-Forwarded-Proto from a proxy uvicorn trusts (--forwarded-allow-ips).
        response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="strict", path=self.state.root_path or "/",
                            secure=request.url.scheme == "https")
        return response


def page_router(state: UiState) -> APIRouter:
    """Fixed paths come before `/{slug}` ones; only the sign-in form is a POST. An object's name
    is a `path` parameter: a data source named by its path ('data/x.parquet') is linked URL-quoted
    (repast/ui/state.py), and the server decodes its '%2F' before routing."""
    pages = PageRoutes(state)
    p = "/projects/{project}"
    routes: list[tuple[str, Callable[..., Awaitable[Response]]]] = [
        ("/", pages.index), ("/projects", pages.projects), (p, pages.project), (f"{p}/search", pages.search),
        (f"{p}/lineage", pages.project_lineage), (f"{p}/history", pages.history),
        (f"{p}/history/{{version}}", pages.history_version), (f"{p}/freshness", pages.freshness),
        (f"{p}/monitoring", pages.monitoring),
        (f"{p}/{{slug}}", pages.list_kind), (f"{p}/{{slug}}/{{name:path}}", pages.get_object),
        ("/login", pages.login_form),
    ]
    router = APIRouter(include_in_schema=False, default_response_class=HTMLResponse)
    for path, handler in routes:
        router.add_api_route(path, handler, methods=["GET"])
    router.add_api_route("/login", pages.login, methods=["POST"])
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
