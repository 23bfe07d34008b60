"""The offline server: `repast serve-offline`, an Arrow Flight server in front of the configured engine.

Notebooks configured with `offline_store: {type: remote}` (repast/offline/remote.py) send definitions
and entity rows; the server runs the engine (DuckDB, PostgreSQL or Spark) with its own credentials
and streams the answer back as record batches. The protocol is in repast/offline/flight_protocol.py.

Before any work: the bearer token is checked (the feature server's read/write tokens, from
`feature_server.auth`; writes need a write token), and a request over the concurrency bound is
refused as busy. Uploads are bounded in bytes, and an upload idle longer than
`offline_server.idle_timeout_seconds` is dropped. A client that goes away cancels the engine's query
(repast/server/offline_watch.py) and stops the stream. The bounds come from feature_store.yaml's
`offline_server:` section, which the command's flags override. Every failure reaches the client as
`[repast:<kind>] detail`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.flight as flight

from repast.config.repo_config import OfflineServerConfig
from repast.errors import InputError, RepastError, StoreUnavailable
from repast.log_limit import FailureLog
from repast.offline import flight_protocol as wire
from repast.offline.base import SpineRange
from repast.server.auth import Access, auth_from_config
from repast.server.errors import ApiError
from repast.server.offline_watch import CallWatch

if TYPE_CHECKING:
    from repast.jobs.backends import Backends
    from repast.offline.base import OfflineEngine

_log = logging.getLogger("repast.offline_server")
failures = FailureLog(_log)


class _AuthMiddleware(flight.ServerMiddleware):  # type: ignore[misc]
    def __init__(self, access: Access) -> None:
        self.access = access


class _AuthFactory(flight.ServerMiddlewareFactory):  # type: ignore[misc]
    """Checks the bearer token of every call before its handler runs."""

    def __init__(self, backends: Backends) -> None:
        self.auth = auth_from_config(backends.config.feature_server)

    def start_call(self, info: Any, headers: dict[str, list[str]]) -> _AuthMiddleware:
        if self.auth is None:
            return _AuthMiddleware(Access.WRITE)
        values = headers.get("authorization") or []
        try:
            return _AuthMiddleware(self.auth.access_of(values[0].encode() if values else None))
        except ApiError as e:
            raise flight.FlightUnauthenticatedError(f"[repast:unauthorized] {e.detail}") from None


class OfflineFlightServer(flight.FlightServerBase):  # type: ignore[misc]
    def __init__(self, backends: Backends, location: str, limits: OfflineServerConfig | None = None,
                 tls_certificates: list[tuple[bytes, bytes]] | None = None) -> None:
        super().__init__(location, middleware={"auth": _AuthFactory(backends)},
                         tls_certificates=tls_certificates or [])
        self.backends = backends
        self.limits = limits or backends.config.offline_server
        self._slots = threading.BoundedSemaphore(self.limits.max_concurrent_requests)

    @property
    def engine(self) -> OfflineEngine:
        return self.backends.offline_engine

    def do_exchange(self, context: Any, descriptor: Any, reader: Any, writer: Any) -> None:
        try:
            command = wire.decode_command(descriptor.command)
            self._authorize(context, command["op"])
            if not self._slots.acquire(blocking=False):
                raise flight.FlightUnavailableError(
                    f"[repast:busy] {self.limits.max_concurrent_requests} requests are running "
                    "(serve-offline --max-concurrent); retry later")
            try:
                with CallWatch(context, self.limits.idle_timeout_seconds) as watch:
                    self._run(command, reader, writer, watch)
            finally:
                self._slots.release()
        except flight.FlightError:
            raise
        except Exception as e:
            self._fail(e, context)

    @staticmethod
    def _fail(e: Exception, context: Any) -> None:
        """Every failure as one `[repast:<kind>] detail` for the client; outages and bugs logged here."""
        if context.is_cancelled():  # the client went away: its query was cancelled, nobody to tell
            _log.info("offline server: the call of %s ended with its client gone (%s)", context.peer(),
                      type(e).__name__)
            raise flight.FlightCancelledError("[repast:cancelled] the client went away") from None
        if isinstance(e, StoreUnavailable):  # an outage: the operator's business too
            failures.report(type(e).__name__, f"offline server: {e}")
        elif not isinstance(e, RepastError):  # a bug or an unmapped driver error: the traceback here
            failures.report(type(e).__name__, f"offline server: {type(e).__name__}: {e}", exc_info=e)
        raise flight.FlightServerError(wire.error_message(e)) from None

    def _authorize(self, context: Any, op: str) -> None:
        middleware = context.get_middleware("auth")
        if op in wire.WRITE_OPS and (middleware is None or middleware.access is not Access.WRITE):
            raise flight.FlightUnauthorizedError(f"[repast:forbidden] '{op}' needs a write token; "
                                                 "this token may only read")

    def _run(self, command: dict[str, Any], reader: Any, writer: Any, watch: CallWatch) -> None:
        op = command["op"]
        if op == "source_schema":
            writer.begin(self.engine.source_schema(wire.source_from_wire(command["source"])))
        elif op == "write_rows":
            self.engine.write_rows(wire.source_from_wire(command["source"]), self._upload(reader, watch))
            writer.begin(pa.schema([]))
        elif op == "read_range":
            view = wire.view_from_wire(command["view"])
            table = self.engine.read_range(view, wire.time_from_wire(command["start"]),
                                           wire.time_from_wire(command["end"]))
            self._send(writer, table.schema, iter(table.to_batches(self.limits.batch_rows)), watch)
        elif op == "read_latest":
            view = wire.view_from_wire(command["view"])
            batches = self.engine.read_latest(view, wire.time_from_wire(command["start"]),
                                              wire.time_from_wire(command["end"]),
                                              int(command.get("batch_size", self.limits.batch_rows)))
            self._send_stream(writer, batches, watch)
        else:
            self._historical(command, reader, writer, watch)

    def _historical(self, command: dict[str, Any], reader: Any, writer: Any, watch: CallWatch) -> None:
        request = wire.request_from_wire(command["request"])
        kind = command.get("entity")
        entity: Any
        if kind == "range":
            entity = SpineRange(wire.time_from_wire(command["start"]), wire.time_from_wire(command["end"]))
        elif kind == "sql":
            entity = str(command["sql"])
        else:
            entity = self._upload(reader, watch)
        job = self.engine.get_historical_features(entity, request, True)
        if command["op"] == "check_historical":
            writer.begin(pa.schema([]))
            return
        watch.on_cancel(job.cancel)  # a client that goes away stops the join, even before its first row
        batches = job.to_batches(self.limits.batch_rows)  # held one at a time where the engine can stream
        try:
            first = next(batches, None)
            if first is None:  # no rows: the answer still has the result's columns
                self._send(writer, job.to_arrow().schema, iter(()), watch)
                return
            self._send(writer, first.schema, _chain(first, batches), watch)
        finally:
            watch.on_cancel(None)
            _close(batches)  # the engine's session ends now, also when the client left mid-stream

    def _upload(self, reader: Any, watch: CallWatch) -> pa.Table:
        """The client's rows, refused as soon as they pass the upload bound; a client that sends
        nothing for the idle timeout is dropped."""
        batches, size = [], 0
        watch.upload_progress(True)
        try:
            for chunk in reader:
                watch.upload_progress(True)
                if chunk.data is None:
                    continue
                size += chunk.data.nbytes
                if size > self.limits.max_upload_bytes:
                    raise InputError(f"the uploaded rows are larger than the server's bound of "
                                     f"{self.limits.max_upload_bytes // (1024 * 1024)} MB "
                                     "(offline_server.max_upload_bytes, serve-offline --max-upload-mb); "
                                     "send fewer entity rows per call")
                batches.append(chunk.data)
        finally:
            watch.upload_progress(False)
        if watch.dropped_idle:  # the read ended because the connection was cut, not by the client
            raise InputError(f"the upload sent nothing for {watch.idle_timeout:g} s "
                             "(offline_server.idle_timeout_seconds); the client was dropped")
        return pa.Table.from_batches(batches, schema=reader.schema)

    def _send_stream(self, writer: Any, batches: Iterator[pa.RecordBatch], watch: CallWatch) -> None:
        first = next(batches, None)
        if first is None:
            writer.begin(pa.schema([]))
            return
        self._send(writer, first.schema, _chain(first, batches), watch)

    @staticmethod
    def _send(writer: Any, schema: pa.Schema, batches: Iterator[pa.RecordBatch], watch: CallWatch) -> None:
        writer.begin(schema)
        for batch in batches:
            if watch.context.is_cancelled():
                return  # the client went away: stop reading from the engine
            writer.write_batch(batch)


def _close(batches: Iterator[pa.RecordBatch]) -> None:
    close = getattr(batches, "close", None)  # a generator: closing it runs its cleanup now
    if close is not None:
        close()


def _chain(first: pa.RecordBatch, rest: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    yield first
    yield from rest


def serve_offline(backends: Backends, host: str = "127.0.0.1", port: int = wire.DEFAULT_PORT,
                  limits: OfflineServerConfig | None = None, key: str | None = None,
                  cert: str | None = None) -> None:
    """Serve until interrupted. With `key` and `cert` (PEM files), TLS (clients use scheme grpc+tls)."""
    from repast.errors import ConfigError

    tls: list[tuple[bytes, bytes]] = []
    if bool(key) != bool(cert):
        raise ConfigError("serve-offline: --key and --cert go together (both PEM files)")
    if key and cert:
        try:
            with open(cert, "rb") as c, open(key, "rb") as k:
                tls = [(c.read(), k.read())]
        except OSError as e:
            raise ConfigError(f"serve-offline: cannot read the TLS files: {e}") from None
    location = f"{'grpc+tls' if tls else 'grpc+tcp'}://{host}:{port}"
    _check_can_listen(host, port)  # gRPC reports a taken port with log lines of its own on stderr
    try:
        server = OfflineFlightServer(backends, location, limits, tls)
    except (OSError, pa.ArrowException) as e:  # the port is taken, the address is not this host's
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ConfigError(f"serve-offline: cannot listen on {host}:{port}: {first}") from None
    print(f"repast offline server (Arrow Flight) listening on {location}", flush=True)
    server.serve()


def _check_can_listen(host: str, port: int) -> None:
    import socket

    from repast.errors import ConfigError

    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            probe.bind((host, port))
    except OSError as e:
        raise ConfigError(f"serve-offline: cannot listen on {host}:{port}: {e.strerror or e}") from None
