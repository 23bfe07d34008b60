"""The web UI: browse, search and check a feature store's registry in a browser (read-only).

`repast ui` or `FeatureStore.serve_ui()` serve it; `create_ui_app(store.backends)` builds the ASGI app. The
pages and the JSON API under /api/v1 are described in docs/ui.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from repast.errors import require_module

if TYPE_CHECKING:
    from repast.jobs.backends import Backends

__all__ = ["DEFAULT_PORT", "create_ui_app", "serve_ui"]

DEFAULT_PORT = 6567
"""`repast ui`'s port: next to the feature server's 6566, and not one a common tool takes (Feast's
`feast ui` uses 8888, which is Jupyter's)."""


def create_ui_app(backends: Backends, root_path: str = "", server_url: str = "http://localhost:6566",
                  registry_ttl_sec: float | None = None) -> Any:
    """The UI's ASGI app for one repo's registry (FeatureStore.backends), every URL under `root_path`. The registry is
    re-checked every `registry_ttl_sec` (default: the registry's cache_ttl_seconds)."""
    for module in ("fastapi", "jinja2", "grandalf"):
        require_module(module, "server")
    from repast.ui.app import create_ui_app as create

    return create(backends, root_path, server_url, registry_ttl_sec)


def serve_ui(backends: Backends, host: str = "127.0.0.1", port: int = DEFAULT_PORT, root_path: str = "",
             server_url: str = "http://localhost:6566", registry_ttl_sec: float | None = None,
             key: str | None = None, cert: str | None = None, access_log: bool = True) -> None:
    """Serve the UI until interrupted; TLS when both `key` and `cert` (PEM files) are given.

    A port out of range, a host this machine cannot listen on, or an address in use raises InputError
    (naming the fix) before anything starts."""
    require_module("uvicorn", "server")
    import uvicorn

    from repast.server.limits import HeaderBounds
    from repast.server.protocol import BoundedApp
    from repast.server.runner import check_address, check_tls, protocol_options

    check_tls(key, cert)
    check_address(host, port)
    app = create_ui_app(backends, root_path, server_url, registry_ttl_sec)
    # The feature server's protocol and header bounds (feature_server.header_timeout_seconds, max_header_bytes).
    bounds = HeaderBounds.from_config(backends.config.feature_server)
    uvicorn.run(BoundedApp(app, bounds), host=host, port=port, access_log=access_log, log_level="info",
                ssl_keyfile=key, ssl_certfile=cert, timeout_graceful_shutdown=5, **protocol_options(bounds.max_bytes))
