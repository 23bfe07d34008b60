"""The floor of benchmarks/serve.py: the least work an answer from the store needs, as a bare ASGI app.

Per request it parses the body with orjson, reads the one entity's row from the benchmark's
SQLite online store with one prepared statement, encodes the row with orjson and answers it. It
checks nothing (no auth, no limits, no key types, no statuses or timestamps, no metrics) and its
answer is not Feast's shape: it measures what Python under uvicorn costs for the store read and the
JSON alone, the part of repast's cost that no serving code can remove.
"""

from __future__ import annotations

import os
import sqlite3
from typing import Any

import orjson

_CONN = sqlite3.connect(os.environ["FLOOR_APP_DB"], isolation_level=None, check_same_thread=False)
_CURSOR = _CONN.cursor()
_SQL = ("SELECT _event_ts, " + ", ".join(f'"f{i}"' for i in range(int(os.environ.get("FLOOR_APP_FEATURES", "10"))))
        + ' FROM "bench_bench" WHERE _entity_key = ?')


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    message = await receive()
    if scope["method"] == "POST":
        key = orjson.loads(message["body"])["entities"]["entity_id"][0]
        body = orjson.dumps([key, _CURSOR.execute(_SQL, (key,)).fetchone()])
    else:  # the harness's readiness check
        body = b"{}"
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
