"""POST /retrieve-online-documents: Feast's document retrieval endpoint (read tokens allowed).

Body: `{"features": ["view:feature", ...] | "feature_service": name, "query": [floats],
"query_string": text, "top_k": n, "api_version": 1|2, "distance_metric": name, "filters": {feature:
value}, "exact": false}` (`exact` is repast's: rank exactly even where the store has an approximate
index); at least one of query and query_string. The answer has get-online-features' shape, one
row per hit: the join keys, the features, `distance` and (with a query string) `text_rank`.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any, Literal

from pydantic import StrictBool, StrictFloat, StrictInt, StrictStr, model_validator
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from repast.server.responses import online_response_json
from repast.server.schemas import RequestBody, parse_body
from repast.vector.documents import retrieve_online_documents_v2

if TYPE_CHECKING:
    from repast.jobs.backends import Backends

PATH = "/retrieve-online-documents"


class RetrieveOnlineDocumentsRequest(RequestBody):
    features: list[StrictStr] | None = None
    feature_service: StrictStr | None = None
    query: list[StrictFloat | StrictInt] | None = None
    query_string: StrictStr | None = None
    top_k: StrictInt = 10
    api_version: Literal[1, 2] = 2
    distance_metric: StrictStr | None = None
    filters: dict[str, StrictStr | StrictBool | StrictInt | StrictFloat] | None = None
    exact: StrictBool = False  # repast's: rank exactly even where the store has an approximate index

    @model_validator(mode="after")
    def _check(self) -> RetrieveOnlineDocumentsRequest:
        if (self.features is None) == (self.feature_service is None):
            raise ValueError("give exactly one of 'features' (a list of 'view:feature') or 'feature_service'")
        if self.query is None and self.query_string is None:
            raise ValueError("give 'query' (an embedding), 'query_string', or both")
        if self.top_k <= 0:
            raise ValueError(f"'top_k' must be a positive integer, got {self.top_k}")
        return self


def document_routes(backends: Backends) -> list[tuple[str, Any, type[RequestBody], str]]:
    """The (path, handler, body model, summary) of the endpoint, as create_app registers routes."""

    async def retrieve_online_documents(request: Request) -> Response:
        req = parse_body(await request.body(), RetrieveOnlineDocumentsRequest,
                         strict=backends.config.feature_server.strict_requests, path=PATH)
        features: list[str] = list(req.features or [])
        if req.feature_service is not None:
            service = backends.registry.contents().get("feature_service", req.feature_service)
            features = [f"{p.view_name}:{f}" for p in service.projections for f in p.features]
        response = await run_in_threadpool(partial(retrieve_online_documents_v2, exact=req.exact), backends,
                                           features, req.query, req.top_k, req.distance_metric, req.query_string,
                                           req.filters)
        return Response(online_response_json(response), media_type="application/json")

    return [(PATH, retrieve_online_documents, RetrieveOnlineDocumentsRequest,
             "The top_k documents of one view nearest to a query embedding and/or matching a query string.")]
