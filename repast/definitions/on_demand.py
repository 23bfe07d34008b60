"""On-demand feature views: Python transformations run after retrieval, offline and online.

The function is stored in the registry (cloudpickle, base64) with its source text for display,
so a serving process can run it without the repo's files. Whoever can write the registry can
therefore run code in every process that reads it; protect the registry like code.
"""

from __future__ import annotations

import base64
import inspect
import textwrap
from collections.abc import Callable
from typing import Any

from repast.definitions.entity import Field
from repast.definitions.feature_view import FeatureView, ProjectableMixin, Projection
from repast.definitions.sources import RequestSource, source_from_dict
from repast.errors import DefinitionError

MODES = ("pandas", "python")


class OnDemandFeatureView(ProjectableMixin):
    """Features computed by `udf` from feature views' values and request data."""

    kind = "on_demand_feature_view"

    def __init__(self, *, name: str, sources: list[Any], schema: list[Field], udf: Callable[..., Any],
                 mode: str = "pandas", description: str = "", tags: dict[str, str] | None = None,
                 owner: str = "", udf_source: str | None = None) -> None:
        if mode not in MODES:
            raise DefinitionError(f"on_demand_feature_view '{name}': mode must be one of {MODES}, got {mode!r}")
        if not schema:
            raise DefinitionError(f"on_demand_feature_view '{name}': schema is empty")
        if not sources:
            raise DefinitionError(f"on_demand_feature_view '{name}': sources is empty")
        self.name = name
        self.mode = mode
        self.schema = list(schema)
        self.udf = udf
        self.udf_source = udf_source if udf_source is not None else _source_text(udf)
        self.description = description
        self.tags = dict(tags or {})
        self.owner = owner
        self.source_views: list[Projection] = []
        self.request_sources: list[RequestSource] = []
        for s in sources:
            if isinstance(s, RequestSource):
                self.request_sources.append(s)
            elif isinstance(s, FeatureView):
                self.source_views.append(s.projection)
            elif isinstance(s, Projection):
                self.source_views.append(s)
            else:
                raise DefinitionError(
                    f"on_demand_feature_view '{name}': sources must be FeatureViews or RequestSources, got {s!r}")
        self.projection = Projection(name, self.feature_names())
        self.write_to_online_store = False

    @property
    def features(self) -> list[Field]:
        return self.schema

    def feature_names(self) -> list[str]:
        return [f.name for f in self.schema]

    def transform(self, inputs: Any) -> Any:
        """Run the function on a pandas DataFrame (pandas mode) or a dict of lists (python mode)."""
        return self.udf(inputs)

    def to_dict(self) -> dict[str, Any]:
        import cloudpickle

        return {"name": self.name, "mode": self.mode, "schema": [f.to_dict() for f in self.schema],
                "source_views": [p.to_dict() for p in self.source_views],
                "request_sources": [r.to_dict() for r in self.request_sources],
                "udf_source": self.udf_source,
                "udf_pickle": base64.b64encode(cloudpickle.dumps(self.udf)).decode(),
                "description": self.description, "tags": self.tags, "owner": self.owner,
                **({"write_to_online_store": True} if self.write_to_online_store else {})}

    def spec_dict(self) -> dict[str, Any]:
        """to_dict without the pickle: what a diff compares (pickles differ across runs)."""
        d = self.to_dict()
        d.pop("udf_pickle")
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> OnDemandFeatureView:
        import cloudpickle

        udf = cloudpickle.loads(base64.b64decode(d["udf_pickle"]))
        sources: list[Any] = [Projection.from_dict(p) for p in d["source_views"]]
        sources += [source_from_dict(r) for r in d["request_sources"]]
        view = cls(name=d["name"], sources=sources, schema=[Field.from_dict(f) for f in d["schema"]],
                   udf=udf, mode=d["mode"], description=d.get("description", ""), tags=d.get("tags"),
                   owner=d.get("owner", ""), udf_source=d.get("udf_source", ""))
        view.write_to_online_store = bool(d.get("write_to_online_store", False))
        return view

    def __eq__(self, other: object) -> bool:
        return isinstance(other, OnDemandFeatureView) and self.spec_dict() == other.spec_dict()

    def __hash__(self) -> int:
        return hash(("odfv", self.name))

    def __repr__(self) -> str:
        return f"OnDemandFeatureView(name={self.name!r}, features={self.feature_names()!r})"


def _source_text(udf: Callable[..., Any]) -> str:
    try:
        return textwrap.dedent(inspect.getsource(udf))
    except (OSError, TypeError):
        return ""


def on_demand_feature_view(*, sources: list[Any], schema: list[Field], mode: str = "pandas",
                           description: str = "", tags: dict[str, str] | None = None, owner: str = "",
                           write_to_online_store: bool = False,
                           track_metrics: bool = False) -> Callable[[Callable[..., Any]], OnDemandFeatureView]:
    """Decorator: `@on_demand_feature_view(sources=[fv, request], schema=[Field(...)])`.

    pandas mode: the function takes and returns a DataFrame. python mode: it takes and returns a
    dict of column name -> list of values. `write_to_online_store=True`: computed when its input
    views are written and stored (see repast.on_demand_writes for which views qualify).
    `track_metrics` is accepted for Feast compatibility (the server's /metrics always count requests).
    """

    def decorator(udf: Callable[..., Any]) -> OnDemandFeatureView:
        view = OnDemandFeatureView(name=udf.__name__, sources=sources, schema=schema, udf=udf,
                                   mode=mode, description=description, tags=tags, owner=owner)
        view.write_to_online_store = write_to_online_store
        return view

    return decorator
