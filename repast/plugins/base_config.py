"""The configuration models backends share, and what a backend reads of the whole repo's
configuration (RepoSettings); the bottom layer every backend module imports.

Kept apart from repast/config/repo_config.py (which looks backends up by `type:`) so that a backend
module never imports, even for type checking, the module that imports it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class RepoSettings(Protocol):
    """What a backend reads of the repo's configuration (repast.config.repo_config.RepoConfig)."""

    @property
    def project(self) -> str: ...

    @property
    def repo_path(self) -> Path: ...

    def resolve_path(self, path: str) -> str:
        """A path from the config, made absolute against the repo directory."""

    def registry_url(self) -> str:
        """An SQLAlchemy URL for the registry: a file path becomes a SQLite URL."""


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BackendConfig(StrictModel):
    """Base of every backend's config: only `type` in common."""

    type: str


class RegistryConfig(StrictModel):
    registry_type: str = "sql"  # a type of the registry plugin table (repast/plugins/table.py)
    # For an s3:// or gs:// path: an S3-compatible server or GCS emulator (path-style addressing).
    endpoint_override: str | None = None
    path: str
    cache_ttl_seconds: float = Field(default=60, ge=0)
    token: SecretStr | None = None
    signing_key: SecretStr | None = None  # HMAC key for stored on-demand functions (repast/definitions/signing.py)
    # A registry that is down or frozen fails a refresh within these bounds; a serving process
    # then keeps serving the definitions it has (see repast.registry.Registry).
    connect_timeout_seconds: float = Field(default=2, gt=0)
    read_timeout_seconds: float = Field(default=5, gt=0)
    lock_timeout_seconds: float = Field(default=30, gt=0)  # SQLite: wait for another process's write


def masked_url(url: str) -> str:
    """`scheme://user:secret@host/...` with the password replaced by `***`, for messages and output."""
    from repast.config.display import masked_url as parsed_and_masked

    return parsed_and_masked(url)


class PostgresConnectionConfig(BackendConfig):
    """Connection settings shared by every PostgreSQL backend, named as Feast's postgres stores
    name them, or one libpq `url` that wins over the fields."""

    url: SecretStr | None = None  # postgresql://user:password@host:port/db
    host: str = "localhost"
    port: int = 5432
    database: str = "postgres"
    db_schema: str = "public"
    user: str = "postgres"
    password: SecretStr | None = None
    sslmode: str | None = None
    sslkey_path: str | None = None
    sslcert_path: str | None = None
    sslrootcert_path: str | None = None

    def conninfo(self) -> str:
        """A libpq connection string (secrets included: never log it)."""
        from psycopg.conninfo import make_conninfo

        if self.url is not None:
            return self.url.get_secret_value().replace("postgresql+psycopg://", "postgresql://")
        params: dict[str, Any] = {"host": self.host, "port": self.port, "dbname": self.database,
                                  "user": self.user, "sslmode": self.sslmode, "sslkey": self.sslkey_path,
                                  "sslcert": self.sslcert_path, "sslrootcert": self.sslrootcert_path}
        if self.password is not None:
            params["password"] = self.password.get_secret_value()
        return make_conninfo(**{k: v for k, v in params.items() if v is not None})
