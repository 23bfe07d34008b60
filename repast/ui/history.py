"""Apply history for the UI: who applied what and when, and field-by-field diffs of changed objects.

History keeps the spec each apply wrote (see Change.to_history), so the diff of an object at a
version is its spec then against its spec at the previous apply that touched it. Applies recorded
before history kept specs list the changed field names only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from repast.errors import ConfigError, FeatureNotFound
from repast.registry import Registry
from repast.registry.base import HistoryEntry

# Enough for any project's whole history in one read; history rows are small.
ALL = 100_000


class HistoryUnavailable(ConfigError):
    """The registry cannot list history (a remote, read-only registry)."""


@dataclass
class FieldDiff:
    path: str
    old: Any
    new: Any

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "old": self.old, "new": self.new}


def read_history(registry: Registry, project: str, limit: int = ALL) -> list[HistoryEntry]:
    """Newest first; HistoryUnavailable when the registry keeps none here."""
    try:
        return registry.history(limit, project)
    except ConfigError as e:
        raise HistoryUnavailable(str(e)) from None


def shown_changes(changes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The changes a reader sees: a recorded feature view version (`view@vN`) is bookkeeping that comes
    with its view's own change, so it is left out (the view's page lists its versions)."""
    return [c for c in changes if c.get("kind") != "feature_view_version"]


def entry_json(entry: HistoryEntry) -> dict[str, Any]:
    return {"version": entry.version, "applied_at": entry.applied_at.isoformat(), "applied_by": entry.applied_by,
            "changes": shown_changes(entry.changes)}


def version_diffs(entries: list[HistoryEntry], version: int) -> tuple[HistoryEntry, list[dict[str, Any]]]:
    """The apply of `version` and, per change, its field diffs against the object's previous spec."""
    chronological = sorted(entries, key=lambda e: e.version)
    target = next((e for e in chronological if e.version == version), None)
    if target is None:
        raise FeatureNotFound(f"version {version} is not in the apply history")
    earlier = [e for e in chronological if e.version < version]
    changes = []
    for change in shown_changes(target.changes):
        key = f"{change['kind']}/{change['name']}"
        changes.append({**change, "diff": _diff_of(earlier, target, key)})
    return target, changes


def object_history(entries: list[HistoryEntry], kind: str, name: str) -> list[dict[str, Any]]:
    """Every apply that touched one object, newest first, each with its diff."""
    key = f"{kind}/{name}"
    chronological = sorted(entries, key=lambda e: e.version)
    result = []
    for i, entry in enumerate(chronological):
        for change in entry.changes:
            if f"{change['kind']}/{change['name']}" == key:
                result.append({**entry_json(entry), "changes": [change],
                               "diff": _diff_of(chronological[:i], entry, key)})
    return result[::-1]


def _diff_of(earlier: list[HistoryEntry], entry: HistoryEntry, key: str) -> list[dict[str, Any]] | None:
    """None when the specs needed are not recorded (older applies)."""
    if key not in entry.specs:
        return None
    previous: dict[str, Any] | None = None
    for e in reversed(earlier):
        if key in e.specs:
            previous = e.specs[key]
            break
    return [d.to_json() for d in diff_specs(previous or {}, entry.specs[key] or {})]


def diff_specs(old: dict[str, Any], new: dict[str, Any]) -> list[FieldDiff]:
    """Leaf-level differences; lists of named items (schema fields, projections) match by name."""
    out: list[FieldDiff] = []
    _walk("", _keyed(old), _keyed(new), out)
    return out


def _keyed(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _keyed(v) for k, v in value.items()}
    if isinstance(value, list) and value and all(isinstance(v, dict) and ("name" in v or "view_name" in v)
                                                 for v in value):
        return {f"[{v.get('name') or v.get('view_name')}]": _keyed(v) for v in value}
    return value


def _walk(path: str, old: Any, new: Any, out: list[FieldDiff]) -> None:
    if isinstance(old, dict) and isinstance(new, dict):
        for k in list(dict.fromkeys([*old, *new])):
            sub = f"{path}{k}" if k.startswith("[") or not path else f"{path}.{k}"
            _walk(sub, old.get(k), new.get(k), out)
        return
    if json.dumps(old, sort_keys=True, default=str) != json.dumps(new, sort_keys=True, default=str):
        out.append(FieldDiff(path, old, new))
