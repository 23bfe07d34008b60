"""FeatureService: a named, versioned list of features a model uses."""

from __future__ import annotations

from typing import Any

from repast.definitions.feature_view import FeatureView, Projection
from repast.definitions.logging_config import LoggingConfig
from repast.definitions.on_demand import OnDemandFeatureView
from repast.errors import DefinitionError


class FeatureService:
    """`FeatureService(name="model_v1", features=[fv, fv[["a"]], odfv])`."""

    kind = "feature_service"

    def __init__(self, *, name: str, features: list[Any], description: str = "",
                 tags: dict[str, str] | None = None, owner: str = "",
                 logging_config: LoggingConfig | None = None) -> None:
        if not name or not isinstance(name, str):
            raise DefinitionError(f"FeatureService needs a non-empty name, got {name!r}")
        if not features:
            raise DefinitionError(f"FeatureService '{name}': features is empty")
        self.name = name
        self.projections: list[Projection] = []
        for f in features:
            if isinstance(f, (FeatureView, OnDemandFeatureView)):
                self.projections.append(f.projection)
            elif isinstance(f, Projection):
                self.projections.append(f)
            else:
                raise DefinitionError(f"FeatureService '{name}': features must be feature views or "
                                      f"projections such as fv[['a']], got {f!r}")
        self.description = description
        self.tags = dict(tags or {})
        self.owner = owner
        if logging_config is not None and not isinstance(logging_config, LoggingConfig):
            raise DefinitionError(f"FeatureService '{name}': logging_config must be a LoggingConfig")
        self.logging_config = logging_config

    @property
    def feature_view_projections(self) -> list[Projection]:
        """Feast's name for the projections: which view, which features, under which name."""
        return self.projections

    def feature_refs(self) -> list[str]:
        """`view:feature` references, using each projection's alias when it has one."""
        return [f"{p.name}:{f}" for p in self.projections for f in p.features]

    def to_dict(self) -> dict[str, Any]:
        d = {"name": self.name, "features": [p.to_dict() for p in self.projections],
             "description": self.description, "tags": self.tags, "owner": self.owner}
        if self.logging_config is not None:  # absent otherwise, so services applied before stay unchanged
            d["logging_config"] = self.logging_config.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FeatureService:
        logging = LoggingConfig.from_dict(d["logging_config"]) if d.get("logging_config") else None
        return cls(name=d["name"], features=[Projection.from_dict(p) for p in d["features"]],
                   description=d.get("description", ""), tags=d.get("tags"), owner=d.get("owner", ""),
                   logging_config=logging)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FeatureService) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(("feature_service", self.name))

    def __repr__(self) -> str:
        return f"FeatureService(name={self.name!r})"
