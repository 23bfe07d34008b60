"""A real offline server (`repast serve-offline`'s OfflineFlightServer) on a free loopback port, in a thread."""

from __future__ import annotations

import threading
from typing import Any

from repast.config.repo_config import OfflineServerConfig
from repast.jobs.backends import Backends
from repast.server.offline_flight import OfflineFlightServer


class ThreadFlightServer:
    """The offline server over `backends`, serving in a background thread until closed."""

    def __init__(self, backends: Backends, limits: OfflineServerConfig | None = None,
                 tls: tuple[bytes, bytes] | None = None) -> None:
        """`tls`: (certificate, key) as PEM; the server then listens on grpc+tls."""
        location = f"grpc+{'tls' if tls else 'tcp'}://127.0.0.1:0"
        self.server = OfflineFlightServer(backends, location, limits, [tls] if tls else None)
        self.port = int(self.server.port)
        self.thread = threading.Thread(target=self.server.serve, daemon=True)
        self.thread.start()

    def client_config(self, **more: Any) -> dict[str, Any]:
        """The `offline_store:` section of a client of this server."""
        return {"type": "remote", "host": "127.0.0.1", "port": self.port, **more}

    def close(self) -> None:
        self.server.shutdown()
        self.thread.join(timeout=15)

    def __enter__(self) -> ThreadFlightServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
