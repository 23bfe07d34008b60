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


class ObjectStoreUnavailable(StoreUnavailable, ObjectStoreError):
    """S3 or GCS did not answer: connection refused, or no answer within the configured timeout.
    Transient, like every StoreUnavailable (the server answers 503 and serves cached definitions);
    still an ObjectStoreError, so the message names the bucket and the setting to raise."""


class MissingExtra(RepastError):
    """An optional dependency is not installed; the message carries the pip command to run."""


class ThresholdCrossed(RepastError):
    """A monitoring check found drift or skew past a threshold (a pipeline step fails on it)."""


def require_module(module: str, extra: str) -> None:
    """Raise MissingExtra with the exact install command when `module` cannot be imported."""
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise MissingExtra(
            f"the Python package '{module}' is required for this backend: "
            f'pip install "repast[{extra}]"'
        )


# ---- not-found errors per kind of definition ------------------------------------------------------
# Subclasses of FeatureNotFound, so `except FeatureNotFound` keeps catching all of them while a
# caller can catch one kind precisely (as Feast's per-kind exceptions allow).

class FeatureViewNotFound(FeatureNotFound):
    """A feature view (or on-demand / label view) is not registered."""


class EntityNotFound(FeatureNotFound):
    """An entity is not registered."""


class FeatureServiceNotFound(FeatureNotFound):
    """A feature service is not registered."""


class DataSourceNotFound(FeatureNotFound):
    """A data source is not registered."""


class ProjectNotFound(FeatureNotFound):
    """No Project object is registered under that name."""


class SavedDatasetNotFound(FeatureNotFound):
    """A saved dataset is not registered."""


class VersionNotFound(FeatureNotFound):
    """A feature view has no registered version with that number."""


# Feast's exception names, as names for the classes above, so `except` clauses written for Feast
# (`from feast.errors import FeatureViewNotFoundException`) keep working after the import swap.
FeastObjectNotFoundException = FeatureNotFound
FeatureViewNotFoundException = FeatureViewNotFound
OnDemandFeatureViewNotFoundException = FeatureViewNotFound
EntityNotFoundException = EntityNotFound
FeatureServiceNotFoundException = FeatureServiceNotFound
DataSourceNotFoundException = DataSourceNotFound
ProjectNotFoundException = ProjectNotFound
ProjectObjectNotFoundException = ProjectNotFound
SavedDatasetNotFoundException = SavedDatasetNotFound
FeatureNameCollisionError = InputError
RequestDataNotFoundInEntityDfException = InputError
RequestDataNotFoundInEntityRowsException = InputError
EntityTimestampInferenceException = InputError
FeastObjectNotFoundError = FeatureNotFound
FeastError = RepastError
RepoConfigPathDoesNotExist = ConfigError
FeastProviderNotImplementedError = ConfigError
DataSourceNoNameException = DefinitionError


class VectorSearchUnsupported(InputError):
    """The configured online store cannot search vectors (it does not declare the capability)."""


# ---- on the wire: the kind each error has in the feature server's JSON bodies, and back -----------
# (repast.server.errors answers with these; the HTTP clients, repast.Client and the remote registry
# and online store, raise the same classes from them, so a caller catches FeatureNotFound whether it
# talks to the SDK or to a server.)

# exception class -> (HTTP status, error kind). Checked in order: subclasses before bases.
ERROR_TABLE: list[tuple[type[RepastError], int, str]] = [
    (FeatureNotFound, 404, "not_found"),
    (EntityKeyError, 400, "entity_key_error"),
    (InputError, 400, "invalid_input"),
    (DefinitionError, 400, "invalid_definition"),
    (RegistryConflict, 409, "registry_conflict"),
    (StoreUnavailable, 503, "store_unavailable"),
    (ConfigError, 500, "config_error"),
    (MissingExtra, 500, "missing_extra"),
]

# repast's class -> the name of Feast's exception for it (feast.errors), for Feast's error keys.
# Checked in order: subclasses before bases. Anything else is Feast's base class, FeastError.
FEAST_CLASSES: list[tuple[type[Exception], str]] = [
    (FeatureViewNotFound, "FeatureViewNotFoundException"),
    (EntityNotFound, "EntityNotFoundException"),
    (FeatureServiceNotFound, "FeatureServiceNotFoundException"),
    (DataSourceNotFound, "DataSourceNotFoundException"),
    (ProjectNotFound, "ProjectNotFoundException"),
    (SavedDatasetNotFound, "SavedDatasetNotFound"),
    (FeatureNotFound, "FeastObjectNotFoundException"),
]


def exception_for(kind: str, detail: str, status: int) -> Exception:
    """The exception a client raises for an error body: the server's class, by kind (repast's
    body) or by Feast's exception name (Feast's body; `kind` is then that name)."""
    for cls, _, table_kind in ERROR_TABLE:
        if table_kind == kind:
            return cls(detail)
    for feast_cls, name in FEAST_CLASSES:
        if name == kind:
            return feast_cls(detail)
    if status == 404:
        return FeatureNotFound(detail)
    if status in (400, 413, 422):
        return InputError(f"{kind}: {detail}")
    return ServerError(status, kind, detail)


class ServerError(RepastError):
    """The feature server refused a request for a reason with no SDK counterpart (auth, 500, ...)."""

    def __init__(self, status: int, kind: str, detail: str) -> None:
        super().__init__(f"HTTP {status} {kind}: {detail}")
        self.status = status
        self.kind = kind
        self.detail = detail
