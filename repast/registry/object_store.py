"""ObjectRegistryStore: the registry as one JSON object on S3 or GCS (`registry: s3://b/p/registry.json`).

Every write (apply, watermark, run) reads the object with its tag (S3 ETag, GCS generation) and
writes it back only if the tag is unchanged: two concurrent applies never lose an update. When
another writer came first, the write is re-read; if the project's version moved, the apply is a
RegistryConflict as on SQL, otherwise (another project, a watermark) it is retried. History is
kept in the same object, so an apply and its history entry are one atomic write. Readers cache
the object and re-read it on the registry's TTL.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from repast.errors import RegistryConflict
from repast.registry.base import (
    Change,
    HistoryEntry,
    MaterializationRecord,
    MaterializationRun,
    MonitoringRecord,
    RegistryStore,
    Snapshot,
)
from repast.registry.conditional_write import Stale, Timeouts, conditional_object
from repast.types.timestamps import as_utc

if TYPE_CHECKING:
    from collections.abc import Callable

    from repast.plugins.base_config import RegistryConfig, RepoSettings

_WRITE_ATTEMPTS = 20


class ObjectRegistryStore(RegistryStore):
    def __init__(self, config: RegistryConfig, repo_config: RepoSettings) -> None:
        timeouts = Timeouts(config.connect_timeout_seconds, config.read_timeout_seconds)
        self.object = conditional_object(config.path, "registry.path", config.endpoint_override, timeouts)
        self._lock = threading.Lock()
        self._cached: tuple[str, bytes] | None = None  # (tag, body) of the last read

    def _load(self) -> tuple[dict[str, Any], str | None]:
        """The registry document (a fresh copy) and its tag; unchanged bytes are not downloaded again."""
        with self._lock:
            cached = self._cached
        found = self.object.read(cached[0] if cached else None)
        if found is None:
            return {"format": 1, "projects": {}}, None
        body, tag = found
        if body is None and cached is not None:
            body = cached[1]
        assert body is not None
        with self._lock:
            self._cached = (tag, body)
        try:
            return json.loads(body), tag
        except ValueError:
            raise self.object.error("the object is not a repast registry (not JSON)") from None

    def _project(self, doc: dict[str, Any], project: str) -> dict[str, Any]:
        return doc["projects"].get(project) or {"version": 0, "specs": {}, "history": [], "watermarks": {},
                                                "runs": {}}

    def _update(self, change: Callable[[dict[str, Any]], Any]) -> Any:
        """Read, change, write if unchanged; on a lost race re-read and change again."""
        for _ in range(_WRITE_ATTEMPTS):
            doc, tag = self._load()
            result = change(doc)
            try:
                self.object.write(json.dumps(doc, sort_keys=True).encode(), tag)
                return result
            except Stale:
                continue
        raise RegistryConflict(f"registry {self.object.url}: {_WRITE_ATTEMPTS} writes in a row lost to other "
                               "writers; try again")

    def read(self, project: str) -> Snapshot:
        p = self._project(self._load()[0], project)
        return Snapshot(int(p["version"]), p["specs"])

    def version(self, project: str) -> int:
        return int(self._project(self._load()[0], project)["version"])

    def apply(self, project: str, changes: list[Change], expected_version: int, applied_by: str) -> int:
        def change(doc: dict[str, Any]) -> int:
            p = self._project(doc, project)
            if p["version"] != expected_version:
                raise self._conflict(project, expected_version, p)
            for ch in changes:
                kind = p["specs"].setdefault(ch.kind, {})
                kind.pop(ch.name, None)
                if ch.op != "delete":
                    kind[ch.name] = ch.spec
                if not kind:
                    p["specs"].pop(ch.kind)
            p["version"] += 1
            p["history"].append({"version": p["version"], "applied_at": datetime.now(UTC).isoformat(),
                                 "applied_by": applied_by, "changes": [c.to_history() for c in changes]})
            doc["projects"][project] = p
            return int(p["version"])

        return self._update(change)  # type: ignore[no-any-return]

    @staticmethod
    def _conflict(project: str, expected: int, p: dict[str, Any]) -> RegistryConflict:
        latest = p["history"][-1] if p["history"] else None
        by = f" (version {latest['version']}, applied by {latest['applied_by']} at {latest['applied_at']})" \
            if latest else ""
        return RegistryConflict(f"project '{project}' was changed by another apply since version {expected} was "
                                f"read{by}; run `repast plan` to see the current state and apply again")

    def history(self, project: str, limit: int = 50) -> list[HistoryEntry]:
        entries = self._project(self._load()[0], project)["history"][::-1][:limit]
        return [HistoryEntry.from_record(e["version"], as_utc(datetime.fromisoformat(e["applied_at"])),
                                         e["applied_by"], e["changes"]) for e in entries]

    def record_materialization(self, project: str, view: str, start: datetime, end: datetime,
                               storage: str = "") -> None:
        def change(doc: dict[str, Any]) -> None:
            p = self._project(doc, project)
            old = p["watermarks"].get(view)
            if old is not None and old["storage"] == storage and datetime.fromisoformat(old["end"]) >= end:
                return  # forward only for the same storage
            p["watermarks"][view] = {"storage": storage, "start": as_utc(start).isoformat(),
                                     "end": as_utc(end).isoformat(), "recorded_at": datetime.now(UTC).isoformat()}
            doc["projects"][project] = p

        self._update(change)

    def materializations(self, project: str) -> dict[str, MaterializationRecord]:
        marks = self._project(self._load()[0], project)["watermarks"]
        return {v: MaterializationRecord(v, datetime.fromisoformat(m["start"]), datetime.fromisoformat(m["end"]),
                                         datetime.fromisoformat(m["recorded_at"]), m["storage"])
                for v, m in marks.items()}

    def record_run(self, project: str, run: MaterializationRun) -> None:
        def change(doc: dict[str, Any]) -> None:
            p = self._project(doc, project)
            p["runs"][run.view] = {"start": run.start.isoformat(), "end": run.end.isoformat(),
                                   "finished_at": run.finished_at.isoformat(), "rows": run.rows}
            doc["projects"][project] = p

        self._update(change)

    def last_runs(self, project: str) -> dict[str, MaterializationRun]:
        runs = self._project(self._load()[0], project)["runs"]
        return {v: MaterializationRun(v, datetime.fromisoformat(r["start"]), datetime.fromisoformat(r["end"]),
                                      datetime.fromisoformat(r["finished_at"]), int(r["rows"]))
                for v, r in runs.items()}

    def project_names(self) -> list[str]:
        return sorted(self._load()[0]["projects"])

    def delete_project(self, project: str) -> None:
        def change(doc: dict[str, Any]) -> None:
            doc["projects"].pop(project, None)

        self._update(change)

    def record_monitoring(self, project: str, records: list[MonitoringRecord]) -> None:
        def change(doc: dict[str, Any]) -> None:
            p = self._project(doc, project)
            kept = p.setdefault("monitoring", {})
            for r in records:
                kept["|".join(r.key())] = {"kind": r.kind, "scope": r.scope, "view": r.view, "feature": r.feature,
                                           "day": r.day, "start": as_utc(r.start).isoformat(),
                                           "end": as_utc(r.end).isoformat(), "rows": r.rows, "values": r.values,
                                           "computed_at": as_utc(r.computed_at).isoformat()}
            doc["projects"][project] = p

        self._update(change)

    def monitoring_records(self, project: str, kind: str) -> list[MonitoringRecord]:
        kept = self._project(self._load()[0], project).get("monitoring", {}).values()
        records = [MonitoringRecord(m["kind"], m["scope"], m["view"], m["feature"], m["day"],
                                    datetime.fromisoformat(m["start"]), datetime.fromisoformat(m["end"]),
                                    int(m["rows"]), m["values"], datetime.fromisoformat(m["computed_at"]))
                   for m in kept if m["kind"] == kind]
        return sorted(records, key=lambda r: (r.view, r.feature, r.day, r.scope))
