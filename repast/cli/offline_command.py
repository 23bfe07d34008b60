"""`repast serve-offline` (Feast's `serve_offline`): the offline server, Arrow Flight over the repo's engine."""

from __future__ import annotations

import typer

from repast.cli.common import open_store, user_errors


@user_errors
def serve_offline(host: str = typer.Option("127.0.0.1", "--host", "-h", help="Address to listen on."),
                  port: int = typer.Option(8815, "--port", "-p", min=1, max=65535, help="Port to listen on."),
                  key: str = typer.Option(None, "--key", "-k", help="TLS private key (PEM); needs --cert."),
                  cert: str = typer.Option(None, "--cert", "-c", help="TLS certificate (PEM); needs --key."),
                  max_upload_mb: int = typer.Option(1024, "--max-upload-mb", min=1,
                                                    help="Largest entity frame (or rows to write) a client may "
                                                         "upload, in MB of Arrow."),
                  max_concurrent: int = typer.Option(4, "--max-concurrent", min=1,
                                                     help="Requests run at once; more are refused as busy."),
                  batch_rows: int = typer.Option(65_536, "--batch-rows", min=1,
                                                 help="Rows per streamed record batch.")) -> None:
    """Serve the offline store over Arrow Flight: training data for `offline_store: {type: remote}` clients.

    Clients authenticate with the feature server's tokens (feature_server.auth): a read token for
    retrieval, a write token for write_to_offline_store. See docs/remote.md.
    """
    from repast.server.offline_flight import OfflineServerLimits
    from repast.server.offline_flight import serve_offline as run

    limits = OfflineServerLimits(max_upload_bytes=max_upload_mb * 1024 * 1024,
                                 max_concurrent_requests=max_concurrent, batch_rows=batch_rows)
    run(open_store().backends, host=host, port=port, limits=limits, key=key, cert=cert)
