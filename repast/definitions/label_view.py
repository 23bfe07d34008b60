"""LabelView: labels (judgments about entities) written by several labellers, kept apart from
feature data, and read online and point-in-time offline exactly as a feature view is.

A LabelView is registered as a feature view with a `label_view` section in its spec, so push,
materialization, online reads, training data and feature services treat it as one. Its source is
normally a PushSource; `labeler_field` is the schema field naming who wrote each label.

Conflicts between labellers of one entity are resolved by `conflict_policy`. LAST_WRITE_WINS is the
latest label by event time (then created time), online and offline. LABELER_PRIORITY and
MAJORITY_VOTE are refused at definition time: repast does not resolve them yet.
"""

from __future__ import annotations

import enum
from datetime import timedelta
from typing import Any

from repast.definitions.entity import Entity, Field
from repast.definitions.feature_view import FeatureView
from repast.definitions.source_types import source_from_dict
from repast.definitions.sources import DataSource
from repast.errors import DefinitionError


class ConflictPolicy(enum.Enum):
    """How labels of one entity from different labellers are resolved (Feast's names)."""

    LAST_WRITE_WINS = "last_write_wins"
    LABELER_PRIORITY = "labeler_priority"
    MAJORITY_VOTE = "majority_vote"


class LabelView(FeatureView):
    """`LabelView(name=, entities=, schema=, source=PushSource(...), labeler_field="labeler",
    conflict_policy=ConflictPolicy.LAST_WRITE_WINS)`."""

    def __init__(self, *, name: str, source: DataSource, schema: list[Field] | None = None,
                 entities: list[Entity] | list[str] | None = None, ttl: timedelta | None = None,
                 labeler_field: str = "labeler", conflict_policy: ConflictPolicy = ConflictPolicy.LAST_WRITE_WINS,
                 reference_feature_view: FeatureView | str | None = None, online: bool = True,
                 offline: bool = True, description: str = "", tags: dict[str, str] | None = None,
                 owner: str = "") -> None:
        super().__init__(name=name, source=source, schema=schema, entities=entities, ttl=ttl, online=online,
                         offline=offline, description=description, tags=tags, owner=owner)
        if not isinstance(conflict_policy, ConflictPolicy):
            raise DefinitionError(f"LabelView '{name}': conflict_policy must be a ConflictPolicy, "
                                  f"got {conflict_policy!r}")
        if conflict_policy is not ConflictPolicy.LAST_WRITE_WINS:
            raise DefinitionError(f"LabelView '{name}': conflict_policy {conflict_policy.name} is not supported by "
                                  "repast; use ConflictPolicy.LAST_WRITE_WINS")
        if self.schema and labeler_field not in [f.name for f in self.schema]:
            raise DefinitionError(f"LabelView '{name}': labeler_field '{labeler_field}' is not a field of its schema")
        self.labeler_field = labeler_field
        self.conflict_policy = conflict_policy
        self.reference_feature_view = reference_feature_view.name if isinstance(reference_feature_view, FeatureView) \
            else reference_feature_view

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "label_view": {
            "labeler_field": self.labeler_field, "conflict_policy": self.conflict_policy.name,
            "reference_feature_view": self.reference_feature_view}}

    @classmethod
    def from_dict(cls, d: dict[str, Any], entities: dict[str, Entity] | None = None) -> LabelView:
        label = d["label_view"]
        ents: list[Any] = [entities[e] if entities and e in entities else e for e in d["entities"]]
        return cls(name=d["name"], source=source_from_dict(d["source"]), entities=ents,
                   schema=[Field.from_dict(f) for f in d["schema"]], ttl=timedelta(seconds=d.get("ttl_seconds", 0)),
                   labeler_field=label["labeler_field"], conflict_policy=ConflictPolicy[label["conflict_policy"]],
                   reference_feature_view=label.get("reference_feature_view"), online=d.get("online", True),
                   offline=d.get("offline", True), description=d.get("description", ""), tags=d.get("tags"),
                   owner=d.get("owner", ""))

    def __repr__(self) -> str:
        return f"LabelView(name={self.name!r}, features={self.feature_names()!r})"
