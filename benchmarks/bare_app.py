"""The reference of benchmarks/serve.py: the least an ASGI app under uvicorn can do per request.

It reads the request body and answers a fixed Feast-shaped body (the bytes repast answered for
the first benchmark request, from $BARE_APP_BODY), parsing nothing and reading no store. The gap
between it and repast is what repast spends per request on top of uvicorn.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

BODY = Path(os.environ["BARE_APP_BODY"]).read_bytes()
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    while True:
        message = await receive()
        if not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})
