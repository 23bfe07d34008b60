"""Before/after values of a changed definition, one line per changed field, for `plan`, `apply` and
`history --diff`."""

from __future__ import annotations

import json
from typing import Any

MAX_VALUE = 100  # characters of one value shown; longer ones end with "..."


def _show(value: Any) -> str:
    text = "(none)" if value is None else json.dumps(value, default=str, sort_keys=True)
    return text if len(text) <= MAX_VALUE else text[:MAX_VALUE - 3] + "..."


def _by_name(items: list[Any]) -> dict[str, Any] | None:
    if not all(isinstance(i, dict) and "name" in i for i in items):
        return None
    return {i["name"]: i for i in items}


def value_lines(old: dict[str, Any] | None, new: dict[str, Any] | None, fields: list[str]) -> list[str]:
    """`field: before -> after` per changed field; a list of named items (a schema) per item:
    `schema[acc_rate]: removed`, `schema[avg_daily_trips].description: "a" -> "b"`."""
    old, new = old or {}, new or {}
    lines: list[str] = []
    for key in fields:
        before, after = old.get(key), new.get(key)
        olds = _by_name(before) if isinstance(before, list) else None
        news = _by_name(after) if isinstance(after, list) else None
        if olds is None or news is None:
            lines.append(f"{key}: {_show(before)} -> {_show(after)}")
            continue
        for name in [*olds, *(n for n in news if n not in olds)]:
            if name not in news:
                lines.append(f"{key}[{name}]: removed")
            elif name not in olds:
                lines.append(f"{key}[{name}]: added {_show(news[name])}")
            else:
                for attr in sorted(set(olds[name]) | set(news[name])):
                    if olds[name].get(attr) != news[name].get(attr):
                        lines.append(f"{key}[{name}].{attr}: {_show(olds[name].get(attr))} -> "
                                     f"{_show(news[name].get(attr))}")
    return lines
