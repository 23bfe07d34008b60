"""Aggregation tiles in the Redis online store.

Per (view, tile layout, entity key) one hash `repast:<project>:<view>:tiles:<layout>:<key>`, a
field per tile (its end, decimal) holding the tile's partials as a JSON array in layout order.
Marks (applied push batches, callers' offsets) are the hash `repast:<project>:<view>:tiles:marks`.

Writes go through one script per key (set the tiles, delete its tiles outside every window, set
the key's version field `v` to a token new with each write, and expire the key when its newest
tile leaves every window: PEXPIREAT NX then GT keeps the later time). `v` is what readers check
merged values kept between reads against (repast.aggregations.cache): a write by anyone changes it.
A push folds into the stored tiles under WATCH (the tile keys and the marks hash) and commits
tiles and marks in one MULTI/EXEC; a concurrent writer makes it retry, so no fold is lost. A read
is one HMGET per key of exactly the tiles of the window (one pipelined round trip).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pyarrow as pa

from repast.aggregations.layout import TileLayout
from repast.aggregations.merge import TileRow
from repast.online.tiles_sql import BATCH_MARK, added, layout_digest, tile_rows

_PUT_SCRIPT = """
local threshold, expire_ms = tonumber(ARGV[1]), ARGV[2]
local n = (#ARGV - 3) / 2
for i = 1, n do redis.call('HSET', KEYS[1], ARGV[2 + 2 * i], ARGV[3 + 2 * i]) end
if threshold then
  for _, field in ipairs(redis.call('HKEYS', KEYS[1])) do
    local tile = tonumber(field)
    if tile and tile <= threshold then redis.call('HDEL', KEYS[1], field) end
  end
end
redis.call('HSET', KEYS[1], 'v', ARGV[3])
redis.call('PEXPIREAT', KEYS[1], expire_ms, 'NX')
redis.call('PEXPIREAT', KEYS[1], expire_ms, 'GT')
return n
"""
_RETRIES = 20


def prefix(project: str, view: str, layout: TileLayout) -> str:
    return f"repast:{project}:{view}:tiles:{layout_digest(layout.signature())}:"


def marks_key(project: str, view: str) -> str:
    return f"repast:{project}:{view}:tiles:marks"


def _put_commands(pre: str, layout: TileLayout, rows: Sequence[tuple[Any, ...]], sha: str,
                  expire_through_us: int | None) -> list[tuple[Any, ...]]:
    """One script call per key: its tiles, the expiry threshold, the key's expiry time and a new
    version token (random: a key deleted and written again never repeats one)."""
    token = os.urandom(12).hex()
    by_key: dict[str, list[tuple[Any, ...]]] = {}
    for row in rows:
        by_key.setdefault(row[0], []).append(row)
    out = []
    for key, tiles in by_key.items():
        expire_ms = (max(t[1] for t in tiles) + layout.horizon_us) // 1000 + 1
        args: list[Any] = ["" if expire_through_us is None else expire_through_us, expire_ms, token]
        for t in tiles:
            args += [t[1], json.dumps(t[2:], separators=(",", ":"))]
        out.append(("EVALSHA", sha, 1, pre + key, *args))
    return out


def write_replace(pipeline: Callable[[list[tuple[Any, ...]]], list[Any]], sha: str, project: str, view: str,
                  layout: TileLayout, tiles: pa.Table, expire_through_us: int | None) -> int:
    rows = tile_rows(tiles, layout)
    pipeline(_put_commands(prefix(project, view, layout), layout, rows, sha, expire_through_us))
    return len(rows)


def write_add(client: Any, sha: str, project: str, view: str, layout: TileLayout, tiles: pa.Table,
              batch_id: str | None, marks: Mapping[str, str] | None) -> int:
    """Fold into the stored tiles under WATCH; tiles, batch mark and marks commit in one MULTI/EXEC."""
    import redis

    rows = tile_rows(tiles, layout)
    pre, mkey = prefix(project, view, layout), marks_key(project, view)
    keys = sorted({r[0] for r in rows})
    for _ in range(_RETRIES):
        with client.pipeline(transaction=True) as pipe:
            try:
                pipe.watch(mkey, *(pre + k for k in keys))
                if batch_id is not None and pipe.hexists(mkey, BATCH_MARK + batch_id):
                    pipe.unwatch()
                    return 0
                merged = added(layout, _stored(pipe, pre, rows), rows) if rows else []
                pipe.multi()
                for command in _put_commands(pre, layout, merged, sha, None):
                    pipe.execute_command(*command)
                entries = dict(marks or {})
                if batch_id is not None:
                    entries[BATCH_MARK + batch_id] = str(max((r[1] for r in rows), default=0))
                if entries:
                    pipe.hset(mkey, mapping=entries)
                pipe.execute()
                return len(merged)
            except redis.WatchError:
                continue
    raise redis.WatchError(f"tiles of view '{view}' kept changing under {_RETRIES} attempts to add a push")


def _stored(pipe: Any, pre: str, rows: Sequence[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """The stored tiles among the (key, end) pairs of `rows` (read while watching)."""
    by_key: dict[str, list[int]] = {}
    for r in rows:
        by_key.setdefault(r[0], []).append(r[1])
    out = []
    for key, ends in by_key.items():
        for end, value in zip(ends, pipe.hmget(pre + key, ends), strict=True):
            if value is not None:
                out.append((key, end, *json.loads(value)))
    return out


def read_commands(project: str, view: str, layout: TileLayout, keys: Sequence[str], after_us: int,
                  through_us: int) -> tuple[list[int], list[tuple[Any, ...]]]:
    """The tile ends of the range and one HMGET of them per key (no further back than any window)."""
    g = layout.tile_us
    after_us = max(after_us, through_us - layout.horizon_us - g)
    ends = list(range(after_us - after_us % g + g, through_us + 1, g))
    pre = prefix(project, view, layout)
    return ends, [("HMGET", pre + k, *ends) for k in keys]


def decode(ends: list[int], replies: list[list[bytes | None]]) -> list[list[TileRow]]:
    out: list[list[TileRow]] = []
    for values in replies:
        present = [(e, v) for e, v in zip(ends, values, strict=True) if v is not None]
        if not present:
            out.append([])
            continue
        # One JSON parse per key: the tiles joined into one array.
        decoded = json.loads(b"[" + b",".join(v for _, v in present) + b"]")
        out.append([(e, *d) for (e, _), d in zip(present, decoded, strict=True)])
    return out


VERSION = "v"  # the field of a key's tile hash holding its version token


def version_commands(project: str, view: str, layout: TileLayout, keys: Sequence[str]) -> list[tuple[Any, ...]]:
    """Per key, an HGET of the version token of each tile level (fine, then coarse when kept)."""
    prefixes = [prefix(project, view, level) for level in layout.levels()]
    return [("HGET", pre + k, VERSION) for k in keys for pre in prefixes]


def versions(layout: TileLayout, replies: list[bytes | None]) -> list[tuple[bytes | None, ...] | None]:
    """Per key, its levels' tokens; None (keep nothing) when its fine tiles have no token yet."""
    width = len(layout.levels())
    out: list[tuple[bytes | None, ...] | None] = []
    for i in range(0, len(replies), width):
        tokens = tuple(replies[i:i + width])
        out.append(tokens if tokens[0] is not None else None)
    return out
