"""StreamFeatureView: a feature view fed by a stream (a KafkaSource), with Feast's names.

It is a FeatureView (training reads the KafkaSource's batch source, serving reads the online
store) that `repast stream` keeps fresh. It is registered as a feature view with a
`stream_feature_view` section in its spec. An optional `udf` turns each batch of parsed
messages into the view's rows before they are written: pandas mode (the default; Feast's
default "spark" means the same here) takes and returns a DataFrame, python mode a dict of
column -> list. The function is stored as on-demand views store theirs (cloudpickle, base64), and
signed the same way when `registry.signing_key` is set: only `repast stream` deserializes it, after
checking the signature when it holds the key (repast/definitions/signing.py, docs/security.md).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from repast.definitions.aggregation import Aggregation
from repast.definitions.entity import Entity, Field
from repast.definitions.feature_view import FeatureView
from repast.definitions.on_demand import _source_text
from repast.definitions.signing import STREAM_SCOPE, load_stored_function, serialize_function, without_stored_function
from repast.definitions.source_types import source_from_dict
from repast.definitions.sources import DataSource, PushSource
from repast.definitions.stream_sources import KafkaSource
from repast.errors import DefinitionError

STREAM_MODES = ("pandas", "python")


class StreamFeatureView(FeatureView):
    """Features of `entities` computed from the events of `source` (a KafkaSource, or a PushSource)."""

    def __init__(self, *, name: str, source: DataSource, schema: list[Field] | None = None,
                 entities: list[Entity] | list[str] | None = None, ttl: timedelta | None = None,
                 aggregations: list[Aggregation] | None = None, udf: Callable[..., Any] | None = None,
                 udf_string: str = "", mode: str = "pandas", timestamp_field: str = "",
                 online: bool = True, offline: bool = True, description: str = "",
                 tags: dict[str, str] | None = None, owner: str = "", **feast_only: Any) -> None:
        if not isinstance(source, (KafkaSource, PushSource)):
            raise DefinitionError(f"StreamFeatureView '{name}': source must be a KafkaSource or a PushSource, "
                                  f"got {source!r}")
        unknown = sorted(set(feast_only) - {"feature_transformation", "enable_tiling", "tiling_hop_size"})
        if unknown:
            raise DefinitionError(f"StreamFeatureView '{name}': unknown argument(s) {unknown}")
        mode = "pandas" if mode == "spark" else mode
        if mode not in STREAM_MODES:
            raise DefinitionError(f"StreamFeatureView '{name}': mode must be one of {STREAM_MODES} "
                                  f"(or Feast's \"spark\", which means pandas), got {mode!r}")
        if udf is not None and not callable(udf):
            raise DefinitionError(f"StreamFeatureView '{name}': udf must be a function, got {udf!r}")
        super().__init__(name=name, source=source, schema=schema, entities=entities, ttl=ttl, online=online,
                         offline=offline, description=description, tags=tags, owner=owner,
                         aggregations=aggregations)
        self.mode = mode
        self.timestamp_field = timestamp_field or source.timestamp_field
        self._udf = udf
        self._udf_payload: str | None = None  # the serialized function, as stored
        self.udf_signature: str | None = None
        self.signing_key: str | None = None  # set by a registry reader that has registry.signing_key
        self.udf_source = udf_string or (_source_text(udf) if udf is not None else "")
        self.has_udf = udf is not None

    @property
    def udf(self) -> Callable[..., Any] | None:
        """The function; a stored one is deserialized here, on first use (only a consumer runs it),
        after its signature check when the reader holds the signing key."""
        if self._udf is None and self._udf_payload:
            self._udf = load_stored_function(self._udf_payload, self.name, self.udf_source, self.udf_signature,
                                             self.signing_key, label="stream feature view", scope=STREAM_SCOPE)
        return self._udf

    def _payload(self) -> str:
        if self._udf_payload is None and self._udf is not None:
            self._udf_payload = serialize_function(self._udf)
        return self._udf_payload or ""

    def to_dict(self) -> dict[str, Any]:
        d = {**super().to_dict(), "stream_feature_view": {
            "mode": self.mode, "timestamp_field": self.timestamp_field, "udf_source": self.udf_source}}
        if self.has_udf:  # beside the spec, as on-demand views keep theirs: a diff leaves it out
            d["udf_pickle"] = self._payload()
            if self.udf_signature is not None:
                d["udf_signature"] = self.udf_signature
        return d

    def spec_dict(self) -> dict[str, Any]:
        """What a diff compares: without the pickle and its signature (pickles differ across runs)."""
        return without_stored_function(self.to_dict())

    @classmethod
    def from_dict(cls, d: dict[str, Any], entities: dict[str, Entity] | None = None) -> StreamFeatureView:
        stream = d["stream_feature_view"]
        ents: list[Any] = [entities[e] if entities and e in entities else e for e in d["entities"]]
        view = cls(name=d["name"], source=source_from_dict(d["source"]), entities=ents,
                   schema=[Field.from_dict(f) for f in d["schema"]], ttl=timedelta(seconds=d.get("ttl_seconds", 0)),
                   aggregations=[Aggregation.from_dict(a) for a in d.get("aggregations", [])],
                   udf_string=stream.get("udf_source", ""), mode=stream.get("mode", "pandas"),
                   timestamp_field=stream.get("timestamp_field", ""), online=d.get("online", True),
                   offline=d.get("offline", True), description=d.get("description", ""), tags=d.get("tags"),
                   owner=d.get("owner", ""))
        view._udf_payload = d.get("udf_pickle") or None
        view.udf_signature = d.get("udf_signature")
        view.has_udf = view._udf_payload is not None
        return view

    def __eq__(self, other: object) -> bool:
        return isinstance(other, StreamFeatureView) and self.spec_dict() == other.spec_dict() \
            and self.projection == other.projection

    def __hash__(self) -> int:
        return hash(("feature_view", self.name))

    def __repr__(self) -> str:
        return f"StreamFeatureView(name={self.name!r}, features={self.feature_names()!r})"
