"""The app factory each `repast serve --workers N` worker process calls (an entry point: the one
place of the server that builds a FeatureStore, so repast/server/app.py never imports the facade)."""

from __future__ import annotations

import os

from repast.server.app import ENV_SERVE_CONFIG, create_app
from repast.server.middleware import ServerMiddleware
from repast.server.runner import ENV_NO_FEATURE_LOG, ENV_REGISTRY_TTL, feast_serve_settings
from repast.store import FeatureStore


def app_from_env() -> ServerMiddleware:
    # The app's entry (its outermost layer) itself: uvicorn then calls it without a hop through FastAPI.
    store = FeatureStore(repo_path=os.environ[ENV_SERVE_CONFIG])
    ttl = os.environ.get(ENV_REGISTRY_TTL)
    feast_serve_settings(store.backends, float(ttl) if ttl else None, not os.environ.get(ENV_NO_FEATURE_LOG))
    app = create_app(store.backends)
    app.router.on_shutdown.append(store.close)  # this worker's store: its pools close with the worker
    return app.entry
