"""The served-feature log on disk: spools the feature server appends to, converted to Parquet.

The serving process only appends what it already has, the JSON answer it served, to a spool file:
one line per served response, `{"i": its number, "t": microseconds since the epoch, "q": the
request's entity/request columns, "r": the answer}`, a batch of lines in one write. A spool is
`<log path>/_spool/<started>-<host>-<pid>-<id prefix>-<n>.jsonl` while its writer appends to it (a
response's request id is the id prefix and its number in 16 hex digits) and is renamed
to `....sealed.jsonl` when sealed (every flush interval). Turning spools into the Parquet log
(Arrow conversion: more CPU than serving the response) happens outside the serving process: in the
server's niced conversion process as soon as a spool is sealed (repast/jobs/convert_served_log.py),
and in any reader for what is left (`convert_spools`, called by `read_feature_log` and the
served-log source). Each sealed spool becomes `<log path>/<its name>.parquet`, under an exclusive
lock on the spool (one converter parses it; a reader waits for it): written beside it, then
renamed, then the spool removed; a converter that finds both keeps the Parquet file, so a kill at
any step loses and duplicates nothing. A spool whose writer is gone (its pid is dead on this host,
or it was not written for `STALE_SECS`) is converted like a sealed one; its last line, torn by a
kill mid-write, is skipped. A spool is
parsed in C++ and laid out with Arrow (repast/jobs/spool_convert.py); what that path does not lay out
as `pa.array` would (mixed-type columns, objects) is converted here line by line, and a damaged
line in the middle (not a served record: a writer only appends whole lines) is skipped, logged and
kept in `_spool/rejected/`.
Columns per served row: `__request_id`, `__log_timestamp` (UTC), the join keys and request data as
sent, then per feature its value, `<feature>__status` and `<feature>__timestamp`.
"""

from __future__ import annotations

import fcntl
import logging
import os
import socket
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from repast.jobs.spool_convert import UTC_US, event_times, spool_table

SPOOL_DIR = "_spool"
ACTIVE = ".jsonl"
SEALED = ".sealed.jsonl"
PARTIAL = ".partial"  # a Parquet file being written, renamed when whole
REJECTED = "rejected"  # under the spool directory: damaged lines, kept for a person to look at
STALE_SECS = 600.0  # a live writer seals its spool every flush interval; one untouched this long is orphaned
_HOST = socket.gethostname().replace("-", "_")
_log = logging.getLogger(__name__)


def spool_record(number: int, logged_at_us: int, request: dict[str, list[Any]], answer: bytes) -> bytes:
    """One served response as a spool line: the answer's bytes as they were served (no parsing),
    built by one bytes formatting (the feature server's request path does the same, inline)."""
    return SPOOL_LINE % (number, logged_at_us, orjson.dumps(request, option=REQUEST_OPTIONS, default=str), answer)


SPOOL_LINE = b'{"i":%d,"t":%d,"q":%b,"r":%b}\n'  # % (number, time in us, the request's JSON, answer)
REQUEST_OPTIONS = orjson.OPT_SERIALIZE_NUMPY  # the request's JSON: these, and str() of what JSON has no type for


class SpoolFile:
    """The spool one writer appends to under a log path; `seal` hands it to the readers."""

    def __init__(self, path: str, id_prefix: str) -> None:
        """`id_prefix`: 16 hex digits, the writer's; with a record's number, its request id."""
        self.directory = os.path.join(path, SPOOL_DIR)
        self.prefix = f"{datetime.now(UTC):%Y%m%dT%H%M%S%f}-{_HOST}-{os.getpid()}-{id_prefix}"
        self.count = 0
        self._name: str | None = None
        self._fd = -1

    def append(self, lines: bytes | bytearray | memoryview) -> None:
        """Whole lines, in one write (the rest in order after a short one); the file is opened on
        the first batch after a seal."""
        if self._fd < 0:
            os.makedirs(self.directory, exist_ok=True)
            self._name = os.path.join(self.directory, f"{self.prefix}-{self.count:06d}")
            self._fd = os.open(self._name + ACTIVE, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            self.count += 1
        rest = memoryview(lines)
        while rest:
            rest = rest[os.write(self._fd, rest):]

    def seal(self) -> bool:
        """Close the spool and hand it to the readers; False when nothing was written since the last seal."""
        if self._fd < 0 or self._name is None:
            return False
        os.close(self._fd)
        self._fd = -1
        os.replace(self._name + ACTIVE, self._name + SEALED)
        return True


def spool_items(data: bytes, id_prefix: str) -> tuple[list[tuple[str, int, dict[str, list[Any]], dict[str, Any]]],
                                                 list[bytes]]:
    """The records of a spool's bytes, (request id, time in us, request, answer), and its bad lines.
    The part after the last newline is a line torn by a kill mid-write (or nothing) and is skipped;
    a complete line that is not a served record is returned as bad."""
    items, bad = [], []
    for line in data.split(b"\n")[:-1]:
        try:
            record = orjson.loads(line)
            items.append((f"{id_prefix}{record['i']:016x}", record["t"], record["q"], record["r"]))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            bad.append(line)
    return items, bad


def _orphaned(name: str, now: float) -> bool:
    """An active spool whose writer is gone: its pid is dead on this host, or it is stale."""
    parts = os.path.basename(name).split("-")
    try:
        if len(parts) >= 4 and parts[1] == _HOST:
            os.kill(int(parts[2]), 0)
        return now - os.path.getmtime(name) > STALE_SECS
    except ProcessLookupError:
        return True
    except (OSError, ValueError):
        return False


def convert_spools(path: str, wait: bool = True) -> int:
    """Turn every sealed (or orphaned) spool under the log `path` into a Parquet file of the log;
    returns the served rows converted. Safe to run from several processes at once: a spool is
    converted under a lock on it, so it is parsed once; with `wait=False` (the background
    conversion) a spool someone else is converting is left to them, else it is waited for."""
    directory = os.path.join(path, SPOOL_DIR)
    try:
        names = sorted(os.listdir(directory))
    except FileNotFoundError:
        return 0
    now = datetime.now(UTC).timestamp()
    _remove_stale_partials(path, now)
    rows = 0
    for name in names:
        spool = os.path.join(directory, name)
        if name.endswith(SEALED):
            stem = name[: -len(SEALED)]
        elif name.endswith(ACTIVE) and _orphaned(spool, now):
            stem = name[: -len(ACTIVE)]
        else:
            continue
        rows += _convert(spool, os.path.join(path, stem + ".parquet"), wait)
    return rows


def _convert(spool: str, final: str, wait: bool) -> int:
    """The spool as the Parquet file `final` (none when it already exists: converted before a crash
    kept the spool), then the spool removed; returns the rows written. Each step leaves what a
    later run completes: the Parquet file is written aside and renamed, the spool removed last."""
    try:
        fd = os.open(spool, os.O_RDONLY)
    except FileNotFoundError:  # converted by someone else
        return 0
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # being converted by someone else
            return 0
        if not os.path.exists(spool):  # converted and removed while we waited for the lock
            return 0
        with os.fdopen(os.dup(fd), "rb") as f:
            data = f.read()
        table = None
        if not os.path.exists(final):
            parts = os.path.basename(spool).split("-")
            prefix = parts[3] if len(parts) > 3 else ""
            table = spool_table(spool, prefix, data.count(b"\n"))
            if table is None:
                table = _line_by_line(data, prefix, spool)
        if table is not None:
            partial = f"{final}.{uuid.uuid4().hex[:8]}{PARTIAL}"
            pq.write_table(table, partial)
            os.replace(partial, final)
        try:
            os.unlink(spool)
        except FileNotFoundError:
            pass
        return 0 if table is None else table.num_rows
    finally:
        os.close(fd)  # and with it the lock


def _remove_stale_partials(path: str, now: float) -> None:
    """Parquet files a killed conversion left half-written (readers never read them)."""
    for name in os.listdir(path):
        if name.endswith(PARTIAL):
            try:
                if now - os.path.getmtime(os.path.join(path, name)) > STALE_SECS:
                    os.unlink(os.path.join(path, name))
            except FileNotFoundError:
                pass


def _line_by_line(data: bytes, id_prefix: str, spool: str) -> pa.Table | None:
    """The spool converted in Python, a line at a time (what the C++ path does not lay out as
    `pa.array` would). A complete line that is not a served record (the file was damaged: a writer
    only appends whole lines) is not lost: it is kept in `_spool/rejected/<spool name>` and logged."""
    items, bad = spool_items(data, id_prefix)
    if bad:
        rejected = os.path.join(os.path.dirname(spool), REJECTED)
        os.makedirs(rejected, exist_ok=True)
        with open(os.path.join(rejected, os.path.basename(spool)), "ab") as f:
            f.write(b"".join(line + b"\n" for line in bad))
        _log.warning("served-feature log: %d damaged lines of %s skipped, kept in %s", len(bad), spool, rejected)
    return served_tables(items) if items else None


def read_feature_log(path: str) -> pa.Table:
    """Every row logged under a FileLoggingDestination path (sealed spools converted first)."""
    convert_spools(path)
    files = sorted(os.path.join(path, f) for f in os.listdir(path) if f.endswith(".parquet"))
    if not files:
        return pa.table({})
    return pa.concat_tables([pq.read_table(f) for f in files], promote_options="permissive")


class _Columns:
    """The log columns of responses of one shape (request columns and output names), as Python
    lists laid out once, so adding a response is a few list extends."""

    def __init__(self, request: tuple[str, ...], names: tuple[str, ...]) -> None:
        self.request_only = [k for k in request if k not in names]
        self.names = names
        self.features = [i for i, n in enumerate(names) if n not in request]  # join keys get no status/time
        self.ids: list[str] = []
        self.times: list[int] = []
        self.requested: list[list[Any]] = [[] for _ in self.request_only]
        self.values: list[list[Any]] = [[] for _ in names]
        self.statuses: list[list[Any]] = [[] for _ in names]
        self.stamps: list[list[Any]] = [[] for _ in names]

    def add(self, request_id: str, logged_at_us: int, request: dict[str, list[Any]], results: list[Any]) -> None:
        n = len(results[0]["values"]) if results else 0
        self.ids.extend([request_id] * n)
        self.times.extend([logged_at_us] * n)
        for column, name in zip(self.requested, self.request_only, strict=True):
            column.extend(request[name])
        for column, result in zip(self.values, results, strict=True):
            column.extend(result["values"])
        for i in self.features:
            self.statuses[i].extend(results[i]["statuses"])
            self.stamps[i].extend(results[i]["event_timestamps"])

    def table(self) -> pa.Table:
        columns: dict[str, pa.Array] = {"__request_id": pa.array(self.ids, pa.string()),
                                        "__log_timestamp": pa.array(self.times, pa.int64()).cast(UTC_US)}
        for name, column in zip(self.request_only, self.requested, strict=True):
            columns[name] = _column(column)
        features = set(self.features)
        for i, name in enumerate(self.names):
            columns[name] = _column(self.values[i])
            if i in features:
                columns[f"{name}__status"] = pa.array(self.statuses[i], pa.string())  # FieldStatus: str enum
                columns[f"{name}__timestamp"] = event_times(pa.array(self.stamps[i], pa.string()))
        return pa.table(columns)


def served_tables(items: list[tuple[str, int, dict[str, list[Any]], dict[str, Any]]]) -> pa.Table:
    """Served responses as log rows, in order: responses of one shape (one service's, normally all)
    are joined as Python lists and converted with one Arrow array per column."""
    groups: list[tuple[tuple[tuple[str, ...], tuple[str, ...]], _Columns]] = []
    for request_id, logged_at_us, request, answer in items:
        names = tuple(answer["metadata"]["feature_names"])
        key = (tuple(request), names)
        if not groups or groups[-1][0] != key:
            groups.append((key, _Columns(key[0], names)))
        groups[-1][1].add(request_id, logged_at_us, request, answer["results"])
    tables = [columns.table() for _, columns in groups]
    return pa.concat_tables(tables, promote_options="permissive") if len(tables) > 1 else tables[0]


def _column(values: list[Any]) -> pa.Array:
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed or unusual values: keep their text
        return pa.array([None if v is None else str(v) for v in values], pa.string())
