"""Read-only registry routes beyond GET /registry: apply history and materialization records.

They let a thin client (registry_type: remote) show what only the registry database knows, e.g.
the web UI's history diffs and freshness. A read token may call them, like GET /registry.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from repast.errors import FeatureNotFound, InputError
from repast.server.responses import json_response

if TYPE_CHECKING:
    from repast.registry import Registry

MAX_HISTORY = 100_000


def _project(registry: Registry, request: Request) -> str:
    project = request.query_params.get("project", registry.project)
    if project != registry.project:
        raise FeatureNotFound(f"project '{project}' is not served here; this server serves '{registry.project}'")
    return project


async def registry_history(registry: Registry, request: Request) -> Response:
    """`{"items": [{version, applied_at, applied_by, changes, specs}]}`, newest first."""
    _project(registry, request)  # this server serves one project: another is a 404
    try:
        limit = int(request.query_params.get("limit", "50"))
    except ValueError:
        raise InputError("limit must be an integer") from None
    if not 1 <= limit <= MAX_HISTORY:
        raise InputError(f"limit must be between 1 and {MAX_HISTORY}, got {limit}")
    entries = await run_in_threadpool(registry.history, limit)
    return json_response({"items": [{"version": e.version, "applied_at": e.applied_at.isoformat(),
                                     "applied_by": e.applied_by, "changes": e.changes, "specs": e.specs}
                                    for e in entries]})


async def registry_materializations(registry: Registry, request: Request) -> Response:
    """`{"watermarks": {view: {start, end, recorded_at}}, "runs": {view: {start, end, finished_at, rows}}}`."""
    _project(registry, request)  # this server serves one project: another is a 404
    marks, runs = await run_in_threadpool(lambda: (registry.materializations(), registry.last_runs()))
    body: dict[str, Any] = {
        "watermarks": {v: {"start": m.start.isoformat(), "end": m.end.isoformat(),
                           "recorded_at": m.recorded_at.isoformat()} for v, m in marks.items()},
        "runs": {v: {"start": r.start.isoformat(), "end": r.end.isoformat(), "finished_at": r.finished_at.isoformat(),
                     "rows": r.rows} for v, r in runs.items()}}
    return json_response(body)


def add_registry_routes(app: FastAPI, registry: Registry) -> None:
    async def history(request: Request) -> Response:
        return await registry_history(registry, request)

    async def materializations(request: Request) -> Response:
        return await registry_materializations(registry, request)

    app.add_api_route("/registry/history", history, methods=["GET"],
                      summary="The project's apply history with each change's spec (read-only).")
    app.add_api_route("/registry/materializations", materializations, methods=["GET"],
                      summary="Materialization watermarks and the last run of each view (read-only).")
