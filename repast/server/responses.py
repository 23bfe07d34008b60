"""Response bodies as orjson bytes; online features in Feast's shape."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
from starlette.responses import Response

if TYPE_CHECKING:
    from repast.jobs.online_read import OnlineResponse


def json_response(data: Any, status_code: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status_code, media_type="application/json")


def online_response_json(response: OnlineResponse) -> bytes:
    """`{"metadata": {"feature_names"}, "results": [{"values", "statuses", "event_timestamps"}]}`.

    orjson writes NaN and infinities as null, so every body is valid JSON. Values JSON has no type
    for: Decimal as its exact text, bytes (Bytes, PdfBytes, ImageBytes) as base64, as protobuf's JSON.
    """
    return orjson.dumps(response.to_feast_dict(), option=orjson.OPT_SERIALIZE_NUMPY, default=json_value)


def json_value(value: Any) -> Any:
    import base64
    import decimal

    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
