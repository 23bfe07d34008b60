"""Arrow <-> PostgreSQL for the postgres offline engine: type mapping, and CSV over COPY both ways.

COPY's CSV is parsed and written by Arrow, so bulk transfer runs no Python per row; array and
bytea values, which CSV cannot carry natively, are converted per value.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.csv as pcsv

from repast.errors import InputError
from repast.sql_quoting import quote_ident
from repast.types.timestamps import UTC_US

if TYPE_CHECKING:
    import psycopg

_BLOCK_BYTES = 1 << 20  # COPY's CSV is parsed a block at a time: see read_query
# PostgreSQL type OIDs (pg_type.oid) -> Arrow types, and array OIDs -> their element OIDs.
_SCALARS = {16: pa.bool_(), 17: pa.binary(), 19: pa.string(), 20: pa.int64(), 21: pa.int16(), 23: pa.int32(),
            25: pa.string(), 700: pa.float32(), 701: pa.float64(), 1042: pa.string(), 1043: pa.string(),
            1082: pa.date32(), 1114: UTC_US, 1184: UTC_US, 1700: pa.float64()}
_ARRAYS = {1000: 16, 1005: 21, 1007: 23, 1009: 25, 1014: 1042, 1015: 1043, 1016: 20, 1021: 700, 1022: 701,
           1231: 1700}


def _plan(name: str, oid: int) -> tuple[str, pa.DataType, pa.DataType]:
    """(expression to COPY out, type Arrow parses the CSV field as, final Arrow type)."""
    c = quote_ident(name)
    if oid in (1114, 1184):  # epoch microseconds: exact, and zone-less values read as UTC
        return f"(EXTRACT(EPOCH FROM {c}) * 1000000)::int8", pa.int64(), UTC_US
    if oid == 1082:
        return f"({c} - DATE '1970-01-01')", pa.int32(), pa.date32()
    if oid == 1700:
        return f"{c}::float8", pa.float64(), pa.float64()
    if oid == 17:
        return f"encode({c}, 'hex')", pa.string(), pa.binary()
    if oid in _ARRAYS:
        return f"array_to_json({c})::text", pa.string(), pa.list_(_SCALARS[_ARRAYS[oid]])
    if oid in _SCALARS:
        return c, _SCALARS[oid], _SCALARS[oid]
    return f"{c}::text", pa.string(), pa.string()


def _describe(conn: psycopg.Connection[Any], sql: str) -> list[tuple[str, int]]:
    cur = conn.execute(f"SELECT * FROM ({sql}) AS __q LIMIT 0")
    return [(d.name, d.type_code) for d in cur.description or []]


def schema_of(conn: psycopg.Connection[Any], sql: str) -> pa.Schema:
    """The Arrow schema `read_query` gives for `sql`, without running it."""
    return pa.schema([(name, _plan(name, oid)[2]) for name, oid in _describe(conn, sql)])


class _CopyStream(io.RawIOBase):
    """A readable file over COPY ... TO STDOUT messages, for Arrow's CSV reader."""

    def __init__(self, chunks: Iterator[Any]) -> None:
        self._chunks = chunks
        self._pending = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        filled = 0
        while filled < len(buffer):
            if not self._pending:
                chunk = next(self._chunks, None)
                if chunk is None:
                    break
                self._pending = memoryview(bytes(chunk))
            n = min(len(buffer) - filled, len(self._pending))
            buffer[filled:filled + n] = self._pending[:n]
            self._pending = self._pending[n:]
            filled += n
        return filled


def read_query(conn: psycopg.Connection[Any], sql: str, batch_size: int = 100_000) -> Iterator[pa.RecordBatch]:
    """The rows of `sql` as Arrow record batches of at most `batch_size` rows (see `schema_of`),
    streamed through COPY. Arrow's CSV reader reads up to 32 blocks ahead in the background, so the
    block size bounds what a stream holds beyond the batch its reader is on (about 32 MiB); the rest
    waits in PostgreSQL until the reader catches up."""
    columns = _describe(conn, sql)
    plans = [_plan(name, oid) for name, oid in columns]
    names = [f"c{i}" for i in range(len(columns))]
    select = ", ".join(f"{expr} AS {n}" for (expr, _, _), n in zip(plans, names, strict=True))
    options = pcsv.ConvertOptions(column_types={n: p[1] for n, p in zip(names, plans, strict=True)},
                                  null_values=[""], strings_can_be_null=True, quoted_strings_can_be_null=False,
                                  true_values=["t"], false_values=["f"])
    read = pcsv.ReadOptions(column_names=names, block_size=_BLOCK_BYTES, use_threads=True)
    with conn.cursor().copy(f"COPY (SELECT {select} FROM ({sql}) AS __q) TO STDOUT (FORMAT csv)") as copy:
        stream = io.BufferedReader(_CopyStream(iter(copy)), buffer_size=1 << 20)
        try:
            reader = pcsv.open_csv(stream, read_options=read, convert_options=options,
                                   parse_options=pcsv.ParseOptions(newlines_in_values=True, ignore_empty_lines=False))
        except pa.ArrowInvalid:  # no rows at all: Arrow finds an empty file
            return
        for block in reader:
            for start in range(0, block.num_rows, batch_size):
                yield _finish(block.slice(start, batch_size), [c[0] for c in columns], plans)


def _finish(batch: pa.RecordBatch, names: list[str], plans: list[tuple[str, pa.DataType, pa.DataType]]
            ) -> pa.RecordBatch:
    arrays = []
    for column, (_, _, final) in zip(batch.columns, plans, strict=True):
        if pa.types.is_binary(final):
            column = pa.array([None if v is None else bytes.fromhex(v) for v in column.to_pylist()], final)
        elif pa.types.is_list(final):
            column = pa.array([None if v is None else json.loads(v) for v in column.to_pylist()], final)
        elif column.type != final:
            column = column.cast(final)
        arrays.append(column)
    return pa.RecordBatch.from_arrays(arrays, names=names)


def pg_type(t: pa.DataType) -> str:
    """The PostgreSQL column type for an Arrow type; InputError for types with no mapping."""
    if pa.types.is_dictionary(t):
        return pg_type(t.value_type)
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return pg_type(t.value_type) + "[]"
    for test, name in ((pa.types.is_boolean, "boolean"), (pa.types.is_int8, "int2"), (pa.types.is_int16, "int2"),
                       (pa.types.is_int32, "int4"), (pa.types.is_integer, "int8"), (pa.types.is_float16, "float4"),
                       (pa.types.is_float32, "float4"), (pa.types.is_floating, "float8"),
                       (pa.types.is_string, "text"), (pa.types.is_large_string, "text"),
                       (pa.types.is_binary, "bytea"), (pa.types.is_timestamp, "timestamptz"),
                       (pa.types.is_date, "date")):
        if test(t):
            return name
    raise InputError(f"Arrow type {t} has no PostgreSQL column type in repast")


def _array_literal(value: list[Any] | None) -> str | None:
    if value is None:
        return None
    return "{" + ",".join("NULL" if v is None else json.dumps(v) for v in value) + "}"


def arrow_to_csv(table: pa.Table) -> bytes:
    """`table` as CSV that COPY ... FROM STDIN (FORMAT csv) reads back into the same values."""
    columns = []
    for column in table.columns:
        t = column.type
        if pa.types.is_dictionary(t):
            column = column.cast(t.value_type)
        elif pa.types.is_list(t) or pa.types.is_large_list(t):
            column = pa.array([_array_literal(v) for v in column.to_pylist()], pa.string())
        elif pa.types.is_binary(t) or pa.types.is_large_binary(t):
            column = pa.array([None if v is None else "\\x" + v.hex() for v in column.to_pylist()], pa.string())
        elif pa.types.is_timestamp(t):
            column = column.cast(UTC_US)
        columns.append(column)
    out = io.BytesIO()
    pcsv.write_csv(pa.Table.from_arrays(columns, names=table.column_names), out,
                   pcsv.WriteOptions(include_header=False))
    return out.getvalue()
