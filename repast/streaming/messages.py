"""Kafka messages -> one Arrow table per batch, and the messages that cannot be rows.

A batch of JSON messages is parsed in one call (pyarrow's JSON reader with the source's message
schema); only when that fails is the batch split in halves until each failing message is alone,
so a stream with a rare bad message stays on the fast path and every bad one is named. A message
that parses but lacks a join key or its event timestamp is refused too. Each refused message
becomes a DeadLetter with its reason; the batch goes on without it.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pajson

from repast.definitions.stream_sources import AvroFormat, KafkaSource
from repast.errors import require_module

PARTITION = "_repast_partition"  # internal columns: where each row came from
OFFSET = "_repast_offset"
T = TypeVar("T")


@dataclass(frozen=True)
class Message:
    """What the consumer needs of one Kafka message (kept apart from the client's type)."""

    topic: str
    partition: int
    offset: int
    value: bytes | None
    timestamp_ms: int = 0  # the broker's timestamp (the producer's create time by default)
    key: bytes | None = None


@dataclass(frozen=True)
class DeadLetter:
    """A message that could not become a row, and why."""

    message: Message
    reason: str

    def to_dict(self) -> dict[str, Any]:
        value = self.message.value or b""
        try:
            text: str | None = value.decode()
            encoded = None
        except UnicodeDecodeError:
            text, encoded = None, base64.b64encode(value).decode()
        return {"reason": self.reason, "topic": self.message.topic, "partition": self.message.partition,
                "offset": self.message.offset, "value": text, "value_base64": encoded}


def split_failures(items: Sequence[T], attempt: Callable[[Sequence[T]], Any]) -> tuple[list[Any], list[tuple[T, str]]]:
    """Run `attempt` on all of `items`; where it raises, on halves, down to single items.
    Returns the results of the attempts that succeeded (in order) and each failing item with
    the error's text."""
    if not items:
        return [], []
    try:
        return [attempt(items)], []
    except Exception as e:  # noqa: BLE001 - whatever the parser or udf raises names a bad message
        if len(items) == 1:
            return [], [(items[0], _reason(e))]
    middle = len(items) // 2
    ok_left, bad_left = split_failures(items[:middle], attempt)
    ok_right, bad_right = split_failures(items[middle:], attempt)
    return ok_left + ok_right, bad_left + bad_right


def _reason(e: Exception) -> str:
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return text.removeprefix("JSON parse error: ")


def parse_messages(source: KafkaSource, messages: Sequence[Message]) -> tuple[pa.Table, list[DeadLetter]]:
    """The messages as rows of the message schema plus PARTITION and OFFSET columns, and the
    dead letters: undecodable messages, wrong types, a missing join key or event timestamp."""
    schema = source.message_format.message_schema()
    present = [m for m in messages if m.value]
    dead = [DeadLetter(m, "empty message") for m in messages if not m.value]
    decode = _avro_decoder(source) if isinstance(source.message_format, AvroFormat) else _json_decoder(schema)
    tables, failed = split_failures(present, lambda part: _with_origin(decode(part), part))
    dead += [DeadLetter(m, f"cannot be decoded as {source.message_format.format_name}: {reason}")
             for m, reason in failed]
    table = pa.concat_tables(tables) if tables else _with_origin(schema.empty_table(), [])
    return table, dead


def refuse_incomplete(table: pa.Table, required: Sequence[str], by_origin: dict[tuple[int, int], Message]
                      ) -> tuple[pa.Table, list[DeadLetter]]:
    """Rows with a null in a required column (a join key, the event timestamp) become dead letters."""
    missing = [c for c in required if c not in table.column_names]
    if missing:
        raise ValueError(f"required column(s) {missing} are not in the message schema")
    bad = None
    for column in required:
        nulls = pc.is_null(table.column(column))
        bad = nulls if bad is None else pc.or_(bad, nulls)
    if bad is None or not pc.any(bad).as_py():
        return table, []
    refused = table.filter(bad)
    dead = []
    for partition, offset, row in zip(refused.column(PARTITION).to_pylist(), refused.column(OFFSET).to_pylist(),
                                      refused.select(list(required)).to_pylist(), strict=True):
        absent = [c for c in required if row[c] is None]
        dead.append(DeadLetter(by_origin[(partition, offset)], f"missing {', '.join(absent)}"))
    return table.filter(pc.invert(bad)), dead


def _with_origin(table: pa.Table, messages: Sequence[Message]) -> pa.Table:
    return table.append_column(PARTITION, pa.array([m.partition for m in messages], pa.int32())) \
        .append_column(OFFSET, pa.array([m.offset for m in messages], pa.int64()))


def _json_decoder(schema: pa.Schema) -> Callable[[Sequence[Message]], pa.Table]:
    options = pajson.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore")

    def decode(part: Sequence[Message]) -> pa.Table:
        data = b"\n".join(m.value or b"" for m in part)
        if data.count(b"\n") != len(part) - 1:  # a pretty-printed message: newlines are only whitespace
            data = b"\n".join((m.value or b"").replace(b"\r", b" ").replace(b"\n", b" ") for m in part)
        table = pajson.read_json(io.BytesIO(data), parse_options=options,
                                 read_options=pajson.ReadOptions(block_size=max(1 << 20, len(data) + 1)))
        if table.num_rows != len(part):
            raise ValueError(f"{len(part)} message(s) held {table.num_rows} JSON objects")
        return table.select(schema.names).cast(schema)

    return decode


def _avro_decoder(source: KafkaSource) -> Callable[[Sequence[Message]], pa.Table]:
    require_module("fastavro", "kafka")
    import fastavro

    assert isinstance(source.message_format, AvroFormat)
    parsed = fastavro.parse_schema(source.message_format.avro_schema())
    schema = source.message_format.message_schema()

    def decode(part: Sequence[Message]) -> pa.Table:
        records = [fastavro.schemaless_reader(io.BytesIO(m.value or b""), parsed) for m in part]
        return pa.Table.from_pylist(records, schema=schema)

    return decode
