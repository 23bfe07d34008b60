"""The server's side of the background spool conversion: starts the niced conversion process
(repast/jobs/convert_served_log.py) on the first sealed spool and names each log directory with a
newly sealed spool on its standard input. It never blocks the writer thread: a full pipe drops the
name (the next seal names the directory again, and readers convert what is left), and a process
that died is started again, at most once every RESTART_SECS.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time

RESTART_SECS = 30.0
_log = logging.getLogger("repast.server")


def _child_env() -> dict[str, str]:
    """This process's environment, with the directory repast was imported from first on the path."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # repast/server/..
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": root if not path else root + os.pathsep + path}


class SpoolConversion:
    def __init__(self) -> None:
        self._process: subprocess.Popen[bytes] | None = None
        self._started_at = -RESTART_SECS

    def convert(self, path: str) -> None:
        """Have the spools sealed under the log directory `path` converted (writer thread)."""
        process = self._running()
        if process is None or process.stdin is None or "\n" in path:
            return
        try:
            os.write(process.stdin.fileno(), os.fsencode(path) + b"\n")
        except (BlockingIOError, BrokenPipeError):
            pass

    def _running(self) -> subprocess.Popen[bytes] | None:
        if self._process is not None and self._process.poll() is None:
            return self._process
        if time.monotonic() - self._started_at < RESTART_SECS:
            return None
        self._started_at = time.monotonic()
        try:
            self._process = subprocess.Popen([sys.executable, "-m", "repast.jobs.convert_served_log"],
                                             stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, env=_child_env())
        except OSError as e:
            _log.warning("served-feature log: the spool conversion process did not start (%s); "
                         "spools are converted when the log is read", e)
            self._process = None
            return None
        assert self._process.stdin is not None
        os.set_blocking(self._process.stdin.fileno(), False)
        return self._process

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None and self._process.poll() is None else None

    def close(self, timeout: float = 5.0) -> None:
        """Close its input: it converts what is sealed and ends (waited for up to `timeout` seconds;
        a conversion cut short by the server's end is completed by the next converter or reader)."""
        if self._process is None:
            return
        if self._process.stdin is not None:
            self._process.stdin.close()
        try:
            self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
