"""Time values. Every timestamp repast stores or compares is UTC; one without a zone is UTC."""

from __future__ import annotations

from datetime import UTC, datetime

import pyarrow as pa

from repast.errors import InputError

UTC_US = pa.timestamp("us", tz="UTC")


def as_utc(value: datetime) -> datetime:
    """A datetime in UTC; one without a zone is taken to be UTC already."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def parse_time(text: str, what: str) -> datetime:
    """A time a user typed (CLI argument, pipeline parameter): ISO 8601, or "now"."""
    if text == "now":
        return datetime.now(UTC)
    try:
        return as_utc(datetime.fromisoformat(text))
    except ValueError:
        raise InputError(f"{what}: '{text}' is not an ISO-8601 time such as 2024-05-01T00:00:00 "
                         "(or 'now')") from None


def normalize_timestamps(column: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """timestamp[us, UTC]: zone-less values are taken as UTC, finer units truncated to microseconds."""
    if pa.types.is_date(column.type):
        column = column.cast(pa.timestamp("us"))
    return column.cast(UTC_US, safe=False)
