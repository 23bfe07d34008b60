"""A PostgreSQL server of the test's own, on a free port, that a test may stop, freeze and restart.

The shared servers (REPAST_TEST_POSTGRES, REPAST_TEST_REDIS) are never stopped or frozen by a test;
outage tests start their own. initdb refuses to run as root, so as root the cluster belongs to the
`postgres` user. Without the PostgreSQL server binaries the test is skipped (failed in CI, where
.ci/run sets REPAST_TEST_POSTGRES).
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.e2e.test_server_harness import free_port


def _binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def _unavailable(message: str) -> None:
    if os.environ.get("REPAST_TEST_POSTGRES"):
        pytest.fail(message)
    pytest.skip(message)


class PostgresProcess:
    """`postgres` on 127.0.0.1:<free port>, trust auth, database `postgres`, user `postgres`."""

    def __init__(self) -> None:
        self.port = free_port()
        self.directory = Path(tempfile.mkdtemp(prefix="repast-pg-"))
        self.proc: subprocess.Popen[bytes] | None = None
        self._as_user: list[str] = []
        initdb, postgres = _binary("initdb"), _binary("postgres")
        if initdb is None or postgres is None:
            _unavailable("the PostgreSQL server binaries (initdb, postgres) are not installed "
                         "(Debian: postgresql)")
        assert initdb is not None and postgres is not None
        self._postgres = postgres
        if os.geteuid() == 0:
            shutil.chown(self.directory, "postgres")
            self._as_user = ["runuser", "-u", "postgres", "--"]
        result = subprocess.run([*self._as_user, initdb, "-D", str(self.directory / "data"), "-U", "postgres",
                                 "-A", "trust", "--no-sync"], capture_output=True, text=True)
        if result.returncode != 0:
            _unavailable(f"initdb failed: {result.stderr.strip()[-500:]}")

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> PostgresProcess:
        self.proc = subprocess.Popen(
            [*self._as_user, self._postgres, "-D", str(self.directory / "data"), "-p", str(self.port),
             "-k", str(self.directory), "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        import psycopg

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                psycopg.connect(self.url, connect_timeout=2).close()
                return self
            except psycopg.OperationalError:
                time.sleep(0.1)
        raise RuntimeError(f"postgres did not start on port {self.port}")

    def _pids(self) -> list[int]:
        """The postmaster and its backends (as root, runuser sits in between and forwards nothing)."""
        try:
            postmaster = int((self.directory / "data" / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return []
        children = subprocess.run(["pgrep", "-P", str(postmaster)], capture_output=True, text=True).stdout
        return [postmaster, *map(int, children.split())]

    def _signal(self, sig: int) -> None:
        for pid in self._pids():
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass

    def stop(self) -> None:
        """A fast shutdown: connections are closed, the port refuses new ones."""
        if self.proc is not None and self.proc.poll() is None:
            self.resume()
            pids = self._pids()
            if pids:
                os.kill(pids[0], signal.SIGINT)
            self.proc.wait(timeout=30)
        self.proc = None

    def freeze(self) -> None:
        """SIGSTOP the server and its backends: connections stay open and nothing answers."""
        self._signal(signal.SIGSTOP)

    def resume(self) -> None:
        self._signal(signal.SIGCONT)
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)  # runuser stops itself when its child is stopped

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)
