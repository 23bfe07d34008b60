"""SQLRegistryStore: the registry in SQLite (default) or PostgreSQL, through SQLAlchemy Core."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, OperationalError

from repast.errors import ConfigError, MissingExtra, RegistryConflict, RepastError, StoreUnavailable
from repast.plugins.base_config import masked_url
from repast.registry.base import (
    Change,
    HistoryEntry,
    MaterializationRecord,
    MaterializationRun,
    MonitoringRecord,
    RegistryStore,
    Snapshot,
)
from repast.types.timestamps import as_utc

if TYPE_CHECKING:
    from repast.plugins.base_config import RegistryConfig, RepoSettings

F = TypeVar("F", bound=Callable[..., Any])

metadata = sa.MetaData()
projects = sa.Table(
    "repast_projects", metadata,
    sa.Column("project", sa.String(255), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)
objects = sa.Table(
    "repast_objects", metadata,
    sa.Column("project", sa.String(255), primary_key=True),
    sa.Column("kind", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(255), primary_key=True),
    sa.Column("spec", sa.Text, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)
history = sa.Table(
    "repast_history", metadata,
    sa.Column("project", sa.String(255), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("applied_by", sa.String(255), nullable=False),
    sa.Column("changes", sa.Text, nullable=False),
)
# Watermarks before they were tied to the online storage; no longer read (every view is refilled
# once after an upgrade), still removed by teardown.
materializations = sa.Table(
    "repast_materializations", metadata,
    sa.Column("project", sa.String(255), primary_key=True),
    sa.Column("view", sa.String(255), primary_key=True),
    sa.Column("start_ts", sa.DateTime(timezone=True), nullable=False),
    sa.Column("end_ts", sa.DateTime(timezone=True), nullable=False),
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
)
watermarks = sa.Table(
    "repast_watermarks", metadata,
    sa.Column("project", sa.String(255), primary_key=True),
    sa.Column("view", sa.String(255), primary_key=True),
    sa.Column("storage", sa.String(255), nullable=False),
    sa.Column("start_ts", sa.DateTime(timezone=True), nullable=False),
    sa.Column("end_ts", sa.DateTime(timezone=True), nullable=False),
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
)

runs = sa.Table(
    "repast_materialization_runs", metadata,
    sa.Column("project", sa.String(255), primary_key=True),
    sa.Column("view", sa.String(255), primary_key=True),
    sa.Column("start_ts", sa.DateTime(timezone=True), nullable=False),
    sa.Column("end_ts", sa.DateTime(timezone=True), nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("rows_written", sa.BigInteger, nullable=False),
)
# Statistics, drift and skew results (repast/monitoring/), one row per (kind, scope, view, feature, day).
monitoring = sa.Table(
    "repast_monitoring", metadata,
    sa.Column("project", sa.String(255), primary_key=True),
    sa.Column("kind", sa.String(32), primary_key=True),
    sa.Column("scope", sa.String(255), primary_key=True),
    sa.Column("view", sa.String(255), primary_key=True),
    sa.Column("feature", sa.String(255), primary_key=True),
    sa.Column("day", sa.String(16), primary_key=True),
    sa.Column("start_ts", sa.DateTime(timezone=True), nullable=False),
    sa.Column("end_ts", sa.DateTime(timezone=True), nullable=False),
    sa.Column("row_count", sa.BigInteger, nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
)


def database_error(e: sa.exc.DBAPIError, url: str, action: str) -> RepastError | None:
    """The user-facing error for a database failure, or None for a real fault (a bug)."""
    text = " ".join(str(e.orig).split())  # one line: libpq adds hints on further lines
    low = text.lower()
    if "database is locked" in low:
        return StoreUnavailable(f"registry database {url} is locked by another process (an apply or a "
                                f"materialization holding it); could not {action}: try again when it has finished")
    if "readonly database" in low or getattr(e.orig, "sqlstate", None) == "42501":
        return ConfigError(f"registry database {url} refuses to let this user {action}: {text}; use a role "
                           "(or file permissions) that can write the registry tables")
    if isinstance(e, sa.exc.OperationalError | sa.exc.InterfaceError) or e.connection_invalidated:
        return StoreUnavailable(f"registry database {url} cannot be reached: {text}")
    return None


def _database_errors(action: str) -> Callable[[F], F]:
    """Map the database's failures inside the decorated method to one-line repast errors."""
    def wrap(fn: F) -> F:
        @functools.wraps(fn)
        def mapped(self: SQLRegistryStore, *args: Any, **kwargs: Any) -> Any:
            try:
                return fn(self, *args, **kwargs)
            except sa.exc.DBAPIError as e:
                error = database_error(e, masked_url(self._url), action)
                if error is None:
                    raise
                raise error from None
        return mapped  # type: ignore[return-value]
    return wrap


class SQLRegistryStore(RegistryStore):
    """One set of tables holds every project; an apply bumps the project's version row.

    PostgreSQL connections are opened per operation (no pool), each bounded by the connect timeout
    and its statements by the read timeout, so a registry that is down or frozen fails a refresh
    within those bounds instead of hanging on a pooled connection.
    """

    engine: sa.Engine
    _url: str
    _created: bool

    def __init__(self, config: RegistryConfig, repo_config: RepoSettings) -> None:
        self._open(repo_config.registry_url(), config.connect_timeout_seconds, config.read_timeout_seconds,
                   config.lock_timeout_seconds)

    @classmethod
    def for_url(cls, url: str) -> SQLRegistryStore:
        """A store on the SQLAlchemy URL `url` (tools and tests; FeatureStore goes through the plugin table)."""
        store = cls.__new__(cls)
        store._open(url)
        return store

    def _open(self, url: str, connect_timeout_seconds: float = 2.0, read_timeout_seconds: float = 5.0,
              lock_timeout_seconds: float = 30.0) -> None:
        try:
            if url.startswith("sqlite"):
                self.engine = sa.create_engine(url, connect_args={"timeout": lock_timeout_seconds})
            else:
                # libpq counts whole seconds, at least 2.
                connect_args = {"connect_timeout": max(2, round(connect_timeout_seconds)),
                                "options": f"-c statement_timeout={int(read_timeout_seconds * 1000)}"}
                self.engine = sa.create_engine(url, poolclass=sa.pool.NullPool, connect_args=connect_args)
        except ImportError as e:
            raise MissingExtra(f"registry path '{masked_url(url)}' needs a database driver that is not installed "
                               f"({e}): pip install \"repast[postgres]\"") from None
        except sa.exc.ArgumentError as e:
            raise ConfigError(f"registry path '{masked_url(url)}' is not a usable database URL: {e}") from None
        self._url = url
        self._created = False

    def close(self) -> None:
        self.engine.dispose()

    def _ensure_tables(self) -> None:
        if self._created:
            return
        if self._url.startswith("sqlite:///"):
            from pathlib import Path

            Path(self._url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
        # Each lost race means another process created a table this one saw missing, and tables are
        # never dropped here, so one attempt per table plus one always ends with every table present.
        attempts = len(metadata.tables) + 1
        for attempt in range(attempts):
            try:
                metadata.create_all(self.engine, checkfirst=True)
                break
            except sa.exc.DBAPIError as e:
                # Another process created a table between our check and our CREATE ("already
                # exists" / unique violation); the next checkfirst sees it. A database that
                # cannot be reached, is locked or refuses the user is not worth a second try.
                mapped = database_error(e, masked_url(self._url), "open the registry")
                if isinstance(mapped, ConfigError) or (mapped is not None and "is locked" in str(mapped)):
                    raise mapped from None
                # SQLite words a lost create race as an OperationalError ("table ... already exists").
                raced = "already exists" in str(e.orig)
                if attempt == attempts - 1 or (isinstance(e, OperationalError) and not raced):
                    raise StoreUnavailable(
                        # one line: libpq adds "Is the server running ..." on a second line
                        f"registry database {masked_url(self._url)} cannot be used: {' '.join(str(e.orig).split())}"
                    ) from None
        self._created = True

    @_database_errors("read definitions")
    def read(self, project: str) -> Snapshot:
        self._ensure_tables()
        with self._connect() as conn:
            version = self._version(conn, project)
            rows = conn.execute(sa.select(objects.c.kind, objects.c.name, objects.c.spec)
                                .where(objects.c.project == project)).all()
        specs: dict[str, dict[str, dict[str, Any]]] = {}
        for kind, name, spec in rows:
            specs.setdefault(kind, {})[name] = json.loads(spec)
        return Snapshot(version, specs)

    @_database_errors("read the registry version")
    def version(self, project: str) -> int:
        self._ensure_tables()
        with self._connect() as conn:
            return self._version(conn, project)

    @staticmethod
    def _version(conn: sa.Connection, project: str) -> int:
        v = conn.execute(sa.select(projects.c.version).where(projects.c.project == project)).scalar()
        return int(v or 0)

    def _connect(self) -> Any:
        try:
            return self.engine.connect()
        except OperationalError as e:
            raise StoreUnavailable(f"registry database {masked_url(self._url)} cannot be reached: "
                                   f"{' '.join(str(e.orig).split())}") from None

    @_database_errors("apply definitions")
    def apply(self, project: str, changes: list[Change], expected_version: int, applied_by: str) -> int:
        self._ensure_tables()
        now = datetime.now(UTC)
        new_version = expected_version + 1
        try:
            with self.engine.begin() as conn:
                self._bump_version(conn, project, expected_version, now)
                for ch in changes:
                    key = (objects.c.project == project) & (objects.c.kind == ch.kind) & (objects.c.name == ch.name)
                    conn.execute(sa.delete(objects).where(key))
                    if ch.op != "delete":
                        conn.execute(sa.insert(objects).values(
                            project=project, kind=ch.kind, name=ch.name,
                            spec=json.dumps(ch.spec, sort_keys=True), updated_at=now))
                conn.execute(sa.insert(history).values(
                    project=project, version=new_version, applied_at=now, applied_by=applied_by,
                    changes=json.dumps([c.to_history() for c in changes])))
        except IntegrityError:
            raise self._conflict(project, expected_version) from None
        except OperationalError as e:
            reason = " ".join(str(e.orig).split())
            hint = " (another apply or a process holding a write lock on it)" if "locked" in reason else ""
            raise StoreUnavailable(f"registry database {masked_url(self._url)} could not be written: "
                                   f"{reason}{hint}; nothing was applied, try again") from None
        return new_version

    def _bump_version(self, conn: sa.Connection, project: str, expected: int, now: datetime) -> None:
        if expected == 0:
            conn.execute(sa.insert(projects).values(project=project, version=1, updated_at=now))
            return
        result = conn.execute(sa.update(projects)
                              .where((projects.c.project == project) & (projects.c.version == expected))
                              .values(version=expected + 1, updated_at=now))
        if result.rowcount != 1:
            raise self._conflict(project, expected)

    def _conflict(self, project: str, expected: int) -> RegistryConflict:
        latest = self.history(project, limit=1)
        by = f" (version {latest[0].version}, applied by {latest[0].applied_by} at " \
             f"{latest[0].applied_at:%Y-%m-%d %H:%M:%S} UTC)" if latest else ""
        return RegistryConflict(
            f"project '{project}' was changed by another apply since version {expected} was read{by}; "
            "run `repast plan` to see the current state and apply again")

    @_database_errors("read the apply history")
    def history(self, project: str, limit: int = 50) -> list[HistoryEntry]:
        self._ensure_tables()
        with self._connect() as conn:
            rows = conn.execute(sa.select(history).where(history.c.project == project)
                                .order_by(history.c.version.desc()).limit(limit)).all()
        return [HistoryEntry.from_record(r.version, as_utc(r.applied_at), r.applied_by, json.loads(r.changes))
                for r in rows]

    @_database_errors("record a materialization")
    def record_materialization(self, project: str, view: str, start: datetime, end: datetime,
                               storage: str = "") -> None:
        self._ensure_tables()
        now = datetime.now(UTC)
        key = (watermarks.c.project == project) & (watermarks.c.view == view)
        for attempt in range(2):
            try:
                with self.engine.begin() as conn:
                    # One conditional UPDATE, atomic under concurrent materializations: the end only
                    # moves forward for the same storage; another storage starts a new watermark.
                    moved = conn.execute(sa.update(watermarks).where(
                        key & ((watermarks.c.storage != storage) | (watermarks.c.end_ts < end)))
                        .values(storage=storage, start_ts=start, end_ts=end, recorded_at=now))
                    if moved.rowcount == 0 and conn.execute(sa.select(watermarks.c.view).where(key)).first() is None:
                        conn.execute(sa.insert(watermarks).values(project=project, view=view, storage=storage,
                                                                  start_ts=start, end_ts=end, recorded_at=now))
                return
            except IntegrityError:  # a concurrent first record won the insert: compare with it
                if attempt == 1:
                    raise
            except OperationalError as e:
                raise StoreUnavailable(f"registry database {masked_url(self._url)}: the watermark of feature view "
                                       f"'{view}' could not be recorded: {' '.join(str(e.orig).split())}; the rows "
                                       "are written, run the materialization again to record it") from None

    @_database_errors("read materialization watermarks")
    def materializations(self, project: str) -> dict[str, MaterializationRecord]:
        self._ensure_tables()
        with self._connect() as conn:
            rows = conn.execute(sa.select(watermarks).where(watermarks.c.project == project)).all()
        return {r.view: MaterializationRecord(r.view, as_utc(r.start_ts), as_utc(r.end_ts), as_utc(r.recorded_at),
                                              r.storage) for r in rows}

    def project_names(self) -> list[str]:
        """Every project applied to this registry, by name."""
        self._ensure_tables()
        with self._connect() as conn:
            return sorted(r[0] for r in conn.execute(sa.select(projects.c.project)).all())

    @_database_errors("tear down the project")
    def delete_project(self, project: str) -> None:
        self._ensure_tables()
        with self.engine.begin() as conn:
            for table in (objects, history, materializations, watermarks, runs, monitoring, projects):
                conn.execute(sa.delete(table).where(table.c.project == project))

    def record_run(self, project: str, run: MaterializationRun) -> None:
        self._ensure_tables()
        with self.engine.begin() as conn:
            conn.execute(sa.delete(runs).where((runs.c.project == project) & (runs.c.view == run.view)))
            conn.execute(sa.insert(runs).values(project=project, view=run.view, start_ts=run.start, end_ts=run.end,
                                                finished_at=run.finished_at, rows_written=run.rows))

    def last_runs(self, project: str) -> dict[str, MaterializationRun]:
        self._ensure_tables()
        with self._connect() as conn:
            rows = conn.execute(sa.select(runs).where(runs.c.project == project)).all()
        return {r.view: MaterializationRun(r.view, as_utc(r.start_ts), as_utc(r.end_ts), as_utc(r.finished_at),
                                           int(r.rows_written)) for r in rows}

    @_database_errors("record monitoring results")
    def record_monitoring(self, project: str, records: list[MonitoringRecord]) -> None:
        self._ensure_tables()
        c = monitoring.c
        with self.engine.begin() as conn:  # one transaction: a check's results land together or not at all
            for r in records:
                conn.execute(sa.delete(monitoring).where(
                    (c.project == project) & (c.kind == r.kind) & (c.scope == r.scope) & (c.view == r.view)
                    & (c.feature == r.feature) & (c.day == r.day)))
                conn.execute(sa.insert(monitoring).values(
                    project=project, kind=r.kind, scope=r.scope, view=r.view, feature=r.feature, day=r.day,
                    start_ts=r.start, end_ts=r.end, row_count=r.rows, payload=json.dumps(r.values),
                    computed_at=r.computed_at))

    @_database_errors("read monitoring results")
    def monitoring_records(self, project: str, kind: str) -> list[MonitoringRecord]:
        self._ensure_tables()
        c = monitoring.c
        with self._connect() as conn:
            rows = conn.execute(sa.select(monitoring).where((c.project == project) & (c.kind == kind))
                                .order_by(c.view, c.feature, c.day, c.scope)).all()
        return [MonitoringRecord(r.kind, r.scope, r.view, r.feature, r.day, as_utc(r.start_ts), as_utc(r.end_ts),
                                 int(r.row_count), json.loads(r.payload), as_utc(r.computed_at)) for r in rows]
