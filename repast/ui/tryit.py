""""Try it": online values of a feature view or service for keys typed in a form, plus the matching
Python (`get_online_features`) and curl snippets.

Reads run the online read a model's FeatureStore runs (same statuses, same ttl rule).
Key text is converted to the entity's declared type; comma-separated values make several rows.
"""

from __future__ import annotations

import json
import math
import shlex
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from repast.errors import EntityKeyError, InputError, RepastError
from repast.jobs.online_read import get_online_features
from repast.ui.catalog import Catalog, Ref, feature_fields

if TYPE_CHECKING:
    from repast.jobs.backends import Backends

_INT = {"INT32", "INT64", "UNIX_TIMESTAMP"}
_FLOAT = {"FLOAT", "DOUBLE"}


@dataclass
class TryInput:
    name: str
    type_name: str  # INT64, STRING, ... (entity value type or request field dtype)
    source: str  # the entity or request source it belongs to


def inputs_of(catalog: Catalog, ref: Ref) -> list[TryInput]:
    """The join keys (and request fields) a read of this view or service needs, in order."""
    views = [ref.name] if ref.kind == "feature_view" else \
        [p.get("view_name", "") for p in catalog.spec(ref).get("features") or []]
    out: dict[str, TryInput] = {}
    for view in views:
        _view_inputs(catalog, view, out)
    return list(out.values())


def _view_inputs(catalog: Catalog, view: str, out: dict[str, TryInput]) -> None:
    fv = catalog.specs["feature_view"].get(view)
    if fv is not None:
        for entity in fv.get("entities") or []:
            spec = catalog.specs["entity"].get(entity) or {}
            for key in spec.get("join_keys") or []:
                out.setdefault(key, TryInput(key, str(spec.get("value_type") or "UNKNOWN"), entity))
        return
    odfv = catalog.specs["on_demand_feature_view"].get(view) or {}
    for p in odfv.get("source_views") or []:
        _view_inputs(catalog, p.get("view_name", ""), out)
    for r in odfv.get("request_sources") or []:
        for f in r.get("schema") or []:
            dtype = str(f.get("dtype", "String")).upper()
            out.setdefault(f["name"], TryInput(f["name"], dtype, r.get("name", "")))


def feature_refs(catalog: Catalog, ref: Ref) -> list[str]:
    if ref.kind == "feature_view":
        return [f"{ref.name}:{f['name']}" for f in feature_fields(catalog, ref.kind, catalog.spec(ref))]
    refs = []
    for p in catalog.spec(ref).get("features") or []:
        refs += [f"{p.get('name_alias') or p['view_name']}:{f}" for f in p.get("features") or []]
    return refs


def parse_keys(inputs: list[TryInput], given: dict[str, list[str]]) -> dict[str, list[Any]]:
    """Typed columns from form text; EntityKeyError names a missing or mistyped key."""
    columns: dict[str, list[Any]] = {}
    for inp in inputs:
        texts = [t.strip() for raw in given.get(inp.name, []) for t in raw.split(",") if t.strip()]
        if not texts:
            raise EntityKeyError(f"enter a value for '{inp.name}' ({inp.source})")
        columns[inp.name] = [_typed(inp, t) for t in texts]
    lengths = {len(v) for v in columns.values()}
    if len(lengths) > 1:
        raise EntityKeyError(f"every key needs the same number of comma-separated values, got {sorted(lengths)}")
    return columns


def _typed(inp: TryInput, text: str) -> Any:
    kind = inp.type_name.upper()
    try:
        if kind in _INT or (kind == "UNKNOWN" and text.lstrip("-").isdigit()):
            return int(text)
        if kind in _FLOAT or kind.startswith("FLOAT"):
            return float(text)
        if kind == "BOOL":
            if text.lower() not in ("true", "false"):
                raise ValueError(text)
            return text.lower() == "true"
    except ValueError:
        raise EntityKeyError(f"'{inp.name}' must be a value of type {kind}, got {text!r}") from None
    return text


def read_online(backends: Backends, catalog: Catalog, ref: Ref, columns: dict[str, list[Any]]) -> dict[str, Any]:
    """Values, statuses and event timestamps per entity row, as JSON."""
    if catalog.project != backends.project:
        raise InputError(f"try it reads the online store of project '{backends.project}' only")
    features: Any = feature_refs(catalog, ref)
    if ref.kind == "feature_service":
        features = backends.registry.contents().get("feature_service", ref.name)
    try:
        response = get_online_features(backends.registry, backends.online_store, features, columns)
    except RepastError:
        raise
    except Exception as e:  # e.g. an on-demand function that cannot run in this process
        raise InputError(f"the online read failed: {type(e).__name__}: {e}") from None
    values, statuses, stamps = response.to_dict(), response.statuses(), response.event_timestamps()
    n = len(next(iter(columns.values())))
    names = [k for k in values if k not in columns]
    rows = [{"entity": {k: columns[k][i] for k in columns},
             "values": [{"feature": name, "value": values[name][i], "status": str(statuses[name][i]),
                         "event_timestamp": _iso(stamps[name][i])}
                        for name in names]} for i in range(n)]
    return {"features": names, "rows": rows}


def _iso(stamp: datetime | None) -> str | None:
    return stamp.isoformat() if stamp else None


def snippets(catalog: Catalog, ref: Ref, columns: dict[str, list[Any]], server_url: str,
             with_token: bool) -> dict[str, str]:
    """Python and curl that read the same values (a service by name, a view by its features)."""
    rows = [dict(zip(columns, vals, strict=True)) for vals in zip(*columns.values(), strict=True)]
    if ref.kind == "feature_service":
        features_py = f"store.get_feature_service({ref.name!r})"
        body: dict[str, Any] = {"feature_service": ref.name, "entities": columns}
    else:
        refs = feature_refs(catalog, ref)
        features_py = "[\n" + "".join(f"        {r!r},\n" for r in refs) + "    ]"
        body = {"features": refs, "entities": columns}
    python = ("from repast import FeatureStore\n\nstore = FeatureStore(\".\")\n"
              f"response = store.get_online_features(\n    features={features_py},\n"
              f"    entity_rows={_python_literal(rows)},\n)\nprint(response.to_dict())\n")
    # Names and values come from the registry and the form: every one is quoted for its language
    # (repr above, shlex.quote here), so pasting a snippet never runs what a name holds.
    auth = ' \\\n  -H "Authorization: Bearer $REPAST_TOKEN"' if with_token else ""
    url = shlex.quote(server_url.rstrip("/") + "/get-online-features")
    curl = (f"curl -s -X POST {url} \\\n"
            f"  -H 'Content-Type: application/json'{auth} \\\n  -d {shlex.quote(json.dumps(body))}\n")
    return {"python": python, "curl": curl}


def _python_literal(value: Any) -> str:
    """repr, except that a float NaN or infinity (typed into a float field) is written as a call
    that evaluates to it: repr gives a bare `nan`, which is not Python."""
    if isinstance(value, float) and not math.isfinite(value):
        return f"float({str(value)!r})"
    if isinstance(value, list):
        return "[" + ", ".join(map(_python_literal, value)) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k!r}: {_python_literal(v)}" for k, v in value.items()) + "}"
    return repr(value)


def example_columns(inputs: list[TryInput]) -> dict[str, list[Any]]:
    """Placeholders for the snippets before anything was entered."""
    return {i.name: [1001 if i.type_name.upper() in _INT else f"<{i.name}>"] for i in inputs}
