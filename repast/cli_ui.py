"""`repast ui`: serve the web UI for the repo's registry."""

from __future__ import annotations

import typer

from repast.cli import open_store, user_errors


@user_errors
def ui(host: str = typer.Option("127.0.0.1", help="Address to listen on."),
       port: int = typer.Option(8888, help="Port to listen on."),
       root_path: str = typer.Option("", "--root-path", help="URL prefix the UI is served under, e.g. /repast "
                                                            "behind a proxy; every link, asset and API URL uses it."),
       server_url: str = typer.Option("http://localhost:6566", "--server-url",
                                      help="Feature server URL shown in the curl snippets."),
       no_access_log: bool = typer.Option(False, "--no-access-log", help="Do not log every request.")) -> None:
    """Serve the web UI: browse, search, lineage, history, freshness and "try it" (read-only)."""
    from repast.ui import serve_ui

    store = open_store()
    serve_ui(store, host=host, port=port, root_path=root_path, server_url=server_url,
             access_log=not no_access_log)
