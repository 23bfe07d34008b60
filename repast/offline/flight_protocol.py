"""The offline server's wire protocol over Arrow Flight, shared by the server and the remote engine.

Every call is one Flight DoExchange. Its descriptor is a command: JSON naming the operation and its
arguments; the client then writes its rows (an entity frame, rows to store) as record batches and
closes its side, and the server answers with record batches (a result) or none.

Operations (`op`):
- `historical`: the point-in-time join; `request` (views with their entities and sources, as the
  registry stores them), `entity` = `table` (rows uploaded), `sql` (a query the server's engine runs)
  or `range` (`start`, `end`). On-demand views never cross the wire: the client runs them.
- `check_historical`: the same arguments (a table entity sent as its schema only): the engine's
  checks of the input, run when the job is made, as locally; answers nothing.
- `read_latest` / `read_range`: one view's rows in [start, end).
- `source_schema`: a source's columns, answered as an empty stream with that schema.
- `write_rows`: append the uploaded rows to a source (needs a write token).

Errors travel as the message `[repast:<kind>] <detail>`, kinds as in repast.errors.ERROR_TABLE (plus
`busy` and `unauthorized`/`forbidden`), so the client raises the class the local SDK raises.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import orjson

from repast.definitions import Entity, FeatureView
from repast.definitions.feature_refs import FeatureRequest, ViewRequest
from repast.definitions.source_types import source_from_dict
from repast.errors import ERROR_TABLE, InputError, RepastError, exception_for

DEFAULT_PORT = 8815
READ_OPS = frozenset({"historical", "check_historical", "read_latest", "read_range", "source_schema"})
WRITE_OPS = frozenset({"write_rows"})
_ERROR = re.compile(r"\[repast:(?P<kind>[a-z_]+)\] (?P<detail>.*?)(?:\. Detail:|\. gRPC client debug|$)", re.S)


def encode_command(op: str, **arguments: Any) -> bytes:
    return orjson.dumps({"op": op, **arguments})


def decode_command(raw: bytes) -> dict[str, Any]:
    try:
        command = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise InputError("offline server: the request command is not JSON") from None
    op = command.get("op") if isinstance(command, dict) else None
    if op not in READ_OPS | WRITE_OPS:
        raise InputError(f"offline server: unknown operation {op!r}")
    checked: dict[str, Any] = command
    return checked


def view_to_wire(view: FeatureView) -> dict[str, Any]:
    return {"view": view.to_dict(), "entities": [e.to_dict() for e in view.entity_objects]}


def view_from_wire(d: dict[str, Any]) -> FeatureView:
    entities = {e["name"]: Entity.from_dict(e) for e in d["entities"]}
    view = FeatureView.from_dict(d["view"], entities)
    view.resolve_entities(entities)
    return view


def request_to_wire(request: FeatureRequest) -> dict[str, Any]:
    """The view part of a request, every read feature (hidden ones too) requested under its full name."""
    return {"views": [{**view_to_wire(vr.view), "name": vr.name, "features": vr.read_features,
                       "join_key_map": vr.join_key_map} for vr in request.views]}


def request_from_wire(d: dict[str, Any]) -> FeatureRequest:
    views = [ViewRequest(view_from_wire(v), str(v["name"]), list(v["features"]), [], dict(v["join_key_map"]))
             for v in d["views"]]
    names = [vr.output_name(f, True) for vr in views for f in vr.features]
    return FeatureRequest(views, [], names, [])


def source_from_wire(d: dict[str, Any]) -> Any:
    return source_from_dict(d)


def time_to_wire(value: datetime) -> str:
    return value.isoformat()


def time_from_wire(value: str) -> datetime:
    return datetime.fromisoformat(value)


def error_message(error: BaseException) -> str:
    """`[repast:<kind>] <detail>` for a repast error (its kind on the wire); other errors are `server_error`."""
    for cls, _, kind in ERROR_TABLE:
        if isinstance(error, cls):
            return f"[repast:{kind}] {error}"
    return f"[repast:server_error] {type(error).__name__}: {error}"


def error_from_message(message: str, where: str) -> Exception:
    """The repast exception a client raises for a server error message (see `error_message`)."""
    from repast.errors import ConfigError, StoreUnavailable

    found = _ERROR.search(message)
    if found is None:
        return StoreUnavailable(f"{where}: {message.strip().splitlines()[0] if message.strip() else 'failed'}")
    kind, detail = found["kind"], found["detail"].strip()
    if kind == "busy":
        return StoreUnavailable(f"{where} is busy: {detail}")
    if kind in ("unauthorized", "forbidden"):
        return ConfigError(f"{where} refused the request ({kind}): {detail}")
    if kind == "server_error":
        return RepastError(f"{where} failed: {detail}")
    return exception_for(kind, detail, 500)
