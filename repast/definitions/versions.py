"""Feature view versions: every schema a view has had, numbered v1, v2, ... per view.

An apply that adds a view, or changes what it serves or how its values are computed (its fields'
names, types and vector options, its entities, its source, or an on-demand view's transformation:
its mode, function, sources), records the next version in the same registry transaction.
Descriptions and tags of fields, like the view's own (and its source's) description, tags, owner and
ttl, are metadata: a change to them is an update in the history, not a new version. A view declared
with `version="vN"` pins that registered version: its schema must be the one recorded as vN, and
applying it records nothing new.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from repast.errors import DefinitionError


class FeatureViewVersion:
    """One recorded version of a feature view (registered under the name `view@vN`)."""

    kind = "feature_view_version"

    def __init__(self, *, view: str, version: int, schema: list[dict[str, Any]], entities: list[str],
                 recorded_at: str = "", computed: dict[str, Any] | None = None) -> None:
        self.view = view
        self.version = version
        self.schema = schema
        self.entities = entities
        self.recorded_at = recorded_at or datetime.now(UTC).isoformat()
        self.computed = computed or {}  # the source or transformation (`computed_from`); {} before they were kept

    @property
    def name(self) -> str:
        return version_name(self.view, self.version)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "view": self.view, "version": self.version, "schema": self.schema,
                "entities": self.entities, "recorded_at": self.recorded_at, "computed": self.computed}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FeatureViewVersion:
        return cls(view=d["view"], version=d["version"], schema=d["schema"], entities=d.get("entities", []),
                   recorded_at=d.get("recorded_at", ""), computed=d.get("computed"))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FeatureViewVersion) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(("feature_view_version", self.name))


def version_name(view: str, version: int) -> str:
    return f"{view}@v{version}"


def versions_of(view: str, specs: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The recorded versions of `view` (specs of kind feature_view_version), oldest first."""
    return sorted((s for s in specs.values() if s["view"] == view), key=lambda s: s["version"])


# Field keys that describe a field without changing what is served.
_FIELD_METADATA = ("description", "tags")
_SOURCE_METADATA = ("description", "tags", "owner")
_TRANSFORMATION = ("mode", "udf_source", "source_views", "request_sources", "write_to_online_store")


def computed_from(view_spec: dict[str, Any]) -> dict[str, Any]:
    """How a view's values are computed, without metadata: a feature view's source, an on-demand
    view's transformation."""
    if "source" in view_spec:
        return {"source": _without_metadata(view_spec["source"])}
    return {k: _without_metadata(view_spec[k]) for k in _TRANSFORMATION if k in view_spec}


def _without_metadata(value: Any) -> Any:
    if isinstance(value, list):
        return [_without_metadata(v) for v in value]
    if isinstance(value, dict):
        return {k: _without_metadata(v) for k, v in value.items() if k not in _SOURCE_METADATA}
    return value


def served_shape(schema: list[dict[str, Any]], entities: list[str]) -> tuple[list[dict[str, Any]], list[str]]:
    """What a version is made of: the fields without their metadata, and the entities."""
    return [{k: v for k, v in f.items() if k not in _FIELD_METADATA} for f in schema], entities


def next_version(view_spec: dict[str, Any], recorded: dict[str, dict[str, Any]],
                 registered: dict[str, Any] | None = None) -> FeatureViewVersion | None:
    """The version an apply of `view_spec` (a feature view's or an on-demand view's) records, or None
    when it serves the latest version's schema, computed as the `registered` spec of the view computes
    it (or it pins a recorded version). Raises DefinitionError for a pin that does not match."""
    name = view_spec["name"]
    history = versions_of(name, recorded)
    shape = served_shape(view_spec["schema"], view_spec.get("entities", []))
    pinned = view_spec.get("version", "latest")
    if pinned != "latest":
        number = int(pinned[1:])
        match = [v for v in history if v["version"] == number]
        if not match:
            known = [f"v{v['version']}" for v in history] or "none"
            raise DefinitionError(f"FeatureView '{name}': version {pinned} is not registered; registered: {known}")
        if served_shape(match[0]["schema"], match[0].get("entities", [])) != shape:
            raise DefinitionError(f"FeatureView '{name}': pinned to {pinned}, but its schema differs from the "
                                  f"registered {pinned}; use version=\"latest\" to record a new version")
        return None
    computed = computed_from(view_spec)
    # Compared with the registered view, not the version: versions recorded before sources and
    # transformations were kept have none, and an upgrade must not make every view a new version.
    same_computation = registered is None or computed_from(registered) == computed
    if history and same_computation and served_shape(history[-1]["schema"], history[-1].get("entities", [])) == shape:
        return None
    number = history[-1]["version"] + 1 if history else 1
    return FeatureViewVersion(view=name, version=number, schema=view_spec["schema"],
                              entities=view_spec.get("entities", []), computed=computed)
