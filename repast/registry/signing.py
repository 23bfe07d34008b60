"""What an apply signs: every on-demand function it stores, and those registered without a valid
signature for the key (repast/definitions/signing.py has the signature itself)."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from repast.definitions.signing import SIGNATURE_FIELD, spec_is_signed, udf_signature
from repast.registry.base import Change, Snapshot

if TYPE_CHECKING:
    from repast.definitions import RepoContents


def sign_changes(changes: list[Change], key: str | None) -> list[Change]:
    """The changes with every on-demand function they store signed (unchanged without a key)."""
    if key is None:
        return changes
    signed = []
    for change in changes:
        if change.kind == "on_demand_feature_view" and change.spec is not None:
            signature = udf_signature(key, change.name, change.spec["udf_pickle"], change.spec.get("udf_source") or "")
            spec = {**change.spec, SIGNATURE_FIELD: signature}
            change = replace(change, spec=spec)
        signed.append(change)
    return signed


def unsigned_changes(desired: RepoContents, registered: Snapshot, changes: list[Change],
                     key: str | None) -> list[Change]:
    """Updates that (re-)sign on-demand functions registered without a valid signature for `key`, for
    the views of `desired` that `changes` does not already rewrite; so an apply with the key signs them."""
    if key is None:
        return []
    touched = {(c.kind, c.name) for c in changes}
    stored = registered.specs.get("on_demand_feature_view", {})
    updates = []
    for name, odfv in desired.on_demand_feature_views.items():
        spec = stored.get(name)
        if spec is None or ("on_demand_feature_view", name) in touched:
            continue
        if not spec_is_signed(key, name, spec, spec.get(SIGNATURE_FIELD)):
            updates.append(Change("update", "on_demand_feature_view", name, odfv.to_dict(), (SIGNATURE_FIELD,)))
    return updates
