"""What an apply signs: every function it stores (on-demand views', stream feature views' udfs),
and those registered without a valid signature for the key (repast/definitions/signing.py has the
signature itself)."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from repast.definitions.signing import SIGNATURE_FIELD, sign_spec, spec_is_signed, stored_function
from repast.registry.base import Change, Snapshot

if TYPE_CHECKING:
    from repast.definitions import RepoContents


def sign_changes(changes: list[Change], key: str | None) -> list[Change]:
    """The changes with every function they store signed (unchanged without a key)."""
    if key is None:
        return changes
    return [change if change.spec is None else replace(change, spec=sign_spec(key, change.kind, change.name,
                                                                              change.spec))
            for change in changes]


def unsigned_changes(desired: RepoContents, registered: Snapshot, changes: list[Change],
                     key: str | None) -> list[Change]:
    """Updates that (re-)sign functions registered without a valid signature for `key`, for the
    views of `desired` that `changes` does not already rewrite; so an apply with the key signs them."""
    if key is None:
        return []
    touched = {(c.kind, c.name) for c in changes}
    views: list[tuple[str, Any]] = [("on_demand_feature_view", v) for v in desired.on_demand_feature_views.values()]
    views += [("feature_view", v) for v in desired.feature_views.values()]
    updates = []
    for kind, view in views:
        spec = registered.specs.get(kind, {}).get(view.name)
        if spec is None or (kind, view.name) in touched or stored_function(kind, view.name, spec) is None:
            continue
        if not spec_is_signed(key, kind, view.name, spec):
            updates.append(Change("update", kind, view.name, view.to_dict(), (SIGNATURE_FIELD,)))
    return updates
