"""FeatureStore: the facade users call. It wires config, registry, engines and stores together.

Retrieval, materialization, online reads and pushes live in their own modules; the methods
here are the public entry points and delegate to them.
"""

from __future__ import annotations

import getpass
import socket
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from repast.backends import load_class
from repast.config import RepoConfig, find_config, load_config
from repast.definitions import (
    DataSource,
    Entity,
    FeatureService,
    FeatureView,
    OnDemandFeatureView,
    RepoContents,
)
from repast.definitions.registry_objects import kind_of
from repast.errors import RegistryConflict
from repast.offline import OFFLINE_ENGINES
from repast.offline.base import OfflineEngine
from repast.online import ONLINE_STORES
from repast.online.base import OnlineStore
from repast.registry import Change, HistoryEntry, Registry, contents_from_snapshot, open_registry_store
from repast.repo import collect, diff, load_repo
from repast.validation import validate

if TYPE_CHECKING:
    import pandas as pd


def _applied_by() -> str:
    import os

    if os.environ.get("REPAST_USER"):
        return os.environ["REPAST_USER"]
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


class FeatureStore:
    """`FeatureStore(repo_path=".")` or `FeatureStore(config=RepoConfig(...))`.

    With neither, the configuration is found from $REPAST_FEATURE_STORE_YAML, the mounted
    Kubernetes Secret, then the current directory (`config_source` says which).
    """

    def __init__(self, repo_path: str | Path | None = None, config: RepoConfig | None = None) -> None:
        if config is not None:
            self.config = config
            self.config_source = "config argument"
        else:
            path, self.config_source = find_config(repo_path)
            self.config = load_config(path)
        self.repo_path = Path(self.config.repo_path)
        self.project = self.config.project
        self.registry = Registry(open_registry_store(self.config), self.project,
                                 self.config.registry_config.cache_ttl_seconds)

    # ---- backends, built on first use -------------------------------------------------------
    @cached_property
    def offline_engine(self) -> OfflineEngine:
        cfg = self.config.offline_store
        return load_class(OFFLINE_ENGINES[cfg.type])(cfg, self.config)  # type: ignore[no-any-return]

    @cached_property
    def online_store(self) -> OnlineStore:
        cfg = self.config.online_store
        return load_class(ONLINE_STORES[cfg.type])(cfg, self.config)  # type: ignore[no-any-return]

    # ---- definitions ---------------------------------------------------------------------------
    def plan_repo(self) -> list[Change]:
        """What `apply_repo` would change: the repo's files against the registry (deletes included)."""
        return diff(self._load_repo(), self.registry.store.read(self.project), partial=False)

    def apply_repo(self) -> list[Change]:
        """Make the registry equal the repo's files: add, update and delete. Fails on a concurrent apply."""
        self.registry.store.check_writable("apply definitions")
        desired = self._load_repo()
        snapshot = self.registry.store.read(self.project)
        changes = diff(desired, snapshot, partial=False)
        self._commit(changes, snapshot.version, contents_from_snapshot(snapshot), desired)
        return changes

    def _load_repo(self) -> RepoContents:
        """The repo's definitions, validated (errors name the file that defines each object)."""
        desired, origin = load_repo(self.repo_path)
        validate(desired, self.offline_engine, origin)
        return desired

    def plan(self, objects: list[Any]) -> list[Change]:
        """What `apply(objects)` would change."""
        return self._prepare(objects, [])[0]

    def apply(self, objects: Any, objects_to_delete: list[Any] | None = None) -> list[Change]:
        """Add or update `objects` (and delete `objects_to_delete`); others stay registered.

        Validated against the whole project before anything is written. A concurrent apply is
        retried on fresh state, which is safe because only the named objects change.
        """
        self.registry.store.check_writable("apply definitions")
        objects = objects if isinstance(objects, list) else [objects]
        for attempt in range(5):
            changes, version, before, after = self._prepare(objects, objects_to_delete or [])
            try:
                self._commit(changes, version, before, after)
                return changes
            except RegistryConflict:
                if attempt == 4:
                    raise
        raise AssertionError("unreachable")

    def _prepare(self, objects: list[Any],
                 to_delete: list[Any]) -> tuple[list[Change], int, RepoContents, RepoContents]:
        snapshot = self.registry.store.read(self.project)
        before = contents_from_snapshot(snapshot)
        after = contents_from_snapshot(snapshot)
        # The named objects and the sources they carry, as a repo file would register them.
        desired = RepoContents()
        for obj in objects:
            collect(desired, {}, obj, "the objects passed to apply()")
        for _, obj in desired.all_objects():
            after.add(obj)
        for obj in to_delete:
            after.by_kind(kind_of(obj)).pop(obj.name, None)
        validate(after, self.offline_engine)
        changes = diff(desired, snapshot, partial=True)
        changes += [Change("delete", kind_of(o), o.name) for o in to_delete
                    if o.name in snapshot.specs.get(kind_of(o), {})]
        return changes, snapshot.version, before, after

    def _commit(self, changes: list[Change], version: int, before: RepoContents, after: RepoContents) -> None:
        if not changes:
            return
        deleted = [v for n, v in before.feature_views.items() if n not in after.feature_views]
        online = [v for v in after.feature_views.values() if v.online]
        # Storage for new/changed views exists before the registry names them; storage of removed
        # views is dropped only once the registry no longer does.
        self.online_store.update(self.project, online, [])
        self.registry.store.apply(self.project, changes, version, _applied_by())
        if deleted:
            self.online_store.update(self.project, online, deleted)
        self.registry.refresh()

    def teardown(self) -> None:
        """Remove the project's online storage and every registry record of it."""
        self.registry.store.check_writable("tear down the project")
        contents = self.registry.refresh()
        self.online_store.teardown(self.project, list(contents.feature_views.values()))
        self.registry.store.delete_project(self.project)
        self.registry.refresh()

    def refresh_registry(self) -> None:
        self.registry.refresh()

    def history(self, limit: int = 50) -> list[HistoryEntry]:
        return self.registry.store.history(self.project, limit)

    def list_entities(self) -> list[Entity]:
        return list(self.registry.contents().entities.values())

    def list_data_sources(self) -> list[DataSource]:
        return list(self.registry.contents().data_sources.values())

    def list_feature_views(self) -> list[FeatureView]:
        return list(self.registry.contents().feature_views.values())

    def list_on_demand_feature_views(self) -> list[OnDemandFeatureView]:
        return list(self.registry.contents().on_demand_feature_views.values())

    def list_feature_services(self) -> list[FeatureService]:
        return list(self.registry.contents().feature_services.values())

    def get_entity(self, name: str) -> Entity:
        return self.registry.contents().get("entity", name)  # type: ignore[no-any-return]

    def get_data_source(self, name: str) -> DataSource:
        return self.registry.contents().get("data_source", name)  # type: ignore[no-any-return]

    def get_feature_view(self, name: str) -> FeatureView:
        return self.registry.contents().get("feature_view", name)  # type: ignore[no-any-return]

    def get_on_demand_feature_view(self, name: str) -> OnDemandFeatureView:
        return self.registry.contents().get("on_demand_feature_view", name)  # type: ignore[no-any-return]

    def get_feature_service(self, name: str) -> FeatureService:
        return self.registry.contents().get("feature_service", name)  # type: ignore[no-any-return]

    # ---- training data (repast/retrieval.py) ------------------------------------------------
    def get_historical_features(self, entity_df: pd.DataFrame | Any = None,
                                features: list[str] | FeatureService | None = None,
                                full_feature_names: bool = False, start_date: datetime | None = None,
                                end_date: datetime | None = None) -> Any:
        from repast.retrieval import get_historical_features

        return get_historical_features(self, entity_df, features, full_feature_names, start_date, end_date)

    # ---- online serving (repast/materialize.py, repast/online_read.py, repast/push.py) -------
    def materialize(self, start_date: datetime, end_date: datetime,
                    feature_views: list[str] | None = None, progress: Any = None) -> Any:
        """Load, per view, the latest row per entity with start <= event_ts < end into the online store."""
        from repast.materialize import materialize

        return materialize(self, start_date, end_date, feature_views, progress)

    def materialize_incremental(self, end_date: datetime, feature_views: list[str] | None = None,
                                progress: Any = None) -> Any:
        """Like materialize, each view starting where its last run ended (or end - ttl)."""
        from repast.materialize import materialize_incremental

        return materialize_incremental(self, end_date, feature_views, progress)

    def get_online_features(self, features: list[str] | FeatureService,
                            entity_rows: list[dict[str, Any]] | dict[str, list[Any]],
                            full_feature_names: bool = False) -> Any:
        """Latest values per entity, with status and event timestamp per value: an OnlineResponse."""
        from repast.online_read import get_online_features

        return get_online_features(self, features, entity_rows, full_feature_names)

    def push(self, push_source_name: str, df: Any, to: Any = None) -> None:
        """Write fresh rows of a push source to the online store, the offline source, or both."""
        from repast.push import push

        push(self, push_source_name, df, to)

    def write_to_online_store(self, feature_view_name: str, df: Any) -> None:
        """Write rows of one feature view directly to the online store (checked first)."""
        from repast.push import write_to_online_store

        write_to_online_store(self, feature_view_name, df)

    # ---- vector retrieval (repast/documents.py, repast/documents_offline.py) ------------------
    def retrieve_online_documents_v2(self, features: list[str], top_k: Any = None, query: Any = None,
                                     distance_metric: str | None = None, query_string: str | None = None,
                                     filters: dict[str, Any] | None = None, *, exact: bool = False) -> Any:
        """The top_k documents of one view nearest to `query` (and/or matching `query_string`): an
        OnlineResponse with the join keys, the features and `distance` (lower is closer) per hit."""
        from repast.documents import retrieve_online_documents_v2

        top_k, query = _top_k_and_query(top_k, query)
        return retrieve_online_documents_v2(self, features, query, top_k, distance_metric, query_string, filters,
                                            exact)

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
        from repast.documents_offline import retrieve_documents

        top_k, query = _top_k_and_query(top_k, query)
        return retrieve_documents(self, features, query, top_k, as_of, distance_metric, query_string, filters)


def _top_k_and_query(top_k: Any, query: Any) -> tuple[Any, Any]:
    """Accept both `(features, top_k, query)` (Feast) and `(features, query, top_k)`."""
    if not isinstance(top_k, int | None) and isinstance(query, int):
        return query, top_k
    return (10 if top_k is None else top_k), query
