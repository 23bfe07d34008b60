"""The offline server's watch over one call: a client that goes away cancels the engine's query, and
a client that stalls mid-upload is dropped after the idle timeout.

pyarrow's Flight server gives a handler no way to end its own call: a read of the upload blocks
until the client sends or the connection closes, and `is_cancelled()` must be polled. So a thread
per call polls it; on a stalled upload it shuts the client's TCP connection down (found by the
call's peer address among this process's sockets), which ends the blocked read, and gRPC cancels
the call.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

_log = logging.getLogger("repast.offline_server")
POLL_SECONDS = 0.2


class CallWatch:
    """Polls one call until `stop()`: cancels the running job when the client is gone, drops the
    client when an upload has been idle for `idle_timeout` seconds."""

    def __init__(self, context: Any, idle_timeout: float) -> None:
        self.context = context
        self.idle_timeout = idle_timeout
        self.dropped_idle = False  # the upload was cut for idling: the handler reports it
        self._on_cancel: Callable[[], None] | None = None
        self._uploading_since: float | None = None
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="repast-offline-watch", daemon=True)

    def __enter__(self) -> CallWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()

    def on_cancel(self, cancel: Callable[[], None] | None) -> None:
        """What stops the engine's work for this call (None: nothing running to stop)."""
        with self._lock:
            self._on_cancel = cancel

    def upload_progress(self, active: bool) -> None:
        """A chunk of the upload arrived (active) or the upload ended (not active)."""
        self._uploading_since = time.monotonic() if active else None

    def _run(self) -> None:
        while not self._done.wait(POLL_SECONDS):
            if self.context.is_cancelled():
                with self._lock:
                    cancel = self._on_cancel
                if cancel is not None:
                    _log.info("offline server: client %s went away; cancelling its query", self.context.peer())
                    cancel()
                return
            since = self._uploading_since
            if since is not None and time.monotonic() - since > self.idle_timeout:
                self.dropped_idle = True
                _log.warning("offline server: client %s sent nothing for %g s mid-upload "
                             "(offline_server.idle_timeout_seconds); dropping it",
                             self.context.peer(), self.idle_timeout)
                drop_connection(self.context.peer())
                return


def drop_connection(peer: str) -> bool:
    """Shut down this process's TCP connection to `peer` (gRPC's "ipv4:1.2.3.4:5" or
    "ipv6:[::1]:5"); False when no such socket is found (then the read stays blocked)."""
    kind, _, address = peer.partition(":")
    if kind not in ("ipv4", "ipv6"):
        return False
    host, _, port = address.rpartition(":")
    host = host.strip("[]")
    wanted = {host, f"::ffff:{host}"}
    for name in os.listdir("/proc/self/fd"):
        try:
            if not os.readlink(f"/proc/self/fd/{name}").startswith("socket:"):
                continue
            probe = socket.socket(fileno=os.dup(int(name)))
        except OSError:
            continue
        with probe:  # closes the duplicate only; shutdown reaches the connection itself
            try:
                remote = probe.getpeername()
            except OSError:
                continue
            if isinstance(remote, tuple) and remote[0] in wanted and str(remote[1]) == port:
                probe.shutdown(socket.SHUT_RDWR)
                return True
    return False
