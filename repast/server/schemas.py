"""Request bodies of the feature server (Feast's JSON shapes), parsed and checked at the edge.

Bodies are parsed with orjson and validated with these pydantic models by the handlers
themselves, so every refusal has the server's error shape (`{"error", "detail"}`), and the same
models document the endpoints at /docs. Fields Feast clients send that have no effect here
(`allow_registry_cache`, `transform_on_write`) are accepted; unknown fields are refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, TypeVar

import orjson
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, StrictBool, StrictStr, ValidationError, model_validator

from repast.server.errors import invalid_request, malformed_json
from repast.types.timestamps import UTC_US, as_utc

Body = TypeVar("Body", bound="RequestBody")


class RequestBody(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _columns_of_equal_length(columns: dict[str, list[Any]], field: str, what: str) -> None:
    if not columns:
        raise ValueError(f"'{field}' is empty: give at least one column of {what}")
    lengths = {name: len(values) for name, values in columns.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"every list in '{field}' must have the same length; got {lengths}")
    if not next(iter(lengths.values())):
        raise ValueError(f"the lists in '{field}' are empty: give at least one row")


class GetOnlineFeaturesRequest(RequestBody):
    """`features` ("view:feature" references) or `feature_service`, and entity (and request) columns."""

    features: list[StrictStr] | None = None
    feature_service: StrictStr | None = None
    entities: dict[str, list[Any]]
    full_feature_names: StrictBool = False

    @model_validator(mode="after")
    def _check(self) -> GetOnlineFeaturesRequest:
        if (self.features is None) == (self.feature_service is None):
            raise ValueError("give exactly one of 'features' (a list of 'view:feature') or 'feature_service'")
        _columns_of_equal_length(self.entities, "entities", "entity keys")
        return self


class PushRequest(RequestBody):
    push_source_name: StrictStr
    df: dict[str, list[Any]]
    to: Literal["online", "offline", "online_and_offline"] = "online"
    allow_registry_cache: StrictBool = True
    transform_on_write: StrictBool = True

    @model_validator(mode="after")
    def _check(self) -> PushRequest:
        _columns_of_equal_length(self.df, "df", "values")
        return self


class WriteToOnlineStoreRequest(RequestBody):
    feature_view_name: StrictStr
    df: dict[str, list[Any]]
    allow_registry_cache: StrictBool = True
    transform_on_write: StrictBool = True

    @model_validator(mode="after")
    def _check(self) -> WriteToOnlineStoreRequest:
        _columns_of_equal_length(self.df, "df", "values")
        return self


class MaterializeRequest(RequestBody):
    start_ts: datetime
    end_ts: datetime
    feature_views: list[StrictStr] | None = None

    @model_validator(mode="after")
    def _check(self) -> MaterializeRequest:
        if as_utc(self.start_ts) >= as_utc(self.end_ts):
            raise ValueError(f"start_ts ({self.start_ts.isoformat()}) must be before end_ts "
                             f"({self.end_ts.isoformat()})")
        return self


class MaterializeIncrementalRequest(RequestBody):
    end_ts: datetime
    feature_views: list[StrictStr] | None = None


def parse_body(body: bytes, model: type[Body]) -> Body:
    """orjson-parse and validate a request body; ApiError 400 (malformed) or 422 (wrong shape)."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise malformed_json(f"the request body is not valid JSON: {e}") from None
    return _validated(data, model)


_ONLINE_KEYS = frozenset({"features", "feature_service", "entities", "full_feature_names"})


@dataclass(slots=True)
class OnlineRequest:
    """A checked get-online-features body (a plain class: building a pydantic model per request
    cost more than the checks)."""

    features: list[str] | None
    feature_service: str | None
    entities: dict[str, list[Any]]
    full_feature_names: bool
    rows: int  # entity rows (every entity list has this length)


def parse_online_request(body: bytes) -> OnlineRequest:
    """parse_body for the hot endpoint: a well-formed body is checked by hand (a fraction of
    pydantic's cost per request), anything else goes through the model for its exact error."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise malformed_json(f"the request body is not valid JSON: {e}") from None
    if type(data) is dict and data.keys() <= _ONLINE_KEYS:
        features, service = data.get("features"), data.get("feature_service")
        entities, full = data.get("entities"), data.get("full_feature_names", False)
        if ((features is None) != (service is None) and type(full) is bool and type(entities) is dict and entities
                and (service is None or type(service) is str)
                and (features is None or (type(features) is list and set(map(type, features)) <= {str}))
                and set(map(type, entities.values())) == {list}):
            lengths = set(map(len, entities.values()))
            if len(lengths) == 1 and 0 not in lengths:
                return OnlineRequest(features, service, entities, full, lengths.pop())
    req = _validated(data, GetOnlineFeaturesRequest)
    rows = len(next(iter(req.entities.values())))
    return OnlineRequest(req.features, req.feature_service, req.entities, req.full_feature_names, rows)


def _validated(data: Any, model: type[Body]) -> Body:
    if not isinstance(data, dict):
        raise invalid_request(f"the request body must be a JSON object, got {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise invalid_request(describe_validation(e)) from None


def describe_validation(e: ValidationError) -> str:
    parts = []
    for err in e.errors(include_url=False):
        loc = ".".join(str(p) for p in err["loc"])
        msg = err["msg"].removeprefix("Value error, ").replace("Extra inputs are not permitted", "unknown field")
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts)


def request_schema(model: type[RequestBody]) -> dict[str, Any]:
    """The OpenAPI requestBody of an endpoint whose handler parses the body itself."""
    return {"requestBody": {"required": True,
                            "content": {"application/json": {"schema": model.model_json_schema()}}}}


def frame_from_json(df: dict[str, list[Any]], timestamp_columns: list[str]) -> pa.Table:
    """A JSON `{column: [values]}` frame as an Arrow table; `timestamp_columns` parsed to UTC.

    Timestamps may be ISO 8601 strings (a missing zone is UTC) or unix seconds. A column whose
    values cannot form one Arrow type is an InputError naming the column.
    """
    from repast.errors import InputError

    columns: dict[str, pa.Array] = {}
    for name, values in df.items():
        try:
            columns[name] = _timestamps(values) if name in timestamp_columns else pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError, ValueError, TypeError, OverflowError) as e:
            kind = "timestamps (ISO 8601 strings or unix seconds)" if name in timestamp_columns else \
                "values of one type"
            # One line: pandas appends multi-line "You might want to try:" hints to its message.
            reason = str(e).split(" You might want to try")[0].strip().splitlines()[0] if str(e).strip() \
                else type(e).__name__
            raise InputError(f"df column '{name}' must hold {kind}: {reason}") from None
    return pa.table(columns)


def _timestamps(values: list[Any]) -> pa.Array:
    import pandas as pd

    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values if v is not None):
        parsed = pd.to_datetime(pd.Series(values, dtype="float64"), unit="s", utc=True)
    else:
        if not all(isinstance(v, str) for v in values if v is not None):
            raise ValueError("mixed strings and other values")
        parsed = pd.to_datetime(pd.Series(values, dtype="object"), utc=True, format="ISO8601")
    return pa.Array.from_pandas(parsed).cast(UTC_US)
