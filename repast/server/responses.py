"""Response bodies: orjson bytes, Feast's shape for online features."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response


def json_response(data: Any, status_code: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status_code, media_type="application/json")


def online_response_json(response: Any) -> bytes:
    raise NotImplementedError("waiting for repast/online_read.py")
