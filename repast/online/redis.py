"""RedisOnlineStore: one hash per (project, view, entity key), one field per feature.

Key `repast:<project>:<view>:<entity key>`; fields `_ts` and `_cts` (event and created timestamps,
UTC microseconds, `_cts` empty when unknown) plus one per feature, in the text form of
repast.online.codec; a null feature is an absent field. Latest-wins is a Lua script that runs
server-side per batch of rows, so concurrent writers cannot interleave a check and a write.
Reads are one HMGET per key, all keys of a request in one pipeline (one round trip).

A view's layout signature is kept in the hash `repast:<project>:__views__`; when it changes on
apply, the view's keys are deleted (SCAN + UNLINK) and come back with the next materialization.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pyarrow as pa
from pydantic import Field, SecretStr

from repast.definitions import FeatureView
from repast.errors import ConfigError, StoreUnavailable, require_module
from repast.online import redis_tiles
from repast.online.base import (
    OnlineStore,
    ReadRow,
    StreamOffsets,
    new_storage_record,
    parse_storage_record,
    view_signature,
)
from repast.online.codec import Decoder, text_decoder, text_values
from repast.online.keys import write_rows
from repast.plugins.base_config import BackendConfig
from repast.plugins.capabilities import Capabilities

if TYPE_CHECKING:
    from repast.aggregations.layout import TileLayout
    from repast.aggregations.merge import TileRow

_ROWS_PER_CALL = 1000  # rows per script call: bounds the time Redis is busy with one call

# ARGV: ttl_seconds, n_features, dense ('1' when no value is null), feature names..., then per row
# (KEYS[i]): ts, cts, [null mask: '1' = a value follows, only when not dense], values.
# Null created timestamps ('') sort before every other value. The dense path reuses one argument
# table, which keeps the script near the cost of a plain HSET.
_WRITE_SCRIPT = """
local ttl, nf, dense = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3] == '1'
local args = {'_ts', '', '_cts', ''}
for j = 1, nf do args[3 + 2 * j] = ARGV[3 + j]; args[4 + 2 * j] = '' end
local p = 4 + nf
local written = 0
for i = 1, #KEYS do
  local key, ts, cts = KEYS[i], ARGV[p], ARGV[p + 1]
  local cur = redis.call('HMGET', key, '_ts', '_cts')
  local newer = true
  if cur[1] then
    local nts, ots = tonumber(ts), tonumber(cur[1])
    if nts < ots then
      newer = false
    elseif nts == ots then
      local oc = cur[2] or ''
      if cts == '' then newer = (oc == '') else newer = (oc == '' or tonumber(cts) >= tonumber(oc)) end
    end
  end
  if dense then
    if newer then
      args[2] = ts; args[4] = cts
      for j = 1, nf do args[4 + 2 * j] = ARGV[p + 1 + j] end
      redis.call('HSET', key, unpack(args))
    end
    p = p + 2 + nf
  else
    local mask = ARGV[p + 2]
    local set, nulls = {'_ts', ts, '_cts', cts}, {}
    p = p + 3
    for j = 1, nf do
      if string.byte(mask, j) == 49 then
        set[#set + 1] = ARGV[3 + j]; set[#set + 1] = ARGV[p]; p = p + 1
      else
        nulls[#nulls + 1] = ARGV[3 + j]
      end
    end
    if newer then
      if cur[1] and #nulls > 0 then redis.call('HDEL', key, unpack(nulls)) end
      redis.call('HSET', key, unpack(set))
    end
  end
  if newer then
    if ttl > 0 then redis.call('EXPIRE', key, ttl) end
    written = written + 1
  end
end
return written
"""


class RedisOnlineConfig(BackendConfig):
    type: Literal["redis"] = "redis"
    redis_type: Literal["redis"] = "redis"  # Feast's key; cluster and sentinel are not supported yet
    # Feast's "host:port,db=0,password=...,ssl=true" or a redis:// / rediss:// / unix:// URL.
    connection_string: SecretStr = SecretStr("localhost:6379")
    key_ttl_seconds: int | None = Field(default=None, ge=0)  # Redis expires keys not written for this long
    # Bounds on every call, so a Redis that is down or frozen is a 503 within about a second.
    connect_timeout_seconds: float = Field(default=0.5, gt=0)
    read_timeout_seconds: float = Field(default=0.5, gt=0)


def connection_kwargs(connection_string: str) -> dict[str, Any]:
    """redis.Redis(...) arguments from Feast's "host:port,key=value,..." form."""
    head, *options = [part.strip() for part in connection_string.split(",")]
    host, _, port = head.rpartition(":") if ":" in head else (head, "", "6379")
    kwargs: dict[str, Any] = {"host": host or "localhost", "port": int(port or 6379)}
    for opt in options:
        key, _, value = opt.partition("=")
        if key == "db":
            kwargs["db"] = int(value)
        elif key in ("password", "username"):
            kwargs[key] = value
        elif key == "ssl":
            kwargs["ssl"] = value.lower() in ("true", "1", "yes")
        else:
            raise ConfigError(f"online_store.connection_string: unknown option '{key}'; "
                              "known: db, password, username, ssl")
    return kwargs


def _no_client_setinfo(client_class: Any) -> dict[str, Any]:
    """Options that skip CLIENT SETINFO when a connection opens: against a frozen server each of
    those round trips would wait out the read timeout before the request's own command."""
    import inspect

    if "driver_info" in inspect.signature(client_class.__init__).parameters:  # redis-py >= 7
        return {"driver_info": None}
    return {"lib_name": None, "lib_version": None}


def _glob_escape(text: str) -> str:
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)


class RedisOnlineStore(OnlineStore):
    Config = RedisOnlineConfig
    capabilities = Capabilities(tiles=True, tile_versions=True)

    def __init__(self, config: RedisOnlineConfig, repo_config: Any) -> None:
        super().__init__(config, repo_config)
        self._redis: Any = None
        self._sha: str | None = None
        self._tiles_sha: str | None = None
        self._decoders: dict[tuple[int, tuple[str, ...]], tuple[FeatureView, list[Decoder]]] = {}

    def _client(self) -> Any:
        if self._redis is None:
            require_module("redis", "redis")
            require_module("hiredis", "redis")
            import redis
            from redis.backoff import NoBackoff
            from redis.retry import Retry

            conn = self.config.connection_string.get_secret_value()
            # One immediate retry, and only for a dropped connection (a restarted Redis): redis-py's
            # default retries with backoff held a request for seconds. A timeout is not retried.
            opts: dict[str, Any] = {"socket_connect_timeout": self.config.connect_timeout_seconds,
                                    "socket_timeout": self.config.read_timeout_seconds,
                                    "health_check_interval": 30,
                                    **_no_client_setinfo(redis.Redis),
                                    "retry": Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,))}
            try:
                if conn.startswith(("redis://", "rediss://", "unix://")):
                    client = redis.Redis.from_url(conn, **opts)
                else:
                    client = redis.Redis(**connection_kwargs(conn), **opts)
            except ValueError as e:
                raise ConfigError(f"online_store.connection_string is not usable: {e}") from None
            self._redis = client
        return self._redis

    def _call(self, fn: Any, *args: Any) -> Any:
        """Run a Redis call, turning connection failures into StoreUnavailable."""
        import redis

        try:
            return fn(*args)
        except (redis.ConnectionError, redis.TimeoutError, redis.exceptions.BusyLoadingError) as e:
            raise StoreUnavailable(f"Redis online store cannot be reached: {e}") from None

    @staticmethod
    def _prefix(project: str, view: str) -> str:
        return f"repast:{project}:{view}:"

    def update(self, project: str, views_to_keep: list[FeatureView], views_to_delete: list[FeatureView]) -> None:
        client = self._client()
        meta = f"repast:{project}:__views__"
        stored = {k.decode(): v.decode() for k, v in self._call(client.hgetall, meta).items()}
        for view in views_to_keep:
            signature = view_signature(view)
            layout, storage = parse_storage_record(stored.get(view.name))
            if layout != signature:
                if view.name in stored:
                    self._delete_view_keys(project, view.name)
                    self._call(client.delete, self._offsets_key(project, view.name))
                self._call(client.hset, meta, view.name, new_storage_record(signature))
            elif storage is None:  # made before storage ids: adopt it as it is
                self._call(client.hset, meta, view.name, new_storage_record(signature))
        for view in views_to_delete:
            self._delete_view_keys(project, view.name)
            self._call(client.hdel, meta, view.name)
            self._call(client.delete, self._offsets_key(project, view.name))
        self._decoders.clear()

    def _delete_view_keys(self, project: str, view: str) -> None:
        client = self._client()
        pattern = _glob_escape(self._prefix(project, view)) + "*"

        def delete() -> None:
            batch: list[bytes] = []
            for key in client.scan_iter(match=pattern, count=1000):
                batch.append(key)
                if len(batch) >= 1000:
                    client.unlink(*batch)
                    batch = []
            if batch:
                client.unlink(*batch)
        self._call(delete)

    def storage_id(self, project: str, view: FeatureView) -> str | None:
        record = self._call(self._client().hget, f"repast:{project}:__views__", view.name)
        layout, storage = parse_storage_record(record.decode() if record is not None else None)
        return storage if layout == view_signature(view) else None

    def teardown(self, project: str, views: list[FeatureView]) -> None:
        self.update(project, [], views)
        self._call(self._client().delete, f"repast:{project}:__views__")

    def write_batch(self, project: str, view: FeatureView, batch: pa.RecordBatch | pa.Table) -> int:
        rows = write_rows(view, batch)
        if len(rows) == 0:
            return 0
        self._call(self._run_scripts, self._script_calls(project, view, rows))
        return len(rows)

    @staticmethod
    def _offsets_key(project: str, view: str) -> str:
        return f"repast:{project}:__stream_offsets__:{view}"

    def write_batch_at_offsets(self, project: str, view: FeatureView, batch: pa.RecordBatch | pa.Table | None,
                               offsets: StreamOffsets) -> int:
        """StreamOffsetStore: the rows' scripts and the offsets in one MULTI/EXEC transaction. EVAL
        (not EVALSHA) inside it: a script missing on the server would fail that call alone at EXEC
        while the offsets were still set."""
        rows = write_rows(view, batch) if batch is not None else None
        calls = [("EVAL", _WRITE_SCRIPT, *call[2:]) for call in self._script_calls(project, view, rows)("")] \
            if rows is not None and len(rows) else []
        fields = [x for (topic, partition), offset in offsets.items() for x in (f"{topic}\0{partition}", offset)]
        commands = [("MULTI",), *calls, *([("HSET", self._offsets_key(project, view.name), *fields)] if fields else []),
                    ("EXEC",)]
        replies = self._call(self._pipeline, commands)
        failed = [r for r in (replies[-1] or [None]) if r is None or isinstance(r, Exception)]
        if failed:
            raise StoreUnavailable(f"Redis online store: a stream write to '{view.name}' failed: {failed[0]}")
        return len(rows) if rows is not None else 0

    def stream_offsets(self, project: str, view_name: str) -> dict[tuple[str, int], int]:
        stored = self._call(self._client().hgetall, self._offsets_key(project, view_name))
        out = {}
        for field, offset in stored.items():
            topic, _, partition = field.decode().rpartition("\0")
            out[(topic, int(partition))] = int(offset)
        return out

    def _script_calls(self, project: str, view: FeatureView, rows: Any) -> Callable[[str], Iterator[tuple[Any, ...]]]:
        n = len(rows)
        prefix = self._prefix(project, view.name)
        feats = view.features
        dense = not any(rows.features[f.name].null_count for f in feats)
        head = [self.config.key_ttl_seconds or 0, len(feats), "1" if dense else "0", *(f.name for f in feats)]

        def script_calls(sha: str) -> Iterator[tuple[Any, ...]]:
            # Converted chunk by chunk, so Redis runs one call while the next is being built.
            for start in range(0, n, _ROWS_PER_CALL):
                stop = min(start + _ROWS_PER_CALL, n)
                arrays = [rows.features[f.name].slice(start, stop - start) for f in feats]
                columns = [rows.event_us.slice(start, stop - start).to_pylist(),
                           [("" if c is None else c) for c in rows.created_us.slice(start, stop - start).to_pylist()]]
                if not dense:
                    columns.append(_null_masks(arrays, stop - start))
                columns += [text_values(a, f.dtype) for a, f in zip(arrays, feats, strict=True)]
                keys = [prefix + k for k in rows.keys.slice(start, stop - start).to_pylist()]
                part = zip(*columns, strict=True)
                args = [x for row in part for x in row] if dense else \
                    [x for row in part for x in row if x is not None]
                yield ("EVALSHA", sha, stop - start, *keys, *head, *args)

        return script_calls

    def _run_scripts(self, script_calls: Callable[[str], Iterator[tuple[Any, ...]]]) -> None:
        client = self._client()
        if self._sha is None:
            self._sha = client.script_load(_WRITE_SCRIPT)
        try:
            self._pipeline(script_calls(self._sha))
        except Exception as e:
            if "NOSCRIPT" not in str(e):
                raise
            # The server lost its scripts (restart, SCRIPT FLUSH): load again and re-send; writes
            # are idempotent, so calls that had already run may run twice.
            self._sha = None
            self._run_scripts(script_calls)

    def _pipeline(self, commands: Iterable[tuple[Any, ...]]) -> list[Any]:
        """Send every command before reading any reply (one round trip), packed by hiredis directly:
        redis-py's generic pipeline costs more per command than Redis takes to run it."""
        import hiredis

        pool = self._client().connection_pool
        conn = pool.get_connection()
        try:
            sent, buffered, size = 0, [], 0
            for command in commands:
                packed = hiredis.pack_command(command)
                buffered.append(packed)
                size += len(packed)
                sent += 1
                if size >= 65536:  # many small commands go out in one send, large ones at once
                    conn.send_packed_command([b"".join(buffered)], check_health=False)
                    buffered, size = [], 0
            if buffered:
                conn.send_packed_command([b"".join(buffered)], check_health=False)
            return [conn.read_response() for _ in range(sent)]
        except BaseException:
            conn.disconnect()  # replies of later commands may still be pending on this connection
            raise
        finally:
            pool.release(conn)

    def _view_decoders(self, view: FeatureView, features: Sequence[str]) -> list[Decoder]:
        key = (id(view), tuple(features))
        hit = self._decoders.get(key)
        if hit is None or hit[0] is not view:
            if len(self._decoders) > 4096:
                self._decoders.clear()
            dtypes = {f.name: f.dtype for f in view.features}
            hit = self._decoders[key] = (view, [text_decoder(dtypes[f]) for f in features])
        return hit[1]

    def read(self, project: str, view: FeatureView, keys: Sequence[str], features: Sequence[str]) -> list[ReadRow]:
        client = self._client()
        decoders = self._view_decoders(view, features)
        prefix = self._prefix(project, view.name)
        if len(keys) == 1:
            results = [self._call(client.hmget, prefix + keys[0], "_ts", *features)]
        else:
            results = self._call(self._pipeline, [("HMGET", prefix + k, "_ts", *features) for k in keys])
        return [None if values[0] is None else
                (int(values[0]), *[None if v is None else d(v) for v, d in zip(values[1:], decoders, strict=True)])
                for values in results]

    def _tile_script(self) -> str:
        if self._tiles_sha is None:
            self._tiles_sha = self._call(self._client().script_load, redis_tiles._PUT_SCRIPT)
        return self._tiles_sha

    def write_tiles(self, project: str, view: FeatureView, layout: TileLayout, tiles: pa.Table, *, add: bool,
                    batch_id: str | None = None, marks: Mapping[str, str] | None = None,
                    expire_through_us: int | None = None) -> int:
        """TileStorage: see repast.online.redis_tiles (the key of a tile expires with its newest tile)."""
        for attempt in (1, 2):
            try:
                if add or batch_id is not None or marks:
                    return self._call(redis_tiles.write_add, self._client(),  # type: ignore[no-any-return]
                                      self._tile_script(), project, view.name, layout, tiles, batch_id, marks)
                return self._call(redis_tiles.write_replace, self._pipeline,  # type: ignore[no-any-return]
                                  self._tile_script(), project, view.name, layout, tiles, expire_through_us)
            except Exception as e:
                if "NOSCRIPT" not in str(e) or attempt == 2:
                    raise
                self._tiles_sha = None  # the server lost its scripts: load again (writes are idempotent)
        raise AssertionError("unreachable")

    def read_tiles(self, project: str, view: FeatureView, layout: TileLayout, keys: Sequence[str],
                   after_us: int, through_us: int) -> list[list[TileRow]]:
        ends, commands = redis_tiles.read_commands(project, view.name, layout, keys, after_us, through_us)
        # Packed by hiredis even for one key: redis-py encodes each of the ~300 tile fields in Python.
        return redis_tiles.decode(ends, self._call(self._pipeline, commands))

    def read_tile_ranges(self, project: str, view: FeatureView, keys: Sequence[str],
                         ranges: Sequence[tuple[TileLayout, int, int]]) -> list[list[list[TileRow]]]:
        """TileStorage: the HMGETs of every range in one pipelined round trip."""
        reads = [redis_tiles.read_commands(project, view.name, layout, keys, after, through)
                 for layout, after, through in ranges]
        replies = self._call(self._pipeline, [c for _, commands in reads for c in commands])
        out, at = [], 0
        for ends, commands in reads:
            out.append(redis_tiles.decode(ends, replies[at:at + len(commands)]))
            at += len(commands)
        return out

    def tile_versions(self, project: str, view: FeatureView, layout: TileLayout,
                      keys: Sequence[str]) -> list[Hashable | None]:
        """TileVersionReader: each key's version fields (repast.online.redis_tiles), one round trip."""
        replies = self._call(self._pipeline, redis_tiles.version_commands(project, view.name, layout, keys))
        return list(redis_tiles.versions(layout, replies))

    def read_marks(self, project: str, view: FeatureView, names: Sequence[str]) -> dict[str, str]:
        values = self._call(self._client().hmget, redis_tiles.marks_key(project, view.name), list(names))
        return {n: v.decode() for n, v in zip(names, values, strict=True) if v is not None}

    def ping(self) -> None:
        self._call(self._client().ping)

    def close(self) -> None:
        if self._redis is not None:
            self._redis.close()
            self._redis = None


def _null_masks(columns: list[pa.Array], n: int) -> list[str]:
    """Per row, '1' per non-null feature and '0' per null one: which values the script receives."""
    if not any(c.null_count for c in columns):
        return ["1" * len(columns)] * n
    valid = np.stack([np.asarray(c.is_valid()) for c in columns], axis=1).astype(np.uint8) + ord("0")
    width = len(columns)
    text = valid.tobytes().decode("ascii")
    return [text[i * width:(i + 1) * width] for i in range(n)]
