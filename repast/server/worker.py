"""The app factory each `repast serve --workers N` worker process calls (an entry point: the one
place of the server that builds a FeatureStore, so repast/server/app.py never imports the facade)."""

from __future__ import annotations

import os

from repast.server.app import ENV_SERVE_CONFIG, create_app
from repast.server.middleware import ServerMiddleware
from repast.store import FeatureStore


def app_from_env() -> ServerMiddleware:
    # The app's entry (its outermost layer) itself: uvicorn then calls it without a hop through FastAPI.
    store = FeatureStore(repo_path=os.environ[ENV_SERVE_CONFIG])
    app = create_app(store.backends)
    app.router.on_shutdown.append(store.close)  # this worker's store: its pools close with the worker
    return app.entry
