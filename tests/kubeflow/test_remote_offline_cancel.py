"""The offline server and clients that go away: a client that dies while its join runs cancels the
engine's query (PostgreSQL: pg_stat_activity shows it no more; DuckDB: interrupted) and frees its
slot; a client that stalls mid-upload is dropped after offline_server.idle_timeout_seconds with one
log line naming the key; PostgreSQL results reach the server a block at a time."""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.flight as flight
import pytest
import yaml

from repast.config.repo_config import OfflineServerConfig, parse_config
from repast.errors import StoreUnavailable
from repast.jobs.backends import Backends
from repast.offline import flight_protocol as wire
from repast.store import FeatureStore
from tests.kubeflow.test_remote_offline import FEATURES, entity_frame
from tests.kubeflow.test_remote_offline import server_store as server_store  # a fixture
from tests.offline_server import ThreadFlightServer

MARKER = "repast_issue22_cancel"  # names the test's slow query in pg_stat_activity
DIE_WHILE_RUNNING = """
import sys
from repast.store import FeatureStore
store = FeatureStore(repo_path=sys.argv[1])
print("asking", flush=True)
store.get_historical_features(entity_df=sys.argv[2], features=["stats:rate"]).to_arrow()
"""


def _wait_for(condition: Callable[[], bool], what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def _repos(tmp_path: Path, offline_store: dict[str, Any],
           limits: OfflineServerConfig) -> Iterator[tuple[FeatureStore, Path]]:
    """A server over `offline_store` and a client repo (registry shared, offline_store remote) with
    the view `stats` (driver_id, rate) applied."""
    from repast import Entity, FeatureView, Field
    from repast.types import Float64

    registry = str(tmp_path / "registry.db")
    server_config = parse_config({"project": "t", "registry": registry, "offline_store": offline_store},
                                 "server", tmp_path)
    with ThreadFlightServer(Backends(server_config), limits) as server:
        client_repo = tmp_path / "client"
        client_repo.mkdir()
        (client_repo / "feature_store.yaml").write_text(yaml.safe_dump(
            {"project": "t", "registry": registry, "offline_store": server.client_config()}))
        client = FeatureStore(repo_path=client_repo)
        driver = Entity(name="driver", join_keys=["driver_id"])
        client.apply([driver, FeatureView(name="stats", entities=[driver], schema=[Field(name="rate", dtype=Float64)],
                                          source=_source(offline_store, tmp_path))])
        yield client, client_repo


def _source(offline_store: dict[str, Any], tmp_path: Path) -> Any:
    from repast import FileSource, PostgreSQLSource

    if offline_store["type"] == "postgres":
        return PostgreSQLSource(name="stats", table="stats", timestamp_field="ts")
    return FileSource(name="stats", path=str(tmp_path / "stats.parquet"), timestamp_field="ts")


def _die_while_running(client_repo: Path, entity_sql: str, running: Callable[[], bool]) -> None:
    """A client process that asks for training data and is killed while the server runs its join."""
    proc = subprocess.Popen([sys.executable, "-c", DIE_WHILE_RUNNING, str(client_repo), entity_sql],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "asking"
        _wait_for(running, "the client's join never started on the server")
    finally:
        proc.kill()  # gone without a word, as a notebook kernel that is restarted
        proc.wait(timeout=30)


def _served(client: FeatureStore, entity_sql: str) -> Callable[[], bool]:
    def ask() -> bool:
        try:
            client.get_historical_features(entity_df=entity_sql, features=["stats:rate"]).to_arrow()
            return True
        except StoreUnavailable as e:
            assert "is busy" in str(e)
            return False
    return ask


@pytest.fixture
def postgres_repos(tmp_path: Path, postgres_url: str, unique_name: str) -> Iterator[tuple[FeatureStore, Path]]:
    import psycopg

    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {unique_name}")
        conn.execute(f"CREATE TABLE {unique_name}.stats (driver_id int8, rate float8, ts timestamptz)")
        conn.execute(f"INSERT INTO {unique_name}.stats VALUES (1001, 0.5, now() - interval '1 hour')")
    repos = _repos(tmp_path, {"type": "postgres", "url": postgres_url, "db_schema": unique_name},
                   OfflineServerConfig(max_concurrent_requests=1))
    try:
        yield next(repos)
        with psycopg.connect(postgres_url, autocommit=True) as conn:  # a query left running would hold
            conn.execute("SELECT pg_cancel_backend(pid) FROM pg_stat_activity "  # up the server's shutdown
                         "WHERE query LIKE %s AND pid <> pg_backend_pid()", (f"%{MARKER}%",))
        next(repos, None)
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {unique_name} CASCADE")


def test_a_client_gone_mid_join_cancels_the_postgres_query(postgres_repos: Any, postgres_url: str) -> None:
    import psycopg

    client, client_repo = postgres_repos
    slow = f"SELECT 1001::int8 AS driver_id, now() AS event_timestamp, '{MARKER}' AS m FROM pg_sleep(600)"

    def running_queries() -> int:
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE %s "
                               "AND pid <> pg_backend_pid()", (f"%{MARKER}%",)).fetchone()
        return int(row[0]) if row else 0

    _die_while_running(client_repo, slow, lambda: running_queries() > 0)
    _wait_for(lambda: running_queries() == 0, "the dead client's query still runs in PostgreSQL")
    _wait_for(_served(client, "SELECT 1001::int8 AS driver_id, now() AS event_timestamp"),
              "the dead client's slot was never freed")


def test_a_client_gone_mid_join_interrupts_duckdb(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"driver_id": pa.array([1001], pa.int64()), "rate": [0.5],
                             "ts": pa.array([1_700_000_000_000_000], pa.timestamp("us", "UTC"))}),
                   tmp_path / "stats.parquet")
    # Minutes of work for DuckDB: only an interrupt frees the one slot within the test's patience.
    slow = ("SELECT 1001::BIGINT AS driver_id, now() AS event_timestamp FROM "
            "(SELECT count(*) AS n FROM range(100000000000) AS r(i) WHERE i % 7 = 3) WHERE n > 0")
    for client, client_repo in _repos(tmp_path, {"type": "duckdb"}, OfflineServerConfig(max_concurrent_requests=1)):
        started = time.monotonic()
        _die_while_running(client_repo, slow, lambda start=started: time.monotonic() - start > 3)
        _wait_for(_served(client, "SELECT 1001::BIGINT AS driver_id, now() AS event_timestamp"),
                  "the dead client's DuckDB query still holds the slot")


def test_a_client_gone_mid_join_cancels_the_spark_job_group(tmp_path: Path, spark_session: Any) -> None:
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"driver_id": pa.array([1001], pa.int64()), "rate": [0.5],
                             "ts": pa.array([1_700_000_000_000_000], pa.timestamp("us", "UTC"))}),
                   tmp_path / "stats.parquet")
    context = spark_session.sparkContext
    # Hours of work for local Spark: only a cancelled job group frees the one slot in time.
    slow = ("SELECT CAST(1001 AS BIGINT) AS driver_id, current_timestamp() AS event_timestamp FROM "
            "(SELECT count(*) AS n FROM range(1000000000000) WHERE id % 7 = 3) WHERE n > 0")
    for client, client_repo in _repos(tmp_path, {"type": "spark"}, OfflineServerConfig(max_concurrent_requests=1)):
        _die_while_running(client_repo, slow, lambda: bool(context.statusTracker().getActiveJobsIds()))
        _wait_for(lambda: not context.statusTracker().getActiveJobsIds(), "the dead client's Spark job still runs",
                  seconds=60)
        _wait_for(_served(client, "SELECT CAST(1001 AS BIGINT) AS driver_id, current_timestamp() AS event_timestamp"),
                  "the dead client's slot was never freed", seconds=120)


def test_a_client_stalled_mid_upload_is_dropped_and_logged(server_store: FeatureStore, tmp_path: Path,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    limits = OfflineServerConfig(max_concurrent_requests=1, idle_timeout_seconds=1)
    with ThreadFlightServer(server_store.backends, limits) as one, \
            caplog.at_level(logging.WARNING, logger="repast.offline_server"):
        holder = flight.FlightClient(f"grpc+tcp://127.0.0.1:{one.port}")
        command = wire.encode_command("write_rows", source={"type": "file", "name": "held",
                                                            "path": str(tmp_path / "held"),
                                                            "timestamp_field": "event_timestamp"})
        options = flight.FlightCallOptions(headers=[(b"authorization", b"Bearer w-token")])
        writer, reader = holder.do_exchange(flight.FlightDescriptor.for_command(command), options)
        writer.begin(pa.schema([("a", pa.int64())]))
        writer.write_batch(pa.record_batch([pa.array([1])], names=["a"]))  # then nothing: stalled
        _wait_for(lambda: "idle_timeout_seconds" in caplog.text, "the stalled upload was never dropped")
        assert "sent nothing for 1 s mid-upload" in caplog.text
        with pytest.raises(flight.FlightError):  # the stalled client learns its call is over
            reader.read_all()
        holder.close()
        notebook = FeatureStore(config=parse_config(
            {"project": "sample", "registry": str(server_store.config.repo_path / "data/registry.db"),
             "offline_store": one.client_config(token="r-token")}, "notebook", tmp_path))
        assert notebook.get_historical_features(entity_frame(), FEATURES).to_arrow().num_rows == 6


def test_postgres_results_reach_the_server_a_block_at_a_time(tmp_path: Path, postgres_url: str,
                                                             unique_name: str) -> None:
    """The server holds a bounded part of a result, however slowly its client reads: ~120 MB of
    CSV, far more than Arrow reads ahead (32 blocks of 1 MiB) plus the sockets' buffers, so while
    the reader sits on its first batch PostgreSQL is still sending the rest (were the reader to
    read ahead without a bound, as 8 MiB blocks did, the COPY would be over within the second)."""
    import psycopg
    from psycopg.pq import TransactionStatus

    from repast import Entity, FeatureView, Field, PostgreSQLSource
    from repast.types import String

    rows, width = 60_000, 2_016  # 63 md5 digests a row
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {unique_name}")
        conn.execute(f"CREATE TABLE {unique_name}.stats AS SELECT g::int8 AS driver_id, repeat(md5(g::text), 63) "
                     f"AS notes, now() - interval '1 hour' AS ts FROM generate_series(1, {rows}) g")
    try:
        store = FeatureStore(config=parse_config(
            {"project": "t", "registry": str(tmp_path / "registry.db"),
             "offline_store": {"type": "postgres", "url": postgres_url, "db_schema": unique_name}}, "t", tmp_path))
        driver = Entity(name="driver", join_keys=["driver_id"])
        store.apply([driver, FeatureView(name="stats", entities=[driver], schema=[Field(name="notes", dtype=String)],
                                         source=PostgreSQLSource(name="stats", table="stats", timestamp_field="ts"))])
        entity = f"SELECT driver_id, now() AS event_timestamp FROM {unique_name}.stats"
        job = store.get_historical_features(entity_df=entity, features=["stats:notes"])
        batches = job.to_batches(65_536)  # the offline server's default
        try:
            first = next(batches)
            time.sleep(1)  # time for a reader without a bound to take it all (a bounded one never can)
            assert job._running.pgconn.transaction_status == TransactionStatus.ACTIVE
            received = [first, *batches]
        finally:
            batches.close()  # else the session's lock on the table holds up the DROP below
        assert max(b.num_rows for b in received) <= 65_536
        assert sum(b.num_rows for b in received) == rows  # equal to to_arrow: contract
        assert {len(v) for b in received for v in b.column("notes").to_pylist()} == {width}
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {unique_name} CASCADE")


def test_offline_server_section_bounds_the_server_and_flags_override_it(tmp_path: Path) -> None:
    from repast.cli.offline_command import with_flags
    from repast.errors import ConfigError

    config = parse_config({"project": "t", "offline_server": {"max_concurrent_requests": 2,
                                                              "idle_timeout_seconds": 5}}, "server", tmp_path)
    limits = with_flags(config.offline_server, max_concurrent_requests=7, batch_rows=None)
    assert (limits.max_concurrent_requests, limits.idle_timeout_seconds, limits.batch_rows) == (7, 5, 65_536)
    with pytest.raises(ConfigError, match=r"offline_server\.max_concurent"):
        parse_config({"project": "t", "offline_server": {"max_concurent": 2}}, "server", tmp_path)
