"""The HTTP feature server (`repast serve`): `create_app(store.backends)` builds the ASGI app.

Importing this package does not import the web framework, so `repast.client` can share the
error table in `repast.server.errors` without the `server` extra installed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from repast.server.app import create_app

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from repast.server.app import create_app

        return create_app
    raise AttributeError(name)
