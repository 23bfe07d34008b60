"""POST /get-online-features: the one object that parses, checks, reads and encodes the hot
endpoint's request, whichever path delivers it (the HTTP protocol's own answer or ASGI).

`answer(body)` returns the response bytes at once while the store is read inline on the event
loop (no coroutine to create and await), else an awaitable of them: a read on the store threads
(repast.server.dispatch), or a feature service whose served rows are logged from the response itself.
A logged service whose features are all numbers, strings or booleans is answered on the fast path
and its answer bytes are logged (parsed off the request path): taking the general path to keep the
response cost two thirds of the server's throughput.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from repast.definitions import FeatureService
from repast.jobs.online_read import get_online_features
from repast.online.base import OnlineReader
from repast.registry import Registry
from repast.server.dispatch import StoreCalls
from repast.server.feature_logging import LogAnswer, ServedRowLogger
from repast.server.limits import RequestLimits
from repast.server.metrics import ServerMetrics
from repast.server.online_json import OnlineJsonAnswers
from repast.server.responses import online_response_json
from repast.server.schemas import IGNORED_FIELDS_HEADER, OnlineRequest, parse_online_request

_JSON_FAITHFUL = frozenset({"Int32", "Int64", "Float32", "Float64", "String", "Bool"})


class OnlineFeaturesEndpoint:
    """Feast's get-online-features JSON in, Feast's response JSON out (see the module docstring)."""

    def __init__(self, registry: Registry, online_store: OnlineReader, reads: StoreCalls, limits: RequestLimits,
                 metrics: ServerMetrics, feature_log: ServedRowLogger, strict: bool = False) -> None:
        self.registry = registry
        self.online_store = online_store
        self.reads = reads
        self.limits = limits
        self.metrics = metrics
        self.feature_log = feature_log
        self.answers = OnlineJsonAnswers(registry)
        self.strict = strict  # feature_server.strict_requests: refuse fields Feast's server would ignore
        self._logging: dict[int, tuple[FeatureService, LogAnswer | None, bool]] = {}  # see _logging_of

    def answer(self, body: bytes) -> bytes | Awaitable[bytes]:
        req = parse_online_request(body, strict=self.strict)
        rows = req.rows
        self.limits.check_rows(rows)
        features: Any = req.features
        log: LogAnswer | None = None
        if req.feature_service is not None:
            features = self.registry.contents().get("feature_service", req.feature_service)
            self.limits.check_values(rows, len(features.feature_refs()))
            if features.logging_config is not None:
                known = self._logging.get(id(features))
                if known is None or known[0] is not features:
                    known = self._logging_of(features)
                log = known[1]
                if log is not None and not known[2]:
                    return self._served_and_logged(features, req, log)
        else:
            self.limits.check_values(rows, len(features))
        args = (self.online_store, features, req.entities, req.full_feature_names)
        if not self.reads.inline:
            return self._answered_on_a_thread(args, rows, req.ignored, req.entities, log)
        answer = self.reads.call_inline(self.answers.answer, *args)
        self.metrics.count_rows(rows)
        if log is not None:
            log(req.entities, answer)  # queued, parsed off the request path
        return AnswerWithHeaders.of(answer, req.ignored) if req.ignored else answer

    def _logging_of(self, service: FeatureService) -> tuple[FeatureService, LogAnswer | None, bool]:
        """How the service's answers are logged (None: not logged), and whether from the answer's
        JSON, which holds the served values as they are when they are all numbers, strings or
        booleans; decided once per service definition (the registry's cached objects are reused
        until it changes)."""
        log = self.feature_log.for_service(service)
        views = self.registry.contents().feature_views
        faithful = all(view is not None and all(str(f.dtype) in _JSON_FAITHFUL for f in view.features
                                                if f.name in p.features)
                       for p in service.projections for view in [views.get(p.view_name)])
        if len(self._logging) > 1024:
            self._logging.clear()
        known = self._logging[id(service)] = (service, log, faithful)
        return known

    async def _answered_on_a_thread(self, args: tuple[Any, ...], rows: int, ignored: tuple[str, ...],
                                    request: dict[str, list[Any]], log: LogAnswer | None) -> bytes:
        answer = await self.reads.threaded(self.answers.answer, *args)
        self.metrics.count_rows(rows)
        if log is not None:
            log(request, answer)
        return AnswerWithHeaders.of(answer, ignored) if ignored else answer

    async def _served_and_logged(self, service: FeatureService, req: OnlineRequest, log: LogAnswer) -> bytes:
        """A logged feature service with values the answer's JSON does not hold as they are."""
        response = await self.reads.call(get_online_features, self.registry, self.online_store, service,
                                         req.entities, req.full_feature_names)
        self.metrics.count_rows(req.rows)
        answer = online_response_json(response)
        log(req.entities, answer)  # copied into a batch, written off the request path
        return AnswerWithHeaders.of(answer, req.ignored) if req.ignored else answer


class AnswerWithHeaders(bytes):
    """An answer (bytes, so every path sends it as it sends any answer) that also carries response
    headers, which the protocol and the middleware add to the 200 they send: the request fields
    Feast's server would ignore, named in X-Repast-Ignored-Fields."""

    headers: list[tuple[bytes, bytes]]

    @classmethod
    def of(cls, answer: bytes, ignored: tuple[str, ...]) -> AnswerWithHeaders:
        headed = cls(answer)
        headed.headers = [(IGNORED_FIELDS_HEADER.encode(), ", ".join(ignored).encode())]
        return headed
