"""`repast.Client`: read and push features through a feature server (repast's or Feast's JSON API).

    client = repast.Client("https://features.example", token=os.environ["REPAST_TOKEN"])
    response = client.get_online_features(["driver_hourly_stats:conv_rate"], [{"driver_id": 1001}])
    response.to_dict()

`get_online_features` returns the same OnlineResponse type as `FeatureStore.get_online_features`,
and a refused request raises the same exception the SDK would (FeatureNotFound, EntityKeyError,
InputError, StoreUnavailable, ...), rebuilt from the server's error body (repast's `{"error",
"detail"}` or Feast's `{"module", "class", "message"}`; a 404 without either is FeatureNotFound).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson

from repast.definitions import FeatureService

if TYPE_CHECKING:
    from repast.jobs.online_read import OnlineResponse
    from repast.registry.remote import ServerConnection


def entity_columns(entity_rows: list[dict[str, Any]] | dict[str, list[Any]]) -> dict[str, list[Any]]:
    """Entity rows (a list of dicts, or a dict of equal-length lists) as the dict of lists Feast sends."""
    if isinstance(entity_rows, dict):
        return {k: list(v) for k, v in entity_rows.items()}
    names: list[str] = []
    for row in entity_rows:
        names += [k for k in row if k not in names]
    return {name: [row.get(name) for row in entity_rows] for name in names}


def frame_columns(df: Any) -> dict[str, list[Any]]:
    """A pandas DataFrame, Arrow table or dict of lists as JSON-ready columns (timestamps as ISO 8601)."""
    import pyarrow as pa

    if isinstance(df, dict):  # pandas Timestamps are datetimes orjson does not serialize: send ISO text
        return {k: [v.isoformat() if isinstance(v, datetime) else v for v in values] for k, values in df.items()}
    table = df if isinstance(df, pa.Table) else pa.Table.from_pandas(df, preserve_index=False)
    return {name: [v.isoformat() if isinstance(v, datetime) else v for v in column.to_pylist()]
            for name, column in zip(table.column_names, table.columns, strict=True)}


class Client:
    """HTTP client of one feature server. `token` is sent as `Authorization: Bearer <token>`."""

    def __init__(self, url: str, token: str | None = None, timeout: float = 10.0) -> None:
        from repast.registry.remote import ServerConnection

        self.url = url.rstrip("/")
        self._connection: ServerConnection = ServerConnection(self.url, token, timeout, what="feature server")

    def _post(self, path: str, body: dict[str, Any]) -> Any:
        response = self._connection.request("POST", path, content=orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY),
                                            headers={"content-type": "application/json"})
        # Feast's server answers a push or write with an empty body; repast's with a small JSON.
        return orjson.loads(response.content) if response.content.strip() else None

    def get_online_features(self, features: list[str] | FeatureService | str,
                            entity_rows: list[dict[str, Any]] | dict[str, list[Any]],
                            full_feature_names: bool = False) -> OnlineResponse:
        """Latest values per entity with statuses and event timestamps, as the SDK returns them.

        `features`: "view:feature" references, a FeatureService, or a feature service's name.
        `entity_rows` carry the join keys and any request data on-demand views need.
        """
        body: dict[str, Any] = {"entities": entity_columns(entity_rows), "full_feature_names": full_feature_names,
                                **_feature_selection(features)}
        from repast.jobs.online_read import OnlineResponse

        return OnlineResponse.from_feast_dict(self._post("/get-online-features", body))

    def push(self, push_source_name: str, df: Any, to: str = "online") -> None:
        """Write rows of a push source: to "online", "offline" or "online_and_offline"."""
        to = getattr(to, "value", to)
        self._post("/push", {"push_source_name": push_source_name, "df": frame_columns(df), "to": str(to).lower()})

    def write_to_online_store(self, feature_view_name: str, df: Any) -> None:
        self._post("/write-to-online-store", {"feature_view_name": feature_view_name, "df": frame_columns(df)})

    def materialize(self, start_date: datetime, end_date: datetime, feature_views: list[str] | None = None) -> None:
        self._post("/materialize", {"start_ts": start_date.isoformat(), "end_ts": end_date.isoformat(),
                                    "feature_views": feature_views})

    def materialize_incremental(self, end_date: datetime, feature_views: list[str] | None = None) -> None:
        self._post("/materialize-incremental", {"end_ts": end_date.isoformat(), "feature_views": feature_views})

    def retrieve_online_documents_v2(self, features: list[str] | FeatureService | str, top_k: int = 10,
                                     query: Any = None, distance_metric: str | None = None,
                                     query_string: str | None = None,
                                     filters: dict[str, Any] | None = None, *, exact: bool = False
                                     ) -> OnlineResponse:
        """The top_k documents nearest to `query` (and/or matching `query_string`), as
        FeatureStore.retrieve_online_documents_v2 returns them: join keys, features, `distance`."""
        body: dict[str, Any] = {"top_k": top_k, "api_version": 2, "query_string": query_string,
                                "distance_metric": distance_metric, "filters": filters,
                                "query": None if query is None else [float(x) for x in query],
                                **_feature_selection(features)}
        if exact:  # only then: Feast's body has no such key
            body["exact"] = True
        from repast.jobs.online_read import OnlineResponse

        return OnlineResponse.from_feast_dict(self._post("/retrieve-online-documents", body))

    def health(self) -> bool:
        return self._connection.request("GET", "/health").status_code == 200

    def close(self) -> None:
        self._connection.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _feature_selection(features: list[str] | FeatureService | str) -> dict[str, Any]:
    """The request body's feature part: a FeatureService (or its name) as `feature_service`,
    otherwise the "view:feature" references as `features`."""
    if isinstance(features, FeatureService):
        return {"feature_service": features.name}
    if isinstance(features, str):
        return {"feature_service": features}
    return {"features": list(features)}
