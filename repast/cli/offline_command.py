"""`repast serve-offline` (Feast's `serve_offline`): the offline server, Arrow Flight over the repo's engine."""

from __future__ import annotations

from typing import Any

import typer

from repast.cli.common import open_store, user_errors
from repast.config.repo_config import OfflineServerConfig


@user_errors
def serve_offline(host: str = typer.Option("127.0.0.1", "--host", "-h", help="Address to listen on."),
                  port: int = typer.Option(8815, "--port", "-p", min=1, max=65535, help="Port to listen on."),
                  key: str = typer.Option(None, "--key", "-k", help="TLS private key (PEM); needs --cert."),
                  cert: str = typer.Option(None, "--cert", "-c", help="TLS certificate (PEM); needs --key."),
                  max_upload_mb: int = typer.Option(None, "--max-upload-mb", min=1,
                                                    help="Largest entity frame (or rows to write) a client may "
                                                         "upload, in MB of Arrow (offline_server.max_upload_bytes; "
                                                         "default 1024 MB)."),
                  max_concurrent: int = typer.Option(None, "--max-concurrent", min=1,
                                                     help="Requests run at once; more are refused as busy "
                                                          "(offline_server.max_concurrent_requests; default 4)."),
                  batch_rows: int = typer.Option(None, "--batch-rows", min=1,
                                                 help="Rows per streamed record batch "
                                                      "(offline_server.batch_rows; default 65536)."),
                  idle_timeout: float = typer.Option(None, "--idle-timeout", min=0.1,
                                                     help="Seconds an upload may send nothing before the client "
                                                          "is dropped (offline_server.idle_timeout_seconds; "
                                                          "default 60).")) -> None:
    """Serve the offline store over Arrow Flight: training data for `offline_store: {type: remote}` clients.

    Clients authenticate with the feature server's tokens (feature_server.auth): a read token for
    retrieval, a write token for write_to_offline_store. The bounds come from feature_store.yaml's
    offline_server section; a flag given here overrides its key. See docs/remote.md.
    """
    from repast.server.offline_flight import serve_offline as run

    store = open_store()
    limits = with_flags(store.config.offline_server, max_upload_bytes=max_upload_mb and max_upload_mb * 1024 * 1024,
                        max_concurrent_requests=max_concurrent, batch_rows=batch_rows,
                        idle_timeout_seconds=idle_timeout)
    run(store.backends, host=host, port=port, limits=limits, key=key, cert=cert)


def with_flags(section: OfflineServerConfig, **flags: Any) -> OfflineServerConfig:
    """feature_store.yaml's offline_server section with each flag given (not None) in its place."""
    return section.model_copy(update={k: v for k, v in flags.items() if v is not None})
