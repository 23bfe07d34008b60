"""RemoteOfflineEngine: training data computed by a repast offline server and streamed back as Arrow.

    offline_store: {type: remote, host: offline.features.svc, port: 8815, scheme: grpc+tls,
                    cert: /etc/repast/ca.pem, token: ${REPAST_TOKEN}}

For notebooks that hold no data credentials: the server (`repast serve-offline`) runs its own engine
(DuckDB, PostgreSQL or Spark); this client sends definitions and entity rows over Arrow Flight
(repast/offline/flight_protocol.py) and reads record batches back. On-demand views run here, on each
batch, so the server never runs a client's code. Errors are the classes the local SDK raises.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

import pyarrow as pa
from pydantic import Field, SecretStr

from repast.errors import ConfigError, InputError, StoreUnavailable
from repast.offline import flight_protocol as wire
from repast.offline.base import EntityInput, OfflineEngine, RetrievalJob, SpineRange
from repast.offline.point_in_time import check_entity
from repast.plugins.base_config import BackendConfig

if TYPE_CHECKING:
    import pyarrow.flight as flight

    from repast.definitions import DataSource, FeatureView
    from repast.definitions.feature_refs import FeatureRequest

UPLOAD_BATCH_ROWS = 65_536


class RemoteOfflineConfig(BackendConfig):
    type: Literal["remote"] = "remote"
    host: str
    port: int = Field(default=wire.DEFAULT_PORT, gt=0, lt=65536)
    # Feast's `scheme` values: grpc (plain), grpc+tls; http/https are read as grpc/grpc+tls.
    scheme: Literal["grpc", "grpc+tls", "grpc+tcp", "http", "https"] = "grpc"
    cert: str = ""  # PEM of the server's certificate or its CA, for a self-signed TLS server
    token: SecretStr | None = None  # a read token of the server; write_to_offline_store needs a write token
    connect_timeout_seconds: float = Field(default=5, gt=0)
    timeout_seconds: float = Field(default=3600, gt=0)  # one whole call, retrieval included


class RemoteOfflineEngine(OfflineEngine):
    Config = RemoteOfflineConfig

    def __init__(self, config: RemoteOfflineConfig, repo_config: Any) -> None:
        super().__init__(config, repo_config)
        self._client: flight.FlightClient | None = None

    @property
    def location(self) -> str:
        tls = self.config.scheme in ("grpc+tls", "https")
        return f"{'grpc+tls' if tls else 'grpc+tcp'}://{self.config.host}:{self.config.port}"

    def _flight(self) -> flight.FlightClient:
        import pyarrow.flight as flight

        if self._client is None:
            kwargs: dict[str, Any] = {}
            if self.config.cert:
                try:
                    with open(self.config.cert, "rb") as f:
                        kwargs["tls_root_certs"] = f.read()
                except OSError as e:
                    raise ConfigError(f"offline_store.cert '{self.config.cert}' cannot be read: {e}") from None
            self._check_reachable()
            self._client = flight.FlightClient(self.location, **kwargs)
        return self._client

    def _check_reachable(self) -> None:
        """Fail within connect_timeout_seconds when nothing answers (gRPC itself waits for the call's timeout)."""
        import socket

        try:
            socket.create_connection((self.config.host, self.config.port), self.config.connect_timeout_seconds).close()
        except OSError as e:
            raise StoreUnavailable(f"offline server {self.location} cannot be reached within "
                                   f"{self.config.connect_timeout_seconds:g} s: {e}") from None

    def _options(self) -> flight.FlightCallOptions:
        import pyarrow.flight as flight

        token = self.config.token.get_secret_value() if self.config.token else None
        headers = [(b"authorization", f"Bearer {token}".encode())] if token else []
        return flight.FlightCallOptions(headers=headers, timeout=self.config.timeout_seconds)

    def stream(self, command: bytes,
               upload: pa.Table | None = None) -> tuple[pa.Schema, Generator[pa.RecordBatch, None, None]]:
        """Send `command` (and `upload`'s rows); the answer's schema, and its batches as they arrive. The
        call ends (and the server stops its work) when the caller stops iterating or drops the iterator."""
        import pyarrow.flight as flight

        where = f"offline server {self.location}"
        with _errors_as_repast(where):
            writer, reader = self._flight().do_exchange(flight.FlightDescriptor.for_command(command),
                                                        self._options())
            try:
                if upload is not None:
                    writer.begin(upload.schema)
                    for batch in upload.to_batches(UPLOAD_BATCH_ROWS):
                        writer.write_batch(batch)
                writer.done_writing()
                schema = reader.schema
            except BaseException:
                writer.close()
                raise
        return schema, self._batches(writer, reader, where)

    @staticmethod
    def _batches(writer: Any, reader: Any, where: str) -> Generator[pa.RecordBatch, None, None]:
        with _errors_as_repast(where), writer:
            while True:
                try:
                    chunk = reader.read_chunk()
                except StopIteration:
                    return
                if chunk.data is not None:
                    yield chunk.data

    def exchange(self, command: bytes, upload: pa.Table | None = None) -> Iterator[pa.RecordBatch]:
        return self.stream(command, upload)[1]

    def source_schema(self, source: DataSource) -> pa.Schema:
        schema, batches = self.stream(wire.encode_command("source_schema", source=source.to_dict()))
        batches.close()
        return schema

    def get_historical_features(self, entity: EntityInput, request: FeatureRequest,
                                full_feature_names: bool) -> RetrievalJob:
        from repast.offline.remote_job import RemoteRetrievalJob

        arguments: dict[str, Any] = {"request": wire.request_to_wire(request)}
        if isinstance(entity, SpineRange):
            arguments.update(entity="range", start=wire.time_to_wire(entity.start),
                             end=wire.time_to_wire(entity.end))
        elif isinstance(entity, str):
            arguments.update(entity="sql", sql=entity)
        elif not isinstance(entity, pa.Table):  # a Spark DataFrame lives in this process: it cannot be sent
            raise InputError(f"offline_store type 'remote' takes entity_df as a pandas DataFrame, a pyarrow "
                             f"Table or an SQL query the server runs, got {type(entity).__name__}")
        else:
            check_entity(entity.schema, request)  # the local SDK's errors, before anything is sent
            arguments.update(entity="table")
        upload = entity if isinstance(entity, pa.Table) else None
        # The engine's own checks (entity query, join key types), raised here as a local engine raises them.
        _, answer = self.stream(wire.encode_command("check_historical", **arguments),
                                upload.schema.empty_table() if upload is not None else None)
        answer.close()
        command = wire.encode_command("historical", **arguments)
        return RemoteRetrievalJob(lambda: self.stream(command, upload), str(self.repo_config.repo_path), request,
                                  full_feature_names)

    def read_latest(self, view: FeatureView, start: datetime, end: datetime,
                    batch_size: int = 100_000) -> Iterator[pa.RecordBatch]:
        yield from self.exchange(self._view_command("read_latest", view, start, end, batch_size=batch_size))

    def read_range(self, view: FeatureView, start: datetime, end: datetime) -> pa.Table:
        schema, batches = self.stream(self._view_command("read_range", view, start, end))
        return pa.Table.from_batches(list(batches), schema=schema)

    def write_rows(self, source: DataSource, table: pa.Table) -> None:
        _, batches = self.stream(wire.encode_command("write_rows", source=source.to_dict()), table)
        for _ in batches:  # the server answers once the rows are stored
            pass

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    @staticmethod
    def _view_command(op: str, view: FeatureView, start: datetime, end: datetime, **more: Any) -> bytes:
        return wire.encode_command(op, view=wire.view_to_wire(view), start=wire.time_to_wire(start),
                                   end=wire.time_to_wire(end), **more)


@contextmanager
def _errors_as_repast(where: str) -> Iterator[None]:
    """Flight failures as the repast exception the server named (or StoreUnavailable when unreachable)."""
    import pyarrow.flight as flight

    try:
        yield
    except flight.FlightError as e:
        raise wire.error_from_message(str(e), where) from None
    except OSError as e:  # pyarrow raises ArrowIOError (an OSError) for a connection that fails
        raise StoreUnavailable(f"{where} cannot be reached: {e}") from None
