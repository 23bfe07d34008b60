"""Parsing a batch of messages: one Arrow table of the message schema, and each message that cannot be
a row named with its reason (the batch goes on without it)."""

from __future__ import annotations

import io
import json

import pyarrow as pa

from repast import FileSource, KafkaSource
from repast.definitions.stream_sources import AvroFormat, JsonFormat
from repast.streaming.messages import OFFSET, Message, parse_messages, refuse_incomplete

AVRO = {"type": "record", "name": "trip", "fields": [
    {"name": "driver_id", "type": "long"},
    {"name": "event_timestamp", "type": {"type": "long", "logicalType": "timestamp-micros"}},
    {"name": "rate", "type": ["null", "double"]}]}


def source(fmt: JsonFormat | AvroFormat) -> KafkaSource:
    return KafkaSource(name="s", kafka_bootstrap_servers="b:9092", topic="t", timestamp_field="event_timestamp",
                       message_format=fmt, batch_source=FileSource(path="x", timestamp_field="event_timestamp"))


def messages(values: list[bytes | None]) -> list[Message]:
    return [Message("t", i % 2, i, v) for i, v in enumerate(values)]


def test_a_json_batch_with_bad_messages_keeps_every_good_one_in_order() -> None:
    src = source(JsonFormat(schema_json="driver_id bigint, event_timestamp timestamp, rate double"))
    good = [json.dumps({"driver_id": i, "event_timestamp": "2025-01-01T00:00:00Z", "rate": i / 2}).encode()
            for i in range(40)]
    values: list[bytes | None] = [*good[:10], b"{oops", *good[10:30], b'{"driver_id": "x"}', None, *good[30:],
                                  b'{\n  "driver_id": 99,\n  "rate": 1.5\n}']
    table, dead = parse_messages(src, messages(values))
    assert table.column("driver_id").to_pylist() == [*range(40), 99]
    assert sorted(d.message.offset for d in dead) == [10, 31, 32]
    reasons = {d.message.offset: d.reason for d in dead}
    assert reasons[32] == "empty message" and reasons[10].startswith("cannot be decoded as json")
    complete, missing = refuse_incomplete(table, ["driver_id", "event_timestamp"],
                                          {(m.partition, m.offset): m for m in messages(values)})
    assert complete.num_rows == 40 and [d.reason for d in missing] == ["missing event_timestamp"]
    assert complete.column(OFFSET).to_pylist() == sorted(complete.column(OFFSET).to_pylist())


def test_avro_messages_are_decoded_with_their_record_schema() -> None:
    import fastavro

    parsed = fastavro.parse_schema(AVRO)

    def encode(record: dict[str, object]) -> bytes:
        out = io.BytesIO()
        fastavro.schemaless_writer(out, parsed, record)
        return out.getvalue()

    values: list[bytes | None] = [encode({"driver_id": 1, "event_timestamp": 1_700_000_000_000_000, "rate": None}),
                                  b"\xff", encode({"driver_id": 2, "event_timestamp": 1_700_000_000_000_001,
                                                   "rate": 0.5})]
    table, dead = parse_messages(source(AvroFormat(schema_json=json.dumps(AVRO))), messages(values))
    assert table.column("driver_id").to_pylist() == [1, 2]
    assert table.schema.field("event_timestamp").type == pa.timestamp("us", tz="UTC")
    assert [d.message.offset for d in dead] == [1]

