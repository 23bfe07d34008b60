"""Search and filtered lists over a catalog: words in names, descriptions, tags and owners.

Every word of the query must occur in an object's search text (case-insensitive); results rank
exact names first, then names starting with the query, then names containing it, then the rest,
alphabetically within each group. A tag filter is `key` (the tag is set) or `key=value`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from repast.errors import InputError
from repast.ui.catalog import SLUGS, Catalog, Entry

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
MAX_OFFSET = 10**9  # beyond any registry; keeps the number inside what JSON encoders write


@dataclass(frozen=True)
class Query:
    text: str = ""
    kinds: tuple[str, ...] = ()  # registry kinds; empty: every kind
    tag: str = ""
    limit: int = DEFAULT_LIMIT
    offset: int = 0


@dataclass(frozen=True)
class Page:
    items: list[Entry]
    total: int
    query: Query

    def to_json(self) -> dict[str, Any]:
        return {"items": [e.to_json() for e in self.items], "total": self.total,
                "limit": self.query.limit, "offset": self.query.offset}


def make_query(text: str | None = None, kinds: list[str] | None = None, tag: str | None = None,
               limit: int | None = None, offset: int | None = None) -> Query:
    """Check paging and kind names; raises InputError naming the bad parameter."""
    limit = DEFAULT_LIMIT if limit is None else limit
    offset = 0 if offset is None else offset
    if not 1 <= limit <= MAX_LIMIT:
        raise InputError(f"limit must be between 1 and {MAX_LIMIT}, got {limit}")
    if not 0 <= offset <= MAX_OFFSET:
        raise InputError(f"offset must be between 0 and {MAX_OFFSET}, got {offset}")
    resolved = []
    for k in kinds or []:
        kind = SLUGS.get(k, k)
        if kind not in SLUGS.values():
            raise InputError(f"kind '{k}' is not one of {sorted(SLUGS)}")
        resolved.append(kind)
    return Query((text or "").strip(), tuple(resolved), (tag or "").strip(), limit, offset)


def find(catalog: Catalog, query: Query) -> Page:
    """The page of matching entries, ranked, with the total number of matches."""
    kinds = query.kinds or tuple(SLUGS.values())
    words = query.text.lower().split()
    tag_key, has_value, tag_value = query.tag.partition("=")
    matches: list[Entry] = []
    for kind in kinds:
        entries = catalog.entries.get(kind, [])
        if not words and not tag_key:
            matches.extend(entries)
            continue
        for entry in entries:
            if words and not all(w in entry.text for w in words):
                continue
            if tag_key and (tag_key not in entry.tags or (has_value and entry.tags[tag_key] != tag_value)):
                continue
            matches.append(entry)
    if query.text:
        text = query.text.lower()
        matches.sort(key=lambda e: (_rank(e, text), e.ref.name))
    return Page(matches[query.offset:query.offset + query.limit], len(matches), query)


def _rank(entry: Entry, text: str) -> int:
    name = entry.ref.name.lower()
    if not text:
        return 0
    if name == text or name.endswith(":" + text):
        return 0
    if name.startswith(text):
        return 1
    if text in name:
        return 2
    return 3


def all_tags(catalog: Catalog) -> list[str]:
    """Every `key=value` tag in the project, for the filter menu."""
    return sorted({f"{k}={v}" for entries in catalog.entries.values() for e in entries for k, v in e.tags.items()})
