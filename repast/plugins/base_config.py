"""The configuration models backends share; the bottom layer every backend module imports.

Kept apart from repast/config/repo_config.py (which looks backends up by `type:`) so that a backend module
importing its base config never imports the module that imports it.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, SecretStr


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BackendConfig(StrictModel):
    """Base of every backend's config: only `type` in common."""

    type: str


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
