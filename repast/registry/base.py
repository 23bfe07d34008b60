"""The RegistryStore interface: where definitions, their history and watermarks live."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from repast.plugins.capabilities import Capabilities, require_write

if TYPE_CHECKING:
    from repast.plugins.base_config import RegistryConfig, RepoSettings


@dataclass(frozen=True)
class Change:
    """One definition added, changed or removed by an apply. `fields` names what changed."""

    op: str  # "add" | "update" | "delete"
    kind: str
    name: str
    spec: dict[str, Any] | None = None  # the new spec (None for delete)
    fields: tuple[str, ...] = ()
    new_version: int | None = None  # a view's change that records its next version (plan/apply say so)

    def to_dict(self) -> dict[str, Any]:
        return {"op": self.op, "kind": self.kind, "name": self.name, "fields": list(self.fields)}

    def to_history(self) -> dict[str, Any]:
        """What history keeps: to_dict plus the new spec (without an on-demand view's pickled
        function, which is never shown), so a later reader can diff an object between applies."""
        spec = None if self.spec is None else {k: v for k, v in self.spec.items() if k != "udf_pickle"}
        return {**self.to_dict(), "spec": spec}


@dataclass(frozen=True)
class Snapshot:
    """Every definition of a project at one registry version: kind -> name -> spec JSON."""

    version: int
    specs: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)


@dataclass(frozen=True)
class HistoryEntry:
    version: int
    applied_at: datetime
    applied_by: str
    changes: list[dict[str, Any]]
    # "kind/name" -> the spec that apply wrote (None for a delete); empty for applies recorded
    # before history kept specs.
    specs: dict[str, dict[str, Any] | None] = field(default_factory=dict)

    @classmethod
    def from_record(cls, version: int, applied_at: datetime, applied_by: str,
                    changes: list[dict[str, Any]]) -> HistoryEntry:
        """An entry from stored `Change.to_history()` dicts: the specs apart from the change list."""
        specs = {f"{c['kind']}/{c['name']}": c["spec"] for c in changes if "spec" in c}
        return cls(version, applied_at, applied_by, [{k: v for k, v in c.items() if k != "spec"} for c in changes],
                   specs)


@dataclass(frozen=True)
class MaterializationRecord:
    """A view's watermark: materialized up to `end` into the online storage with id `storage`."""

    view: str
    start: datetime
    end: datetime
    recorded_at: datetime
    storage: str = ""  # OnlineStore.storage_id of the storage written to ("" when unknown)


@dataclass(frozen=True)
class MaterializationRun:
    """The last run of one view: its window, when it finished and how many rows it wrote."""

    view: str
    start: datetime
    end: datetime
    finished_at: datetime
    rows: int


@dataclass(frozen=True)
class MonitoringRecord:
    """One monitoring result kept beside the definitions: a feature's statistics over one UTC day
    (or a whole dataset), or one drift or skew check. A record replaces an earlier one with the
    same key (kind, scope, view, feature, day), so re-running a day's check is idempotent."""

    kind: str  # "statistics" | "drift" | "skew"
    scope: str  # what was measured: "source", "dataset:NAME", "served_log:SERVICE"; drift: the reference
    view: str
    feature: str
    day: str  # YYYY-MM-DD (UTC) of the data measured, or "all" for a whole dataset
    start: datetime  # the time range measured (first and last event time seen)
    end: datetime
    rows: int
    values: dict[str, Any]  # JSON-able: the statistics, or the check's scores
    computed_at: datetime

    def key(self) -> tuple[str, str, str, str, str]:
        return self.kind, self.scope, self.view, self.feature, self.day


class RegistryStore(ABC):
    """Backends store specs as JSON per (project, kind, name) and keep a version per project."""

    # Capabilities as data: a read-only store (a thin client of the feature server) declares
    # write=False, and writes are refused before any validation or storage work starts.
    capabilities: ClassVar[Capabilities] = Capabilities()

    def __init__(self, config: RegistryConfig, repo_config: RepoSettings) -> None:
        """Built as `Store(config, repo_config)` from the plugin table (`registry` section)."""
        self.config = config
        self.repo_config = repo_config

    def check_writable(self, action: str) -> None:
        """Raise a clear error naming `action` when this store cannot write."""
        require_write(self, action)

    @abstractmethod
    def read(self, project: str) -> Snapshot:
        """All specs of `project` and the version they belong to (0 when never applied)."""

    @abstractmethod
    def version(self, project: str) -> int:
        """The current version of `project`: a cheap call used to refresh caches."""

    @abstractmethod
    def apply(self, project: str, changes: list[Change], expected_version: int, applied_by: str) -> int:
        """Write `changes` in one transaction if the version is still `expected_version`.

        Returns the new version; raises RegistryConflict if another apply came first.
        """

    @abstractmethod
    def history(self, project: str, limit: int = 50) -> list[HistoryEntry]:
        """Past applies, newest first."""

    @abstractmethod
    def record_materialization(self, project: str, view: str, start: datetime, end: datetime,
                               storage: str = "") -> None:
        """Remember that `view` was materialized over [start, end) into the online storage `storage`.

        Forward only: for the same storage the watermark keeps the greatest end (a backfill never
        moves it back); a record for another storage replaces it."""

    @abstractmethod
    def materializations(self, project: str) -> dict[str, MaterializationRecord]:
        """The watermark of each view, by view name."""

    @abstractmethod
    def delete_project(self, project: str) -> None:
        """Remove every definition, history entry and watermark of `project` (teardown)."""

    def close(self) -> None:  # noqa: B027 - a store without connections has nothing to release
        """Release connections; the store reconnects on next use."""

    # Optional, with no-op defaults: what the web UI's freshness page shows about the last run.
    def record_run(self, project: str, run: MaterializationRun) -> None:
        """Remember the latest materialization run of `run.view` (rows written included)."""
        return None

    def last_runs(self, project: str) -> dict[str, MaterializationRun]:
        """The latest run of each view, by view name (empty when the store keeps none)."""
        return {}

    def project_names(self) -> list[str]:
        """Every project with definitions in this registry (empty when the store cannot list them)."""
        return []

    # Monitoring results (repast/monitoring/): kept by the SQL and object stores.
    def record_monitoring(self, project: str, records: list[MonitoringRecord]) -> None:
        """Keep `records`, each replacing the stored one with its key, all in one write."""
        from repast.errors import ConfigError

        raise ConfigError(f"the {type(self).__name__} registry keeps no monitoring results; use a SQL or "
                          "object-storage registry (registry: data/registry.db, postgresql://..., s3://...)")

    def monitoring_records(self, project: str, kind: str) -> list[MonitoringRecord]:
        """Every stored record of `kind`, ordered by (view, feature, day, scope)."""
        return []
