"""The rest of Feast's FeatureStore surface: deletes, projects, view listings, saved datasets.

A mixin of FeatureStore, so store.py keeps the core entry points and this module the methods a
Feast user also calls. Every method goes through the same registry and apply path as the rest.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from repast.definitions.feature_service import FeatureService
from repast.definitions.feature_view import FeatureView
from repast.definitions.label_view import LabelView
from repast.definitions.on_demand import OnDemandFeatureView
from repast.definitions.project import Project
from repast.definitions.saved_dataset import SavedDataset, SavedDatasetStorage
from repast.definitions.stream_view import StreamFeatureView
from repast.definitions.versions import FeatureViewVersion
from repast.errors import FeatureViewNotFound, InputError, ProjectNotFound, SavedDatasetNotFound
from repast.registry.base import Change

if TYPE_CHECKING:
    from repast.jobs.backends import Backends
    from repast.registry import Registry


def matches_tags(obj: Any, tags: dict[str, str] | None) -> bool:
    """Feast's `tags=` filter: every given key present with the given value."""
    return not tags or all(getattr(obj, "tags", {}).get(k) == v for k, v in tags.items())


def entity_fingerprint(entity: Any) -> str:
    """SHA-256 of what a training frame was built from: the entity table's Arrow IPC bytes, the SQL
    text, or the time range of a retrieval without an entity frame."""
    import pyarrow as pa

    digest = hashlib.sha256()
    if isinstance(entity, pa.Table):
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, entity.schema) as writer:
            writer.write_table(entity)
        digest.update(sink.getvalue().to_pybytes())
    else:
        digest.update(repr(entity).encode())
    return digest.hexdigest()


class FeastSurface:
    """Methods FeatureStore gains for Feast compatibility (see the module docstring)."""

    project: str
    registry: Registry
    backends: Backends

    def apply(self, objects: Any, objects_to_delete: list[Any] | None = None,
              partial: bool = True) -> list[Change]:
        raise NotImplementedError  # provided by FeatureStore

    # ---- deletes -----------------------------------------------------------------------------
    def delete_feature_view(self, name: str) -> None:
        """Remove a feature view (or on-demand view) from the registry and its online storage."""
        contents = self.registry.refresh()
        self.apply([], objects_to_delete=[contents.get_view(name)])

    def delete_feature_service(self, name: str) -> None:
        """Remove a feature service from the registry."""
        self.apply([], objects_to_delete=[self.registry.refresh().get("feature_service", name)])

    # ---- projects ----------------------------------------------------------------------------
    def list_projects(self, allow_cache: bool = False, tags: dict[str, str] | None = None) -> list[Project]:
        """Projects of this registry: each one's Project object, or a bare Project(name) for a
        project applied without one."""
        names = self.registry.project_names() or [self.project]  # a store that cannot list: this one
        projects = [p for p in (self._project(n) for n in names) if p is not None]
        return [p for p in projects if matches_tags(p, tags)]

    def get_project(self, name: str | None = None, allow_registry_cache: bool = False) -> Project:
        """Project `name` (default: this store's); ProjectNotFound when nothing is registered for it."""
        project = self._project(name or self.project)
        if project is None:
            raise ProjectNotFound(f"project '{name}' has nothing registered in this registry")
        return project

    def _project(self, name: str) -> Project | None:
        snapshot = self.registry.snapshot(name)
        specs = snapshot.specs.get("project", {})
        if name in specs:
            return Project.from_dict(specs[name])
        return Project(name=name) if snapshot.version > 0 else None

    # ---- views by kind -----------------------------------------------------------------------
    def list_batch_feature_views(self, allow_cache: bool = False,
                                 tags: dict[str, str] | None = None) -> list[FeatureView]:
        """Every feature view but the stream feature views (a push source's is backed by batch data)."""
        return [v for v in self.registry.contents().feature_views.values()
                if not isinstance(v, StreamFeatureView) and matches_tags(v, tags)]

    def list_stream_feature_views(self, allow_cache: bool = False,
                                  tags: dict[str, str] | None = None) -> list[StreamFeatureView]:
        """The stream feature views (`repast stream` feeds them), with every tag in `tags` when given."""
        return [v for v in self.registry.contents().feature_views.values()
                if isinstance(v, StreamFeatureView) and matches_tags(v, tags)]

    def list_all_feature_views(self, allow_cache: bool = False,
                               tags: dict[str, str] | None = None) -> list[FeatureView | OnDemandFeatureView]:
        """Feature views and on-demand feature views, with every tag in `tags` when given."""
        contents = self.registry.contents()
        views: list[Any] = [*contents.feature_views.values(), *contents.on_demand_feature_views.values()]
        return [v for v in views if matches_tags(v, tags)]

    def list_label_views(self, allow_cache: bool = False, tags: dict[str, str] | None = None) -> list[LabelView]:
        """Registered label views, with every tag in `tags` when given."""
        return [v for v in self.registry.contents().feature_views.values()
                if isinstance(v, LabelView) and matches_tags(v, tags)]

    def get_label_view(self, name: str, allow_registry_cache: bool = True) -> LabelView:
        """The registered label view `name`; FeatureViewNotFound when there is none or it is a feature view."""
        view = self.registry.contents().get("feature_view", name)
        if not isinstance(view, LabelView):
            raise FeatureViewNotFound(f"'{name}' is a feature view, not a label view")
        return view

    def list_feature_view_versions(self, name: str) -> list[FeatureViewVersion]:
        """The recorded versions of feature view `name`, oldest first (see repast.definitions.versions)."""
        contents = self.registry.refresh()
        versions = [v for v in contents.feature_view_versions.values() if v.view == name]
        if not versions and name not in contents.feature_views:
            contents.get("feature_view", name)  # raises FeatureViewNotFound with the registered names
        return sorted(versions, key=lambda v: v.version)

    # ---- saved datasets ----------------------------------------------------------------------
    def create_saved_dataset(self, from_: Any, name: str, storage: SavedDatasetStorage,
                             tags: dict[str, str] | None = None, feature_service: FeatureService | None = None,
                             allow_overwrite: bool = False) -> SavedDataset:
        """Persist a training job's rows to `storage` and register them as `name`, with the feature
        references, the entity frame's fingerprint and the registry version they were built at."""
        request = getattr(from_, "request", None)
        if request is None:
            raise InputError("create_saved_dataset: from_ must be the job get_historical_features returned")
        if not allow_overwrite and name in self.registry.refresh().saved_datasets:
            raise InputError(f"saved dataset '{name}' already exists; pass allow_overwrite=True to replace it")
        version = self.registry.version
        from_.persist(storage, allow_overwrite=allow_overwrite)
        features = [f"{v.name}:{f}" for v in request.views for f in v.features]
        features += [f"{o.name}:{f}" for o in request.on_demand for f in o.features]
        dataset = SavedDataset(name=name, features=features, join_keys=request.entity_columns(), storage=storage,
                               full_feature_names=from_.full_feature_names, tags=tags,
                               feature_service_name=feature_service.name if feature_service else None,
                               entity_fingerprint=entity_fingerprint(from_.entity), registry_version=version,
                               created_at=datetime.now(UTC), row_count=from_.to_arrow().num_rows)
        self.apply([dataset])
        return self.get_saved_dataset(name)

    def get_saved_dataset(self, name: str, allow_registry_cache: bool = False) -> SavedDataset:
        """The saved dataset `name` (read its rows with `to_df()`); SavedDatasetNotFound when there is none."""
        datasets = self.registry.refresh().saved_datasets
        if name not in datasets:
            raise SavedDatasetNotFound(f"saved dataset '{name}' is not registered; registered: {sorted(datasets)}")
        dataset = datasets[name]
        dataset.repo_path = str(getattr(self, "repo_path", "")) or None
        return dataset

    def list_saved_datasets(self, allow_cache: bool = False, tags: dict[str, str] | None = None) -> list[SavedDataset]:
        """Registered saved datasets, with every tag in `tags` when given."""
        return [d for d in self.registry.contents().saved_datasets.values() if matches_tags(d, tags)]

    # ---- servers (Feast's `serve*` methods; repast/config/feast_surface.py says what each does) ----
    def serve(self, host: str = "127.0.0.1", port: int = 6566, type_: str = "http", no_access_log: bool = True,
              workers: int = 1, metrics: bool = False, keep_alive_timeout: int = 30, tls_key_path: str = "",
              tls_cert_path: str = "", registry_ttl_sec: float | None = None, worker_connections: int = 1000,
              max_requests: int = 1000, max_requests_jitter: int = 50, no_feature_log: bool = False) -> None:
        """Run the feature server until interrupted, as `repast serve` does (Feast's signature).

        `type_` must be "http" (repast has no gRPC server); `workers=-1` starts 2 x CPUs + 1;
        `metrics` is accepted: /metrics is always served. `worker_connections`, `max_requests` and
        `max_requests_jitter` have no effect (one warning line)."""
        from repast.server.runner import serve

        count = server_workers(type_, workers, worker_connections != 1000, max_requests != 1000,
                               max_requests_jitter != 50)
        serve(self.backends, host=host, port=port, workers=count, access_log=not no_access_log,
              key=tls_key_path or None, cert=tls_cert_path or None, keep_alive_timeout=keep_alive_timeout,
              registry_ttl_sec=registry_ttl_sec, feature_log=not no_feature_log)

    def serve_offline(self, host: str = "127.0.0.1", port: int = 8815, tls_key_path: str = "",
                      tls_cert_path: str = "", **kwargs: Any) -> None:
        """Serve this repo's offline store over Arrow Flight until interrupted (`repast serve-offline`)."""
        from repast.server.offline_flight import serve_offline

        serve_offline(self.backends, host=host, port=port, key=tls_key_path or None, cert=tls_cert_path or None)

    def serve_registry(self, port: int = 6570, **kwargs: Any) -> None:
        """Not supported: raises an error saying why (`repast serve` answers `GET /registry`)."""
        refuse_method("serve_registry")

    def serve_transformations(self, port: int = 6569, **kwargs: Any) -> None:
        """Not supported: raises an error saying why (it serves Feast's Go feature server)."""
        refuse_method("serve_transformations")

    # ---- async variants (Feast's signatures) -------------------------------------------------
    # The stores' reads and writes are blocking calls that release the GIL in their drivers; each
    # runs on a worker thread (every store keeps one connection per thread), so the event loop
    # stays free and the answer is exactly the synchronous method's.
    async def get_online_features_async(self, features: list[str] | FeatureService,
                                        entity_rows: list[dict[str, Any]] | dict[str, list[Any]],
                                        full_feature_names: bool = False) -> Any:
        """`get_online_features` without blocking the event loop: the same OnlineResponse and errors."""
        import asyncio

        return await asyncio.to_thread(self.get_online_features, features, entity_rows, full_feature_names)

    async def push_async(self, push_source_name: str, df: Any, allow_registry_cache: bool = True, to: Any = None,
                         **kwargs: Any) -> None:
        """`push` without blocking the event loop: the same checks, writes and errors. Feast's other
        keyword arguments (`transform_on_write`) are accepted."""
        import asyncio

        await asyncio.to_thread(self.push, push_source_name, df, allow_registry_cache, to)

    def get_online_features(self, features: list[str] | FeatureService,
                            entity_rows: list[dict[str, Any]] | dict[str, list[Any]],
                            full_feature_names: bool = False) -> Any:
        raise NotImplementedError  # provided by FeatureStore

    def push(self, push_source_name: str, df: Any, allow_registry_cache: bool = True, to: Any = None,
             transform_on_write: bool = True) -> None:
        raise NotImplementedError  # provided by FeatureStore


def refuse_method(name: str) -> None:
    """Raise the InputError refusing one of Feast's methods the surface table marks REFUSED."""
    from repast.config.feast_surface import not_supported, parts

    raise InputError(not_supported(parts("method", "FeatureStore")[name]))


def server_workers(type_: str, workers: int, *no_effect_given: bool) -> int:
    """Feast's serve options checked: the worker count (-1: 2 x CPUs + 1, as Feast); gRPC refused;
    the gunicorn-only options that were given warned about once."""
    import logging
    import os

    from repast.config.feast_surface import parts, warn_no_effect

    if type_ != "http":
        raise InputError(f"not supported by repast: --type '{type_}': the feature server speaks HTTP/JSON only "
                         "(type http)")
    options = parts("option", "serve")
    for given, name in zip(no_effect_given, ("--worker-connections", "--max-requests", "--max-requests-jitter"),
                           strict=False):
        if given:
            warn_no_effect(options[name], logging.getLogger("repast.server"))
    return 2 * (os.cpu_count() or 1) + 1 if workers == -1 else workers
