"""POST /retrieve-online-documents: Feast's document retrieval endpoint (read tokens allowed).

Body: `{"features": ["view:feature", ...] | "feature_service": name, "query": [floats],
"query_string": text, "top_k": n, "api_version": 1|2, "distance_metric": name, "filters": {feature:
value}, "exact": false}` (`exact` is repast's: rank exactly even where the store has an approximate
index); at least one of query and query_string. The answer has get-online-features' shape, one
row per hit: the join keys, the features, `distance` and (with a query string) `text_rank`.

Answered like the hot endpoint (repast.server.online_endpoint): in the HTTP protocol itself, the body
parsed with orjson and checked by hand (the query straight into a NumPy array), no pydantic model per
request; a body that fails the hand check goes through the model for its exact 422. A search runs
inline on the event loop while searches are fast (an approximate index answers in about a
millisecond), else on a thread (repast.server.dispatch): while the searches' CPU time, averaged
over the last few (an exponential average), exceeds `INLINE_SEARCH_SECONDS` (exact scans of many
documents), or the store stalls, they run on threads; `exact: true` and stores that wait on the
network (PostgreSQL) always take a thread. CPU time, not wall time: a loaded host preempts a fast
search for milliseconds, which must not send every search to a thread; an average, so one garbage
collection does not either.
Measured at load 8 on 2 cores: FastAPI's route, pydantic's validation of the query's floats and
the thread pool's hop added 6.2 ms at p50; a hop to a thread alone 1.9 ms; answered inline 0.2 ms
above GET /health's round trip.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import orjson
from pydantic import StrictBool, StrictFloat, StrictInt, StrictStr, model_validator
from starlette.requests import Request
from starlette.responses import Response

from repast.server.dispatch import StoreCalls
from repast.server.errors import malformed_json
from repast.server.responses import online_response_json
from repast.server.schemas import RequestBody, parse_body
from repast.vector.documents import retrieve_online_documents_v2

if TYPE_CHECKING:
    from repast.jobs.backends import Backends

PATH = "/retrieve-online-documents"
# Searches computing longer than this on average (exact scans) run on threads.
INLINE_SEARCH_SECONDS = 0.003
_AVERAGE_WEIGHT = 0.2  # of the latest search in the average


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


_KEYS = frozenset(RetrieveOnlineDocumentsRequest.model_fields)
_NUMBERS = frozenset({float, int})
_FILTER_VALUES = frozenset({str, bool, int, float})


class DocumentsEndpoint:
    """The endpoint's body in, the answer's bytes out (see the module docstring)."""

    def __init__(self, backends: Backends) -> None:
        self.backends = backends
        self.strict = backends.config.feature_server.strict_requests
        self.calls = StoreCalls(deadline_seconds=None,
                                always_threaded=backends.online_store.capabilities.reads_on_own_thread)
        self.cpu_seconds = 0.0  # the searches' CPU time, averaged (module docstring)

    def answer(self, body: bytes) -> bytes | Awaitable[bytes]:
        """Parse and check `body` (ApiError 400/422 at once), then search: the answer's bytes, or
        an awaitable of them (module docstring)."""
        features, query, args = self._parsed(body)
        if args["exact"] or self.cpu_seconds > INLINE_SEARCH_SECONDS or not self.calls.inline:
            return self.calls.threaded(self._search, features, query, args)
        return self.calls.call_inline(self._search, features, query, args)

    def _search(self, features: list[str] | str, query: np.ndarray | None, args: dict[str, Any]) -> bytes:
        began = time.thread_time()
        try:
            return self._searched(features, query, args)
        finally:
            if not args["exact"]:  # the average says what the searches answered inline would cost
                self.cpu_seconds += _AVERAGE_WEIGHT * (time.thread_time() - began - self.cpu_seconds)

    def _searched(self, features: list[str] | str, query: np.ndarray | None, args: dict[str, Any]) -> bytes:
        if isinstance(features, str):  # a feature service: its features, as the registry has them now
            service = self.backends.registry.contents().get("feature_service", features)
            features = [f"{p.view_name}:{f}" for p in service.projections for f in p.features]
        return online_response_json(retrieve_online_documents_v2(self.backends, features, query, **args))

    def _parsed(self, body: bytes) -> tuple[list[str] | str, np.ndarray | None, dict[str, Any]]:
        """(features or the service's name, the query as float64, the other arguments)."""
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as e:
            raise malformed_json(f"the request body is not valid JSON: {e}") from None
        checked = _well_formed(data)
        if checked is not None:
            return checked
        req = parse_body(body, RetrieveOnlineDocumentsRequest, self.strict, PATH)  # the exact 422, or a rare form
        query = None if req.query is None else np.asarray(req.query, dtype=np.float64)
        return (req.features if req.features is not None else str(req.feature_service), query,
                {"top_k": req.top_k, "distance_metric": req.distance_metric, "query_string": req.query_string,
                 "filters": req.filters, "exact": req.exact})

    def close(self) -> None:
        self.calls.close()


def _well_formed(data: Any) -> tuple[list[str] | str, np.ndarray | None, dict[str, Any]] | None:
    """The request when `data` is the model's shape beyond doubt (checked by hand), else None."""
    if type(data) is not dict or not data.keys() <= _KEYS:
        return None
    features, service, query = data.get("features"), data.get("feature_service"), data.get("query")
    text, top_k, metric = data.get("query_string"), data.get("top_k", 10), data.get("distance_metric")
    filters, exact = data.get("filters"), data.get("exact", False)
    if features is None:
        if type(service) is not str:
            return None
    elif service is not None or type(features) is not list or not set(map(type, features)) <= {str}:
        return None
    if query is None:
        if text is None:
            return None
        vector = None
    elif type(query) is not list or not set(map(type, query)) <= _NUMBERS:
        return None
    else:
        try:
            vector = np.array(query, dtype=np.float64)
        except OverflowError:  # an integer beyond float64: the model's path says what it makes of it
            return None
    if ((text is not None and type(text) is not str) or type(top_k) is not int or top_k <= 0
            or data.get("api_version", 2) not in (1, 2) or type(data.get("api_version", 2)) is not int
            or (metric is not None and type(metric) is not str) or type(exact) is not bool):
        return None
    if filters is not None and (type(filters) is not dict or not set(map(type, filters.values())) <= _FILTER_VALUES):
        return None
    named: Any = service if features is None else features  # checked above: a name or a list of names
    return (named, vector,
            {"top_k": top_k, "distance_metric": metric, "query_string": text, "filters": filters, "exact": exact})


def document_routes(endpoint: DocumentsEndpoint) -> list[tuple[str, Any, type[RequestBody], str]]:
    """The (path, handler, body model, summary) of the endpoint, as create_app registers routes. The
    server's middleware answers it first (its fast routes); this route documents it at /docs and
    serves it when the app is mounted alone."""

    async def retrieve_online_documents(request: Request) -> Response:
        answer = endpoint.answer(await request.body())
        return Response(answer if isinstance(answer, bytes) else await answer, media_type="application/json")

    return [(PATH, retrieve_online_documents, RetrieveOnlineDocumentsRequest,
             "The top_k documents of one view nearest to a query embedding and/or matching a query string.")]


