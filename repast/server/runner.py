"""Run the feature server on uvicorn: one process, or N worker processes sharing the port."""

from __future__ import annotations

import importlib.util
import ipaddress
import logging
import os
import shutil
import socket
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from repast.errors import InputError, require_module

if TYPE_CHECKING:
    from repast.jobs.backends import Backends

log = logging.getLogger("repast.server")


def serve(backends: Backends, host: str = "127.0.0.1", port: int = 6566, workers: int = 1,
          access_log: bool = True, key: str | None = None, cert: str | None = None,
          config_path: str | Path | None = None, keep_alive_timeout: float | None = None,
          registry_ttl_sec: float | None = None, feature_log: bool = True) -> None:
    """Serve one repo's `backends` (FeatureStore.backends) until interrupted. TLS when both `key`
    and `cert` (PEM files) are given.

    With several workers, each process opens its own from `config_path` (the repo directory or
    feature_store.yaml the backends were configured from; default: the repo directory).
    `keep_alive_timeout`: seconds an idle connection stays open (uvicorn's default when None);
    `registry_ttl_sec`: overrides registry.cache_ttl_seconds; `feature_log=False` logs no served rows.
    """
    for module in ("fastapi", "uvicorn", "prometheus_client"):
        require_module(module, "server")
    import uvicorn

    check_tls(key, cert)
    if workers < 1:
        raise InputError(f"--workers must be at least 1, got {workers}")
    check_address(host, port)
    backends.config.require_section("feature_server")
    server_config = backends.config.feature_server
    if host_is_public(host) and server_config.auth.type == "no_auth":
        log.warning("serving on %s without auth: anyone who can reach this address can read and write features; "
                    "configure feature_server.auth (docs/server.md, Auth and TLS) or put an authenticating "
                    "proxy in front", host)
    feast_serve_settings(backends, registry_ttl_sec, feature_log)
    options = {"host": host, "port": port, "access_log": access_log, "ssl_keyfile": key,
               "ssl_certfile": cert, "log_level": "info", "timeout_graceful_shutdown": 5,
               **protocol_options(server_config.max_header_bytes)}
    if keep_alive_timeout is not None:
        options["timeout_keep_alive"] = keep_alive_timeout
    if workers == 1:
        from repast.server.app import create_app

        uvicorn.run(create_app(backends).entry, **options)
        return
    _serve_workers(config_path or backends.config.repo_path, workers, options)


def feast_serve_settings(backends: Backends, registry_ttl_sec: float | None, feature_log: bool) -> None:
    """`feast serve`'s --registry_ttl_sec and --no-feature-log, applied to the served backends (and,
    through the environment, to the stores `--workers` processes open)."""
    if registry_ttl_sec is not None:
        if registry_ttl_sec < 0:
            raise InputError(f"--registry_ttl_sec must not be negative, got {registry_ttl_sec}")
        backends.registry.ttl = registry_ttl_sec
        os.environ[ENV_REGISTRY_TTL] = str(registry_ttl_sec)
    if not feature_log:
        server = backends.config.feature_server
        logging_off = server.feature_logging.model_copy(update={"enabled": False})
        backends.config = backends.config.model_copy(
            update={"feature_server": server.model_copy(update={"feature_logging": logging_off})})
        os.environ[ENV_NO_FEATURE_LOG] = "1"


ENV_REGISTRY_TTL = "REPAST_SERVE_REGISTRY_TTL"
ENV_NO_FEATURE_LOG = "REPAST_SERVE_NO_FEATURE_LOG"


def check_address(host: str, port: int) -> None:
    """Refuse a port out of range, a host that does not resolve and an address in use, before
    anything starts (uvicorn would log 'startup complete' first, or bind a random port)."""
    if not 1 <= port <= 65535:
        raise InputError(f"--port must be between 1 and 65535, got {port}")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as e:
        raise InputError(f"--host '{host}' is not an address this machine can listen on: {e}") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as e:
            raise InputError(f"cannot listen on {host}:{port}: {e.strerror or e}; choose another --port "
                             "or stop what listens there") from None


def host_is_public(host: str) -> bool:
    """Whether `host` listens beyond this machine (any address other than loopback)."""
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host != "localhost"


def protocol_options(max_header_bytes: int) -> dict[str, Any]:
    """uvicorn options for repast's HTTP protocol (repast.server.protocol), which takes its header
    bounds from the served app; without httptools, uvicorn's h11 with its header size bound."""
    if importlib.util.find_spec("httptools") is None:
        return {"http": "h11", "h11_max_incomplete_event_size": max_header_bytes, "ws": "none"}
    from repast.server.protocol import BoundedHttpToolsProtocol

    return {"http": BoundedHttpToolsProtocol, "ws": "none"}


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
