"""KafkaSource and its message formats, with Feast's names.

Pure data, like every source: the consumer (repast/streaming/) reads the topic. A message format
declares the columns of one message: `JsonFormat(schema_json=...)` takes Feast's Spark DDL text
("driver_id bigint, conv_rate double, event_timestamp timestamp"), `AvroFormat(schema_json=...)`
an Avro record schema (JSON). `message_schema()` is the Arrow schema messages are parsed into.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

import pyarrow as pa

from repast.definitions.sources import DataSource, FileSource, common_args, time_args
from repast.errors import DefinitionError

UTC_MICROS = pa.timestamp("us", tz="UTC")
_DDL_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(), "varchar": pa.string(), "int": pa.int32(), "integer": pa.int32(),
    "bigint": pa.int64(), "long": pa.int64(), "smallint": pa.int32(), "float": pa.float32(),
    "real": pa.float32(), "double": pa.float64(), "boolean": pa.bool_(), "bool": pa.bool_(),
    "timestamp": UTC_MICROS, "binary": pa.binary(),
}
_AVRO_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(), "int": pa.int32(), "long": pa.int64(), "float": pa.float32(),
    "double": pa.float64(), "boolean": pa.bool_(), "bytes": pa.binary(),
}


class StreamFormat:
    """A message format: its `schema_json` and the Arrow schema of one message."""

    format_name = ""

    def __init__(self, schema_json: str) -> None:
        if not isinstance(schema_json, str) or not schema_json.strip():
            raise DefinitionError(f"{type(self).__name__}: schema_json must be a non-empty string")
        self.schema_json = schema_json
        self.message_schema()  # fail at definition time, naming the column

    def message_schema(self) -> pa.Schema:
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        return {"format": self.format_name, "schema_json": self.schema_json}

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash((self.format_name, self.schema_json))


class JsonFormat(StreamFormat):
    """JSON messages, one object per message; `schema_json` in Spark DDL, as Feast's."""

    format_name = "json"

    def message_schema(self) -> pa.Schema:
        fields = []
        for column in _split_top_level(self.schema_json):
            name, _, type_text = column.strip().partition(" ")
            if not name or not type_text.strip():
                raise DefinitionError(f"JsonFormat: schema_json column {column.strip()!r} needs a name and a type "
                                      "(Spark DDL, e.g. \"driver_id bigint, conv_rate double\")")
            fields.append(pa.field(name.strip("`"), _ddl_type(type_text.strip(), name)))
        return pa.schema(fields)


class AvroFormat(StreamFormat):
    """Avro messages (schemaless binary encoding of one record); `schema_json` is the Avro record
    schema. Decoding needs fastavro (`pip install "repast[kafka]"`)."""

    format_name = "avro"

    def message_schema(self) -> pa.Schema:
        try:
            schema = json.loads(self.schema_json)
        except ValueError as e:
            raise DefinitionError(f"AvroFormat: schema_json is not JSON: {e}") from None
        if not isinstance(schema, dict) or schema.get("type") != "record" or not isinstance(schema.get("fields"), list):
            raise DefinitionError("AvroFormat: schema_json must be an Avro record schema "
                                  "({\"type\": \"record\", \"name\": ..., \"fields\": [...]})")
        return pa.schema([pa.field(f["name"], _avro_type(f["type"], f["name"])) for f in schema["fields"]])

    def avro_schema(self) -> dict[str, Any]:
        return dict(json.loads(self.schema_json))


_FORMATS: dict[str, type[StreamFormat]] = {"json": JsonFormat, "avro": AvroFormat}


def _split_top_level(text: str) -> list[str]:
    """Split DDL on commas outside angle brackets (array<struct<...>> keeps its commas)."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += {"<": 1, ">": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p for p in parts if p.strip()]


def _ddl_type(text: str, column: str) -> pa.DataType:
    lowered = text.lower()
    array = re.fullmatch(r"array\s*<\s*(.+)\s*>", lowered)
    if array:
        return pa.list_(_ddl_type(array.group(1), column))
    if lowered.startswith("decimal"):
        return pa.float64()
    if lowered not in _DDL_TYPES:
        raise DefinitionError(f"JsonFormat: column '{column}' has type {text!r}, which is not one of "
                              f"{sorted(_DDL_TYPES)} or array<...>")
    return _DDL_TYPES[lowered]


def _avro_type(spec: Any, column: str) -> pa.DataType:
    if isinstance(spec, list):  # a union: ["null", T] is a nullable T
        types = [t for t in spec if t != "null"]
        if len(types) != 1:
            raise DefinitionError(f"AvroFormat: field '{column}' is a union of {spec}; only [\"null\", T] is supported")
        return _avro_type(types[0], column)
    if isinstance(spec, dict):
        if spec.get("logicalType") in ("timestamp-millis", "timestamp-micros"):
            return UTC_MICROS
        if spec.get("type") == "array":
            return pa.list_(_avro_type(spec.get("items"), column))
        return _avro_type(spec.get("type"), column)
    if spec not in _AVRO_TYPES:
        raise DefinitionError(f"AvroFormat: field '{column}' has type {spec!r}, which is not one of "
                              f"{sorted(_AVRO_TYPES)}, an array or a timestamp logical type")
    return _AVRO_TYPES[spec]


def format_from_dict(d: dict[str, Any]) -> StreamFormat:
    kind = d.get("format")
    if kind not in _FORMATS:
        raise DefinitionError(f"unknown stream message format {kind!r} in registry")
    return _FORMATS[kind](schema_json=d["schema_json"])


class KafkaSource(DataSource):
    """A Kafka topic whose messages are events of a stream feature view; `batch_source` holds the
    same events offline (the consumer appends them to it) and is what training reads."""

    source_type = "kafka"

    def __init__(self, *, name: str, timestamp_field: str, message_format: StreamFormat,
                 topic: str, kafka_bootstrap_servers: str | None = None, bootstrap_servers: str | None = None,
                 batch_source: DataSource | None = None, watermark_delay_threshold: timedelta | None = None,
                 created_timestamp_column: str = "", field_mapping: dict[str, str] | None = None,
                 description: str = "", tags: dict[str, str] | None = None, owner: str = "") -> None:
        servers = kafka_bootstrap_servers or bootstrap_servers
        if not servers or not isinstance(servers, str):
            raise DefinitionError(f"KafkaSource '{name}': kafka_bootstrap_servers must be a non-empty string "
                                  "such as \"broker:9092\"")
        if not topic or not isinstance(topic, str):
            raise DefinitionError(f"KafkaSource '{name}': topic must be a non-empty string")
        if not isinstance(message_format, StreamFormat):
            raise DefinitionError(f"KafkaSource '{name}': message_format must be JsonFormat(...) or AvroFormat(...), "
                                  f"got {message_format!r}")
        if not timestamp_field:
            raise DefinitionError(f"KafkaSource '{name}': timestamp_field names the event time in each message")
        if timestamp_field not in message_format.message_schema().names:
            raise DefinitionError(f"KafkaSource '{name}': timestamp_field '{timestamp_field}' is not a column of "
                                  f"the message schema {message_format.message_schema().names}")
        if not isinstance(batch_source, FileSource):
            raise DefinitionError(f"KafkaSource '{name}': batch_source must be a FileSource (training reads it; the "
                                  f"consumer appends the events to it as part files), got {batch_source!r}")
        if watermark_delay_threshold is not None and not isinstance(watermark_delay_threshold, timedelta):
            raise DefinitionError(f"KafkaSource '{name}': watermark_delay_threshold must be a datetime.timedelta")
        super().__init__(name, timestamp_field, created_timestamp_column, field_mapping, description, tags, owner)
        self.kafka_bootstrap_servers = servers
        self.topic = topic
        self.message_format = message_format
        self.batch_source = batch_source
        self.watermark_delay_threshold = watermark_delay_threshold

    def to_dict(self) -> dict[str, Any]:
        delay = self.watermark_delay_threshold
        return {**self._common(), "kafka_bootstrap_servers": self.kafka_bootstrap_servers, "topic": self.topic,
                "message_format": self.message_format.to_dict(),
                "batch_source": self.batch_source.to_dict(),
                "watermark_delay_threshold_seconds": delay.total_seconds() if delay is not None else None}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> KafkaSource:
        """`d["batch_source"]` is the batch source itself, rebuilt first by source_from_dict."""
        delay = d.get("watermark_delay_threshold_seconds")
        return cls(name=d["name"], kafka_bootstrap_servers=d["kafka_bootstrap_servers"], topic=d["topic"],
                   message_format=format_from_dict(d["message_format"]), batch_source=d["batch_source"],
                   watermark_delay_threshold=timedelta(seconds=delay) if delay is not None else None,
                   **time_args(d), **common_args(d))
