"""The app factory each `repast serve --workers N` worker process calls (an entry point: the one
place of the server that builds a FeatureStore, so repast/server/app.py never imports the facade)."""

from __future__ import annotations

import os

from fastapi import FastAPI

from repast.server.app import ENV_SERVE_CONFIG, create_app
from repast.store import FeatureStore


def app_from_env() -> FastAPI:
    return create_app(FeatureStore(repo_path=os.environ[ENV_SERVE_CONFIG]))
