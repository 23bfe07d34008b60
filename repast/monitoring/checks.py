"""The statistics operation: compute in the offline engine, keep by day in the registry, read back.

Each takes its collaborators (the registry, the offline engine, the repo's configuration), as the
operations of repast/jobs/ do.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from repast.errors import InputError
from repast.monitoring.sources import file_engine, logged_services, saved_dataset, served_log
from repast.monitoring.statistics import STATISTICS, Measured, compute, records_frame, sql_engine, view_in_range
from repast.registry import MonitoringRecord, Registry
from repast.types.timestamps import as_utc

if TYPE_CHECKING:
    from repast.config.repo_config import RepoConfig
    from repast.offline.base import OfflineEngine


def measured_targets(registry: Registry, engine: OfflineEngine, config: RepoConfig, views: list[str] | None,
                     start: datetime | None, end: datetime | None, dataset: str | None = None,
                     served: bool = False, services: list[str] | None = None) -> list[tuple[Any, Measured]]:
    """(engine, what it measures) for each target of one statistics run; bad input raises first."""
    contents = registry.contents()
    sql = sql_engine(engine)
    repo = str(config.repo_path)
    chosen = sum(x for x in (dataset is not None, served, start is not None or end is not None))
    if chosen != 1:
        raise InputError("give one of: a time range (start and end), a saved dataset, or the served-feature log")
    if dataset is not None:
        reader = file_engine(sql, config)
        return [(reader, saved_dataset(reader, dataset, contents, repo))]
    if served:
        reader = file_engine(sql, config)
        targets = [(reader, served_log(reader, s, contents, repo)) for s in logged_services(contents, services)]
        if not targets:
            raise InputError("no feature service logs what it serves (none has a logging_config)")
        return targets
    if start is None or end is None or as_utc(end) <= as_utc(start):
        raise InputError(f"the time range needs a start before its end, got {start} .. {end}")
    names = views or sorted(n for n, v in contents.feature_views.items() if v.features)
    chosen_views = [contents.get("feature_view", n) for n in names]
    return [(sql, view_in_range(sql, v, as_utc(start), as_utc(end))) for v in chosen_views]


def compute_statistics(registry: Registry, engine: OfflineEngine, config: RepoConfig, views: list[str] | None = None,
                       start: datetime | None = None, end: datetime | None = None, dataset: str | None = None,
                       served: bool = False, services: list[str] | None = None) -> list[MonitoringRecord]:
    """Compute per feature and day the statistics of one target (a time range of the views' sources,
    a saved dataset, or the served log) in the offline engine, keep them in the registry (replacing
    those of the same days) and return them."""
    registry.check_writable("record statistics")
    records: list[MonitoringRecord] = []
    for reader, measured in measured_targets(registry, engine, config, views, start, end, dataset, served, services):
        records += compute(reader, measured, config.monitoring)
    registry.record_monitoring(records)
    return records


def get_feature_statistics(registry: Registry, views: list[str] | None = None, features: list[str] | None = None,
                           scope: str | None = None, start_day: str | None = None,
                           end_day: str | None = None) -> Any:
    """The kept statistics as a DataFrame (one row per scope, view, feature and day), filtered."""
    kept = [r for r in registry.monitoring_records(STATISTICS)
            if (not views or r.view in views) and (not features or r.feature in features)
            and (scope is None or r.scope == scope)
            and (start_day is None or r.day == "all" or r.day >= start_day)
            and (end_day is None or r.day == "all" or r.day <= end_day)]
    return records_frame(kept)
