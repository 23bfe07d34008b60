"""`repast aggregations check`: do the online values of a view's aggregations equal training data?

At one time t (default now), N entity keys with events in the view's windows ending at t are
sampled from the offline source; their aggregated features are read online (tiles merged at t)
and computed offline (get_historical_features for entity rows at t), and compared feature by
feature. Floats are equal within a relative 1e-9 (the two sum in different orders); lists
element by element. A mismatch means skew: events pushed online only, a materialization not yet
run over recent events, or tiles rebuilt from a changed source.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from repast.aggregations.layout import tile_layout
from repast.aggregations.spec import events_view
from repast.errors import InputError
from repast.jobs.online_read import get_online_features
from repast.jobs.retrieval import get_historical_features

if TYPE_CHECKING:
    from repast.offline.base import OfflineEngine
    from repast.online.base import OnlineReader
    from repast.registry import Registry


@dataclass
class FeatureCheck:
    """One aggregated feature: how many sampled keys compared, how many differed, and one example."""

    feature: str
    compared: int = 0
    mismatches: int = 0
    example: str = ""

    @property
    def mismatch_rate(self) -> float:
        return self.mismatches / self.compared if self.compared else 0.0


@dataclass
class AggregationCheck:
    view: str
    at: datetime
    keys: int
    features: list[FeatureCheck] = field(default_factory=list)

    @property
    def consistent(self) -> bool:
        return all(f.mismatches == 0 for f in self.features)


def same_value(online: Any, offline: Any) -> bool:
    """Equal as the check counts it: floats within a relative 1e-9, lists element by element."""
    if isinstance(online, list) and isinstance(offline, list):
        return len(online) == len(offline) and all(same_value(a, b) for a, b in zip(online, offline, strict=True))
    if isinstance(online, float) and isinstance(offline, int | float) and not isinstance(offline, bool):
        return math.isclose(online, offline, rel_tol=1e-9, abs_tol=1e-12)
    return bool(online == offline)


def sample_keys(engine: OfflineEngine, registry: Registry, view_name: str, sample: int, at: datetime,
                seed: int | None) -> tuple[Any, pa.Table]:
    """The view and up to `sample` distinct entity keys with events in its windows ending at `at`."""
    if sample < 1:
        raise InputError(f"--sample must be at least 1, got {sample}")
    view = registry.contents().get("feature_view", view_name)
    layout = tile_layout(view)
    if layout is None:
        raise InputError(f"feature view '{view_name}' has no aggregations: nothing to check; "
                         "`repast aggregations check` compares the online tiles of aggregated views")
    since = at - timedelta(microseconds=layout.horizon_us)
    events = engine.read_range(events_view(view), since, at + timedelta(microseconds=1))
    keys = events.select(view.join_keys).group_by(view.join_keys).aggregate([])
    if keys.num_rows > sample:
        keys = keys.take(sorted(random.Random(seed).sample(range(keys.num_rows), sample)))
    return view, keys


def check_aggregations(registry: Registry, engine: OfflineEngine, online: OnlineReader, view_name: str,
                       sample: int, at: datetime | None = None, seed: int | None = None) -> AggregationCheck:
    """Compare online and offline values of every aggregated feature of the view for sampled keys at `at`."""
    at = (at or datetime.now(UTC)).astimezone(UTC)
    view, keys = sample_keys(engine, registry, view_name, sample, at, seed)
    report = AggregationCheck(view_name, at, keys.num_rows, [FeatureCheck(f) for f in view.feature_names()])
    if keys.num_rows == 0:
        return report
    refs = [f"{view_name}:{f}" for f in view.feature_names()]
    rows = {k: keys.column(k).to_pylist() for k in view.join_keys}
    served = get_online_features(registry, online, refs, rows, full_feature_names=True, at=at).to_dict()
    entity = keys.append_column("event_timestamp", pa.array([at] * keys.num_rows, pa.timestamp("us", "UTC")))
    # The training frame keeps the entity rows' order: the sampled keys, as sent online.
    trained = get_historical_features(registry.contents(), engine, entity, refs, True, None, None).to_arrow()
    for check in report.features:
        name = f"{view_name}__{check.feature}"
        for i, (got, want) in enumerate(zip(served[name], trained.column(name).to_pylist(), strict=True)):
            check.compared += 1
            if not same_value(got, want):
                check.mismatches += 1
                if not check.example:
                    key = ", ".join(f"{k}={rows[k][i]!r}" for k in view.join_keys)
                    check.example = f"{key}: online {got!r}, offline {want!r}"
    return report
