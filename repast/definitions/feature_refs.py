"""Resolve a feature list ("view:feature" references or a FeatureService) into per-view requests.

Shared by training retrieval and online serving, so both name, order and check features the
same way. The result is plain data and cacheable per (registry version, feature list).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from repast.definitions import FeatureService, FeatureView, OnDemandFeatureView, Projection, RepoContents
from repast.errors import FeatureNotFound, InputError


@dataclass
class ViewRequest:
    """Features to read from one feature view under one projection name."""

    view: FeatureView
    name: str  # the projection name (alias or view name): the prefix with full_feature_names
    features: list[str] = field(default_factory=list)  # requested, in request order
    hidden: list[str] = field(default_factory=list)  # read only as on-demand inputs, then dropped
    join_key_map: dict[str, str] = field(default_factory=dict)  # view join key -> request column

    @property
    def read_features(self) -> list[str]:
        return self.features + [f for f in self.hidden if f not in self.features]

    def request_columns(self) -> list[str]:
        """The entity frame / entity row columns holding this view's join keys, in key order."""
        return [self.join_key_map.get(k, k) for k in self.view.join_keys]

    def output_name(self, feature: str, full_feature_names: bool) -> str:
        return f"{self.name}__{feature}" if full_feature_names else feature


@dataclass
class OnDemandRequest:
    view: OnDemandFeatureView
    name: str
    features: list[str]

    def output_name(self, feature: str, full_feature_names: bool) -> str:
        return f"{self.name}__{feature}" if full_feature_names else feature


@dataclass
class FeatureRequest:
    views: list[ViewRequest]
    on_demand: list[OnDemandRequest]
    output_names: list[str]  # every requested feature's output column, in request order
    request_columns: list[str]  # request-source fields the on-demand views need

    def entity_columns(self) -> list[str]:
        """Every request column holding a join key, in first-seen order."""
        seen: list[str] = []
        for v in self.views:
            for c in v.request_columns():
                if c not in seen:
                    seen.append(c)
        return seen


def _projections(contents: RepoContents, features: list[str] | FeatureService) -> list[tuple[Projection, str]]:
    """(projection, feature) pairs in request order."""
    if isinstance(features, FeatureService):
        return [(p, f) for p in features.projections for f in p.features]
    if isinstance(features, str) or not isinstance(features, list | tuple):
        raise InputError(f"features must be a list of 'view:feature' strings or a FeatureService, got {features!r}")
    if not features:
        raise InputError("features is empty: give at least one 'view:feature' reference")
    pairs = []
    for ref in features:
        if not isinstance(ref, str) or ref.count(":") != 1 or ref.startswith(":") or ref.endswith(":"):
            raise InputError(f"feature reference {ref!r} must look like 'view_name:feature_name'")
        view_name, feature = ref.split(":")
        view = contents.get_view(view_name)
        pairs.append((view.projection, feature))
    return pairs


def resolve_features(contents: RepoContents, features: list[str] | FeatureService,
                     full_feature_names: bool) -> FeatureRequest:
    """Group references by view projection, check they exist, and check output names are unique."""
    views: dict[str, ViewRequest] = {}
    on_demand: dict[str, OnDemandRequest] = {}
    output: list[str] = []
    for proj, feature in _projections(contents, features):
        view = contents.get_view(proj.view_name)
        if feature not in view.feature_names():
            raise FeatureNotFound(f"feature '{feature}' is not in view '{proj.view_name}'; "
                                  f"it has {view.feature_names()}")
        req: ViewRequest | OnDemandRequest
        if isinstance(view, OnDemandFeatureView):
            req = on_demand.setdefault(proj.name, OnDemandRequest(view, proj.name, []))
        else:
            req = views.setdefault(proj.name, ViewRequest(view, proj.name, [], [], dict(proj.join_key_map)))
        if feature not in req.features:
            req.features.append(feature)
            output.append(req.output_name(feature, full_feature_names))
    request_columns: list[str] = []
    for odr in on_demand.values():
        for src in odr.view.source_views:
            src_view = contents.feature_views.get(src.view_name)
            if src_view is None:
                raise FeatureNotFound(f"on-demand view '{odr.name}' reads view '{src.view_name}', "
                                      "which is not registered")
            vr = views.setdefault(src.name, ViewRequest(src_view, src.name, [], [], dict(src.join_key_map)))
            vr.hidden += [f for f in src.features if f not in vr.hidden]
        for rs in odr.view.request_sources:
            request_columns += [f.name for f in rs.schema if f.name not in request_columns]
    _check_unique(output, full_feature_names)
    return FeatureRequest(list(views.values()), list(on_demand.values()), output, request_columns)


def _check_unique(names: list[str], full_feature_names: bool) -> None:
    seen: set[str] = set()
    for n in names:
        if n in seen:
            hint = "" if full_feature_names else "; pass full_feature_names=True to prefix names with their view"
            raise InputError(f"feature name '{n}' is requested from more than one view{hint}")
        seen.add(n)
