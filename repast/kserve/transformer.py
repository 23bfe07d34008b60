"""The KServe transformer's logic, without KServe: entity ids in, a feature tensor out.

`OnlineFeatureEnricher.enrich` takes a request body as KServe decodes it and returns the body
to forward to the predictor:

- v1 (`{"instances": [...]}`): each instance is an object holding the entity keys (and any
  request fields on-demand features need), or a bare id when there is one entity key. The
  forwarded body is `{"instances": [[feature, ...], ...]}`, features in the configured order.
- v2 / Open Inference Protocol (`{"inputs": [{"name", "shape", "datatype", "data"}]}`): one
  input per entity key (and request field). The forwarded body has one input, `output_name`,
  of shape [rows, features].

A request the transformer cannot use (no ids, a missing key, an unknown id, a feature with no
value) raises `TransformerInputError`, which KServe answers with HTTP 400 and the message.
`repast.kserve.model` wraps this in a `kserve.Model`; this module needs only repast.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Protocol

from repast.errors import InputError

V2_DATATYPES = {"FP64", "FP32"}


class TransformerInputError(InputError):
    """The inference request cannot be enriched; the message says which field or id and why."""


class OnlineFeatureSource(Protocol):
    """A FeatureStore (in-process) or a repast.Client (through the feature server)."""

    def get_online_features(self, features: Any, entity_rows: Any, full_feature_names: bool = False) -> Any: ...


class OnlineFeatureEnricher:
    """Looks up `features` for the entity ids of each request and builds the predictor's input.

    `features` are "view:feature" references, in the order the model was trained on;
    `entity_keys` the join keys a request carries; `request_fields` any extra request values
    on-demand features need, passed through to the feature store.
    """

    def __init__(self, source: OnlineFeatureSource, features: Sequence[str], entity_keys: Sequence[str],
                 request_fields: Sequence[str] = (), output_name: str = "input-0", datatype: str = "FP64") -> None:
        if not features:
            raise TransformerInputError("the transformer needs at least one feature reference ('view:feature')")
        if not entity_keys:
            raise TransformerInputError("the transformer needs the entity key names requests carry (e.g. driver_id)")
        if datatype not in V2_DATATYPES:
            raise TransformerInputError(f"datatype must be one of {sorted(V2_DATATYPES)}, got {datatype!r}")
        self.source = source
        self.features = list(features)
        self.entity_keys = list(entity_keys)
        self.request_fields = list(request_fields)
        self.output_name = output_name
        self.datatype = datatype

    @property
    def columns(self) -> list[str]:
        """The output column of each feature, in order (the feature name after the ':')."""
        return [f.split(":", 1)[-1] for f in self.features]

    def enrich(self, body: dict[str, Any]) -> dict[str, Any]:
        """The body to forward to the predictor, in the protocol the request used."""
        if not isinstance(body, dict):
            raise TransformerInputError(f"the request body must be a JSON object, got {type(body).__name__}")
        if "instances" in body:
            rows = self.feature_rows(self._v1_columns(body["instances"]))
            return {"instances": rows}
        if "inputs" in body:
            rows = self.feature_rows(self._v2_columns(body["inputs"]))
            out: dict[str, Any] = {"inputs": [{
                "name": self.output_name, "shape": [len(rows), len(self.features)], "datatype": self.datatype,
                "data": [v for row in rows for v in row]}]}
            if body.get("id") is not None:
                out["id"] = body["id"]
            return out
        raise TransformerInputError("the request has neither 'instances' (v1 protocol) nor 'inputs' "
                                    f"(v2 / Open Inference Protocol); it has {sorted(body)}")

    def feature_rows(self, entity_columns: dict[str, list[Any]]) -> list[list[float]]:
        """One row of feature values per entity, looked up online; every value must be present."""
        response = self.source.get_online_features(self.features, entity_columns)
        values = response.to_dict()
        names = self.columns
        missing = [n for n in names if n not in values]
        if missing:
            raise TransformerInputError(f"the online response lacks feature(s) {missing}")
        n = len(next(iter(entity_columns.values())))
        rows: list[list[float]] = []
        for i in range(n):
            row = [values[name][i] for name in names]
            absent = [name for name, v in zip(names, row, strict=True) if _is_missing(v)]
            if absent:
                ids = ", ".join(f"{k}={entity_columns[k][i]!r}" for k in self.entity_keys)
                what = "no online features: unknown id, or never materialized" if len(absent) == len(names) \
                    else f"no value for {absent}"
                raise TransformerInputError(f"instance {i} ({ids}) has {what}")
            rows.append([float(v) for v in row])
        return rows

    def _v1_columns(self, instances: Any) -> dict[str, list[Any]]:
        if not isinstance(instances, list) or not instances:
            raise TransformerInputError("'instances' must be a non-empty list of objects "
                                        f"(e.g. [{{\"{self.entity_keys[0]}\": 1001}}])")
        wanted = [*self.entity_keys, *self.request_fields]
        columns: dict[str, list[Any]] = {k: [] for k in wanted}
        for i, inst in enumerate(instances):
            if not isinstance(inst, dict):
                if len(wanted) != 1:
                    raise TransformerInputError(f"instance {i} must be an object with fields {wanted}, got {inst!r}")
                inst = {wanted[0]: inst}
            absent = [k for k in wanted if k not in inst]
            if absent:
                raise TransformerInputError(f"instance {i} lacks field(s) {absent}; it has {sorted(inst)}")
            for k in wanted:
                columns[k].append(_id_value(inst[k], k, i))
        return columns

    def _v2_columns(self, inputs: Any) -> dict[str, list[Any]]:
        if not isinstance(inputs, list) or not inputs:
            raise TransformerInputError("'inputs' must be a non-empty list of tensors {name, shape, datatype, data}")
        by_name = {t.get("name"): t for t in inputs if isinstance(t, dict)}
        wanted = [*self.entity_keys, *self.request_fields]
        absent = [k for k in wanted if k not in by_name]
        if absent:
            raise TransformerInputError(f"the request has no input named {absent}; its inputs are "
                                        f"{sorted(str(n) for n in by_name)}")
        columns = {k: _flat(by_name[k].get("data"), k) for k in wanted}
        lengths = {k: len(v) for k, v in columns.items()}
        if len(set(lengths.values())) != 1 or not next(iter(lengths.values())):
            raise TransformerInputError(f"inputs {wanted} must hold the same, non-zero number of values; got {lengths}")
        return {k: [_id_value(v, k, i) for i, v in enumerate(vals)] for k, vals in columns.items()}


def _flat(data: Any, name: str) -> list[Any]:
    if not isinstance(data, list):
        raise TransformerInputError(f"input '{name}': 'data' must be a list, got {type(data).__name__}")
    out: list[Any] = []
    for v in data:
        out.extend(_flat(v, name) if isinstance(v, list) else [v])
    return out


def _id_value(value: Any, name: str, index: int) -> Any:
    # JSON integers can arrive as floats (1001.0) from numpy-minded clients; ids are exact.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if value is None or isinstance(value, bool | dict | list):
        raise TransformerInputError(f"instance {index}: '{name}' must be an id (integer or string), got {value!r}")
    return value


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))
