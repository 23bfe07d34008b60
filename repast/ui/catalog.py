"""Catalog: one project's definitions as the UI shows them, built from the registry's JSON specs.

The UI reads specs (plain JSON) and never rebuilds definition objects, so an on-demand view's
stored function is shown as its source text and never unpickled. A catalog is built once per
registry version; lists, neighbours and the search index are computed then, so a request only
filters and slices in memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from repast.errors import FeatureNotFound
from repast.registry import Snapshot

# URL slug <-> registry kind. "feature" is the UI's own kind: one feature of one view.
SLUGS = {"entities": "entity", "data-sources": "data_source", "feature-views": "feature_view",
         "on-demand-feature-views": "on_demand_feature_view", "feature-services": "feature_service",
         "features": "feature"}
KIND_SLUGS = {kind: slug for slug, kind in SLUGS.items()}
KIND_TITLES = {"entity": "Entity", "data_source": "Data source", "feature_view": "Feature view",
               "on_demand_feature_view": "On-demand feature view", "feature_service": "Feature service",
               "feature": "Feature"}
OBJECT_KINDS = ("entity", "data_source", "feature_view", "on_demand_feature_view", "feature_service")


@dataclass(frozen=True)
class Ref:
    """One object: `kind` and `name` (a feature's name is `view:feature`)."""

    kind: str
    name: str

    @property
    def id(self) -> str:
        return f"{self.kind}/{self.name}"

    def to_json(self) -> dict[str, str]:
        return {"kind": self.kind, "name": self.name}


@dataclass
class Entry:
    """What lists and search show of an object, with its lower-cased search text."""

    ref: Ref
    description: str
    owner: str
    tags: dict[str, str]
    detail: str  # a short kind-specific line: a type, join keys, a feature count
    text: str = ""

    def to_json(self) -> dict[str, Any]:
        return {**self.ref.to_json(), "description": self.description, "owner": self.owner,
                "tags": self.tags, "detail": self.detail}


@dataclass
class Catalog:
    """Every object of one project at one registry version, with edges between neighbours."""

    project: str
    version: int
    specs: dict[str, dict[str, dict[str, Any]]]
    entries: dict[str, list[Entry]] = field(default_factory=dict)  # kind -> entries sorted by name
    edges: list[tuple[Ref, Ref]] = field(default_factory=list)  # lineage: upstream -> downstream
    _by_ref: dict[Ref, Entry] = field(default_factory=dict)
    upstream: dict[Ref, list[Ref]] = field(default_factory=dict)
    downstream: dict[Ref, list[Ref]] = field(default_factory=dict)

    def spec(self, ref: Ref) -> dict[str, Any]:
        """The stored spec of an object (a feature's spec is its schema field plus its view)."""
        if ref not in self._by_ref:
            raise FeatureNotFound(f"{KIND_TITLES.get(ref.kind, ref.kind)} '{ref.name}' is not registered "
                                  f"in project '{self.project}'")
        if ref.kind == "feature":
            view, _, name = ref.name.partition(":")
            owner = self.specs.get("feature_view", {}).get(view) or self.specs["on_demand_feature_view"][view]
            kind = "feature_view" if view in self.specs.get("feature_view", {}) else "on_demand_feature_view"
            fld = next(f for f in owner.get("schema", []) if f.get("name") == name)
            return {**fld, "view": view, "view_kind": kind}
        return self.specs[ref.kind][ref.name]

    def entry(self, ref: Ref) -> Entry:
        self.spec(ref)
        return self._by_ref[ref]

    def has(self, ref: Ref) -> bool:
        return ref in self._by_ref

    def neighbours(self, ref: Ref) -> list[tuple[str, Ref]]:
        """(relation, object) pairs: what this object reads from and what reads from it."""
        self.spec(ref)
        return [("upstream", a) for a in self.upstream.get(ref, [])] + \
            [("downstream", b) for b in self.downstream.get(ref, [])]

    def counts(self) -> dict[str, int]:
        return {kind: len(self.entries.get(kind, [])) for kind in (*OBJECT_KINDS, "feature")}


def build_catalog(project: str, snapshot: Snapshot) -> Catalog:
    """Index a snapshot: entries per kind, lineage edges, search text. Stored functions' pickles (on-demand
    and stream views') are dropped."""
    specs = {kind: dict(snapshot.specs.get(kind, {})) for kind in OBJECT_KINDS}
    for kind in ("feature_view", "on_demand_feature_view"):
        specs[kind] = {n: {k: v for k, v in s.items() if k != "udf_pickle"} for n, s in specs[kind].items()}
    catalog = Catalog(project, snapshot.version, specs)
    for kind in OBJECT_KINDS:
        for name, spec in sorted(specs[kind].items()):
            _add(catalog, Entry(Ref(kind, name), _text(spec.get("description")), _text(spec.get("owner")),
                                _tags(spec.get("tags")), _detail(kind, spec)))
    for kind in ("feature_view", "on_demand_feature_view"):
        for view, spec in sorted(specs[kind].items()):
            for fld in _features(kind, spec, specs["entity"]):
                ref = Ref("feature", f"{view}:{fld.get('name', '')}")
                _add(catalog, Entry(ref, _text(fld.get("description")), _text(spec.get("owner")),
                                    _tags(fld.get("tags")), str(fld.get("dtype", ""))))
                catalog.edges.append((Ref(kind, view), ref))
    catalog.edges.extend(_lineage_edges(specs))
    catalog.edges = [(a, b) for a, b in catalog.edges if a in catalog._by_ref and b in catalog._by_ref]
    for a, b in catalog.edges:
        catalog.downstream.setdefault(a, []).append(b)
        catalog.upstream.setdefault(b, []).append(a)
    # A feature links to the services that serve it; a service's upstream stays its views.
    for feature, service in _feature_service_edges(specs):
        if feature in catalog._by_ref:
            catalog.edges.append((feature, service))
            catalog.downstream.setdefault(feature, []).append(service)
    return catalog


def _feature_service_edges(specs: dict[str, dict[str, dict[str, Any]]]) -> list[tuple[Ref, Ref]]:
    return [(Ref("feature", f"{p.get('view_name', '')}:{f}"), Ref("feature_service", name))
            for name, fs in specs["feature_service"].items() for p in fs.get("features") or []
            for f in p.get("features") or []]


def _add(catalog: Catalog, entry: Entry) -> None:
    tags = " ".join(f"{k}={v}" for k, v in entry.tags.items())
    entry.text = " ".join((entry.ref.name, entry.description, entry.owner, tags, entry.detail)).lower()
    catalog.entries.setdefault(entry.ref.kind, []).append(entry)
    catalog._by_ref[entry.ref] = entry


def _features(kind: str, spec: dict[str, Any], entities: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """A view's feature fields: its schema without the entity join key columns."""
    schema = [f for f in spec.get("schema") or [] if isinstance(f, dict)]
    if kind != "feature_view":
        return schema
    keys = {k for e in spec.get("entities") or [] for k in (entities.get(e) or {}).get("join_keys") or []}
    return [f for f in schema if f.get("name") not in keys]


def feature_fields(catalog: Catalog, kind: str, spec: dict[str, Any]) -> list[dict[str, Any]]:
    return _features(kind, spec, catalog.specs["entity"])


def _lineage_edges(specs: dict[str, dict[str, dict[str, Any]]]) -> list[tuple[Ref, Ref]]:
    edges: list[tuple[Ref, Ref]] = []
    for name, src in specs["data_source"].items():
        batch = src.get("batch_source") or {}
        if batch.get("name"):
            edges.append((Ref("data_source", batch["name"]), Ref("data_source", name)))
    for name, fv in specs["feature_view"].items():
        src = fv.get("source") or {}
        if src.get("name"):
            edges.append((Ref("data_source", src["name"]), Ref("feature_view", name)))
        edges.extend((Ref("entity", e), Ref("feature_view", name)) for e in fv.get("entities") or [])
    for name, odfv in specs["on_demand_feature_view"].items():
        for p in odfv.get("source_views") or []:
            edges.append((_view_ref(specs, p.get("view_name", "")), Ref("on_demand_feature_view", name)))
        for r in odfv.get("request_sources") or []:
            edges.append((Ref("data_source", r.get("name", "")), Ref("on_demand_feature_view", name)))
    for name, fs in specs["feature_service"].items():
        for p in fs.get("features") or []:
            edges.append((_view_ref(specs, p.get("view_name", "")), Ref("feature_service", name)))
    return list(dict.fromkeys(edges))


def _view_ref(specs: dict[str, dict[str, dict[str, Any]]], name: str) -> Ref:
    kind = "on_demand_feature_view" if name in specs["on_demand_feature_view"] else "feature_view"
    return Ref(kind, name)


def _detail(kind: str, spec: dict[str, Any]) -> str:
    if kind == "entity":
        return "join keys: " + ", ".join(spec.get("join_keys") or [])
    if kind == "data_source":
        return str(spec.get("type") or "")
    if kind in ("feature_view", "on_demand_feature_view"):
        return f"{len(spec.get('schema') or [])} fields"
    if kind == "feature_service":
        return f"{len(spec.get('features') or [])} views"
    return ""


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _tags(value: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}
