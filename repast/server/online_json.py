"""The get-online-features answer as Feast's JSON, written straight from the stored rows.

Byte for byte what `online_response_json(get_online_features(...))` answers (a test compares the
two on every value type), without building the response's dicts, status lists and datetimes first:
the per-request-shape parts (feature names, the join key columns' statuses) are encoded once per
read plan, each view's rows are encoded by orjson in one call where their values are numbers, and
event timestamps are formatted by orjson. Nothing is kept between requests but those templates:
values, statuses and ages are computed from the rows read now. Requests with on-demand views take
the general path (repast.jobs.online_read), which runs their transformations.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import orjson

from repast.jobs.aggregated_read import read_aggregated
from repast.jobs.online_read import ReadPlan, ViewRead, entity_row_columns, get_online_features, read_plan
from repast.online.codec import EPOCH
from repast.online.keys import serialize_request_keys
from repast.server.responses import json_value, online_response_json

if TYPE_CHECKING:
    from repast.definitions import FeatureService
    from repast.online.base import OnlineReader, ReadRow
    from repast.registry import Registry

_OPTS = orjson.OPT_SERIALIZE_NUMPY
_TIME_OPTS = orjson.OPT_UTC_Z  # "...Z", as the general path's isoformat().replace("+00:00", "Z")
_EPOCH_ISO = "1970-01-01T00:00:00Z"  # the event time of a value that has none
# Declared types whose values orjson writes as a bare number, true/false or null: no comma inside.
_NUMERIC = frozenset({"Int32", "Int64", "Float32", "Float64", "Bool"})
_PRESENT, _NULL, _MISSING, _OLD = "PRESENT", "NULL_VALUE", "NOT_FOUND", "OUTSIDE_MAX_AGE"
# What follows one row's value, up to its event time.
_PRESENT_ONE = b',"statuses":["PRESENT"],"event_timestamps":['
_OLD_ONE = b',"statuses":["OUTSIDE_MAX_AGE"],"event_timestamps":['


def _dumps(value: Any) -> bytes:
    return orjson.dumps(value, option=_OPTS, default=json_value)


def _tail(statuses: list[str], stamps_json: bytes) -> bytes:
    """`,"statuses":[...],"event_timestamps":[...]}`: what follows a result's values."""
    return b',"statuses":' + orjson.dumps(statuses) + b',"event_timestamps":' + stamps_json + b"}"


def _epoch_stamps(n: int) -> bytes:
    """The event times of n values that have none."""
    return orjson.dumps([_EPOCH_ISO] * n)


_KEY_TAIL_ONE = _tail([_PRESENT], _epoch_stamps(1))  # what follows one join key value
_MISSING_TAIL_ONE = _tail([_MISSING], _epoch_stamps(1))  # what follows the null of one key not found


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
        self.missing_one = b",".join(b'{"values":[null]' + _MISSING_TAIL_ONE for _ in read.outputs)

    def encode(self, rows: list[ReadRow], now_us: int, n: int) -> bytes:
        read = self.read
        oldest = now_us - read.ttl_us if read.ttl_us else None
        if n == 1:
            row = rows[0]
            if row is None:
                return self.missing_one
            if self.split and None not in row:  # (an aggregated row without events has time None)
                stamp = orjson.dumps(EPOCH + timedelta(microseconds=row[0]), option=_TIME_OPTS)
                tail = (_OLD_ONE if oldest is not None and row[0] < oldest else _PRESENT_ONE) + stamp + b"]}"
                values = orjson.dumps(row, option=_OPTS)[1:-1].split(b",")
                del values[0]  # the event time
                return b'{"values":[' + (b"]" + tail + b',{"values":[').join(values) + b"]" + tail
        return self._encode_columns(rows, oldest)

    def _encode_columns(self, rows: list[ReadRow], oldest: int | None) -> bytes:
        # An aggregated row with no event in its windows (time None) is NOT_FOUND, its counts 0.
        of_row = [_MISSING if row is None or row[0] is None else _OLD if oldest is not None and row[0] < oldest
                  else _PRESENT for row in rows]
        stamps = [_EPOCH_ISO if row is None or row[0] is None else EPOCH + timedelta(microseconds=row[0])
                  for row in rows]
        stamps_json = orjson.dumps(stamps, option=_TIME_OPTS)
        tail = _tail(of_row, stamps_json)
        parts = []
        for i, _ in self.read.outputs:
            j = i + 1
            column = [None if row is None else row[j] for row in rows]
            if None in column:  # a stored null is NULL_VALUE, a missing row stays NOT_FOUND
                statuses = [_NULL if v is None and s is not _MISSING else s
                            for v, s in zip(column, of_row, strict=True)]
                parts.append(b'{"values":' + _dumps(column) + _tail(statuses, stamps_json))
            else:
                parts.append(b'{"values":' + _dumps(column) + tail)
        return b",".join(parts)


class _Shape:
    """One read plan (a request shape at one registry version) with the parts of its answers that
    do not depend on the values read."""

    __slots__ = ("plan", "head", "views", "key_columns")

    def __init__(self, plan: ReadPlan) -> None:
        self.plan = plan
        names = [*plan.entity_columns, *(name for r in plan.reads for _, name in r.outputs)]
        self.head = b'{"metadata":{"feature_names":' + orjson.dumps(names) + b'},"results":['
        self.views = [_ViewJson(r) for r in plan.reads]
        self.key_columns = [(r.key_columns, r.key_types) for r in plan.reads]


def _usable(plan: ReadPlan) -> bool:
    """Whether answers can be written from the rows alone: no on-demand views to run, and no output
    name equal to a join key column (which the general path refuses)."""
    outputs = [name for r in plan.reads for _, name in r.outputs]
    return not plan.on_demand and not plan.request_columns and \
        len({*plan.entity_columns, *outputs}) == len(plan.entity_columns) + len(outputs)


class OnlineJsonAnswers:
    """get_online_features for the server: the same checks and errors, Feast's JSON body out.

    The encoding parts are remembered per read plan (read_plan's cache decides when a plan is new:
    a new request shape or registry version), at most `max_shapes`; values, statuses and ages
    always come from the rows read for the request.
    """

    def __init__(self, registry: Registry, max_shapes: int = 1024) -> None:
        self.registry = registry
        self.max_shapes = max_shapes
        self._shapes: dict[int, tuple[ReadPlan, _Shape | None]] = {}  # by id(plan); None: the general path

    def _shape(self, features: list[str] | FeatureService, full_feature_names: bool) -> _Shape | None:
        plan = read_plan(self.registry, features, full_feature_names)
        known = self._shapes.get(id(plan))
        if known is not None and known[0] is plan:
            return known[1]
        shape = _Shape(plan) if _usable(plan) else None
        if len(self._shapes) >= self.max_shapes:
            self._shapes.clear()
        self._shapes[id(plan)] = (plan, shape)
        return shape

    def answer(self, online: OnlineReader, features: list[str] | FeatureService, entities: dict[str, list[Any]],
               full_feature_names: bool) -> bytes:
        """The response body; `entities` are lists of one length (the caller checked)."""
        registry = self.registry
        shape = self._shape(features, full_feature_names)
        if shape is None:
            return online_response_json(get_online_features(registry, online, features, entities, full_feature_names))
        plan = shape.plan
        parts = []
        # Every key is checked (type, range) before anything is read or encoded: a value of any
        # other shape, a list nested hundreds deep included, is refused naming its key.
        keys = []
        try:
            for names, types in shape.key_columns:
                values = [entities[names[0]]] if len(names) == 1 else [entities[c] for c in names]
                keys.append(serialize_request_keys(values, names, types))
            for c in plan.entity_columns:
                parts.append(b'{"values":' + _dumps(entities[c]))
        except KeyError:
            entity_row_columns(entities, plan.entity_columns, plan)  # raises the error naming the key
            raise
        n = len(next(iter(entities.values())))
        project = registry.project
        rows = []
        now_us = time.time_ns() // 1000
        for r, k in zip(plan.reads, keys, strict=True):
            rows.append(online.read(project, r.view, k, r.features) if r.aggregated is None
                        else read_aggregated(online, project, r.view, r.aggregated, k, now_us))
        key_tail = _KEY_TAIL_ONE if n == 1 else _tail([_PRESENT] * n, _epoch_stamps(n))
        for i in range(len(parts)):
            parts[i] += key_tail
        for view, view_rows in zip(shape.views, rows, strict=True):
            parts.append(view.encode(view_rows, now_us, n))
        return shape.head + b",".join(parts) + b"]}"
