"""RemoteRegistryStore: definitions read through a feature server, for clients without database access.

    registry: {registry_type: remote, path: https://features.example, token: ${REPAST_TOKEN}}

Reads `GET /registry` with If-None-Match, so an unchanged registry costs one 304 with no body.
Read-only: apply, teardown and materialization records need the server's own configuration,
and fail here with a message saying so. History and watermarks are read through the server
(GET /registry/history, /registry/materializations). `ServerConnection` is the HTTP plumbing shared with
the remote online store and repast.Client.
"""

from __future__ import annotations

import threading
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

import orjson

from repast.errors import ConfigError, FeatureNotFound, StoreUnavailable, require_module
from repast.plugins.capabilities import Capabilities, write_refused
from repast.registry.base import (
    Change,
    HistoryEntry,
    MaterializationRecord,
    MaterializationRun,
    RegistryStore,
    Snapshot,
)

if TYPE_CHECKING:
    import httpx

    from repast.plugins.base_config import RegistryConfig, RepoSettings


class ServerConnection:
    """HTTP to one feature server: bearer token, timeouts, and server errors as repast exceptions."""

    def __init__(self, url: str, token: str | None = None, timeout: float = 10.0, what: str = "feature server",
                 connect_timeout: float | None = None) -> None:
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"{what} path '{url}' must be an http:// or https:// URL of a repast feature server")
        require_module("httpx", "server")
        self.url = url.rstrip("/")
        self.what = what
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._timeout = timeout
        self._connect_timeout = connect_timeout if connect_timeout is not None else timeout
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()

    def _http(self) -> httpx.Client:
        import httpx

        with self._lock:
            if self._client is None:
                timeout = httpx.Timeout(self._timeout, connect=self._connect_timeout)
                self._client = httpx.Client(base_url=self.url, headers=self._headers, timeout=timeout)
            return self._client

    def request(self, method: str, path: str, ok: tuple[int, ...] = (200,), **kwargs: Any) -> httpx.Response:
        """Send a request; a status outside `ok` raises the exception the server's error body names."""
        import httpx

        try:
            response = self._http().request(method, path, **kwargs)
        except httpx.TransportError as e:
            raise StoreUnavailable(f"{self.what} at {self.url} cannot be reached: {e}") from None
        if response.status_code in ok:
            return response
        raise self._error(response)

    def _error(self, response: httpx.Response) -> Exception:
        from repast.errors import exception_for

        try:
            body = response.json()
            if isinstance(body, str):  # Feast may send its error body as a JSON-encoded string
                body = orjson.loads(body)
            if "error" in body:  # repast's error body
                kind, detail = str(body["error"]), str(body["detail"])
            elif "class" in body:  # Feast's: {"module", "class", "message"}
                kind, detail = str(body["class"]), str(body.get("message", ""))
            else:  # FastAPI's (what Feast's server answers for other failures): {"detail"}
                kind, detail = "http_error", str(body["detail"])
        except (ValueError, KeyError, TypeError, orjson.JSONDecodeError):
            kind, detail = "http_error", response.text[:200] or response.reason_phrase
        if response.status_code in (502, 503, 504):
            return StoreUnavailable(f"{self.what} at {self.url} answered {response.status_code}: {detail}")
        return exception_for(kind, f"{self.what} {self.url}: {detail}", response.status_code)

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None


class RemoteRegistryStore(RegistryStore):
    """Definitions of a project as the feature server at `path` sees them (read-only)."""

    capabilities: ClassVar[Capabilities] = Capabilities(write=False, read_only_reason=(
        "registry_type 'remote' ({backend.connection.url}) is read-only: it cannot {action}. "
        "Run this with the feature server's own feature_store.yaml (a registry database path), "
        "e.g. in a pipeline step or the materialization CronJob"))

    def __init__(self, config: RegistryConfig, repo_config: RepoSettings) -> None:
        token = config.token.get_secret_value() if config.token else None
        self.connection = ServerConnection(server_url(config.path), token, config.read_timeout_seconds,
                                           what="remote registry", connect_timeout=config.connect_timeout_seconds)
        self._lock = threading.Lock()
        self._cached: dict[str, tuple[str, Snapshot]] = {}  # project -> (ETag, snapshot)

    def close(self) -> None:
        self.connection.close()

    def read(self, project: str) -> Snapshot:
        """The project's definitions; re-downloaded only when the server's ETag changed."""
        with self._lock:
            cached = self._cached.get(project)
        headers = {"If-None-Match": cached[0]} if cached else {}
        response = self.connection.request("GET", "/registry", ok=(200, 304), params={"project": project},
                                           headers=headers)
        if response.status_code == 304 and cached:
            return cached[1]
        snapshot = _snapshot_from_json(response.json(), self.connection.url)
        with self._lock:
            self._cached[project] = (response.headers.get("etag", ""), snapshot)
        return snapshot

    def version(self, project: str) -> int:
        return self.read(project).version

    def apply(self, project: str, changes: list[Change], expected_version: int, applied_by: str) -> int:
        raise write_refused(self, "apply definitions")

    def history(self, project: str, limit: int = 50) -> list[HistoryEntry]:
        """Past applies as the server's registry records them (GET /registry/history)."""
        body = self._get_json("/registry/history", {"project": project, "limit": limit}, "list the apply history")
        return [HistoryEntry(int(e["version"]), datetime.fromisoformat(e["applied_at"]), str(e["applied_by"]),
                             list(e["changes"]), dict(e.get("specs") or {})) for e in body["items"]]

    def record_materialization(self, project: str, view: str, start: datetime, end: datetime,
                               storage: str = "") -> None:
        raise write_refused(self, "materialize")

    def materializations(self, project: str) -> dict[str, MaterializationRecord]:
        """Watermarks as the server's registry records them (GET /registry/materializations)."""
        body = self._get_json("/registry/materializations", {"project": project}, "read materialization watermarks")
        return {v: MaterializationRecord(v, datetime.fromisoformat(m["start"]), datetime.fromisoformat(m["end"]),
                                         datetime.fromisoformat(m["recorded_at"]))
                for v, m in body["watermarks"].items()}

    def last_runs(self, project: str) -> dict[str, MaterializationRun]:
        body = self._get_json("/registry/materializations", {"project": project}, "read materialization runs")
        return {v: MaterializationRun(v, datetime.fromisoformat(r["start"]), datetime.fromisoformat(r["end"]),
                                      datetime.fromisoformat(r["finished_at"]), int(r["rows"]))
                for v, r in body["runs"].items()}

    def _get_json(self, path: str, params: dict[str, Any], action: str) -> Any:
        """GET a read-only registry route; a server too old to have it is a ConfigError naming it."""
        try:
            return self.connection.request("GET", path, params=params).json()
        except FeatureNotFound as e:
            if "no endpoint" not in str(e):
                raise
            raise ConfigError(f"registry_type 'remote' ({self.connection.url}) cannot {action}: the feature "
                              f"server does not serve GET {path} (it runs an older repast)") from None

    def delete_project(self, project: str) -> None:
        raise write_refused(self, "tear down the project")


def server_url(path: str) -> str:
    """The feature server's URL: Feast's `host:port` (no scheme, as Feast's operator writes it) means
    http://host:port; anything else is kept (and checked by ServerConnection)."""
    host, sep, port = path.rpartition(":")
    if "://" not in path and sep and host and "/" not in host and port.isdigit():
        return f"http://{path}"
    return path


def _snapshot_from_json(body: Any, url: str) -> Snapshot:
    try:
        return Snapshot(int(body["version"]), {str(kind): dict(specs) for kind, specs in body["specs"].items()})
    except (KeyError, TypeError, ValueError, AttributeError):
        raise StoreUnavailable(f"remote registry {url}: GET /registry did not return "
                               "{version, specs}; is this a repast feature server?") from None
