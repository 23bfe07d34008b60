"""On-demand views with `write_to_online_store=True`: computed when their inputs are written
(push, write_to_online_store, materialize) and stored, then read like a feature view.

A view qualifies when its inputs are all feature views (no request data, which only a request
carries) read under their own names and sharing one set of join keys; other views with the flag
are computed at read time as before. After rows of a source view are written, the view is
recomputed for the written entity keys from the source views' stored values, through the same
transform code as every other path (repast.transform), and written with the latest event time of
its inputs, so the store's latest-wins rule applies to it as to any view.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from repast.definitions import FeatureView, OnDemandFeatureView, RepoContents
from repast.feature_refs import FeatureRequest, OnDemandRequest, ViewRequest
from repast.online.keys import CREATED_TS, EVENT_TS

if TYPE_CHECKING:
    from repast.store import FeatureStore


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


def refresh_after_write(store: FeatureStore, view: FeatureView, rows: pa.Table | pa.RecordBatch) -> None:
    """Recompute and store every write-time on-demand view reading `view`, for the keys in `rows`."""
    contents = store.registry.contents()
    for odfv in contents.on_demand_feature_views.values():
        target = storage_view(odfv, contents)
        if target is None or view.name not in [p.view_name for p in odfv.source_views]:
            continue
        keys = pa.table({k: rows.column(k) for k in view.join_keys}).group_by(view.join_keys).aggregate([])
        if keys.num_rows:
            store.online_store.write_batch(store.project, target, _computed_rows(store, odfv, keys))


def _computed_rows(store: FeatureStore, odfv: OnDemandFeatureView, keys: pa.Table) -> pa.Table:
    from repast.online_read import get_online_features
    from repast.transform import on_demand_values

    refs = [f"{p.view_name}:{f}" for p in odfv.source_views for f in p.features]
    entity_rows = {k: keys.column(k).to_pylist() for k in keys.column_names}
    response = get_online_features(store, refs, entity_rows, full_feature_names=True)
    values, stamps = response.to_dict(), response.event_timestamps()
    n = keys.num_rows
    inputs: dict[str, list[Any]] = dict(entity_rows)
    for p in odfv.source_views:
        for name in p.features:
            inputs[name] = inputs[f"{p.view_name}__{name}"] = values[f"{p.view_name}__{name}"]
    computed = on_demand_values(OnDemandRequest(odfv, odfv.name, odfv.feature_names()), inputs, n)
    latest = [max([t for column in stamps.values() if (t := column[i]) is not None], default=None)
              for i in range(n)]
    columns: dict[str, Any] = {k: keys.column(k) for k in keys.column_names}
    for field in odfv.schema:
        columns[field.name] = pa.array(computed[field.name], field.dtype.to_arrow())
    columns[EVENT_TS] = pa.array(latest, pa.timestamp("us", tz="UTC"))  # no input stored: the row is skipped
    columns[CREATED_TS] = pa.array([datetime.now(UTC)] * n, pa.timestamp("us", tz="UTC"))
    return pa.table(columns)


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
