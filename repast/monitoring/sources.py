"""What monitoring measures besides a view's own source: a saved dataset and the served-feature log,
each read as a FileSource by the offline engine (the served log is an offline source like any other:
`served_log_source(service)` can back a FeatureView too).

The served log of a FeatureService with a LoggingConfig is its FileLoggingDestination directory
of Parquet files, converted from the feature server's spools when read (repast/jobs/served_log.py):
`__request_id`, `__log_timestamp`, the join
keys, then per feature its value (named `feature`, or `view__feature` when the request asked for
full names), `<name>__status` and `<name>__timestamp`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from repast.definitions import FeatureService, FileSource, RepoContents
from repast.errors import ConfigError, DefinitionError, InputError
from repast.jobs.served_log import convert_spools
from repast.monitoring.statistics import Measured, view_features
from repast.monitoring.statistics_sql import MeasuredFeature

if TYPE_CHECKING:
    from repast.offline.sql_base import SQLOfflineEngine

LOG_TIMESTAMP = "__log_timestamp"


def _absolute(path: str, repo_path: str) -> str:
    return path if "://" in path or os.path.isabs(path) else os.path.join(repo_path, path)


def served_log_source(service: FeatureService, repo_path: str) -> FileSource:
    """The served-feature log of `service` as a FileSource (timestamp: the time it was served), the
    sealed spools the feature server's conversion has not converted yet converted first."""
    if service.logging_config is None:
        raise DefinitionError(f"feature service '{service.name}' has no logging_config, so nothing it serves is "
                              "logged; add logging_config=LoggingConfig(destination=FileLoggingDestination(path=...))")
    path = _absolute(service.logging_config.destination.to_dict()["path"], repo_path)
    if "://" not in path:
        convert_spools(path)
    return FileSource(name=f"served_log_{service.name}", path=path, timestamp_field=LOG_TIMESTAMP)


def logged_services(contents: RepoContents, names: list[str] | None = None) -> list[FeatureService]:
    """The feature services with a logging_config (`names`: those, each of which must log)."""
    if names:
        return [contents.get("feature_service", n) for n in names]
    return [s for _, s in sorted(contents.feature_services.items()) if s.logging_config is not None]


def served_columns(service: FeatureService, contents: RepoContents,
                   columns: list[str]) -> list[tuple[MeasuredFeature, str]]:
    """Per feature of the service found in the log's `columns`: how it is measured, its view's name."""
    found = []
    for p in service.projections:
        view = contents.feature_views.get(p.view_name)
        if view is None:  # an on-demand view: its values are computed, not stored; not measured
            continue
        wanted = set(p.features)

        def column(feature: str, alias: str = p.name) -> str | None:
            for name in (f"{alias}__{feature}", feature):
                if name in columns:
                    return name
            return None

        for m in view_features(view, column):
            if m.feature in wanted:
                found.append((MeasuredFeature(p.name, m.feature, m.column, m.numeric), p.view_name))
    return found


def logged_source(engine: SQLOfflineEngine, service: FeatureService, repo_path: str) -> tuple[FileSource, Any]:
    """The service's served log and its columns (Arrow schema); InputError when nothing is logged yet."""
    source = served_log_source(service, repo_path)
    try:
        return source, engine.source_schema(source)
    except DefinitionError:
        raise InputError(f"feature service '{service.name}' has logged nothing yet at '{source.path}'") from None


def served_log(engine: SQLOfflineEngine, service: FeatureService, contents: RepoContents,
               repo_path: str) -> Measured:
    source, schema = logged_source(engine, service, repo_path)
    features = [m for m, _ in served_columns(service, contents, schema.names)]
    return Measured(f"served_log:{service.name}", lambda: f"SELECT * FROM {engine.relation(source)}", LOG_TIMESTAMP,
                    features)


def _only(feature: str, column: str) -> Callable[[str], str | None]:
    """A column mapping naming `column` for `feature` only."""
    return lambda f: column if f == feature else None


def saved_dataset(engine: SQLOfflineEngine, name: str, contents: RepoContents, repo_path: str) -> Measured:
    """A saved dataset (typically a training set) as one group, "all"; its time is the entity rows'."""
    dataset = contents.get("saved_dataset", name)
    source = FileSource(name=f"dataset_{name}", path=_absolute(dataset.storage.to_dict()["path"], repo_path),
                        timestamp_field="event_timestamp")
    schema = engine.source_schema(source)
    features = []
    for ref in dataset.features:
        view_name, _, feature = ref.partition(":")
        view = contents.feature_views.get(view_name)
        if view is None:
            continue
        column = f"{view_name}__{feature}" if dataset.full_feature_names else feature
        features += [m for m in view_features(view, _only(feature, column)) if m.column in schema.names]
    times = [f.name for f in schema if f.name not in {m.column for m in features} and "timestamp" in str(f.type)]
    if not times:
        raise InputError(f"saved dataset '{name}' has no timestamp column to date its rows")
    ts = "event_timestamp" if "event_timestamp" in times else times[0]
    return Measured(f"dataset:{name}", lambda: f"SELECT * FROM {engine.relation(source)}", ts, features, by_day=False)


def file_engine(engine: SQLOfflineEngine, settings: object) -> SQLOfflineEngine:
    """An engine that reads Parquet files: the configured one when it can, else the embedded DuckDB
    (a PostgreSQL offline store cannot read the log or a saved dataset's file)."""
    if FileSource in engine.source_kinds:
        return engine
    from repast.offline.sql_base import SQLOfflineEngine
    from repast.plugins.table import OFFLINE, plugin_class

    duckdb = plugin_class(OFFLINE, "duckdb", SQLOfflineEngine)
    config_class = getattr(duckdb, "Config", None)
    if config_class is None:
        raise ConfigError("the embedded DuckDB engine is not available to read Parquet files")
    return duckdb(config_class(), settings)
