"""Run the feature server on uvicorn: one process, or N worker processes sharing the port."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from repast.errors import InputError, require_module

if TYPE_CHECKING:
    from repast.store import FeatureStore


def serve(store: FeatureStore, host: str = "127.0.0.1", port: int = 6566, workers: int = 1,
          access_log: bool = True, key: str | None = None, cert: str | None = None,
          config_path: str | Path | None = None) -> None:
    """Serve `store` until interrupted. TLS when both `key` and `cert` (PEM files) are given.

    With several workers, each process opens its own store from `config_path` (the repo
    directory or feature_store.yaml that `store` was opened from; default: its repo directory).
    """
    for module in ("fastapi", "uvicorn", "prometheus_client"):
        require_module(module, "server")
    import uvicorn

    check_tls(key, cert)
    if workers < 1:
        raise InputError(f"--workers must be at least 1, got {workers}")
    options = {"host": host, "port": port, "access_log": access_log, "ssl_keyfile": key,
               "ssl_certfile": cert, "log_level": "info", "timeout_graceful_shutdown": 5}
    if workers == 1:
        from repast.server.app import create_app

        uvicorn.run(create_app(store), **options)  # type: ignore[arg-type]
        return
    _serve_workers(config_path or store.repo_path, workers, options)


def _serve_workers(config_path: str | Path, workers: int, options: dict[str, object]) -> None:
    import uvicorn

    from repast.server.app import ENV_SERVE_CONFIG

    # Workers are fresh processes: they find the config and a shared metrics directory here.
    os.environ[ENV_SERVE_CONFIG] = str(Path(config_path).resolve())
    metrics_dir = tempfile.mkdtemp(prefix="repast-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    try:
        uvicorn.run("repast.server.worker:app_from_env", factory=True, workers=workers,
                    **options)  # type: ignore[arg-type]
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)


def check_tls(key: str | None, cert: str | None) -> None:
    """Both PEM files or neither, and each must exist (InputError otherwise)."""
    if (key is None) != (cert is None):
        raise InputError("TLS needs both --key and --cert (PEM files), or neither")
    for path in (key, cert):
        if path is not None and not Path(path).is_file():
            raise InputError(f"TLS file '{path}' does not exist")
