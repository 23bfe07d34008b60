"""The OnlineStore interface: per-view typed storage of the latest row per entity key.

Every store keeps, per feature view and entity key, exactly one row: the latest by
(event_ts, created_ts), with one typed column (or hash field) per feature. The latest-wins rule is
enforced by the store itself (a conditional upsert, a Lua script), so writes may arrive in any
order, be repeated, or be cut off midway and re-run, and the stored state is the same. On equal
(event_ts, created_ts) the later write wins, so re-sending a row is harmless and a corrected value
sent with the same timestamps replaces the old one.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Hashable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

import pyarrow as pa

from repast.plugins.capabilities import Capabilities, capabilities_of, write_refused

if TYPE_CHECKING:
    from repast.aggregations.layout import TileLayout
    from repast.aggregations.merge import TileRow
    from repast.definitions import FeatureView
    from repast.plugins.base_config import BackendConfig, RepoSettings

# One read result per requested key: None when the key is not stored, else a tuple of the event
# timestamp (UTC microseconds since the epoch) followed by the requested features' values, as
# Python values of their declared types (None for a null).
ReadRow = tuple[Any, ...] | None


def view_signature(view: FeatureView) -> str:
    """What the storage layout of a view depends on; a change means the storage is rebuilt."""
    keys = ",".join(view.join_keys)
    fields = ",".join(f"{f.name}:{f.dtype}" for f in view.features)
    return f"keys={keys};features={fields}"


_STORAGE = ";storage="


def new_storage_record(layout: str) -> str:
    """What a store records for storage it just created: its layout signature and a new storage id.

    The id names this one creation of the storage: materialization watermarks are kept per storage
    id, so a rebuilt or re-created table (or another online store) starts from an empty watermark."""
    import uuid

    return f"{layout}{_STORAGE}{uuid.uuid4().hex}"


def parse_storage_record(record: str | None) -> tuple[str | None, str | None]:
    """(layout signature, storage id) of a stored record; the id is None for storage made before ids."""
    if record is None:
        return None, None
    layout, sep, storage = record.rpartition(_STORAGE)
    return (layout, storage) if sep else (record, None)


_CALLER = threading.local()


@contextmanager
def waits_bounded_by_caller() -> Iterator[None]:
    """Within: the caller stops waiting for this thread's store calls at a deadline of its own (the
    feature server's store threads), so a store need not bound them on threads of its own."""
    _CALLER.bounds_waits = True
    try:
        yield
    finally:
        _CALLER.bounds_waits = False


def caller_bounds_waits() -> bool:
    return getattr(_CALLER, "bounds_waits", False)


class OnlineReader(ABC):
    """What every online store does: read the latest rows. Built as `Store(config, repo_config)`
    from the ONLINE_STORES table; a store that can also write is an OnlineStore.

    Configs hold no connections; a store connects on first use and `close()` releases them.
    Connection failures raise StoreUnavailable (transient: retrying may succeed).
    """

    Config: type[BackendConfig]
    # Capabilities as data (repast/plugins/capabilities.py), e.g. reads_on_own_thread.
    capabilities: ClassVar[Capabilities] = Capabilities()

    def __init__(self, config: Any, repo_config: RepoSettings) -> None:
        self.config = config
        self.repo_config = repo_config

    @abstractmethod
    def read(self, project: str, view: FeatureView, keys: Sequence[str], features: Sequence[str]) -> list[ReadRow]:
        """One batched round trip: per serialized entity key (see repast.online.keys), in order,
        the stored event timestamp and the requested features, or None when the key is not stored."""

    @abstractmethod
    def ping(self) -> None:
        """Raise StoreUnavailable unless the store answers (readiness checks)."""

    @abstractmethod
    def close(self) -> None:
        """Release connections; the store reconnects on next use."""

    def storage_id(self, project: str, view: FeatureView) -> str | None:
        """The id of the view's storage in this store, new each time `update` creates or rebuilds it;
        None when the view has no storage here with its current layout (or the store keeps no ids)."""
        return None


class OnlineStore(OnlineReader):
    """An online store that also creates storage and writes rows (every store but a thin client)."""

    @abstractmethod
    def update(self, project: str, views_to_keep: list[FeatureView], views_to_delete: list[FeatureView]) -> None:
        """Create storage for kept views (drop and recreate it when the view's key or feature types
        changed: values are then re-materialized); drop the storage of deleted views."""

    @abstractmethod
    def teardown(self, project: str, views: list[FeatureView]) -> None:
        """Remove all storage of `views`."""

    @abstractmethod
    def write_batch(self, project: str, view: FeatureView, batch: pa.RecordBatch | pa.Table) -> int:
        """Upsert rows (engine column contract: join keys, features, event_timestamp,
        created_timestamp), keeping per key the latest by (event_ts, created_ts). Returns rows sent."""


def writable(store: OnlineReader, action: str) -> OnlineStore:
    """`store` as a writer; ConfigError naming `action` and the store's reason when it only reads."""
    if isinstance(store, OnlineStore) and capabilities_of(store).write:
        return store
    raise write_refused(store, action)


# (topic, partition) -> the next offset to consume there: how far a stream has been written.
StreamOffsets = Mapping[tuple[str, int], int]


@runtime_checkable
class StreamOffsetStore(Protocol):
    """Capability: a store that records stream offsets in the same transaction as the rows they
    produced (repast/streaming/ relies on it for exactly-once in effect: after a crash, the stored
    offsets say exactly which events the stored rows include). Dropping a view's storage drops
    its offsets too."""

    def write_batch_at_offsets(self, project: str, view: FeatureView, batch: pa.RecordBatch | pa.Table | None,
                               offsets: StreamOffsets) -> int:
        """write_batch (None: no rows), and set the view's offsets to `offsets`, all or nothing."""

    def stream_offsets(self, project: str, view_name: str) -> dict[tuple[str, int], int]:
        """The offsets stored for the view (empty when none)."""


@runtime_checkable
class NewestValueReader(Protocol):
    """Capability: a store that can say how fresh a view's stored values are (the web UI's
    freshness page). A store without it shows the age as unknown."""

    def newest_event_time(self, project: str, view_name: str) -> datetime | None:
        """The latest event time stored for the view, or None when it stores nothing."""


@runtime_checkable
class TileStorage(Protocol):
    """Capability (declared as `Capabilities(tiles=True)`): aggregation tiles per (view, entity key,
    tile end), partial columns as repast.aggregations.layout says.

    Idempotence: `add=False` (materialization) replaces whole tiles recomputed from the offline
    source; `add=True` (push) folds the partials into the stored tiles and, with a `batch_id`,
    records it in the same transaction, so re-applying a batch changes nothing (returns 0).
    `marks` (name -> value, e.g. a stream consumer's offsets) commit atomically with the tiles;
    `read_marks` reads them back. `expire_through_us`: tiles ending at or before it are deleted in
    the same transaction (outside every window)."""

    def write_tiles(self, project: str, view: FeatureView, layout: TileLayout, tiles: pa.Table, *, add: bool,
                    batch_id: str | None = None, marks: Mapping[str, str] | None = None,
                    expire_through_us: int | None = None) -> int:
        """Write tile rows (key, tile end, partials); returns the tile rows written."""

    def read_tiles(self, project: str, view: FeatureView, layout: TileLayout, keys: Sequence[str],
                   after_us: int, through_us: int) -> list[list[TileRow]]:
        """Per serialized key, in order, its tile rows (end, *partials) with after < end <= through, by end."""

    def read_tile_ranges(self, project: str, view: FeatureView, keys: Sequence[str],
                         ranges: Sequence[tuple[TileLayout, int, int]]) -> list[list[list[TileRow]]]:
        """read_tiles of each (layout, after, through) range, in order, in as few round trips as the
        store can (a read merges a window from several ranges of two tile levels)."""

    def read_marks(self, project: str, view: FeatureView, names: Sequence[str]) -> dict[str, str]:
        """The stored marks among `names`."""


@runtime_checkable
class TileVersionReader(Protocol):
    """Capability (declared as `Capabilities(tile_versions=True)`): per entity key, a token that is
    different after ANY write or delete of any of the key's tiles (every level, by any process or
    connection) committed since the token was read; None when the store cannot tell (the reader
    then keeps nothing). Read it BEFORE the tiles it vouches for: a write landing between the two
    then makes the next token differ, never the other way round."""

    def tile_versions(self, project: str, view: FeatureView, layout: TileLayout,
                      keys: Sequence[str]) -> list[Hashable | None]:
        """One token per serialized key, in order, in one round trip."""


def tile_storage(store: OnlineReader, view: FeatureView) -> TileStorage:
    """`store` as tile storage; ConfigError naming the view and the store's reason when it keeps none."""
    from repast.errors import ConfigError

    caps = capabilities_of(store)
    if caps.tiles and _is_a(type(store), TileStorage):
        return store  # type: ignore[return-value]
    reason = caps.tiles_reason or f"{type(store).__name__} does not keep aggregation tiles"
    raise ConfigError(f"feature view '{view.name}' has aggregations, but the online store cannot serve them: {reason}")


def tile_versions_of(store: TileStorage) -> TileVersionReader | None:
    """`store` as a TileVersionReader when it declares `tile_versions`, else None."""
    if capabilities_of(store).tile_versions and _is_a(type(store), TileVersionReader):
        return store  # type: ignore[return-value]
    return None


@lru_cache(maxsize=64)
def _is_a(cls: type, protocol: type) -> bool:
    """issubclass against a runtime-checkable Protocol, once per class: reads are hot, and an
    isinstance check of a Protocol walks its attributes every time."""
    return issubclass(cls, protocol)
