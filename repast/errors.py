"""The one exception tree of repast.

Callers catch precisely: the CLI maps `RepastError` subclasses to exit code 1 with the message,
the HTTP server maps them to 4xx/503 in one place. Messages name the object, the field and the fix.
"""

from __future__ import annotations


class RepastError(Exception):
    """Base of every error repast raises on purpose (a user or environment problem, not a bug)."""


class ConfigError(RepastError):
    """feature_store.yaml is missing, malformed, or has unknown keys / wrong types."""


class DefinitionError(RepastError):
    """A definition in the feature repo is invalid (bad field, unknown reference, duplicate name)."""


class RegistryConflict(RepastError):
    """Another apply changed the registry since this one read it (optimistic version check)."""


class FeatureNotFound(RepastError):
    """A requested view, feature, service or source is not registered."""


class EntityKeyError(RepastError):
    """An entity frame or entity rows lack a join key, or a key has the wrong type."""


class InputError(RepastError):
    """Input data (entity frame, push frame, dates) does not have the required shape or types."""


class TransientError(RepastError):
    """A failure that retrying may cure (a lost connection, a busy server). Materialization retries
    these; every other RepastError is terminal: the input or the setup must change first."""


class StoreUnavailable(TransientError):
    """A backing service (database, Redis) cannot be reached. Transient: retrying may succeed."""


class ObjectStoreError(RepastError):
    """S3 or GCS refused or could not find something: a bucket, a credential, an endpoint. The
    message names the bucket and the setting to check."""


class MissingExtra(RepastError):
    """An optional dependency is not installed; the message carries the pip command to run."""


def require_module(module: str, extra: str) -> None:
    """Raise MissingExtra with the exact install command when `module` cannot be imported."""
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise MissingExtra(
            f"the Python package '{module}' is required for this backend: "
            f'pip install "repast[{extra}]"'
        )
