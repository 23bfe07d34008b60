"""Feature view versions: every schema a view has had, numbered v1, v2, ... per view.

An apply that adds a view, or changes what it serves (its fields' names, types and vector options, or
its entities), records the next version in the same registry transaction. Descriptions and tags of
fields, like the view's own description, tags, owner and ttl, are metadata: a change to them is an
update in the history, not a new version. A view declared with `version="vN"` pins that registered version: its schema
must be the one recorded as vN, and applying it records nothing new.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from repast.errors import DefinitionError


class FeatureViewVersion:
    """One recorded version of a feature view (registered under the name `view@vN`)."""

    kind = "feature_view_version"

    def __init__(self, *, view: str, version: int, schema: list[dict[str, Any]], entities: list[str],
                 recorded_at: str = "") -> None:
        self.view = view
        self.version = version
        self.schema = schema
        self.entities = entities
        self.recorded_at = recorded_at or datetime.now(UTC).isoformat()

    @property
    def name(self) -> str:
        return version_name(self.view, self.version)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "view": self.view, "version": self.version, "schema": self.schema,
                "entities": self.entities, "recorded_at": self.recorded_at}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FeatureViewVersion:
        return cls(view=d["view"], version=d["version"], schema=d["schema"], entities=d["entities"],
                   recorded_at=d.get("recorded_at", ""))

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


def served_shape(schema: list[dict[str, Any]], entities: list[str]) -> tuple[list[dict[str, Any]], list[str]]:
    """What a version is made of: the fields without their metadata, and the entities."""
    return [{k: v for k, v in f.items() if k not in _FIELD_METADATA} for f in schema], entities


def next_version(view_spec: dict[str, Any], recorded: dict[str, dict[str, Any]]) -> FeatureViewVersion | None:
    """The version an apply of `view_spec` records, or None when its schema is the latest one's
    (or it pins a recorded version). Raises DefinitionError for a pin that does not match."""
    name = view_spec["name"]
    history = versions_of(name, recorded)
    shape = served_shape(view_spec["schema"], view_spec["entities"])
    pinned = view_spec.get("version", "latest")
    if pinned != "latest":
        number = int(pinned[1:])
        match = [v for v in history if v["version"] == number]
        if not match:
            known = [f"v{v['version']}" for v in history] or "none"
            raise DefinitionError(f"FeatureView '{name}': version {pinned} is not registered; registered: {known}")
        if served_shape(match[0]["schema"], match[0]["entities"]) != shape:
            raise DefinitionError(f"FeatureView '{name}': pinned to {pinned}, but its schema differs from the "
                                  f"registered {pinned}; use version=\"latest\" to record a new version")
        return None
    if history and served_shape(history[-1]["schema"], history[-1]["entities"]) == shape:
        return None
    number = history[-1]["version"] + 1 if history else 1
    return FeatureViewVersion(view=name, version=number, schema=view_spec["schema"], entities=view_spec["entities"])
