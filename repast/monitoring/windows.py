"""Windows as users type them: 30m, 12h, 1d, 2w."""

from __future__ import annotations

import re
from datetime import timedelta

from repast.errors import InputError

_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_window(text: str) -> timedelta:
    """`<number><unit>` with unit s, m, h, d or w; a positive length."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", text or "")
    if match is None or float(match.group(1)) <= 0:
        raise InputError(f"window {text!r} is not a length such as 30m, 12h, 1d or 2w")
    return timedelta(**{_UNITS[match.group(2)]: float(match.group(1))})
