"""The get-online-features answer as Feast's JSON, written straight from the stored rows.

Byte for byte what `online_response_json(get_online_features(...))` answers (a test compares the
two on every value type), without building the response's dicts, status lists and datetimes first:
the per-request-shape parts (feature names, the join key columns' statuses) are encoded once per
read plan, each view's rows are encoded by orjson in one call where their values are numbers, and
event timestamps are formatted by orjson. Nothing is kept between requests but those templates:
values, statuses and ages are computed from the rows read now. Requests with on-demand views take
the general path (repast.online_read), which runs their transformations.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import orjson

from repast.online.codec import EPOCH
from repast.online.keys import serialize_request_keys
from repast.online_read import ReadPlan, ViewRead, entity_row_columns, get_online_features, read_plan
from repast.server.responses import json_value, online_response_json

if TYPE_CHECKING:
    from repast.definitions import FeatureService
    from repast.online.base import OnlineStore, ReadRow
    from repast.registry import Registry

_OPTS = orjson.OPT_SERIALIZE_NUMPY
_TIME_OPTS = orjson.OPT_UTC_Z  # "...Z", as the general path's isoformat().replace("+00:00", "Z")
_EPOCH_ISO = "1970-01-01T00:00:00Z"  # the event time of a value that has none
# Declared types whose values orjson writes as a bare number, true/false or null: no comma inside.
_NUMERIC = frozenset({"Int32", "Int64", "Float32", "Float64", "Bool"})
_PRESENT, _NULL, _MISSING, _OLD = "PRESENT", "NULL_VALUE", "NOT_FOUND", "OUTSIDE_MAX_AGE"


def _dumps(value: Any) -> bytes:
    return orjson.dumps(value, option=_OPTS, default=json_value)


def _tail(statuses: list[str], stamps: list[Any]) -> bytes:
    """`,"statuses":[...],"event_timestamps":[...]}`: what follows a result's values."""
    return (b',"statuses":' + orjson.dumps(statuses) + b',"event_timestamps":'
            + orjson.dumps(stamps, option=_TIME_OPTS) + b"}")


class _ViewJson:
    """One view read of a plan, with what its encoding needs."""

    __slots__ = ("read", "split", "missing_one")

    def __init__(self, read: ViewRead) -> None:
        dtypes = {f.name: f.dtype.name for f in read.view.features}
        self.read = read
        # One row of plain numbers can be encoded in one call and split at its commas.
        self.split = (len(read.features) == len(read.outputs)
                      and all(i == k for k, (i, _) in enumerate(read.outputs))
                      and all(dtypes[f] in _NUMERIC for f in read.features))
        missing = _tail([_MISSING], [_EPOCH_ISO])
        self.missing_one = b",".join(b'{"values":[null]' + missing for _ in read.outputs)

    def encode(self, rows: list[ReadRow], now_us: int, n: int) -> bytes:
        read = self.read
        oldest = now_us - read.ttl_us if read.ttl_us else None
        if n == 1:
            row = rows[0]
            if row is None:
                return self.missing_one
            status = _OLD if oldest is not None and row[0] < oldest else _PRESENT
            tail = _tail([status], [EPOCH + timedelta(microseconds=row[0])])
            if self.split and None not in row:
                middle = b"]" + tail + b',{"values":['
                return b'{"values":[' + middle.join(_dumps(row)[1:-1].split(b",")[1:]) + b"]" + tail
        return self._encode_columns(rows, oldest)

    def _encode_columns(self, rows: list[ReadRow], oldest: int | None) -> bytes:
        of_row = [_MISSING if row is None else _OLD if oldest is not None and row[0] < oldest else _PRESENT
                  for row in rows]
        stamps = [_EPOCH_ISO if row is None else EPOCH + timedelta(microseconds=row[0]) for row in rows]
        stamps_json = orjson.dumps(stamps, option=_TIME_OPTS)
        tail = b',"statuses":' + orjson.dumps(of_row) + b',"event_timestamps":' + stamps_json + b"}"
        parts = []
        for i, _ in self.read.outputs:
            j = i + 1
            column = [None if row is None else row[j] for row in rows]
            if None in column:  # a stored null is NULL_VALUE, a missing row stays NOT_FOUND
                statuses = [_NULL if v is None and s is not _MISSING else s for v, s in zip(column, of_row, strict=True)]
                parts.append(b'{"values":' + _dumps(column) + b',"statuses":' + orjson.dumps(statuses)
                             + b',"event_timestamps":' + stamps_json + b"}")
            else:
                parts.append(b'{"values":' + _dumps(column) + tail)
        return b",".join(parts)


class _PlanJson:
    __slots__ = ("plan", "head", "views", "key_tail_one")

    def __init__(self, plan: ReadPlan) -> None:
        self.plan = plan
        names = [*plan.entity_columns, *(name for r in plan.reads for _, name in r.outputs)]
        self.head = b'{"metadata":{"feature_names":' + orjson.dumps(names) + b'},"results":['
        self.views = [_ViewJson(r) for r in plan.reads]
        self.key_tail_one = _tail([_PRESENT], [_EPOCH_ISO])


_PLANS: dict[int, _PlanJson | None] = {}


def _plan_json(plan: ReadPlan) -> _PlanJson | None:
    """The encoding of `plan`'s answers; None when the general path must answer (on-demand views,
    or an output name that equals a join key column, which it refuses)."""
    cached = _PLANS.get(id(plan), False)
    if cached is not False and (cached is None or cached.plan is plan):
        return cached  # type: ignore[return-value]
    outputs = [name for r in plan.reads for _, name in r.outputs]
    usable = not plan.on_demand and not plan.request_columns and \
        len({*plan.entity_columns, *outputs}) == len(plan.entity_columns) + len(outputs)
    if len(_PLANS) > 1024:
        _PLANS.clear()
    made = _PLANS[id(plan)] = _PlanJson(plan) if usable else None
    return made


def online_features_json(registry: Registry, online: OnlineStore, features: list[str] | FeatureService,
                         entities: dict[str, list[Any]], full_feature_names: bool) -> bytes:
    """get_online_features for the server: the same checks and errors, Feast's JSON body out."""
    plan = read_plan(registry, features, full_feature_names)
    encoding = _plan_json(plan)
    if encoding is None:
        return online_response_json(get_online_features(registry, online, features, entities, full_feature_names))
    columns, n = entity_row_columns(entities, plan.entity_columns, plan)
    keys = [serialize_request_keys([columns[c] for c in r.key_columns], r.key_columns, r.key_types)
            for r in plan.reads]
    project = registry.project
    rows = [online.read(project, r.view, k, r.features) if n else [] for r, k in zip(plan.reads, keys, strict=True)]
    now_us = time.time_ns() // 1000
    if n == 1:
        key_tail = encoding.key_tail_one
    else:
        key_tail = _tail([_PRESENT] * n, [_EPOCH_ISO] * n)
    parts = [b'{"values":' + _dumps(columns[c]) + key_tail for c in plan.entity_columns]
    parts += [v.encode(view_rows, now_us, n) for v, view_rows in zip(encoding.views, rows, strict=True)]
    return encoding.head + b",".join(parts) + b"]}"
