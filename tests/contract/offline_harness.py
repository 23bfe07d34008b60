"""One harness per offline engine: put an Arrow table where the engine reads it, get a source back.

The contract suites take the `offline` fixture and run unchanged against every engine.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from repast.config.repo_config import RepoConfig
from repast.definitions import DataSource, Entity, FeatureView, Field, FileSource, PostgreSQLSource, RepoContents
from repast.definitions.feature_refs import resolve_features
from repast.jobs.retrieval import entity_input
from repast.offline.base import OfflineEngine, RetrievalJob, SpineRange
from repast.plugins.table import OFFLINE
from tests.contract.plugins import harness_for, suite_params
from tests.object_storage import ObjectServer

ENGINES = suite_params(OFFLINE)


class OfflineHarness:
    """An engine plus a place to put source tables; `cleanup` removes what was created."""

    kind = ""
    engine: OfflineEngine

    def source(self, name: str, table: pa.Table, timestamp_field: str = "event_timestamp",
               created: str = "", field_mapping: dict[str, str] | None = None) -> DataSource:
        raise NotImplementedError

    def entity_sql(self, table: pa.Table) -> str:
        """An SQL query in the engine's dialect returning `table`'s rows in order."""
        raise NotImplementedError

    def cleanup(self) -> None:
        pass

    def retrieve(self, views: list[FeatureView], entity: Any, features: Any, full_feature_names: bool = False,
                 on_demand: list[Any] | None = None) -> RetrievalJob:
        """Resolve `features` against `views` (no registry needed) and start the engine's join."""
        contents = RepoContents()
        for view in views:
            for entity_def in view.entity_objects:
                contents.entities[entity_def.name] = entity_def
            contents.feature_views[view.name] = view
        for odfv in on_demand or []:
            contents.on_demand_feature_views[odfv.name] = odfv
        request = resolve_features(contents.bind(), features, full_feature_names)
        if not isinstance(entity, SpineRange):  # as FeatureStore does: pandas in, Arrow to the engine
            entity = entity_input(entity, request, None, None)
        return self.engine.get_historical_features(entity, request, full_feature_names)


class DuckDBHarness(OfflineHarness):
    kind = "duckdb"

    def __init__(self, root: Path) -> None:
        from repast.offline.duckdb import DuckDBOfflineConfig, DuckDBOfflineEngine

        self.root = root
        config = RepoConfig.model_construct(project="t", repo_path=root)
        self.engine = DuckDBOfflineEngine(DuckDBOfflineConfig(), config)

    def source(self, name: str, table: pa.Table, timestamp_field: str = "event_timestamp",
               created: str = "", field_mapping: dict[str, str] | None = None) -> DataSource:
        (self.root / name).mkdir(parents=True, exist_ok=True)
        pq.write_table(table, self.root / name / "part-0.parquet")
        return FileSource(name=name, path=name, timestamp_field=timestamp_field,
                          created_timestamp_column=created, field_mapping=field_mapping)

    def entity_sql(self, table: pa.Table) -> str:
        path = self.root / f"entity-{uuid.uuid4().hex[:8]}.parquet"
        pq.write_table(table, path)
        return f"SELECT * FROM read_parquet('{path}')"


class ObjectStorageHarness(DuckDBHarness):
    """The DuckDB engine over sources on object storage (S3 or GCS), scanned through pyarrow.fs."""

    def __init__(self, root: Path, scheme: str, server: ObjectServer) -> None:
        from repast.offline.duckdb import DuckDBOfflineConfig, DuckDBOfflineEngine
        from repast.offline.storage_paths import filesystem_for

        self.root = root
        self.storage = scheme  # the engine is still duckdb: the suites run unchanged
        self.scheme, self.server = scheme, server
        self.prefix = uuid.uuid4().hex[:12]
        config = RepoConfig.model_construct(project="t", repo_path=root)
        self.engine = DuckDBOfflineEngine(DuckDBOfflineConfig(endpoint_override=server.endpoint), config)
        self.fs, _ = filesystem_for(server.url(scheme, self.prefix), server.endpoint)

    def source(self, name: str, table: pa.Table, timestamp_field: str = "event_timestamp",
               created: str = "", field_mapping: dict[str, str] | None = None) -> DataSource:
        pq.write_table(table, f"{self.server.bucket}/{self.prefix}/{name}/part-0.parquet", filesystem=self.fs)
        return FileSource(name=name, path=self.server.url(self.scheme, self.prefix, name),
                          timestamp_field=timestamp_field, created_timestamp_column=created,
                          field_mapping=field_mapping)


class PostgresHarness(OfflineHarness):
    kind = "postgres"

    def __init__(self, url: str, schema: str) -> None:
        from repast.offline.postgres import PostgresOfflineConfig, PostgresOfflineEngine

        self.schema = schema
        config = PostgresOfflineConfig(url=url, db_schema=schema)
        self.pg = PostgresOfflineEngine(config, RepoConfig.model_construct(project="t", repo_path=Path(".")))
        self.engine = self.pg
        with self.pg.connect() as conn:
            conn.execute(f"CREATE SCHEMA {schema}")

    def _create(self, name: str, table: pa.Table) -> str:
        from repast.offline.pg_arrow import pg_type

        qualified = f"{self.schema}.{name}"
        with self.pg.connect() as conn:
            columns = ", ".join(f'"{f.name}" {pg_type(f.type)}' for f in table.schema)
            conn.execute(f"CREATE TABLE {qualified} ({columns})")
        return qualified

    def source(self, name: str, table: pa.Table, timestamp_field: str = "event_timestamp",
               created: str = "", field_mapping: dict[str, str] | None = None) -> DataSource:
        source = PostgreSQLSource(name=name, table=self._create(name, table), timestamp_field=timestamp_field,
                                  created_timestamp_column=created, field_mapping=field_mapping)
        if table.num_rows:
            self.engine.write_rows(source, table)
        return source

    def entity_sql(self, table: pa.Table) -> str:
        name = f"entity_{uuid.uuid4().hex[:8]}"
        with_row = table.append_column("__order", pa.array(range(table.num_rows), pa.int64()))
        qualified = self._create(name, with_row)
        self.engine.write_rows(PostgreSQLSource(name=name, table=qualified), with_row)
        columns = ", ".join(f'"{c}"' for c in table.column_names)
        return f"SELECT {columns} FROM {qualified} ORDER BY __order"

    def cleanup(self) -> None:
        with self.pg.connect() as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {self.schema} CASCADE")


class SparkHarness(OfflineHarness):
    """SparkSources over Parquet directories, read by the session-scoped local SparkSession."""

    kind = "spark"

    def __init__(self, root: Path) -> None:
        from repast.offline.spark import SparkOfflineConfig, SparkOfflineEngine

        self.root = root
        config = RepoConfig.model_construct(project="t", repo_path=root)
        self.engine = SparkOfflineEngine(SparkOfflineConfig(staging_location=str(root / "staging")), config)

    def source(self, name: str, table: pa.Table, timestamp_field: str = "event_timestamp",
               created: str = "", field_mapping: dict[str, str] | None = None) -> DataSource:
        from repast.definitions import SparkSource

        (self.root / name).mkdir(parents=True, exist_ok=True)
        pq.write_table(table, self.root / name / "part-0.parquet")
        return SparkSource(name=name, path=str(self.root / name), file_format="parquet",
                           timestamp_field=timestamp_field, created_timestamp_column=created,
                           field_mapping=field_mapping)

    def entity_sql(self, table: pa.Table) -> str:
        path = self.root / f"entity-{uuid.uuid4().hex[:8]}.parquet"
        pq.write_table(table, path)
        return f"SELECT * FROM parquet.`{path}`"


class RemoteHarness(DuckDBHarness):
    """The remote engine, a client of a real offline server (in a thread) whose engine is DuckDB over
    the same files: the suites' answers must equal the local engine's."""

    kind = "remote"

    def __init__(self, root: Path) -> None:
        from repast.config.repo_config import parse_config
        from repast.jobs.backends import Backends
        from repast.offline.remote import RemoteOfflineConfig, RemoteOfflineEngine
        from tests.offline_server import ThreadFlightServer

        self.root = root
        server_config = parse_config({"project": "t", "registry": str(root / "registry.db"),
                                      "offline_store": {"type": "duckdb"}}, "server feature_store.yaml", root)
        self.backends = Backends(server_config)
        self.server = ThreadFlightServer(self.backends)
        config = RepoConfig.model_construct(project="t", repo_path=root)
        self.engine = RemoteOfflineEngine(RemoteOfflineConfig(**self.server.client_config()), config)

    def cleanup(self) -> None:
        self.engine.close()
        self.server.close()
        self.backends.close()


def _spark_harness(request: pytest.FixtureRequest, tmp_path: Path) -> OfflineHarness:
    request.getfixturevalue("spark_session")
    return SparkHarness(tmp_path)


# variant -> its harness: a new engine in the plugin table needs a line here (test_plugin_harnesses).
OFFLINE_HARNESSES: dict[str, Callable[[pytest.FixtureRequest, Path], OfflineHarness]] = {
    "duckdb": lambda request, tmp_path: DuckDBHarness(tmp_path),
    "remote": lambda request, tmp_path: RemoteHarness(tmp_path),
    "spark": _spark_harness,
    "duckdb-s3": lambda request, tmp_path: ObjectStorageHarness(tmp_path, "s3", request.getfixturevalue("s3_server")),
    "duckdb-gcs": lambda request, tmp_path: ObjectStorageHarness(tmp_path, "gs", request.getfixturevalue("gcs_server")),
    "postgres": lambda request, tmp_path: PostgresHarness(request.getfixturevalue("postgres_url"),
                                                          "t_" + uuid.uuid4().hex[:12]),
}


def make_harness(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> OfflineHarness:
    return harness_for(OFFLINE_HARNESSES, kind, "OFFLINE_HARNESSES in tests/contract/offline_harness.py")(
        request, tmp_path)


@pytest.fixture(params=ENGINES)
def offline(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OfflineHarness]:
    """Each offline engine in turn, with its own scratch space, cleaned up afterwards."""
    harness = make_harness(request.param, request, tmp_path)
    try:
        yield harness
    finally:
        harness.cleanup()


def view(name: str, source: DataSource, keys: list[str], features: dict[str, Any],
         ttl: timedelta = timedelta(0)) -> FeatureView:
    """A feature view over `source` with one entity per join key (entity named after the key)."""
    entities = [Entity(name=k, join_keys=[k]) for k in keys]
    schema = [Field(name=f, dtype=t) for f, t in features.items()]
    return FeatureView(name=name, source=source, entities=entities, schema=schema, ttl=ttl)
