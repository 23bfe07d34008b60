"""Merged aggregated values kept between reads, per (view, requested features, entity key).

An aggregated value read at t depends on t only through the end E of t's (stored) tile: the
window's tiles are chosen by E (repast.definitions.aggregation.window_start_us), and t's own tile
is merged whole. So the merged row of one key stays right for every read whose t falls in the same
tile, for as long as none of the key's tiles is written. An entry holds (E, the store's version
token for the key, the merged row) and is served only when both still match: a read in a later
tile (the grid moved on) or after any write (this process, another process, another connection)
merges the tiles again and replaces the entry. Stores that cannot give a token are never cached.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

MAX_ENTRIES = 16_384  # per online store object: a bound on memory (about 1 KB per entry for 10 features)


class MergedValueCache:
    """A bounded map (view, features, key) -> (tile end, token, row); the oldest entry goes first."""

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self.max_entries = max_entries
        self._entries: dict[Hashable, tuple[int, Hashable, Any]] = {}

    def get(self, key: Hashable, end_us: int, token: Hashable | None) -> Any | None:
        """The row kept for `key` at tile end `end_us` under `token`; None when not kept or stale."""
        if token is None:
            return None
        entry = self._entries.get(key)
        if entry is None or entry[0] != end_us or entry[1] != token:
            return None
        return entry[2]

    def put(self, key: Hashable, end_us: int, token: Hashable | None, row: Any) -> None:
        """Keep `row` (merged at tile end `end_us` from tiles read AFTER `token` was read)."""
        if token is None:
            return
        entries = self._entries
        if entries.pop(key, None) is None and len(entries) >= self.max_entries:
            try:
                del entries[next(iter(entries))]
            except (StopIteration, KeyError, RuntimeError):  # emptied or changed by another thread
                pass
        entries[key] = (end_us, token, row)

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
