"""The feature server's spool conversion process: turns sealed spools of the served-feature log into
its Parquet files as they are sealed, so the log is converted without waiting for a reader.

    python -m repast.jobs.convert_served_log     (started by the server; reads log paths on stdin)

Each line on standard input names a log directory with a newly sealed spool; every sealed or
orphaned spool there is converted (`convert_spools(wait=False)`: one another process is converting
is left to it). The directories named so far are looked at again every `RESCAN_SECS`, for spools
left by a writer that died. It runs at the lowest CPU priority, so serving keeps the processors
while the machine is busy, and ends when its standard input closes (the server stopped or died).
"""

from __future__ import annotations

import logging
import os
import select
import sys

from repast.jobs.served_log import convert_spools

RESCAN_SECS = 60.0
_log = logging.getLogger("repast.served_log")


def convert_named(paths: set[str]) -> None:
    for path in sorted(paths):
        try:
            convert_spools(path, wait=False)
        except Exception:  # one broken directory must not stop the others; the next seal retries
            _log.exception("served-feature log: converting the spools under %s failed", path)


def main() -> None:
    os.nice(19)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    known: set[str] = set()
    pending = b""
    stdin = sys.stdin.fileno()
    while True:
        ready, _, _ = select.select([stdin], [], [], RESCAN_SECS)
        named: set[str] = set()
        if ready:
            chunk = os.read(stdin, 65536)
            if not chunk:
                convert_named(known)
                return
            *lines, pending = (pending + chunk).split(b"\n")
            named = {os.fsdecode(line) for line in lines if line}
            known |= named
        convert_named(named or known)


if __name__ == "__main__":
    main()
