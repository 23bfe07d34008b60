"""On-demand feature views: Python transformations run after retrieval, offline and online.

The function is stored in the registry (cloudpickle, base64) with its source text for display,
so a serving process can run it without the repo's files. A view read from the registry keeps the
serialized function as it is and deserializes it only when it is run (`udf`, `transform`):
listing, describing and dumping definitions never run stored code. With a signing key (see
repast/definitions/signing.py) the stored HMAC is checked first. Whoever can write the registry can otherwise
run code in every process that runs the view; protect the registry like code (docs/security.md).
"""

from __future__ import annotations

import inspect
import textwrap
from collections.abc import Callable
from typing import Any

from repast.definitions.entity import Field
from repast.definitions.feature_view import FeatureView, ProjectableMixin, Projection
from repast.definitions.signing import load_stored_function, serialize_function, without_stored_function
from repast.definitions.source_types import source_from_dict
from repast.definitions.sources import RequestSource
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
        self._udf = udf
        self._udf_payload: str | None = None  # the serialized function, as stored
        self.udf_signature: str | None = None
        self.signing_key: str | None = None  # set by a registry reader that has registry.signing_key
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

    @property
    def function_is_stored(self) -> bool:
        """True for a view read from the registry whose function has not been deserialized (nor run)."""
        return self._udf is None

    @property
    def udf(self) -> Callable[..., Any]:
        """The function; a stored one is deserialized here, on first use, after its signature check."""
        if self._udf is None:
            assert self._udf_payload is not None
            function = load_stored_function(self._udf_payload, self.name, self.udf_source or "",
                                            self.udf_signature, self.signing_key)
            self._udf = _with_stored_source(function, self.udf_source, self.name)
        return self._udf

    def transform(self, inputs: Any) -> Any:
        """Run the function on a pandas DataFrame (pandas mode) or a dict of lists (python mode)."""
        return self.udf(inputs)

    def _payload(self) -> str:
        if self._udf_payload is None:
            self._udf_payload = serialize_function(self._udf)
        return self._udf_payload

    def to_dict(self) -> dict[str, Any]:
        """The stored form; a function read from the registry is passed through, never deserialized."""
        d: dict[str, Any] = {"name": self.name, "mode": self.mode, "schema": [f.to_dict() for f in self.schema],
             "source_views": [p.to_dict() for p in self.source_views],
             "request_sources": [r.to_dict() for r in self.request_sources],
             "udf_source": self.udf_source, "udf_pickle": self._payload(),
             "description": self.description, "tags": self.tags, "owner": self.owner}
        if self.write_to_online_store:
            d["write_to_online_store"] = True
        if self.udf_signature is not None:
            d["udf_signature"] = self.udf_signature
        return d

    def spec_dict(self) -> dict[str, Any]:
        """What a diff compares: without the pickle and its signature (pickles differ across runs)."""
        return without_stored_function(self.to_dict())

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> OnDemandFeatureView:
        sources: list[Any] = [Projection.from_dict(p) for p in d["source_views"]]
        sources += [source_from_dict(r) for r in d["request_sources"]]
        odfv = cls(name=d["name"], sources=sources, schema=[Field.from_dict(f) for f in d["schema"]],
                   udf=None, mode=d["mode"], description=d.get("description", ""),  # type: ignore[arg-type]
                   tags=d.get("tags"), owner=d.get("owner", ""), udf_source=d.get("udf_source", ""))
        odfv._udf_payload = d["udf_pickle"]
        odfv.udf_signature = d.get("udf_signature")
        odfv.write_to_online_store = bool(d.get("write_to_online_store", False))
        return odfv

    def __eq__(self, other: object) -> bool:
        return isinstance(other, OnDemandFeatureView) and self.spec_dict() == other.spec_dict()

    def __hash__(self) -> int:
        return hash(("odfv", self.name))

    def __repr__(self) -> str:
        return f"OnDemandFeatureView(name={self.name!r}, features={self.feature_names()!r})"


def _with_stored_source(udf: Callable[..., Any], source: str, name: str) -> Callable[..., Any]:
    """A function loaded from the registry, its code pointing at its stored source text (a linecache
    entry), so `inspect.getsource(view.udf)` and `dill.source.getsource`, which notebooks use to show
    a view's code, work where the repo's files are not (another machine, a moved repo)."""
    import linecache

    code = getattr(udf, "__code__", None)
    if not source or code is None:
        return udf
    filename = f"<repast on-demand feature view {name}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(keepends=True), filename)
    udf.__code__ = code.replace(co_filename=filename, co_firstlineno=1)
    return udf


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
    views are written and stored (see repast.ondemand.writes for which views qualify).
    `track_metrics` is accepted for Feast compatibility (the server's /metrics always count requests).
    """

    def decorator(udf: Callable[..., Any]) -> OnDemandFeatureView:
        view = OnDemandFeatureView(name=udf.__name__, sources=sources, schema=schema, udf=udf,
                                   mode=mode, description=description, tags=tags, owner=owner)
        view.write_to_online_store = write_to_online_store
        return view

    return decorator
