"""FeatureStore: the facade users call, and the composition root: it finds the configuration,
wires one Backends (config, registry, stores) and delegates every method to an operation in
repast/jobs/ (or vector/, ui/, server/) with it. It holds no logic of its own.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from repast.config.repo_config import RepoConfig, find_config, load_config
from repast.definitions import (
    DataSource,
    Entity,
    FeatureService,
    FeatureView,
    OnDemandFeatureView,
)
from repast.jobs.backends import Backends
from repast.jobs.plan import apply_objects, apply_repo, plan_objects, plan_repo, teardown
from repast.offline.base import OfflineEngine
from repast.online.base import OnlineReader
from repast.registry import (
    Change,
    HistoryEntry,
)
from repast.store_feast import FeastSurface, matches_tags

if TYPE_CHECKING:
    import pandas as pd

    from repast.jobs.apply import OnlineEffect
    from repast.monitoring.drift import DriftReport
    from repast.monitoring.skew import SkewReport


class FeatureStore(FeastSurface):
    """`FeatureStore(repo_path=".")`, `FeatureStore(config=RepoConfig(...))` or
    `FeatureStore(fs_yaml_file=Path(".../feature_store.yaml"))`.

    With none, the configuration is found from $REPAST_FEATURE_STORE_YAML, the mounted
    Kubernetes Secret, then the current directory (`config_source` says which).
    """

    def __init__(self, repo_path: str | Path | None = None, config: RepoConfig | None = None,
                 fs_yaml_file: str | Path | None = None) -> None:
        if config is not None:
            self.config = config
            self.config_source = "config argument"
        elif fs_yaml_file is not None:
            self.config = load_config(fs_yaml_file)
            self.config_source = "fs_yaml_file argument"
        else:
            path, self.config_source = find_config(repo_path)
            self.config = load_config(path)
        self.repo_path = Path(self.config.repo_path)
        """The feature repo's directory (relative paths in the configuration are relative to it)."""
        self.project = self.config.project
        """The project name of feature_store.yaml."""
        # The collaborators every operation takes; the server and the UI are given them, not this facade.
        self.backends = Backends(self.config)
        """The configured registry, offline engine and online store, each built on first use."""
        self.registry = self.backends.registry
        """The project's registry: definitions, versions, history."""

    # ---- lifecycle ---------------------------------------------------------------------------
    def close(self) -> None:
        """Release every connection and pool the store opened (online store, registry, engine).

        The store stays usable: backends reconnect on next use. `with FeatureStore(...) as store:`
        closes at the end of the block."""
        self.backends.close()

    def __enter__(self) -> FeatureStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- backends, built on first use -------------------------------------------------------
    @property
    def offline_engine(self) -> OfflineEngine:
        """The offline engine of `offline_store` (DuckDB by default), built on first use."""
        return self.backends.offline_engine

    @property
    def online_store(self) -> OnlineReader:
        """The online store of `online_store` (SQLite by default), built on first use."""
        return self.backends.online_store

    # ---- definitions (repast/jobs/plan.py) -----------------------------------------------------
    def plan_repo(self) -> list[Change]:
        """What `apply_repo` would change: the repo's files against the registry (deletes included)."""
        return plan_repo(self.backends)[0]

    def plan_repo_with_effects(self) -> tuple[list[Change], list[OnlineEffect]]:
        """`plan_repo`, and which views would lose their online data (or have none) and be refilled."""
        return plan_repo(self.backends)

    def apply_repo(self) -> list[Change]:
        """Make the registry equal the repo's files: add, update and delete. Fails on a concurrent apply."""
        return apply_repo(self.backends)[0]

    def apply_repo_with_effects(self) -> tuple[list[Change], list[OnlineEffect]]:
        """`apply_repo`, and what it did to online data (see repast/jobs/apply.py)."""
        return apply_repo(self.backends)

    def plan(self, objects: list[Any]) -> list[Change]:
        """What `apply(objects)` would change."""
        return plan_objects(self.backends, objects)

    def apply(self, objects: Any, objects_to_delete: list[Any] | None = None,
              partial: bool = True) -> list[Change]:
        """Add or update `objects` (and delete `objects_to_delete`); others stay registered.

        With `partial=False` the project is made to hold exactly `objects`: every other definition
        is deleted (saved datasets stay), as an apply of a repo's files does. Validated against
        the whole project before anything is written. A concurrent apply is retried on fresh
        state, which is safe because only the named objects change.
        """
        return apply_objects(self.backends, objects, objects_to_delete, partial)

    def teardown(self) -> None:
        """Remove the project's online storage and every registry record of it."""
        teardown(self.backends)

    def refresh_registry(self) -> None:
        """Re-read the registry now, whatever its cache ttl (definitions applied elsewhere become visible)."""
        self.registry.refresh()

    def history(self, limit: int = 50) -> list[HistoryEntry]:
        """The last `limit` applies of this project, newest first: version, time, who, and the changes."""
        return self.registry.history(limit)

    def list_entities(self, allow_cache: bool = False, tags: dict[str, str] | None = None) -> list[Entity]:
        """Registered entities, with every tag in `tags` when given (`allow_cache`: Feast's, accepted)."""
        return [o for o in self.registry.contents().entities.values() if matches_tags(o, tags)]

    def list_data_sources(self, allow_cache: bool = False, tags: dict[str, str] | None = None) -> list[DataSource]:
        """Registered data sources, with every tag in `tags` when given."""
        return [o for o in self.registry.contents().data_sources.values() if matches_tags(o, tags)]

    def list_feature_views(self, allow_cache: bool = False, tags: dict[str, str] | None = None) -> list[FeatureView]:
        """Registered feature views (on-demand views not included), with every tag in `tags` when given."""
        return [o for o in self.registry.contents().feature_views.values() if matches_tags(o, tags)]

    def list_on_demand_feature_views(self, allow_cache: bool = False,
                                     tags: dict[str, str] | None = None) -> list[OnDemandFeatureView]:
        """Registered on-demand feature views, with every tag in `tags` when given."""
        return [o for o in self.registry.contents().on_demand_feature_views.values() if matches_tags(o, tags)]

    def list_feature_services(self, allow_cache: bool = False,
                              tags: dict[str, str] | None = None) -> list[FeatureService]:
        """Registered feature services, with every tag in `tags` when given."""
        return [o for o in self.registry.contents().feature_services.values() if matches_tags(o, tags)]

    def get_entity(self, name: str, allow_registry_cache: bool = True) -> Entity:
        """The registered entity `name`; EntityNotFound (naming the registered ones) when there is none."""
        return self.registry.contents().get("entity", name)

    def get_data_source(self, name: str, allow_registry_cache: bool = True) -> DataSource:
        """The registered data source `name`; DataSourceNotFound when there is none."""
        return self.registry.contents().get("data_source", name)

    def get_feature_view(self, name: str, allow_registry_cache: bool = True) -> FeatureView:
        """The registered feature view `name`; FeatureViewNotFound (naming the registered ones) when there is none."""
        return self.registry.contents().get("feature_view", name)

    def get_on_demand_feature_view(self, name: str, allow_registry_cache: bool = True) -> OnDemandFeatureView:
        """The registered on-demand feature view `name`; FeatureViewNotFound when there is none."""
        return self.registry.contents().get("on_demand_feature_view", name)

    def get_feature_service(self, name: str, allow_registry_cache: bool = True) -> FeatureService:
        """The registered feature service `name`; FeatureServiceNotFound when there is none."""
        return self.registry.contents().get("feature_service", name)

    # ---- training data (repast/jobs/retrieval.py) ------------------------------------------------
    def get_historical_features(self, entity_df: pd.DataFrame | Any = None,
                                features: list[str] | FeatureService | None = None,
                                full_feature_names: bool = False, start_date: datetime | None = None,
                                end_date: datetime | None = None) -> Any:
        """Training data, point in time correct: per row of `entity_df` (join keys, `event_timestamp`,
        any labels; a pandas DataFrame, an Arrow table or an SQL query of the offline engine), each
        feature's latest value at or before the row's time and within its view's ttl (null otherwise).

        `features`: "view:feature" references or a FeatureService. Without `entity_df`, `start_date`
        and `end_date` select every entity's rows in that range. Returns a lazy RetrievalJob
        (`to_df()`, `to_arrow()`, `to_parquet(path)`); the entity frame's rows come back in order.
        Unknown features raise FeatureNotFound; missing key or request columns, InputError."""
        from repast.jobs.retrieval import get_historical_features

        return get_historical_features(self.registry.contents(), self.offline_engine, entity_df, features,
                                       full_feature_names, start_date, end_date)

    # ---- online serving (repast/jobs/materialize.py, repast/jobs/online_read.py, repast/jobs/push.py) -------
    def materialize(self, start_date: datetime, end_date: datetime,
                    feature_views: list[str] | None = None, progress: Any = None) -> Any:
        """Load, per view, the latest row per entity with start <= event_ts <= end into the online store."""
        from repast.jobs.materialize import materialize

        return materialize(self.registry, self.offline_engine, self.online_store, start_date, end_date,
                           feature_views, progress)

    def materialize_incremental(self, end_date: datetime, feature_views: list[str] | None = None,
                                progress: Any = None) -> Any:
        """Like materialize, each view starting where its last run ended (or end - ttl)."""
        from repast.jobs.materialize import materialize_incremental

        return materialize_incremental(self.registry, self.offline_engine, self.online_store, end_date,
                                       feature_views, progress)

    def get_online_features(self, features: list[str] | FeatureService,
                            entity_rows: list[dict[str, Any]] | dict[str, list[Any]],
                            full_feature_names: bool = False) -> Any:
        """Latest values per entity, with status and event timestamp per value: an OnlineResponse."""
        from repast.jobs.online_read import get_online_features

        return get_online_features(self.registry, self.online_store, features, entity_rows, full_feature_names)

    def push(self, push_source_name: str, df: Any, allow_registry_cache: bool = True, to: Any = None,
             transform_on_write: bool = True) -> None:
        """Write fresh rows of a push source to the online store, the offline source, or both."""
        from repast.jobs.push import push

        push(self.registry, self.offline_engine, self.online_store, push_source_name, df, to)

    def write_to_online_store(self, feature_view_name: str, df: Any, inputs: Any = None,
                              allow_registry_cache: bool = True, transform_on_write: bool = True) -> None:
        """Write rows of one feature view directly to the online store (checked first)."""
        from repast.jobs.push import write_to_online_store

        write_to_online_store(self.registry, self.online_store, feature_view_name,
                              df if df is not None else inputs)

    def write_to_offline_store(self, feature_view_name: str, df: Any, allow_registry_cache: bool = True) -> None:
        """Append rows of one feature view to its batch source (checked first; safe under concurrent writers)."""
        from repast.jobs.push import write_to_offline_store

        write_to_offline_store(self.registry, self.offline_engine, feature_view_name, df, allow_registry_cache)

    # ---- monitoring (repast/monitoring/) -----------------------------------------------------
    def compute_feature_statistics(self, feature_views: list[str] | None = None, start_date: datetime | None = None,
                                   end_date: datetime | None = None, *, dataset: str | None = None,
                                   served_log: bool = False, feature_services: list[str] | None = None) -> pd.DataFrame:
        """Compute per feature and UTC day, in the offline engine, the statistics of the views' sources
        over [start_date, end_date), of a saved dataset, or of the served-feature log; they are kept in
        the registry (replacing those of the same days) and returned as `get_feature_statistics` does."""
        from repast.monitoring.checks import compute_statistics
        from repast.monitoring.statistics import records_frame

        records = compute_statistics(self.registry, self.offline_engine, self.config, feature_views, start_date,
                                     end_date, dataset, served_log, feature_services)
        frame: pd.DataFrame = records_frame(records)
        return frame

    def get_feature_statistics(self, feature_views: list[str] | None = None, features: list[str] | None = None,
                               scope: str | None = None, start_date: datetime | None = None,
                               end_date: datetime | None = None) -> pd.DataFrame:
        """The kept statistics, one row per (scope, view, feature, day): rows, count, null_rate,
        distinct_count, min, max, mean, stddev, quantiles, histogram or top_values. `scope`: "source",
        "dataset:NAME" or "served_log:SERVICE"; dates select days (a dataset's "all" is always kept)."""
        from repast.monitoring.checks import get_feature_statistics

        frame: pd.DataFrame = get_feature_statistics(self.registry, feature_views, features, scope,
                                                     f"{start_date:%Y-%m-%d}" if start_date else None,
                                                     f"{end_date:%Y-%m-%d}" if end_date else None)
        return frame

    def check_drift(self, reference: str, window: timedelta = timedelta(days=1), end_date: datetime | None = None,
                    feature_views: list[str] | None = None) -> DriftReport:
        """Each feature's drift over [end_date - window, end_date) against `reference` ("dataset:NAME"
        or "START..END"): PSI and a KS or chi-square test, flagged by the thresholds (docs/monitoring.md)."""
        from repast.monitoring.drift import check_drift

        return check_drift(self.registry, self.offline_engine, self.config, reference, window, end_date, feature_views)

    def check_skew(self, sample: int = 10_000, window: timedelta = timedelta(days=1),
                   end_date: datetime | None = None, feature_services: list[str] | None = None) -> SkewReport:
        """Training/serving skew: up to `sample` served rows of the window, recomputed offline at their
        logged times and compared per feature (mismatch rate, mean absolute difference, missing/extra)."""
        from repast.monitoring.skew import check_skew

        return check_skew(self.registry, self.offline_engine, self.config, sample, window, end_date,
                          feature_services)

    def record_freshness(self) -> None:
        """Keep today's freshness sample of every online view (age of its newest online value and of
        its watermark), for the web UI's freshness over time."""
        from repast.monitoring.freshness import record_freshness

        record_freshness(self.registry, self.online_store)

    # ---- web UI (repast/ui/) ----------------------------------------------------------------
    def serve_ui(self, host: str = "127.0.0.1", port: int = 6567, get_registry_dump: Any = None,
                 registry_ttl_sec: float | None = None, root_path: str = "", tls_key_path: str = "",
                 tls_cert_path: str = "", server_url: str = "http://localhost:6566") -> None:
        """Serve the read-only web UI for this store's registry until interrupted (Feast's
        signature; `get_registry_dump` is accepted and not needed: the UI reads the registry)."""
        from repast.ui import serve_ui

        serve_ui(self.backends, host=host, port=port, root_path=root_path, server_url=server_url,
                 registry_ttl_sec=registry_ttl_sec, key=tls_key_path or None, cert=tls_cert_path or None)

    # ---- vector retrieval (repast/vector/documents.py, repast/vector/offline.py) ------------------
    def retrieve_online_documents_v2(self, features: list[str], top_k: Any = None, query: Any = None,
                                     distance_metric: str | None = None, query_string: str | None = None,
                                     filters: dict[str, Any] | None = None, *, exact: bool = False) -> Any:
        """The top_k documents of one view nearest to `query` (and/or matching `query_string`): an
        OnlineResponse with the join keys, the features and `distance` (lower is closer) per hit."""
        from repast.vector.documents import retrieve_online_documents_v2

        top_k, query = _top_k_and_query(top_k, query)
        return retrieve_online_documents_v2(self.backends, features, query, top_k, distance_metric, query_string,
                                            filters, exact)

    def retrieve_online_documents(self, query: Any = None, top_k: Any = None, features: list[str] | None = None,
                                  distance_metric: str | None = None, *, feature: str | None = None) -> Any:
        """Feast's first form: `(query, top_k, features)`, or the older `(feature, query, top_k)`."""
        if isinstance(query, str) and ":" in query:  # the older form, positionally
            feature, query, top_k, features = query, top_k, features, None
        refs = list(features or []) or ([feature] if feature else [])
        if feature and feature not in refs:
            refs.append(feature)
        return self.retrieve_online_documents_v2(refs, top_k, query, distance_metric)

    def retrieve_documents(self, features: list[str], top_k: Any = None, query: Any = None,
                           as_of: datetime | None = None, distance_metric: str | None = None,
                           query_string: str | None = None, filters: dict[str, Any] | None = None) -> Any:
        """Point-in-time retrieval from the offline store: the documents as they were at `as_of`
        (default now; each entity's latest row at or before it, ttl applied), ranked exactly."""
        from repast.vector.offline import retrieve_documents

        top_k, query = _top_k_and_query(top_k, query)
        return retrieve_documents(self.backends, features, query, top_k, as_of, distance_metric, query_string, filters)


def _top_k_and_query(top_k: Any, query: Any) -> tuple[Any, Any]:
    """Accept both `(features, top_k, query)` (Feast) and `(features, query, top_k)`."""
    if not isinstance(top_k, int | None) and isinstance(query, int):
        return query, top_k
    return (10 if top_k is None else top_k), query
