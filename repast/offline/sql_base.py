"""SQLOfflineEngine: the one structure every SQL engine shares; an engine writes only its dialect.

Retrieval, the spine of a retrieval without an entity frame, the view rows under the read_*
column contract, the latest row per key for materialization and the lazy job are written once
here. An engine implements the dialect hooks:

- `relation(source)`: SQL after FROM reading the source (a file scan, a table, a query);
- `timestamp(column)` and `timestamp_literal(value)`: cast to a UTC timestamp;
- `source_place(source)`: a row's place in the source's order, for the tie rule;
- `latest_per_key_sql(rows, keys, columns)`: one row per key, the latest by the tie rule;
- `point_in_time_sql(request)`: the join of the loaded key frame to every view;
- `session()`, `read_arrow`, `stream_arrow`, `load_keys`: how queries run and the keys get in;
- `minus_micros`, `double_type`, `ordered_aggregate_sql`: windowed aggregations (the query itself is
  written once, in repast/offline/window_aggregates.py).
- for statistics (repast/monitoring/): `double_type`, `text_type`, `day_sql`, `quantiles_sql`,
  `distinct_count_sql` (approximate where the engine has it: `approx_distinct`), run by `run_query`.

A relation may be deferred: an engine that reads a source through Arrow (object storage) names
it in the SQL and registers a factory (`defer`); whoever runs that SQL takes the factories
(`take_deferred`) and attaches them to its connection (`attach`), so each run scans afresh.
"""

from __future__ import annotations

import threading
from abc import abstractmethod
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

import pyarrow as pa

from repast.errors import DefinitionError, InputError, RepastError
from repast.offline.base import (
    EntityInput,
    OfflineEngine,
    RetrievalJob,
    SpineRange,
    cast_to_view_types,
)
from repast.offline.point_in_time import ROW, TIMESTAMP_COLUMN, TS, assemble, check_entity, key_frame
from repast.sql_quoting import quote_ident

if TYPE_CHECKING:
    from repast.definitions import DataSource, FeatureView
    from repast.definitions.feature_refs import FeatureRequest, ViewRequest

q = quote_ident
KEYS_TABLE = "__repast_keys"  # the key frame, as each engine loads it for the join
__all__ = ["KEYS_TABLE", "ROW", "TS", "SQLOfflineEngine", "SQLRetrievalJob"]


class SQLOfflineEngine(OfflineEngine):
    """An offline engine that runs SQL. Subclasses hold dialect code only (see the module docstring)."""

    dialect: ClassVar[str] = ""  # the engine's name in messages ("DuckDB", "PostgreSQL")
    type_name: ClassVar[str] = ""  # its offline_store.type
    # The source kinds this engine reads, as data: callers and validation ask instead of trying.
    source_kinds: ClassVar[tuple[type[DataSource], ...]] = ()

    def __init__(self, config: Any, repo_config: Any) -> None:
        super().__init__(config, repo_config)
        self._deferred = threading.local()  # relations deferred by SQL built in each thread

    # ---- dialect hooks -----------------------------------------------------------------------
    @abstractmethod
    def relation(self, source: DataSource, window: tuple[datetime, datetime] | None = None) -> str:
        """SQL usable after FROM that reads every row of `source`; with `window` (start, end), the
        engine may leave out rows outside [start, end) already in the scan (the SQL filters too)."""

    def attach(self, conn: Any, deferred: dict[str, Callable[[], Any]]) -> None:  # noqa: B027
        """Make deferred relations queryable on `conn` (engines that defer none do nothing)."""

    def timestamp(self, column: str) -> str:
        """A source column as a UTC timestamp (the session zone is UTC: zone-less values are UTC)."""
        return f"CAST({q(column)} AS TIMESTAMPTZ)"

    @abstractmethod
    def timestamp_literal(self, value: datetime) -> str:
        """A datetime as an SQL timestamp-with-zone literal."""

    @abstractmethod
    def source_place(self, source: DataSource) -> str:
        """SQL for a row's place in the source's order (the greatest wins exact ties), valid in a
        SELECT directly over `relation(source)`."""

    @abstractmethod
    def latest_per_key_sql(self, rows: str, keys: list[str], columns: list[str]) -> str:
        """Of the query `rows` (read_* columns and `__place`), the latest row per `keys` by (event,
        created, place), selecting `columns`, ordered by the keys."""

    @abstractmethod
    def point_in_time_sql(self, request: FeatureRequest) -> str:
        """The join of the loaded key frame (KEYS_TABLE) to every view: one row per entity row, in
        ROW order, each view feature named `vr.output_name(feature, True)`."""

    @abstractmethod
    def session(self) -> AbstractContextManager[Any]:
        """A connection for one job; whatever the job created goes away with it."""

    def interrupt(self, conn: Any) -> None:  # noqa: B027
        """Stop the query running on `conn` of `session()`, from another thread (default: cannot)."""

    @abstractmethod
    def read_arrow(self, conn: Any, sql: str) -> pa.Table:
        """The result of `sql` as an Arrow table."""

    def read_batches(self, conn: Any, sql: str, batch_rows: int) -> Iterator[pa.RecordBatch]:
        """The result of `sql` in this session as record batches; by default read whole, then split
        (an engine that can read a result lazily in its session overrides this)."""
        yield from self.read_arrow(conn, sql).to_batches(batch_rows)

    @abstractmethod
    def stream_arrow(self, sql: str, batch_size: int,
                     deferred: dict[str, Callable[[], Any]]) -> Iterator[pa.RecordBatch]:
        """The result of `sql` as record batches, read lazily over a connection of its own (with
        the `deferred` relations attached)."""

    @abstractmethod
    def load_keys(self, conn: Any, keys: pa.Table) -> None:
        """Make the key frame queryable as KEYS_TABLE in this session."""

    @abstractmethod
    def query_schema(self, sql: str) -> pa.Schema:
        """The columns of a user's entity query, without running it in full."""

    def spine_key_columns(self, vr: ViewRequest, request: FeatureRequest) -> list[str]:
        """The key columns one view contributes to a spine; by default only its own (the parts are
        combined by name, so a column another view lacks is NULL there)."""
        src = vr.view.batch_source
        return [f"{q(src.source_column(k))} AS {q(c)}"
                for k, c in zip(vr.view.join_keys, vr.request_columns(), strict=True)]

    # ---- windowed aggregations (repast/offline/window_aggregates.py) ------------------------
    def minus_micros(self, timestamp: str, micros: int | str) -> str:
        """SQL for the timestamp expression `timestamp` minus `micros` microseconds (a number or a
        BIGINT SQL expression)."""
        return f"{timestamp} - to_microseconds({micros})"

    def epoch_micros_sql(self, timestamp: str) -> str:
        """SQL for the exact BIGINT microseconds since the epoch of a timestamp expression."""
        return f"epoch_us({timestamp})"

    @abstractmethod
    def ordered_aggregate_sql(self, kind: str, value: str, n: int, text: bool) -> str:
        """last, first or last_n (the n latest, oldest first) of the non-null `value`s of a group of
        the view's rows (columns __ts, __created of window_aggregates.EVENT_ALIAS), ordered by
        (event time, created time with null lowest, value), the order the online tiles use too
        (`text`: the values are strings, compared by code point); NULL when none."""

    # ---- statistics hooks (repast/monitoring/statistics_sql.py); the defaults are PostgreSQL's ----
    double_type: ClassVar[str] = "DOUBLE PRECISION"  # the dialect's 64-bit float type (also aggregations)
    text_type: ClassVar[str] = "TEXT"
    approx_distinct: ClassVar[bool] = False  # whether distinct_count_sql counts approximately

    def day_sql(self, ts: str) -> str:
        """The UTC day of a timestamp expression, as a timestamp (the session zone is UTC)."""
        return f"date_trunc('day', {ts})"

    def day_label_sql(self, day: str) -> str:
        """A day of `day_sql` as 'YYYY-MM-DD' text; applied after grouping, once per group, as a
        text cast per row nearly doubled the cost of a statistics scan."""
        return f"CAST(CAST({day} AS DATE) AS {self.text_type})"

    def quantiles_sql(self, expr: str, fractions: list[float]) -> str:
        """An aggregate: the list of the `fractions` quantiles of `expr`, in one pass (exact here;
        engines with a sketch or a sample use it)."""
        return f"percentile_cont(ARRAY[{', '.join(map(repr, fractions))}]) WITHIN GROUP (ORDER BY {expr})"

    def distinct_count_sql(self, expr: str) -> str:
        return f"count(DISTINCT {expr})"

    def key_hash_sql(self, columns: list[str]) -> str:
        """A hash of an entity key's columns (skew samples keys by it)."""
        return f"md5(CAST(ROW({', '.join(columns)}) AS TEXT))"

    def run_query(self, build: Callable[[], str]) -> pa.Table:
        """Build SQL (which may defer relations, see the module docstring) and run it in one session."""
        self.take_deferred()
        sql = build()
        deferred = self.take_deferred()
        with self.session() as conn:
            self.attach(conn, deferred)
            return self.read_arrow(conn, sql)

    spine_union: ClassVar[str] = "UNION ALL BY NAME"
    null_timestamp: ClassVar[str] = "CAST(NULL AS TIMESTAMPTZ)"  # a typed NULL timestamp in the dialect
    job_class: ClassVar[type[SQLRetrievalJob]]

    # ---- shared structure --------------------------------------------------------------------
    def defer(self, name: str, factory: Callable[[], Any]) -> str:
        """Register a relation built at run time under `name` (see the module docstring)."""
        pending = getattr(self._deferred, "relations", None)
        if pending is None:
            pending = self._deferred.relations = {}
        pending[name] = factory
        return name

    def take_deferred(self) -> dict[str, Callable[[], Any]]:
        """The relations deferred by SQL built in this thread since the last call."""
        pending: dict[str, Callable[[], Any]] = getattr(self._deferred, "relations", None) or {}
        self._deferred.relations = {}
        return pending

    def check_source(self, source: DataSource) -> None:
        """Raise DefinitionError naming the source when this engine cannot read its kind."""
        if not isinstance(source, self.source_kinds):
            kinds = " or ".join(k.__name__ for k in self.source_kinds)
            raise DefinitionError(
                f"data source '{source.name}' ({type(source).__name__}) cannot be read by the {self.type_name} "
                f"offline engine; use a {kinds} or set offline_store.type to match the source")

    def get_historical_features(self, entity: EntityInput, request: FeatureRequest,
                                full_feature_names: bool) -> RetrievalJob:
        self.take_deferred()
        schemas = {}
        for vr in request.views:
            self.check_source(vr.view.batch_source)
            schemas[vr.view.batch_source.name] = self.source_schema(vr.view.batch_source)
        if isinstance(entity, SpineRange):
            job = self.job_class(self, self.spine_sql(request, entity), request, full_feature_names)
            job.deferred = self.take_deferred()
            return job
        schema = entity.schema if isinstance(entity, pa.Table) else self._entity_query_schema(entity)
        check_entity(schema, request, lambda s: schemas[s.name])
        return self.job_class(self, entity, request, full_feature_names)

    def _entity_query_schema(self, sql: str) -> pa.Schema:
        try:
            return self.query_schema(sql)
        except RepastError:
            raise
        except Exception as e:  # drivers raise many error classes; all mean the user's query is bad
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise InputError(f"entity_df query failed in {self.dialect}: {first}") from None

    def spine_sql(self, request: FeatureRequest, spine: SpineRange) -> str:
        """One row per entity key of the views' rows in [start, end], at its latest event time."""
        start, end = self.timestamp_literal(spine.start), self.timestamp_literal(spine.end)
        parts = []
        for vr in request.views:
            src = vr.view.batch_source
            ts = self.timestamp(src.timestamp_field)
            parts.append(f"SELECT {', '.join(self.spine_key_columns(vr, request))}, {ts} AS {TIMESTAMP_COLUMN} "
                         f"FROM {self.relation(src)} WHERE {ts} BETWEEN {start} AND {end}")
        keys = ", ".join(q(c) for c in request.entity_columns())
        order = ", ".join(f"{q(c)} NULLS FIRST" for c in [TIMESTAMP_COLUMN, *request.entity_columns()])
        # As Feast: one row per entity, at its latest event time in the window.
        return (f"SELECT {keys}, max({TIMESTAMP_COLUMN}) AS {TIMESTAMP_COLUMN} "
                f"FROM ({f' {self.spine_union} '.join(parts)}) AS __spine GROUP BY {keys} ORDER BY {order}")

    def view_rows_sql(self, view: FeatureView, with_place: bool = False,
                      window: tuple[datetime, datetime] | None = None) -> str:
        """The view's rows under the read_* column contract, before any time filter (and with
        `with_place`, their place in the source as `__place`)."""
        src = view.batch_source
        self.check_source(src)
        columns = [f"{q(src.source_column(k))} AS {q(k)}" for k in view.join_keys]
        columns += [f"{q(src.source_column(f))} AS {q(f)}" for f in view.source_feature_columns()]
        created = self.timestamp(src.created_timestamp_column) if src.created_timestamp_column \
            else self.null_timestamp
        columns += [f"{self.timestamp(src.timestamp_field)} AS event_timestamp", f"{created} AS created_timestamp"]
        if with_place:
            columns.append(f"{self.source_place(src)} AS __place")
        return f"SELECT {', '.join(columns)} FROM {self.relation(src, window)}"

    def in_range_sql(self, view: FeatureView, start: datetime, end: datetime, with_place: bool = False) -> str:
        start_sql, end_sql = self.timestamp_literal(start), self.timestamp_literal(end)
        return (f"SELECT * FROM ({self.view_rows_sql(view, with_place, (start, end))}) AS __rows WHERE "
                f"event_timestamp >= {start_sql} AND event_timestamp < {end_sql}")

    def read_latest(self, view: FeatureView, start: datetime, end: datetime,
                    batch_size: int = 100_000) -> Iterator[pa.RecordBatch]:
        # Key order costs the engine little and saves the online store much: batches of random keys
        # make each write transaction touch (and rewrite) pages across the whole stored key space.
        if view.aggregations:  # its online values are tiles of partial aggregates, not a latest row
            raise DefinitionError(f"feature view '{view.name}' has aggregations: it has no latest row per key to "
                                  "materialize; its online values are built from tiles")
        columns = [*view.join_keys, *view.feature_names(), "event_timestamp", "created_timestamp"]
        self.take_deferred()
        sql = self.latest_per_key_sql(self.in_range_sql(view, start, end, with_place=True),
                                      list(view.join_keys), columns)
        deferred = self.take_deferred()
        for batch in self.stream_arrow(sql, batch_size, deferred):
            yield cast_to_view_types(batch, view)

    def read_range(self, view: FeatureView, start: datetime, end: datetime) -> pa.Table:
        return cast_to_view_types(self.run_query(lambda: self.in_range_sql(view, start, end)), view)

    def read_range_by_key(self, view: FeatureView, start: datetime, end: datetime,
                          batch_size: int = 100_000) -> Iterator[pa.RecordBatch]:
        """The engine sorts (spilling past its memory limit) and streams the result batch by batch."""
        self.take_deferred()
        order = ", ".join(q(k) for k in view.join_keys)
        sql = f"SELECT * FROM ({self.in_range_sql(view, start, end)}) AS __range ORDER BY {order}"
        deferred = self.take_deferred()
        for batch in self.stream_arrow(sql, batch_size, deferred):
            yield cast_to_view_types(batch, view)


class SQLRetrievalJob(RetrievalJob):
    """The point-in-time join, run when a `to_*` method is called; `entity` is Arrow or a query."""

    def __init__(self, engine: SQLOfflineEngine, entity: pa.Table | str, request: FeatureRequest,
                 full_feature_names: bool) -> None:
        self.engine = engine
        self.entity = entity
        self.request = request
        self.full_feature_names = full_feature_names
        self.deferred: dict[str, Callable[[], Any]] = {}  # relations the spine query reads
        self._running: Any = None  # the session of the `to_*` call under way, for `cancel`

    def repo_path(self) -> str | None:
        return str(self.engine.repo_config.repo_path)

    def cancel(self) -> None:
        conn = self._running
        if conn is not None:
            self.engine.interrupt(conn)

    def to_arrow(self) -> pa.Table:
        with self._joined() as (conn, entity, ts, sql):
            features = self.engine.read_arrow(conn, sql)
        return assemble(entity, ts, features, self.request, self.full_feature_names)

    def to_batches(self, batch_rows: int = 65_536) -> Iterator[pa.RecordBatch]:
        """The rows in entity order, a batch at a time as the engine reads them (`read_batches`)."""
        with self._joined() as (conn, entity, ts, sql):
            offset = 0
            for batch in self.engine.read_batches(conn, sql, batch_rows):
                part = entity.slice(offset, batch.num_rows)
                offset += batch.num_rows
                yield from assemble(part, ts, pa.Table.from_batches([batch]), self.request,
                                    self.full_feature_names).to_batches()

    @contextmanager
    def _joined(self) -> Iterator[tuple[Any, pa.Table, str, str]]:
        """A session with the key frame loaded: (connection, entity rows, their timestamp column,
        the join's SQL)."""
        engine = self.engine
        engine.take_deferred()
        sql = engine.point_in_time_sql(self.request)
        deferred = {**self.deferred, **engine.take_deferred()}
        with engine.session() as conn:
            self._running = conn
            try:
                engine.attach(conn, deferred)
                entity = self.entity if isinstance(self.entity, pa.Table) else engine.read_arrow(conn, self.entity)
                ts = check_entity(entity.schema, self.request)
                engine.load_keys(conn, key_frame(entity, ts, self.request))
                yield conn, entity, ts, sql
            finally:
                self._running = None


SQLOfflineEngine.job_class = SQLRetrievalJob
