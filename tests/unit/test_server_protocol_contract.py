"""repast.server.protocol subclasses uvicorn's HttpToolsProtocol, which is not a public API: every
inherited name it uses must exist with the signature it relies on. pyproject.toml pins uvicorn to
the minor version this passes on; a new uvicorn is taken by moving the pin once this passes."""

from __future__ import annotations

import asyncio
import inspect

import pytest

pytest.importorskip("httptools")

from uvicorn.config import Config  # noqa: E402
from uvicorn.protocols.http.flow_control import FlowControl  # noqa: E402
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol, RequestResponseCycle  # noqa: E402
from uvicorn.server import ServerState  # noqa: E402

from repast.server.protocol import BoundedHttpToolsProtocol  # noqa: E402

# method -> its parameters after self, as the subclass calls or overrides it
METHODS = {
    "__init__": ["config", "server_state", "app_state", "_loop"],
    "connection_made": ["transport"],
    "connection_lost": ["exc"],
    "data_received": ["data"],
    "on_message_begin": [],
    "on_headers_complete": [],
    "on_body": ["body"],
    "on_message_complete": [],
    "on_response_complete": [],
    "shutdown": [],
    "send_400_response": ["msg"],
    "_unset_keepalive_if_required": [],
    "_should_upgrade": [],
}
# attributes the subclass reads or sets on a protocol made for a connection
ATTRIBUTES = ["app", "loop", "parser", "logger", "access_log", "root_path", "server_state", "tasks",
              "timeout_keep_alive", "transport", "flow", "client", "url", "headers", "expect_100_continue", "cycle",
              "pipeline"]


@pytest.mark.parametrize("name", METHODS)
def test_every_inherited_method_used_exists_with_its_parameters(name: str) -> None:
    method = getattr(HttpToolsProtocol, name)
    assert list(inspect.signature(method).parameters)[1:] == METHODS[name]


def test_every_inherited_attribute_used_is_set_by_uvicorn() -> None:
    async def app(scope: object, receive: object, send: object) -> None:
        return None

    async def make() -> HttpToolsProtocol:
        config = Config(app=app, http=BoundedHttpToolsProtocol, ws="none")
        protocol = BoundedHttpToolsProtocol(config=config, server_state=ServerState(), app_state={})
        protocol.url, protocol.headers = b"", []  # set per request by on_message_begin / the parser
        return protocol

    protocol = asyncio.run(make())
    missing = [a for a in ATTRIBUTES if a not in vars(protocol)]
    assert missing == []
    assert set(vars(protocol.server_state)) >= {"total_requests", "default_headers", "tasks", "connections"}


def test_the_cycle_flow_control_and_status_lines_have_what_the_subclass_uses() -> None:
    cycle_init = inspect.signature(RequestResponseCycle.__init__).parameters
    assert {"keep_alive", "on_response"} <= set(cycle_init)
    assert "response_complete" in inspect.getsource(RequestResponseCycle.__init__)
    assert {"pause_reading", "resume_reading"} <= set(vars(FlowControl))
    assert "write_paused" in inspect.getsource(FlowControl.__init__)
    assert STATUS_LINE[200] == b"HTTP/1.1 200 OK\r\n"
