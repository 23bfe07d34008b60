"""RemoteOnlineStore: online features read through a repast feature server.

    online_store: {type: remote, path: https://features.example, token: ${REPAST_TOKEN}}

For notebooks, pipelines and KServe transformers that should not hold database credentials.
Each read of one view is one `POST /get-online-features` for the requested keys; the server
does the lookup in its own store. Read-only: writes, storage changes and teardown belong to
the server's own configuration and fail here with a message saying so.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field, SecretStr

from repast.errors import EntityKeyError, StoreUnavailable
from repast.online.base import OnlineReader, ReadRow
from repast.online.keys import SEPARATOR, key_types
from repast.plugins.base_config import BackendConfig
from repast.plugins.capabilities import Capabilities
from repast.types.timestamps import as_utc

if TYPE_CHECKING:

    from repast.definitions import FeatureView
    from repast.registry.remote import ServerConnection

NOT_FOUND = "NOT_FOUND"


class RemoteOnlineConfig(BackendConfig):
    type: Literal["remote"] = "remote"
    path: str
    token: SecretStr | None = None
    timeout_seconds: float = Field(default=1.0, gt=0)  # read timeout: a 503 within about a second
    connect_timeout_seconds: float = Field(default=0.5, gt=0)


class RemoteOnlineStore(OnlineReader):
    """A reader only: it has no methods to create storage or write rows."""

    Config = RemoteOnlineConfig
    capabilities: ClassVar[Capabilities] = Capabilities(write=False, read_only_reason=(
        "online_store type 'remote' ({backend.config.path}) is read-only: it cannot {action}. Run this with "
        "the feature server's own feature_store.yaml, or push through the server's /push endpoint"),
        merges_aggregations=True)

    def __init__(self, config: RemoteOnlineConfig, repo_config: Any) -> None:
        super().__init__(config, repo_config)
        self._connection: ServerConnection | None = None

    @property
    def connection(self) -> ServerConnection:
        if self._connection is None:
            from repast.registry.remote import ServerConnection

            token = self.config.token.get_secret_value() if self.config.token else None
            self._connection = ServerConnection(self.config.path, token, self.config.timeout_seconds,
                                                what="remote online store",
                                                connect_timeout=self.config.connect_timeout_seconds)
        return self._connection

    def read(self, project: str, view: FeatureView, keys: Sequence[str], features: Sequence[str]) -> list[ReadRow]:
        if not keys:
            return []
        body = {"features": [f"{view.name}:{f}" for f in features], "entities": _entity_columns(view, keys),
                "full_feature_names": True}
        response = self.connection.request("POST", "/get-online-features", json=body).json()
        return _rows(response, [f"{view.name}__{f}" for f in features], len(keys), self.connection.url)

    def ping(self) -> None:
        self.connection.request("GET", "/ready")

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()


def _entity_columns(view: FeatureView, keys: Sequence[str]) -> dict[str, list[Any]]:
    """The join key values behind serialized entity keys, typed as the view declares them."""
    names = view.join_keys
    parts = [k.split(SEPARATOR) if len(names) > 1 else [k] for k in keys]
    columns: dict[str, list[Any]] = {}
    for i, (name, dtype) in enumerate(zip(names, key_types(view), strict=True)):
        kind = dtype.name if dtype is not None else None
        if kind == "Bytes":
            raise EntityKeyError(f"join key '{name}' of view '{view.name}' is Bytes, which the remote online "
                                 "store cannot send as JSON; read it in-process instead")
        convert = int if kind in ("Int32", "Int64") else str
        columns[name] = [convert(p[i]) for p in parts]
    return columns


def _rows(response: Any, columns: list[str], n: int, url: str) -> list[ReadRow]:
    """Feast's response shape -> per key: None (not stored) or (event_us, *values)."""
    try:
        names = list(response["metadata"]["feature_names"])
        results = response["results"]
        picked = [results[names.index(c)] for c in columns]
    except (KeyError, TypeError, ValueError, IndexError):
        raise StoreUnavailable(f"remote online store {url}: /get-online-features answered without "
                               f"the features {columns}; is this a repast feature server?") from None
    rows: list[ReadRow] = []
    for i in range(n):
        if all(r["statuses"][i] == NOT_FOUND for r in picked):
            values = [r["values"][i] for r in picked]
            # Aggregated features without an event in their windows still carry their counts (0).
            rows.append(None if all(v is None for v in values) else (None, *values))
            continue
        stamps = [r["event_timestamps"][i] for r in picked if r["statuses"][i] != NOT_FOUND]
        rows.append((_epoch_us(stamps[0]), *(r["values"][i] for r in picked)))
    return rows


def _epoch_us(stamp: Any) -> int | None:
    if stamp is None:
        return None
    if isinstance(stamp, int | float):
        return int(stamp * 1_000_000) if stamp < 1e11 else int(stamp)
    return int(as_utc(datetime.fromisoformat(str(stamp))).timestamp() * 1_000_000)
