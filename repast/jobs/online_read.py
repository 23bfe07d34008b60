"""get_online_features: the latest feature values per entity, with a status and event time each.

The hot path: the feature list is resolved once per (registry version, features,
full_feature_names) into a ReadPlan and cached; a request is then key serialization, one batched
store read per view, and assembly of plain lists. Statuses and event timestamps are computed only
when asked for (the HTTP server asks, `to_dict()` does not).
"""

from __future__ import annotations

import enum
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from repast.definitions import FeatureService, FeatureView
from repast.definitions.feature_refs import OnDemandRequest, ViewRequest, resolve_features
from repast.errors import EntityKeyError, InputError
from repast.jobs.aggregated_read import AggregatedRead, aggregated_read, micros, read_aggregated
from repast.ondemand.storage import read_stored
from repast.ondemand.transform import on_demand_values
from repast.online.base import ReadRow
from repast.online.codec import datetime_from_us
from repast.online.keys import key_types, serialize_request_keys
from repast.types import FeatureType, is_compatible

if TYPE_CHECKING:
    from repast.definitions import RepoContents
    from repast.online.base import OnlineReader
    from repast.registry import Registry

__all__ = ["FieldStatus", "OnlineResponse", "ReadPlan", "get_online_features", "read_plan"]

_EPOCH_ISO = "1970-01-01T00:00:00Z"


class FieldStatus(enum.StrEnum):
    """Per value: Feast's statuses, with the same names."""

    PRESENT = "PRESENT"
    NOT_FOUND = "NOT_FOUND"  # no row for this entity key in the view
    NULL_VALUE = "NULL_VALUE"  # a row, but this feature is null
    OUTSIDE_MAX_AGE = "OUTSIDE_MAX_AGE"  # older than now - ttl; the value is still returned


Meta = tuple[dict[str, list[FieldStatus]], dict[str, list[datetime | None]]]


class OnlineResponse:
    """Values per output name (join key columns first, then features in request order), with per
    value a FieldStatus and an event timestamp (None for join keys, on-demand features, NOT_FOUND).
    """

    def __init__(self, values: dict[str, list[Any]], statuses: dict[str, list[FieldStatus]] | None = None,
                 event_timestamps: dict[str, list[datetime | None]] | None = None,
                 arrow_types: dict[str, pa.DataType] | None = None,
                 meta: Callable[[], Meta] | None = None) -> None:
        self._values = values
        self._arrow_types = arrow_types or {}
        self._meta: Meta | None = None
        self._meta_fn = meta
        if meta is None:
            n = len(next(iter(values.values()), []))
            self._meta = ({k: (statuses or {}).get(k) or [FieldStatus.PRESENT] * n for k in values},
                          {k: (event_timestamps or {}).get(k) or [None] * n for k in values})

    @property
    def feature_names(self) -> list[str]:
        """Every output name: join key columns, then the requested features."""
        return list(self._values)

    def to_dict(self, include_event_timestamps: bool = False) -> dict[str, list[Any]]:
        """Feast's shape: {name: [value per entity row]}. With `include_event_timestamps`, also
        `name__ts` per name: each value's event time in whole seconds since the epoch (0 when the
        value has none: join keys, on-demand features, NOT_FOUND), as Feast returns them."""
        if not include_event_timestamps:
            return dict(self._values)
        stamps = self.event_timestamps()
        out: dict[str, list[Any]] = {}
        for name, values in self._values.items():
            out[name] = values
            out[f"{name}__ts"] = [0 if t is None else int(t.timestamp()) for t in stamps[name]]
        return out

    def statuses(self) -> dict[str, list[FieldStatus]]:
        return self._metadata()[0]

    def event_timestamps(self) -> dict[str, list[datetime | None]]:
        return self._metadata()[1]

    def _metadata(self) -> Meta:
        if self._meta is None:
            assert self._meta_fn is not None
            self._meta = self._meta_fn()
        return self._meta

    def to_arrow(self) -> pa.Table:
        """Typed columns: features in their declared types, join keys as inferred."""
        return pa.table({k: pa.array(v, self._arrow_types.get(k)) for k, v in self._values.items()})

    def to_df(self) -> Any:
        import pandas as pd

        return pd.DataFrame(self._values)

    def to_feast_dict(self) -> dict[str, Any]:
        """The feature server's JSON body: {"metadata": {"feature_names"}, "results": [{"values",
        "statuses", "event_timestamps"}]}, timestamps as ISO 8601 (the epoch when there is none)."""
        statuses, stamps = self._metadata()
        # The features of one view share one list of timestamps: format it once. Statuses are
        # str enums, which orjson writes as their text.
        iso_of: dict[int, list[str]] = {}
        for times in stamps.values():
            if id(times) not in iso_of:
                iso_of[id(times)] = [_EPOCH_ISO if t is None else t.isoformat().replace("+00:00", "Z") for t in times]
        results = [{"values": values, "statuses": statuses[name], "event_timestamps": iso_of[id(stamps[name])]}
                   for name, values in self._values.items()]
        return {"metadata": {"feature_names": list(self._values)}, "results": results}

    @classmethod
    def from_feast_dict(cls, body: dict[str, Any]) -> OnlineResponse:
        """Inverse of to_feast_dict (what a feature server returns)."""
        names = body["metadata"]["feature_names"]
        values, statuses, stamps = {}, {}, {}
        for name, result in zip(names, body["results"], strict=True):
            values[name] = list(result["values"])
            statuses[name] = [FieldStatus(s) for s in result["statuses"]]
            stamps[name] = [None if t == _EPOCH_ISO else datetime.fromisoformat(t.replace("Z", "+00:00"))
                            for t in result["event_timestamps"]]
        return cls(values, statuses, stamps)

    def __repr__(self) -> str:
        n = len(next(iter(self._values.values()), []))
        return f"OnlineResponse({n} rows, {list(self._values)})"


@dataclass
class ViewRead:
    """One batched store read: which view, which columns, which request columns hold its keys."""

    view: FeatureView
    name: str  # projection name: how on-demand views find their inputs
    features: tuple[str, ...]  # read from the store: requested first, then on-demand inputs
    key_columns: list[str]  # request columns, in join key order (join key maps applied)
    key_types: list[FeatureType | None]
    ttl_us: int  # 0: no age limit
    outputs: list[tuple[int, str]]  # (index in `features`, output name) of the requested features
    aggregated: AggregatedRead | None = None  # a view with aggregations: tiles merged at read time


@dataclass
class ReadPlan:
    reads: list[ViewRead]
    on_demand: list[OnDemandRequest]
    entity_columns: list[str]  # join key columns, echoed first in the response
    request_columns: list[str]  # request data the on-demand views need
    output_names: list[str]  # requested features, in request order
    arrow_types: dict[str, pa.DataType]  # declared type of every output feature
    full_feature_names: bool


def _view_read(req: ViewRequest, full_feature_names: bool) -> ViewRead:
    features = tuple(req.read_features)
    outputs = [(features.index(f), req.output_name(f, full_feature_names)) for f in req.features]
    ttl_us = int(req.view.ttl.total_seconds() * 1_000_000)
    return ViewRead(req.view, req.name, features, req.request_columns(), key_types(req.view), ttl_us, outputs,
                    aggregated_read(req.view, features))


def build_read_plan(contents: RepoContents, features: list[str] | FeatureService,
                    full_feature_names: bool) -> ReadPlan:
    request = read_stored(resolve_features(contents, features, full_feature_names), contents)
    reads = [_view_read(v, full_feature_names) for v in request.views]
    types: dict[str, pa.DataType] = {}
    for vr in request.views:
        dtypes = {f.name: f.dtype for f in vr.view.features}
        types.update({vr.output_name(f, full_feature_names): dtypes[f].to_arrow() for f in vr.features})
    for odr in request.on_demand:
        dtypes = {f.name: f.dtype for f in odr.view.features}
        types.update({odr.output_name(f, full_feature_names): dtypes[f].to_arrow() for f in odr.features})
    return ReadPlan(reads, request.on_demand, request.entity_columns(), request.request_columns,
                    request.output_names, types, full_feature_names)


_PLANS: weakref.WeakKeyDictionary[Registry, dict[tuple[Any, ...], tuple[Any, ReadPlan]]] = \
    weakref.WeakKeyDictionary()


def read_plan(registry: Registry, features: list[str] | FeatureService, full_feature_names: bool) -> ReadPlan:
    """The cached plan; rebuilt when the registry version changes."""
    version = registry.version
    if isinstance(features, FeatureService):
        # Keyed by identity: a registered service object is stable within a registry version.
        key: tuple[Any, ...] = (version, "service", id(features), full_feature_names)
    else:
        key = (version, tuple(features) if isinstance(features, list | tuple) else features, full_feature_names)
    cache = _PLANS.get(registry)
    if cache is None:
        cache = _PLANS[registry] = {}
    hit = cache.get(key)
    if hit is not None and (not isinstance(features, FeatureService) or hit[0] is features):
        return hit[1]
    plan = build_read_plan(registry.contents(), features, full_feature_names)
    if len(cache) > 1024:
        cache.clear()
    cache[key] = (features, plan)
    return plan


def entity_row_columns(entity_rows: list[dict[str, Any]] | dict[str, list[Any]], needed: list[str],
             plan: ReadPlan) -> tuple[dict[str, list[Any]], int]:
    """The needed columns of the entity rows as lists, and the row count; missing keys are errors."""
    if isinstance(entity_rows, dict):
        columns = {c: entity_rows[c] for c in needed if c in entity_rows}
        missing = [c for c in needed if c not in columns]
        lengths = {len(v) for v in columns.values()}
        if len(lengths) > 1:
            raise InputError(f"entity rows: columns have different lengths {sorted(lengths)}")
        n = lengths.pop() if lengths else 0
        columns = {c: v if isinstance(v, list) else list(v) for c, v in columns.items()}
    else:
        try:
            columns = {c: [row[c] for row in entity_rows] for c in needed}
            missing = []
        except KeyError:
            missing = [c for c in needed if any(c not in row for row in entity_rows)]
            columns = {}
        except TypeError:
            raise InputError("entity_rows must be a list of dicts or a dict of lists") from None
        n = len(entity_rows)
    if missing:
        col = missing[0]
        if col in plan.entity_columns:
            users = [r.view.name for r in plan.reads if col in r.key_columns]
            raise EntityKeyError(f"entity rows lack join key '{col}' needed by feature view '{users[0]}'")
        raise InputError(f"entity rows lack request data '{col}' needed by an on-demand feature view")
    return columns, n


def get_online_features(registry: Registry, online: OnlineReader, features: list[str] | FeatureService,
                        entity_rows: list[dict[str, Any]] | dict[str, list[Any]],
                        full_feature_names: bool = False, at: datetime | None = None) -> OnlineResponse:
    """Latest values per entity row, features in request order after the join key columns.
    Aggregated features are merged over the windows ending at `at` (default: now; see
    repast.jobs.aggregated_read).

    Raises EntityKeyError before any read when a join key is missing or has the wrong type,
    FeatureNotFound for unknown views/features, InputError for malformed rows or missing request data.
    """
    plan = read_plan(registry, features, full_feature_names)
    columns, n = entity_row_columns(entity_rows, plan.entity_columns + plan.request_columns, plan)
    keys = [serialize_request_keys([columns[c] for c in r.key_columns], r.key_columns, r.key_types)
            for r in plan.reads]
    project = registry.project
    now_us = time.time_ns() // 1000 if at is None else micros(at)
    rows = [[] if not n else online.read(project, r.view, k, r.features) if r.aggregated is None
            else read_aggregated(online, project, r.view, r.aggregated, k, now_us)
            for r, k in zip(plan.reads, keys, strict=True)]
    values: dict[str, list[Any]] = {c: columns[c] for c in plan.entity_columns}
    for r, view_rows in zip(plan.reads, rows, strict=True):
        if view_rows and None not in view_rows:  # every key found: transpose the rows in one go
            by_column = list(zip(*view_rows, strict=True))
            for i, name in r.outputs:
                values[name] = list(by_column[i + 1])
            continue
        for i, name in r.outputs:
            j = i + 1
            values[name] = [None if row is None else row[j] for row in view_rows]
    if plan.on_demand:
        values.update(_on_demand(plan, columns, rows, n, full_feature_names))
    if len(values) != len(plan.entity_columns) + len(plan.output_names):
        clash = [o for o in plan.output_names if o in plan.entity_columns]
        raise InputError(f"feature name(s) {clash} equal a join key column; pass full_feature_names=True")

    def meta() -> Meta:
        return _statuses(plan, values, rows, now_us, n)

    return OnlineResponse(values, arrow_types=plan.arrow_types, meta=meta)


def _statuses(plan: ReadPlan, values: dict[str, list[Any]], rows: list[list[ReadRow]], now_us: int,
              n: int) -> Meta:
    present, null, missing, old = (FieldStatus.PRESENT, FieldStatus.NULL_VALUE, FieldStatus.NOT_FOUND,
                                   FieldStatus.OUTSIDE_MAX_AGE)
    statuses: dict[str, list[FieldStatus]] = {c: [present] * n for c in plan.entity_columns}
    stamps: dict[str, list[datetime | None]] = {c: [None] * n for c in plan.entity_columns}
    for r, view_rows in zip(plan.reads, rows, strict=True):
        oldest = now_us - r.ttl_us if r.ttl_us else None
        # An aggregated row without an event in its windows (time None) is NOT_FOUND, with its counts 0.
        ts = [None if row is None or row[0] is None else datetime_from_us(row[0]) for row in view_rows]
        # A row's status before its values are looked at; a null value then makes it NULL_VALUE.
        of_row = [missing if row is None or row[0] is None else old if oldest is not None and row[0] < oldest
                  else present for row in view_rows]
        for _, name in r.outputs:
            column = values[name]
            statuses[name] = list(of_row) if None not in column else \
                [null if v is None and s is not missing else s for v, s in zip(column, of_row, strict=True)]
            stamps[name] = ts
    for odr in plan.on_demand:
        for f in odr.features:
            name = odr.output_name(f, plan.full_feature_names)
            statuses[name] = [null if v is None else present for v in values[name]]
            stamps[name] = [None] * n
    return statuses, stamps


def _request_column(source: str, name: str, dtype: FeatureType, values: list[Any]) -> list[Any]:
    """Request data as given, after checking it fits the request source's declared type, so a
    wrong value is an InputError naming the field rather than a failure inside the function."""
    if dtype.name == "UnixTimestamp":
        return values
    try:
        array = pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
        array = None
    arrow_type: pa.DataType | None = array.type if array is not None else None
    if array is not None and pa.types.is_floating(array.type) and dtype.name in ("Int32", "Int64"):
        try:
            array.cast(pa.int64())  # a safe cast: 2.0 fits an integer field, 2.5 does not
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            arrow_type = None
    if arrow_type is None or not (pa.types.is_null(arrow_type) or is_compatible(dtype, arrow_type)):
        got = f"values of type {arrow_type}" if arrow_type is not None else "values of mixed types"
        raise InputError(f"request data '{name}' (request source '{source}') must be {dtype.name}, got {got}")
    return values


def _on_demand(plan: ReadPlan, columns: dict[str, list[Any]], rows: list[list[ReadRow]], n: int,
               full_feature_names: bool) -> dict[str, list[Any]]:
    """Run each on-demand view on the values just read and the request data, through the same
    code as training data (repast.ondemand.transform), so online and offline results agree."""
    by_name = {r.name: (r, view_rows) for r, view_rows in zip(plan.reads, rows, strict=True)}
    out: dict[str, list[Any]] = {}
    for odr in plan.on_demand:
        inputs: dict[str, list[Any]] = {c: columns[c] for c in plan.entity_columns}
        for src in odr.view.source_views:
            r, view_rows = by_name[src.name]
            for f in src.features:
                j = r.features.index(f) + 1
                inputs[f] = inputs[f"{src.name}__{f}"] = [None if row is None else row[j] for row in view_rows]
        for rs in odr.view.request_sources:
            inputs.update({f.name: _request_column(rs.name, f.name, f.dtype, columns[f.name]) for f in rs.schema})
        for f, values in on_demand_values(odr, inputs, n).items():
            out[odr.output_name(f, full_feature_names)] = values
    return out
