"""On-demand views with `write_to_online_store=True`: computed when their inputs are written
(push, write_to_online_store, materialize) and stored, then read like a feature view.

A view qualifies when its inputs are all feature views (no request data, which only a request
carries) read under their own names and sharing one set of join keys; other views with the flag
are computed at read time as before. After rows of a source view are written, the view is
recomputed for the written entity keys from the source views' stored values, through the same
transform code as every other path (repast.ondemand.transform), and written with the latest event time of
its inputs, so the store's latest-wins rule applies to it as to any view.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from repast.definitions import FeatureView, OnDemandFeatureView
from repast.definitions.feature_refs import OnDemandRequest
from repast.ondemand.storage import storage_view
from repast.online.keys import CREATED_TS, EVENT_TS

if TYPE_CHECKING:
    from repast.online.base import OnlineStore
    from repast.registry import Registry


def refresh_after_write(registry: Registry, online: OnlineStore, view: FeatureView,
                        rows: pa.Table | pa.RecordBatch) -> None:
    """Recompute and store every write-time on-demand view reading `view`, for the keys in `rows`."""
    contents = registry.contents()
    for odfv in contents.on_demand_feature_views.values():
        target = storage_view(odfv, contents)
        if target is None or view.name not in [p.view_name for p in odfv.source_views]:
            continue
        keys = pa.table({k: rows.column(k) for k in view.join_keys}).group_by(view.join_keys).aggregate([])
        if keys.num_rows:
            online.write_batch(registry.project, target, _computed_rows(registry, online, odfv, keys))


def _computed_rows(registry: Registry, online: OnlineStore, odfv: OnDemandFeatureView, keys: pa.Table) -> pa.Table:
    from repast.jobs.online_read import get_online_features
    from repast.ondemand.transform import on_demand_values

    refs = [f"{p.view_name}:{f}" for p in odfv.source_views for f in p.features]
    entity_rows = {k: keys.column(k).to_pylist() for k in keys.column_names}
    response = get_online_features(registry, online, refs, entity_rows, full_feature_names=True)
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
