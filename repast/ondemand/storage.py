"""Which on-demand views are stored on write (`write_to_online_store=True`) and where: pure
definitions logic, used when applying (storage to create), reading (read the stored values) and
writing (repast/ondemand/writes.py recomputes them). See repast/ondemand/writes.py for the rules.
"""

from __future__ import annotations

from datetime import timedelta

from repast.definitions import FeatureView, OnDemandFeatureView, RepoContents
from repast.definitions.feature_refs import FeatureRequest, ViewRequest


def _sources(odfv: OnDemandFeatureView, contents: RepoContents) -> list[FeatureView] | None:
    """The source views when `odfv` is stored on write (see the module docstring), else None."""
    if not odfv.write_to_online_store or odfv.request_sources or not odfv.source_views:
        return None
    if any(p.name_alias or p.join_key_map or p.view_name not in contents.feature_views for p in odfv.source_views):
        return None
    views = [contents.feature_views[p.view_name] for p in odfv.source_views]
    if len({tuple(v.join_keys) for v in views}) != 1:
        return None
    return views


def storage_view(odfv: OnDemandFeatureView, contents: RepoContents) -> FeatureView | None:
    """The feature view whose online storage holds `odfv`'s computed values (None: computed on read)."""
    views = _sources(odfv, contents)
    if views is None:
        return None
    first = views[0]
    view = FeatureView(name=odfv.name, source=first.source, entities=first.entity_objects,
                       schema=[*first.entity_columns, *odfv.schema], ttl=timedelta(0))
    return view


def storage_views(contents: RepoContents) -> list[FeatureView]:
    views = [storage_view(o, contents) for o in contents.on_demand_feature_views.values()]
    return [v for v in views if v is not None]


def read_stored(request: FeatureRequest, contents: RepoContents) -> FeatureRequest:
    """An online request with each stored on-demand view read from its storage, not computed."""
    stored = {o.name: storage_view(o.view, contents) for o in request.on_demand}
    if not any(stored.values()):
        return request
    views = list(request.views)
    on_demand = []
    for odr in request.on_demand:
        target = stored[odr.name]
        if target is None:
            on_demand.append(odr)
        else:
            views.append(ViewRequest(target, odr.name, list(odr.features)))
    return FeatureRequest(views, on_demand, request.output_names, request.request_columns)
