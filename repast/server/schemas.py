"""Request bodies of the feature server (Feast's JSON shapes), parsed and checked at the edge.

Bodies are parsed with orjson and validated with these pydantic models by the handlers
themselves, so every refusal has the server's error shape, and the same models document the
endpoints at /docs. Every field of Feast's documentation is answered as the table in
repast/config/feast_surface.py says (fields with no effect here are accepted with one warning
line). A field nobody documents is ignored, as Feast's server does (newer Feast clients send new
ones): it is named in the parsed request's `ignored` fields (the X-Repast-Ignored-Fields header)
and in one log line per field, or refused with 400 under `feature_server.strict_requests: true`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, TypeVar

import orjson
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, PrivateAttr, StrictBool, StrictStr, ValidationError, model_validator

from repast.config.feast_surface import NO_EFFECT, REFUSED, not_supported, parts, warn_no_effect
from repast.server.errors import ApiError, invalid_request, malformed_json
from repast.types.timestamps import UTC_US, as_utc

Body = TypeVar("Body", bound="RequestBody")


log = logging.getLogger("repast.server")
IGNORED_FIELDS_HEADER = "x-repast-ignored-fields"


class RequestBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    _ignored: tuple[str, ...] = PrivateAttr(default=())

    @property
    def ignored_fields(self) -> tuple[str, ...]:
        """Fields of the body that no documentation names, ignored (see the module docstring)."""
        return self._ignored


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
    include_feature_view_version_metadata: StrictBool = False  # Feast's; no effect here

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
    # Feast's: true materializes rows that have no event time, stamped now. repast's views always
    # have an event time column, so only false (the default) is accepted.
    disable_event_timestamp: StrictBool = False

    @model_validator(mode="after")
    def _check(self) -> MaterializeRequest:
        if self.disable_event_timestamp:
            raise ValueError("not supported by repast: disable_event_timestamp: true; every repast feature view "
                             "reads an event time column, so give start_ts and end_ts instead")
        if as_utc(self.start_ts) >= as_utc(self.end_ts):
            raise ValueError(f"start_ts ({self.start_ts.isoformat()}) must be before end_ts "
                             f"({self.end_ts.isoformat()})")
        return self


class MaterializeIncrementalRequest(RequestBody):
    end_ts: datetime
    feature_views: list[StrictStr] | None = None


def parse_body(body: bytes, model: type[Body], strict: bool = False, path: str = "") -> Body:
    """orjson-parse and validate a request body; ApiError 400 (malformed) or 422 (wrong shape).
    `strict`: refuse fields no documentation names instead of ignoring them (module docstring)."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise malformed_json(f"the request body is not valid JSON: {e}") from None
    return _validated(data, model, strict, path or _PATHS.get(model, ""))


_ONLINE_KEYS = frozenset({"features", "feature_service", "entities", "full_feature_names",
                          "include_feature_view_version_metadata"})
_VERSION_METADATA = parts("request_field", "/get-online-features")["include_feature_view_version_metadata"]


@dataclass(slots=True)
class OnlineRequest:
    """A checked get-online-features body (a plain class: building a pydantic model per request
    cost more than the checks)."""

    features: list[str] | None
    feature_service: str | None
    entities: dict[str, list[Any]]
    full_feature_names: bool
    rows: int  # entity rows (every entity list has this length)
    ignored: tuple[str, ...] = field(default=())  # fields ignored (module docstring)


def parse_online_request(body: bytes, strict: bool = False) -> OnlineRequest:
    """parse_body for the hot endpoint: a well-formed body is checked by hand (a fraction of
    pydantic's cost per request), anything else goes through the model for its exact error."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise malformed_json(f"the request body is not valid JSON: {e}") from None
    if type(data) is dict and data.keys() <= _ONLINE_KEYS:
        features, service = data.get("features"), data.get("feature_service")
        entities, full = data.get("entities"), data.get("full_feature_names", False)
        if "include_feature_view_version_metadata" in data:  # Feast's remote online store sends it
            if type(data["include_feature_view_version_metadata"]) is not bool:
                return _slow_online_request(data, strict)
            warn_no_effect(_VERSION_METADATA, log, "/get-online-features: ")
        if ((features is None) != (service is None) and type(full) is bool and type(entities) is dict and entities
                and (service is None or type(service) is str)
                and (features is None or (type(features) is list and set(map(type, features)) <= {str}))
                and set(map(type, entities.values())) == {list}):
            lengths = set(map(len, entities.values()))
            if len(lengths) == 1 and 0 not in lengths:
                return OnlineRequest(features, service, entities, full, lengths.pop())
    return _slow_online_request(data, strict)


def _slow_online_request(data: Any, strict: bool) -> OnlineRequest:
    req = _validated(data, GetOnlineFeaturesRequest, strict, "/get-online-features")
    rows = len(next(iter(req.entities.values())))
    return OnlineRequest(req.features, req.feature_service, req.entities, req.full_feature_names, rows,
                         req.ignored_fields)


_PATHS: dict[type[RequestBody], str] = {GetOnlineFeaturesRequest: "/get-online-features", PushRequest: "/push",
                                        WriteToOnlineStoreRequest: "/write-to-online-store",
                                        MaterializeRequest: "/materialize",
                                        MaterializeIncrementalRequest: "/materialize-incremental"}
_logged_ignored: set[tuple[str, str]] = set()


def _validated(data: Any, model: type[Body], strict: bool = False, path: str = "") -> Body:
    if not isinstance(data, dict):
        raise invalid_request(f"the request body must be a JSON object, got {type(data).__name__}")
    data, ignored = _feast_fields(data, model, strict, path)
    try:
        req = model.model_validate(data)
    except ValidationError as e:
        raise invalid_request(describe_validation(e)) from None
    req._ignored = ignored
    return req


def _feast_fields(data: dict[str, Any], model: type[RequestBody], strict: bool,
                  path: str) -> tuple[dict[str, Any], tuple[str, ...]]:
    """`data` without the fields to ignore, and their names; Feast's fields as the table says."""
    documented = parts("request_field", path) if path else {}
    for name in data.keys() & documented.keys():
        part = documented[name]
        if part.support == REFUSED:
            raise ApiError(400, "not_supported", f"{path}: {not_supported(part)}")
        if part.support == NO_EFFECT:
            warn_no_effect(part, log, f"{path}: ")
    unknown = tuple(name for name in data if name not in model.model_fields)
    if not unknown:
        return data, ()
    if strict:
        raise ApiError(400, "unknown_field", f"{path or 'request'}: unknown field(s) {', '.join(unknown)} "
                       "(feature_server.strict_requests is true; without it they are ignored)")
    for name in unknown:
        if (path, name) not in _logged_ignored:
            _logged_ignored.add((path, name))
            log.warning("%s: ignored request field '%s': repast does not know it (Feast's server ignores unknown "
                        "fields too); feature_server.strict_requests: true refuses such requests", path, name)
    return {k: v for k, v in data.items() if k not in unknown}, unknown


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
