"""Project: the named unit every definition belongs to, declared in a repo file as Feast 0.67 does."""

from __future__ import annotations

from typing import Any

from repast.errors import DefinitionError


class Project:
    """`Project(name="driver_ranking", description="...")`: registered by apply. Its name must equal
    feature_store.yaml's `project`; a repo without one gets nothing registered for it."""

    kind = "project"

    def __init__(self, *, name: str, description: str = "", tags: dict[str, str] | None = None,
                 owner: str = "") -> None:
        if not name or not isinstance(name, str):
            raise DefinitionError(f"Project needs a non-empty name, got {name!r}")
        self.name = name
        self.description = description
        self.tags = dict(tags or {})
        self.owner = owner

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "tags": self.tags, "owner": self.owner}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Project:
        return cls(name=d["name"], description=d.get("description", ""), tags=d.get("tags"),
                   owner=d.get("owner", ""))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Project) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(("project", self.name))

    def __repr__(self) -> str:
        return f"Project(name={self.name!r})"
