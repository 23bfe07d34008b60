"""RepoConfig: feature_store.yaml parsed and validated.

Backends are chosen by `type:`; each backend module declares its own pydantic `Config`, found
through the per-interface tables in `repast.offline` and `repast.online`. `${VAR}` in any string
value is replaced from the environment. Every error names the file and the key.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from repast.errors import ConfigError
from repast.plugins.base_config import (
    BackendConfig,
    PostgresConnectionConfig,
    RegistryConfig,
    StrictModel,
    masked_url,
)
from repast.plugins.table import OFFLINE, ONLINE, PLUGINS, REGISTRY, plugin_class

CONFIG_FILE = "feature_store.yaml"
ENV_CONFIG_PATH = "REPAST_FEATURE_STORE_YAML"
# Where the Kubeflow PodDefault and the Kubernetes manifests mount the configuration Secret.
MOUNTED_CONFIG_PATH = "/etc/repast/feature_store.yaml"
__all__ = ["BackendConfig", "PostgresConnectionConfig", "RegistryConfig", "RepoConfig", "StrictModel", "masked_url"]
_ENV_PATTERN = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class ObjectStorageConfig(StrictModel):
    """Bounds on every S3/GCS request of the offline side (FileSource reads and writes, saved
    datasets, to_parquet); the registry on object storage uses the registry's own timeouts."""

    connect_timeout_seconds: float = Field(default=3, gt=0)
    read_timeout_seconds: float = Field(default=20, gt=0)


class TokenAuthConfig(StrictModel):
    type: Literal["token"] = "token"
    read_tokens: list[SecretStr] = []
    write_tokens: list[SecretStr] = []


class NoAuthConfig(StrictModel):
    type: Literal["no_auth"] = "no_auth"


class FeatureLoggingConfig(StrictModel):
    """Feast's feature_server.feature_logging: logging of served rows for services that ask for it."""

    enabled: bool = True
    flush_interval_secs: float = Field(default=5, gt=0)  # a batch is written at least this often
    write_to_disk_interval_secs: float = Field(default=5, gt=0)  # Feast's name; repast flushes on the one above
    queue_capacity: int = Field(default=10_000, gt=0)  # rows waiting to be written; beyond it, rows are dropped
    emit_timeout_micro_secs: int = Field(default=10_000, ge=0)  # Feast's name; repast never waits to enqueue
    # Sealed spools converted to Parquet by a niced process the server starts; off by default, as it
    # costs the serving machine more CPU per logged response (~35 us) than the logging itself: by
    # default readers (stats, skew, read_feature_log) convert what they read, off the serving pods.
    background_conversion: bool = False


class FeatureServerConfig(StrictModel):
    type: Literal["local", "python"] = "local"  # Feast's key: repast's server is the one kind there is
    auth: TokenAuthConfig | NoAuthConfig = NoAuthConfig()
    max_body_bytes: int = Field(default=10 * 1024 * 1024, gt=0)
    enabled: bool = True
    # Bounds of the serving path; docs/server.md, "Limits and timeouts", says what each protects.
    read_deadline_seconds: float = Field(default=0.8, gt=0)  # with the answer's own time: within 1 s
    max_entity_rows: int = Field(default=10_000, gt=0)
    max_feature_values: int = Field(default=1_000_000, gt=0)  # requested features x entity rows
    header_timeout_seconds: float = Field(default=10.0, gt=0)
    max_header_bytes: int = Field(default=16 * 1024, ge=1024)
    feature_logging: FeatureLoggingConfig = FeatureLoggingConfig()
    # Request fields no documentation names are ignored (as Feast's server does) unless this is true:
    # then they are refused with 400 naming the field (repast/server/schemas.py).
    strict_requests: bool = False


class OfflineServerConfig(StrictModel):
    """Bounds of `repast serve-offline` (no Feast key: Feast's offline server has no such section);
    the command's flags override each. docs/remote.md, "Limits", says what each protects."""

    max_upload_bytes: int = Field(default=1024 * 1024 * 1024, gt=0)  # an entity frame or rows to write, as Arrow
    max_concurrent_requests: int = Field(default=4, gt=0)  # more at once are refused as busy
    batch_rows: int = Field(default=65_536, gt=0)  # rows per streamed batch
    # A client whose upload sends nothing for this long is dropped, freeing its slot.
    idle_timeout_seconds: float = Field(default=60, gt=0)


class BatchEngineConfig(StrictModel):
    """Feast's batch_engine: materialization runs in this process (`local`), the one repast has."""

    type: Literal["local"] = "local"


class MaterializationConfig(StrictModel):
    # Feast's key. repast's online stores keep the latest row per entity, so either value gives
    # the same online state; true also reads only the latest row per entity (what repast always does).
    pull_latest_features: bool = False


class MonitoringConfig(StrictModel):
    """`monitoring:`: how statistics are computed and when drift and skew fail a check
    (docs/monitoring.md). A view's or a field's tags of the same name override a threshold."""

    histogram_bins: int = Field(default=10, ge=2, le=1000)
    top_values: int = Field(default=20, ge=1, le=1000)
    quantiles: list[float] = [0.05, 0.25, 0.5, 0.75, 0.95]
    drift_psi_threshold: float = Field(default=0.2, gt=0)
    # Off by default: over large windows a two-sample test finds any difference significant.
    drift_p_value_threshold: float | None = Field(default=None, gt=0, lt=1)
    skew_mismatch_threshold: float = Field(default=0.0, ge=0, le=1)  # a mismatch rate above it fails
    skew_tolerance: float = Field(default=1e-6, ge=0)  # numeric values this close (relatively) match

    @field_validator("quantiles")
    @classmethod
    def _fractions(cls, v: list[float]) -> list[float]:
        if not v or any(not 0 < x < 1 for x in v):
            raise ValueError(f"quantiles must be a non-empty list of fractions between 0 and 1, got {v}")
        return sorted(set(v))


class RepoConfig(StrictModel):
    """The whole of feature_store.yaml. `repo_path` is where relative paths are resolved."""

    # Defaults go through the validators too: an omitted offline_store is the embedded engine.
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)

    project: str
    registry: RegistryConfig = Field(default_factory=lambda: RegistryConfig(path="data/registry.db"))
    provider: Literal["local"] = "local"
    offline_store: Any = None
    online_store: Any = None
    entity_key_serialization_version: int = Field(default=3, ge=1, le=3)
    feature_server: FeatureServerConfig = FeatureServerConfig()
    offline_server: OfflineServerConfig = OfflineServerConfig()
    batch_engine: BatchEngineConfig = BatchEngineConfig()
    materialization: MaterializationConfig = MaterializationConfig()
    object_storage: ObjectStorageConfig = ObjectStorageConfig()
    monitoring: MonitoringConfig = MonitoringConfig()
    # Feast's key: zone-less entity timestamps are UTC. repast always does this; false would differ.
    coerce_tz_aware: Literal[True] = True
    flags: dict[str, Any] = {}
    repo_path: Path = Path(".")
    _unresolved: dict[str, str] = PrivateAttr(default_factory=dict)  # section -> unset ${VAR} error

    @model_validator(mode="before")
    @classmethod
    def _feast_top_level_auth(cls, data: Any) -> Any:
        """Feast writes `auth: {type: no_auth}` at the top level: it means the server's auth."""
        if not isinstance(data, dict) or "auth" not in data:
            return data
        data = dict(data)
        auth = data.pop("auth")
        server = dict(data.get("feature_server") or {})
        if "auth" in server:
            raise ValueError("auth is given twice: at the top level and under feature_server; keep one")
        kind = auth.get("type") if isinstance(auth, dict) else None
        if kind not in ("no_auth", "token"):
            raise ValueError(f"auth.type {kind!r} is not supported; use no_auth, or type: token with "
                             "read_tokens / write_tokens")
        data["feature_server"] = {**server, "auth": auth}
        return data

    @field_validator("batch_engine", mode="before")
    @classmethod
    def _batch_engine(cls, v: Any) -> Any:
        if isinstance(v, BatchEngineConfig):
            return v
        kind = v.get("type", "local") if isinstance(v, dict) else v
        if kind != "local":
            raise ValueError(f"not supported by repast: batch_engine type {kind!r}; materialization runs in "
                             "this process (type: local)")
        return {"type": "local", **(v if isinstance(v, dict) else {})}

    @field_validator("coerce_tz_aware", mode="before")
    @classmethod
    def _coerce_tz_aware(cls, v: Any) -> Any:
        if v is not True:
            raise ValueError("not supported by repast: coerce_tz_aware: false; repast always reads entity "
                             "timestamps without a zone as UTC (remove the key or set it to true)")
        return v

    @field_validator("project")
    @classmethod
    def _project_name(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_\-]*", v):
            raise ValueError("project must be letters, digits, '_' or '-', starting with a letter or digit")
        if len(v) > 200:  # registry tables hold names of up to 255 characters
            raise ValueError(f"project name is {len(v)} characters long; at most 200 are allowed")
        return v

    @field_validator("registry", mode="before")
    @classmethod
    def _registry(cls, v: Any) -> Any:
        # `registry: data/registry.db` is short for `registry: {path: data/registry.db}`.
        v = {"path": v} if isinstance(v, str) else v
        # An object-storage path means the object-storage registry unless a type is given.
        # (Feast spells it registry_type: file.)
        if isinstance(v, dict) and v.get("registry_type", "file") == "file" \
                and str(v.get("path", "")).startswith(("s3://", "gs://")):
            v = {**v, "registry_type": "object"}
        return v

    @field_validator("registry")
    @classmethod
    def _registry_type(cls, v: RegistryConfig) -> RegistryConfig:
        if v.registry_type not in PLUGINS[REGISTRY]:
            raise ValueError(f"registry_type: unknown type '{v.registry_type}'; known types: "
                             f"{', '.join(sorted(PLUGINS[REGISTRY]))}")
        return v

    @field_validator("offline_store")
    @classmethod
    def _offline(cls, v: Any) -> BackendConfig:
        return _backend_config(v, PLUGINS[OFFLINE], "duckdb", lambda name: plugin_class(OFFLINE, name, object))

    @field_validator("online_store")
    @classmethod
    def _online(cls, v: Any) -> BackendConfig:
        return _backend_config(v, PLUGINS[ONLINE], "sqlite", lambda name: plugin_class(ONLINE, name, object))

    @property
    def registry_config(self) -> RegistryConfig:
        return self.registry

    def require_section(self, section: str) -> None:
        """Raise the ConfigError of an environment variable `section` needs and that is not set."""
        error = self._unresolved.get(section)
        if error is not None:
            raise ConfigError(error)

    def resolve_path(self, path: str) -> str:
        """A path from the config, made absolute against the repo directory."""
        p = Path(path).expanduser()
        return str(p if p.is_absolute() else (self.repo_path / p).resolve())

    def registry_url(self) -> str:
        """An SQLAlchemy URL for the registry: a file path becomes a SQLite URL."""
        path = self.registry_config.path
        if "://" in path:
            return path
        return "sqlite:///" + self.resolve_path(path)


def _backend_config(value: Any, types: dict[str, str], default: str,
                    backend_class: Callable[[str], type]) -> BackendConfig:
    if value is None:
        value = {"type": default}
    if isinstance(value, str):
        value = {"type": value}
    if not isinstance(value, dict):
        raise ValueError(f"must be a mapping with a 'type' key, got {value!r}")
    type_name = value.get("type", default)
    if type_name not in types:
        raise ValueError(f"unknown type '{type_name}'; known types: {', '.join(sorted(types))}")
    config_class = getattr(backend_class(type_name), "Config", None)
    if not (isinstance(config_class, type) and issubclass(config_class, BackendConfig)):
        raise TypeError(f"backend type '{type_name}': its Config is not a BackendConfig")
    return config_class.model_validate({**value, "type": type_name})


def substitute_env(value: Any, source: str) -> Any:
    """Replace `${VAR}` in every string; a variable that is not set is a ConfigError naming it."""
    if isinstance(value, dict):
        return {k: substitute_env(v, source) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute_env(v, source) for v in value]
    if isinstance(value, str):
        def repl(m: re.Match[str]) -> str:
            name = m.group(1)
            if name not in os.environ:
                raise ConfigError(f"{source}: environment variable ${{{name}}} is not set")
            return os.environ[name]
        return _ENV_PATTERN.sub(repl, value)
    return value


def parse_config(data: Any, source: str, repo_path: Path) -> RepoConfig:
    """Validate a parsed YAML document; errors name `source` and the offending key."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping of keys (project, registry, ...), got {type(data).__name__}")
    if "repo_path" in data:
        raise ConfigError(f"{source}: repo_path: unknown key")
    data = _feast_keys(data, source)
    data, unresolved = _substitute_sections(data, source)
    try:
        config = RepoConfig.model_validate({**data, "repo_path": repo_path})
    except ValidationError as e:
        raise ConfigError(_format_validation(e, source)) from None
    config._unresolved = unresolved
    return config


def _feast_keys(data: dict[str, Any], source: str) -> dict[str, Any]:
    """`data` without the keys of Feast's that have no effect here (one warning line each per
    process); a key Feast documents and repast refuses is a ConfigError saying why."""
    from repast.config.feast_surface import NO_EFFECT, REFUSED, SUPPORTED, not_supported, parts, warn_no_effect

    data = dict(data)
    for part in parts("yaml_key").values():
        if part.support == SUPPORTED:
            continue
        section = data if not part.where else data.get(part.where)
        if not isinstance(section, dict) or part.name not in section:
            continue
        where = f"{part.where}.{part.name}" if part.where else part.name
        if part.support == REFUSED:
            raise ConfigError(f"{source}: {where}: {not_supported(part)}")
        if part.support == NO_EFFECT:
            warn_no_effect(part, _log, f"{source}: ")
            section = {k: v for k, v in section.items() if k != part.name}
            if part.where:
                data[part.where] = section
            else:
                data = section
    return data


_log = logging.getLogger("repast.config")


# Sections whose ${VAR}s are resolved where the section is used, so a variable only one command
# needs (the server's tokens, a database password) does not stop every other command.
LAZY_SECTIONS = {"registry": "registry", "offline_store": "offline_store", "online_store": "online_store",
                 "feature_server": "feature_server", "auth": "feature_server"}


def _substitute_sections(data: dict[str, Any], source: str) -> tuple[dict[str, Any], dict[str, str]]:
    """`data` with ${VAR}s replaced; a lazy section with an unset variable is kept as written and its
    error recorded under the section's name (RepoConfig.require_section raises it on use)."""
    resolved: dict[str, Any] = {}
    unresolved: dict[str, str] = {}
    for key, value in data.items():
        try:
            resolved[key] = substitute_env(value, source)
        except ConfigError as e:
            if key not in LAZY_SECTIONS:
                raise
            resolved[key] = value
            unresolved[LAZY_SECTIONS[key]] = f"{e} (needed by {key})"
    return resolved, unresolved


def _format_validation(e: ValidationError, source: str) -> str:
    lines = []
    for err in e.errors():
        loc = ".".join(str(p) for p in err["loc"] if not str(p).startswith(("function-after", "function-")))
        msg = err["msg"].replace("Extra inputs are not permitted", "unknown key")
        msg = msg.replace("Value error, ", "")
        lines.append(f"{source}: {loc or '<top>'}: {msg}")
    return "\n".join(lines)


def load_config(path: str | Path) -> RepoConfig:
    """Read and validate a feature_store.yaml file."""
    path = Path(path)
    if path.is_dir():
        path = path / CONFIG_FILE
    if not path.exists():
        raise ConfigError(f"{path}: not found; run inside a feature repo, pass --repo, or `repast init NAME`")
    from repast.config.yaml_loader import read_yaml

    data = read_yaml(path)
    return parse_config(data, str(path), path.parent.resolve())


def find_config(repo_path: str | Path | None = None) -> tuple[Path, str]:
    """Where the configuration comes from, and why: explicit path, env var, mount, then cwd."""
    if repo_path is not None:
        return Path(repo_path), "repo_path argument"
    env_path = os.environ.get(ENV_CONFIG_PATH)
    if env_path:
        return Path(env_path), f"${ENV_CONFIG_PATH}"
    if Path(MOUNTED_CONFIG_PATH).exists():
        return Path(MOUNTED_CONFIG_PATH), "mounted configuration"
    return Path.cwd(), "current directory"
