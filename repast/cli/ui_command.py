"""`repast ui`: serve the web UI for the repo's registry (Feast's `feast ui` options accepted)."""

from __future__ import annotations

import typer

from repast.cli.common import open_store, user_errors


@user_errors
def ui(host: str = typer.Option("127.0.0.1", "--host", "-h", help="Address to listen on."),
       port: int = typer.Option(6567, "--port", "-p", help="Port to listen on (default 6567; Feast's 8888 is "
                                                         "Jupyter's)."),
       registry_ttl_sec: float = typer.Option(None, "--registry-ttl-sec", "--registry_ttl_sec", "-r",
                                              help="Seconds between registry checks (default: the "
                                                   "registry's cache_ttl_seconds)."),
       root_path: str = typer.Option("", "--root-path", "--root_path",
                                     help="URL prefix the UI is served under, e.g. /repast behind a proxy; "
                                          "every link, asset and API URL uses it."),
       server_url: str = typer.Option("http://localhost:6566", "--server-url",
                                      help="Feature server URL shown in the curl snippets."),
       key: str = typer.Option(None, "--key", "-k", help="TLS private key (PEM); needs --cert."),
       cert: str = typer.Option(None, "--cert", "-c", help="TLS certificate (PEM); needs --key."),
       no_access_log: bool = typer.Option(False, "--no-access-log", help="Do not log every request.")) -> None:
    """Serve the web UI: browse, search, lineage, history, freshness and "try it" (read-only)."""
    from repast.ui import serve_ui

    if registry_ttl_sec is not None and registry_ttl_sec < 0:
        from repast.errors import InputError

        raise InputError(f"--registry-ttl-sec must not be negative, got {registry_ttl_sec}")
    store = open_store()
    serve_ui(store.backends, host=host, port=port, root_path=root_path, server_url=server_url,
             registry_ttl_sec=registry_ttl_sec, key=key, cert=cert, access_log=not no_access_log)
