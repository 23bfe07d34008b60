"""Bearer-token auth: read tokens may read features, write tokens may do everything.

Configured in feature_store.yaml under `feature_server.auth`. /health and /ready are always
open (probes carry no secrets). A read token may call POST /get-online-features, POST
/retrieve-online-documents and GET /registry, /registry/history and /registry/materializations (what
thin clients, the web UI and the KServe transformer need: definitions and features, nothing that
writes); every other endpoint, /metrics and /docs included, needs a write token.
"""

from __future__ import annotations

import hmac
from enum import Enum

from repast.config.repo_config import FeatureServerConfig, TokenAuthConfig
from repast.server.errors import ApiError

OPEN_PATHS = frozenset({"/health", "/ready"})
READ_ENDPOINTS = frozenset({("POST", "/get-online-features"), ("GET", "/registry"),
                            ("GET", "/registry/history"), ("GET", "/registry/materializations"),
                            ("POST", "/retrieve-online-documents")})


class Access(Enum):
    READ = "read"
    WRITE = "write"


class TokenAuth:
    """Checks the Authorization header of one request; raises ApiError 401/403."""

    def __init__(self, config: TokenAuthConfig) -> None:
        self._read = [t.get_secret_value().encode() for t in config.read_tokens]
        self._write = [t.get_secret_value().encode() for t in config.write_tokens]

    def access_of(self, authorization: bytes | None) -> Access:
        if not authorization:
            raise ApiError(401, "unauthorized", "missing 'Authorization: Bearer <token>' header",
                           {"www-authenticate": "Bearer"})
        scheme, _, token = authorization.partition(b" ")
        token = token.strip()
        if scheme.lower() != b"bearer" or not token:
            raise ApiError(401, "unauthorized", "the Authorization header must be 'Bearer <token>'",
                           {"www-authenticate": "Bearer"})
        # Compare against every token so timing does not reveal which kind matched.
        is_write = any([hmac.compare_digest(token, t) for t in self._write])
        is_read = any([hmac.compare_digest(token, t) for t in self._read])
        if is_write:
            return Access.WRITE
        if is_read:
            return Access.READ
        raise ApiError(401, "unauthorized", "the bearer token is not valid for this server",
                       {"www-authenticate": 'Bearer error="invalid_token"'})

    def check(self, method: str, path: str, authorization: bytes | None) -> None:
        """Allow or raise: 401 without a valid token, 403 with a read token on a write endpoint."""
        if path in OPEN_PATHS:
            return
        access = self.access_of(authorization)
        if access is Access.READ and (method, path) not in READ_ENDPOINTS:
            raise ApiError(403, "forbidden", f"a read token may not call {method} {path}; use a write token")


def auth_from_config(config: FeatureServerConfig) -> TokenAuth | None:
    """The auth checker for this server, or None when auth is off (type: no_auth)."""
    if isinstance(config.auth, TokenAuthConfig):
        return TokenAuth(config.auth)
    return None
