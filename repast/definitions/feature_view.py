"""FeatureView: a named group of features of one or more entities, read from one source."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from repast.definitions.aggregation import Aggregation, check_aggregations
from repast.definitions.entity import Entity, Field
from repast.definitions.source_types import source_from_dict
from repast.definitions.sources import DataSource, PushSource, RequestSource
from repast.definitions.stream_sources import KafkaSource
from repast.errors import DefinitionError


@dataclass
class Projection:
    """How a view is used in a request: which features, under which name, with which key names.

    `fv[["a", "b"]]`, `fv.with_name("x")` and `fv.with_join_key_map({...})` return copies of the
    view with a narrowed projection; the registered view itself is unchanged.
    """

    view_name: str
    features: list[str]
    name_alias: str = ""
    join_key_map: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.name_alias or self.view_name

    def to_dict(self) -> dict[str, Any]:
        return {"view_name": self.view_name, "features": self.features,
                "name_alias": self.name_alias, "join_key_map": self.join_key_map}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Projection:
        return cls(d["view_name"], list(d["features"]), d.get("name_alias", ""), d.get("join_key_map", {}))


class ProjectableMixin:
    """`view[["a", "b"]]`, `with_name`, `with_join_key_map` for feature and on-demand views."""

    name: str
    projection: Projection

    def feature_names(self) -> list[str]:
        raise NotImplementedError

    def __getitem__(self, features: list[str]) -> Any:
        if isinstance(features, str):
            features = [features]
        unknown = [f for f in features if f not in self.feature_names()]
        if unknown:
            raise DefinitionError(f"view '{self.name}' has no feature(s) {unknown}; it has {self.feature_names()}")
        clone = copy.copy(self)
        clone.projection = Projection(self.name, list(features), self.projection.name_alias,
                                      dict(self.projection.join_key_map))
        return clone

    def with_name(self, name: str) -> Any:
        clone = copy.copy(self)
        clone.projection = Projection(self.name, list(self.projection.features), name,
                                      dict(self.projection.join_key_map))
        return clone

    def with_join_key_map(self, join_key_map: dict[str, str]) -> Any:
        clone = copy.copy(self)
        clone.projection = Projection(self.name, list(self.projection.features),
                                      self.projection.name_alias, dict(join_key_map))
        return clone


class FeatureView(ProjectableMixin):
    """Features of `entities`, read from `source`; `ttl` bounds how old a value may be (0 = no limit).

    `schema` may list the entity join key columns too (as in Feast); they are not features.

    With `aggregations` (docs/aggregations.md) the view's features are its aggregations only, named
    by `Aggregation.feature_name`; its `schema` declares the source columns they read (and the
    join keys), which are then inputs, not features.
    """

    kind = "feature_view"

    def __init__(self, *, name: str, source: DataSource, schema: list[Field] | None = None,
                 entities: list[Entity] | list[str] | None = None, ttl: timedelta | None = None,
                 online: bool = True, offline: bool = True, description: str = "",
                 tags: dict[str, str] | None = None, owner: str = "", enable_validation: bool = False,
                 version: str | int = "latest", aggregations: list[Aggregation] | None = None) -> None:
        if not name or not isinstance(name, str):
            raise DefinitionError(f"FeatureView needs a non-empty name, got {name!r}")
        if not isinstance(source, DataSource) or isinstance(source, RequestSource):
            raise DefinitionError(f"FeatureView '{name}': source must be a batch or push source, got {source!r}")
        if ttl is not None and not isinstance(ttl, timedelta):
            raise DefinitionError(f"FeatureView '{name}': ttl must be a datetime.timedelta, got {ttl!r}")
        if ttl is not None and ttl < timedelta(0):
            raise DefinitionError(f"FeatureView '{name}': ttl must not be negative")
        self.name = name
        self.source = source
        self.entities = [e.name if isinstance(e, Entity) else e for e in (entities or [])]
        self.entity_objects = [e for e in (entities or []) if isinstance(e, Entity)]
        self.schema = list(schema or [])
        self.ttl = ttl or timedelta(0)
        self.online = online
        self.offline = offline
        self.description = description
        self.tags = dict(tags or {})
        self.owner = owner
        self.enable_validation = bool(enable_validation)
        self.version = _version(name, version)
        self.join_keys: list[str] = [k for e in self.entity_objects for k in e.join_keys]
        if aggregations is not None and not isinstance(aggregations, list | tuple):
            raise DefinitionError(f"FeatureView '{name}': aggregations must be a list of Aggregation, "
                                  f"got {aggregations!r}")
        self.aggregations: list[Aggregation] = list(aggregations or [])
        self.check_aggregations()
        self.projection = Projection(name, self.feature_names())

    @property
    def features(self) -> list[Field]:
        """The feature fields: the schema without the entity join key columns, or with
        aggregations, one field per aggregation."""
        if self.aggregations:
            declared = {f.name: f.dtype for f in self.schema}
            return [Field(name=a.feature_name, dtype=a.output_type(declared.get(a.column)))
                    for a in self.aggregations]
        return [f for f in self.schema if f.name not in self.join_keys]

    @property
    def aggregation_inputs(self) -> list[str]:
        """The source columns the aggregations read (schema names, before field_mapping), in
        first-use order; empty for a view without aggregations."""
        return list(dict.fromkeys(a.column for a in self.aggregations))

    def source_feature_columns(self) -> list[str]:
        """The schema names an engine reads from the source for this view's values: the
        aggregation inputs, or the features of a plain view."""
        return self.aggregation_inputs if self.aggregations else self.feature_names()

    def check_aggregations(self) -> None:
        """Check the aggregations against the declared schema (DefinitionError naming the fix);
        a view whose schema is inferred at apply is checked again then."""
        if self.aggregations:
            check_aggregations(self.name, self.aggregations,
                               {f.name: f.dtype for f in self.schema if f.name not in self.join_keys},
                               self.join_keys)

    @property
    def entity_columns(self) -> list[Field]:
        return [f for f in self.schema if f.name in self.join_keys]

    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    @property
    def batch_source(self) -> DataSource:
        """The source offline engines read (a push or Kafka source's batch source)."""
        if isinstance(self.source, (PushSource, KafkaSource)):
            return self.source.batch_source
        return self.source

    def resolve_entities(self, entities: dict[str, Entity]) -> None:
        """Bind entity names to Entity objects (after loading from the registry)."""
        missing = [e for e in self.entities if e not in entities]
        if missing:
            raise DefinitionError(f"FeatureView '{self.name}': entity {missing[0]!r} is not defined")
        self.entity_objects = [entities[e] for e in self.entities]
        self.join_keys = [k for e in self.entity_objects for k in e.join_keys]
        # Before binding, entity columns of the schema looked like features; drop them from the
        # projection now that the join keys are known.
        self.projection.features = [f for f in self.projection.features if f not in self.join_keys] \
            or self.feature_names()

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "source": self.source.to_dict(), "entities": self.entities,
                "schema": [f.to_dict() for f in self.schema], "ttl_seconds": self.ttl.total_seconds(),
                "online": self.online, "offline": self.offline, "description": self.description,
                "tags": self.tags, "owner": self.owner,
                # Only when set, so views registered before these existed compare unchanged.
                **({"enable_validation": True} if self.enable_validation else {}),
                **({"version": self.version} if self.version != "latest" else {}),
                **({"aggregations": [a.to_dict() for a in self.aggregations]} if self.aggregations else {})}

    @classmethod
    def from_dict(cls, d: dict[str, Any], entities: dict[str, Entity] | None = None) -> FeatureView:
        ents: list[Any] = [entities[e] if entities and e in entities else e for e in d["entities"]]
        return cls(name=d["name"], source=source_from_dict(d["source"]), entities=ents,
                   schema=[Field.from_dict(f) for f in d["schema"]],
                   ttl=timedelta(seconds=d.get("ttl_seconds", 0)), online=d.get("online", True),
                   offline=d.get("offline", True), description=d.get("description", ""),
                   tags=d.get("tags"), owner=d.get("owner", ""),
                   enable_validation=d.get("enable_validation", False), version=d.get("version", "latest"),
                   aggregations=[Aggregation.from_dict(a) for a in d.get("aggregations", [])])

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FeatureView) and self.to_dict() == other.to_dict() \
            and self.projection == other.projection

    def __hash__(self) -> int:
        return hash(("feature_view", self.name))

    def __repr__(self) -> str:
        return f"FeatureView(name={self.name!r}, features={self.feature_names()!r})"


def _version(name: str, version: str | int) -> str:
    """"latest", or a pinned registered version written "vN" (Feast also takes the number N)."""
    text = str(version).strip().lower()
    if text == "latest":
        return "latest"
    number = text[1:] if text.startswith("v") else text
    if not number.isdigit() or int(number) < 1:
        raise DefinitionError(f"FeatureView '{name}': version must be \"latest\" or a version such as \"v2\", "
                              f"got {version!r}")
    return f"v{int(number)}"


class BatchFeatureView(FeatureView):
    """Feast's view over batch data only: as FeatureView, but its source must be a batch source
    (FileSource, PostgreSQLSource), not a PushSource, as Feast requires. It is registered as a
    feature view. `aggregations` work as on FeatureView (docs/aggregations.md); Feast's `udf`
    transformation on it is not supported."""

    def __init__(self, *, name: str, source: DataSource, **kwargs: Any) -> None:
        if isinstance(source, PushSource):
            raise DefinitionError(f"BatchFeatureView '{name}': source must be a batch source such as a FileSource, "
                                  f"got PushSource '{source.name}'; use FeatureView for a pushed source")
        super().__init__(name=name, source=source, **kwargs)
