"""RepoContents: one snapshot of every definition of a project, keyed by kind and name."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, overload

from repast.definitions.entity import Entity
from repast.definitions.feature_service import FeatureService
from repast.definitions.feature_view import FeatureView
from repast.definitions.label_view import LabelView
from repast.definitions.on_demand import OnDemandFeatureView
from repast.definitions.project import Project
from repast.definitions.saved_dataset import SavedDataset
from repast.definitions.source_types import source_from_dict
from repast.definitions.sources import DataSource
from repast.definitions.stream_view import StreamFeatureView
from repast.definitions.versions import FeatureViewVersion
from repast.errors import (
    DataSourceNotFound,
    EntityNotFound,
    FeatureNotFound,
    FeatureServiceNotFound,
    FeatureViewNotFound,
    ProjectNotFound,
    SavedDatasetNotFound,
    VersionNotFound,
)

# Order matters: objects are applied and listed in dependency order.
KINDS = ("project", "entity", "data_source", "feature_view", "on_demand_feature_view", "feature_service",
         "saved_dataset", "feature_view_version")
KIND_LABELS = {"project": "Project", "entity": "Entity", "data_source": "DataSource", "feature_view": "FeatureView",
               "on_demand_feature_view": "OnDemandFeatureView", "feature_service": "FeatureService",
               "saved_dataset": "SavedDataset", "feature_view_version": "FeatureViewVersion"}
# Kinds registered by API calls, not by repo files: an apply of the repo's files never deletes them.
NOT_FROM_FILES = ("saved_dataset", "feature_view_version")
_NOT_FOUND = {"project": ProjectNotFound, "entity": EntityNotFound, "data_source": DataSourceNotFound,
              "feature_view": FeatureViewNotFound, "on_demand_feature_view": FeatureViewNotFound,
              "feature_service": FeatureServiceNotFound, "saved_dataset": SavedDatasetNotFound,
              "feature_view_version": VersionNotFound}

Definition = Entity | DataSource | FeatureView | OnDemandFeatureView | FeatureService


def kind_of(obj: Any) -> str:
    if isinstance(obj, DataSource):
        return "data_source"
    kind = getattr(obj, "kind", None)
    if kind not in KINDS:
        from repast.errors import DefinitionError

        shown = repr(obj) if len(repr(obj)) <= 80 else repr(obj)[:77] + "..."
        raise DefinitionError(f"not a repast definition: {shown} ({type(obj).__name__}); apply() takes "
                              "Entity, data sources, FeatureView, OnDemandFeatureView and FeatureService objects")
    return str(kind)


def object_from_dict(kind: str, d: dict[str, Any]) -> Any:
    if kind == "entity":
        return Entity.from_dict(d)
    if kind == "data_source":
        return source_from_dict(d)
    if kind == "feature_view":
        if "stream_feature_view" in d:
            return StreamFeatureView.from_dict(d)
        return LabelView.from_dict(d) if "label_view" in d else FeatureView.from_dict(d)
    if kind == "on_demand_feature_view":
        return OnDemandFeatureView.from_dict(d)
    if kind == "feature_service":
        return FeatureService.from_dict(d)
    if kind == "project":
        return Project.from_dict(d)
    if kind == "saved_dataset":
        return SavedDataset.from_dict(d)
    if kind == "feature_view_version":
        return FeatureViewVersion.from_dict(d)
    raise ValueError(f"unknown definition kind {kind!r}")


def spec_of(obj: Any) -> dict[str, Any]:
    """The comparable spec of a definition (ODFV pickles excluded: they differ across runs)."""
    if isinstance(obj, (OnDemandFeatureView, StreamFeatureView)):
        return obj.spec_dict()
    return obj.to_dict()  # type: ignore[no-any-return]


@dataclass
class RepoContents:
    """All definitions of one project. Feature views have their entities bound."""

    entities: dict[str, Entity] = field(default_factory=dict)
    data_sources: dict[str, DataSource] = field(default_factory=dict)
    feature_views: dict[str, FeatureView] = field(default_factory=dict)
    on_demand_feature_views: dict[str, OnDemandFeatureView] = field(default_factory=dict)
    feature_services: dict[str, FeatureService] = field(default_factory=dict)
    projects: dict[str, Project] = field(default_factory=dict)
    saved_datasets: dict[str, SavedDataset] = field(default_factory=dict)
    feature_view_versions: dict[str, FeatureViewVersion] = field(default_factory=dict)

    def by_kind(self, kind: str) -> dict[str, Any]:
        table: dict[str, dict[str, Any]] = {"entity": self.entities, "data_source": self.data_sources,
                "feature_view": self.feature_views, "on_demand_feature_view": self.on_demand_feature_views,
                "feature_service": self.feature_services, "project": self.projects,
                "saved_dataset": self.saved_datasets, "feature_view_version": self.feature_view_versions}
        return table[kind]

    def add(self, obj: Any) -> None:
        self.by_kind(kind_of(obj))[obj.name] = obj

    def all_objects(self) -> list[tuple[str, Any]]:
        return [(kind, obj) for kind in KINDS for obj in self.by_kind(kind).values()]

    def bind(self) -> RepoContents:
        """Bind entity names in feature views to Entity objects; returns self."""
        for fv in self.feature_views.values():
            fv.resolve_entities(self.entities)
        return self

    def get_view(self, name: str) -> FeatureView | OnDemandFeatureView:
        if name in self.feature_views:
            return self.feature_views[name]
        if name in self.on_demand_feature_views:
            return self.on_demand_feature_views[name]
        known = sorted([*self.feature_views, *self.on_demand_feature_views])
        raise FeatureViewNotFound(f"feature view '{name}' is not registered; registered views: {known}")

    @overload
    def get(self, kind: Literal["entity"], name: str) -> Entity: ...
    @overload
    def get(self, kind: Literal["data_source"], name: str) -> DataSource: ...
    @overload
    def get(self, kind: Literal["feature_view"], name: str) -> FeatureView: ...
    @overload
    def get(self, kind: Literal["on_demand_feature_view"], name: str) -> OnDemandFeatureView: ...
    @overload
    def get(self, kind: Literal["feature_service"], name: str) -> FeatureService: ...
    @overload
    def get(self, kind: Literal["saved_dataset"], name: str) -> SavedDataset: ...
    @overload
    def get(self, kind: str, name: str) -> Any: ...

    def get(self, kind: str, name: str) -> Any:
        """The object of `kind` named `name`; the kind's NotFound error, naming what is registered."""
        objs = self.by_kind(kind)
        if name not in objs:
            raise _NOT_FOUND.get(kind, FeatureNotFound)(
                f"{KIND_LABELS[kind]} '{name}' is not registered; registered: {sorted(objs)}")
        return objs[name]

    def to_json(self) -> dict[str, Any]:
        return {kind: [o.to_dict() for o in self.by_kind(kind).values()] for kind in KINDS}
