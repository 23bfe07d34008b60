"""Time values. Every timestamp repast stores or compares is UTC; one without a zone is UTC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

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


_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str, what: str, allow_zero: bool = False) -> timedelta:
    """A length a user typed: `90s`, `30m`, `12h`, `1d`, `2w` (a bare number is seconds); positive
    unless `allow_zero`."""
    import re

    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*", text or "")
    if match is None or (float(match.group(1)) == 0 and not allow_zero):
        raise InputError(f"{what} {text!r} is not a length of time such as 30m, 12h, 1d or 2w")
    return timedelta(seconds=float(match.group(1)) * _SECONDS[match.group(2) or "s"])


def normalize_timestamps(column: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """timestamp[us, UTC]: zone-less values are taken as UTC, finer units truncated to microseconds."""
    if pa.types.is_date(column.type):
        column = column.cast(pa.timestamp("us"))
    return column.cast(UTC_US, safe=False)
