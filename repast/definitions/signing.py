"""HMAC signatures of on-demand functions stored in the registry.

With `registry: {signing_key: ${VAR}}`, apply stores an HMAC-SHA256 of each on-demand view's name
and serialized function next to it, and a process with the key checks it before it deserializes
the function (only a process that runs the view does). A registry writer without the key cannot
make a function that such a process will run. See docs/security.md.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import replace
from typing import TYPE_CHECKING

from repast.errors import DefinitionError
from repast.registry.base import Change, Snapshot

if TYPE_CHECKING:
    from repast.definitions import RepoContents

SIGNATURE_FIELD = "udf_signature"


def udf_signature(key: str, view: str, payload: str) -> str:
    """The HMAC of one view's serialized function; the name is included so that a signed payload
    cannot be moved to another view."""
    return hmac.new(key.encode(), f"{view}\0{payload}".encode(), hashlib.sha256).hexdigest()


def sign_changes(changes: list[Change], key: str | None) -> list[Change]:
    """The changes with every on-demand function they store signed (unchanged without a key)."""
    if key is None:
        return changes
    signed = []
    for change in changes:
        if change.kind == "on_demand_feature_view" and change.spec is not None:
            spec = {**change.spec, SIGNATURE_FIELD: udf_signature(key, change.name, change.spec["udf_pickle"])}
            change = replace(change, spec=spec)
        signed.append(change)
    return signed


def check_udf_signature(key: str, view: str, payload: str, signature: str | None) -> None:
    """Raise DefinitionError naming the view unless `signature` is the key's HMAC of `payload`."""
    if signature is None:
        raise DefinitionError(f"on-demand feature view '{view}': its stored function is not signed, and "
                              "registry.signing_key is set; refusing to run it (apply it again with the key)")
    if not hmac.compare_digest(signature, udf_signature(key, view, payload)):
        raise DefinitionError(f"on-demand feature view '{view}': the signature of its stored function does not "
                              "match registry.signing_key; refusing to run it (was the registry changed by "
                              "someone without the key?)")


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
        signature = spec.get(SIGNATURE_FIELD)
        if signature is None or not hmac.compare_digest(signature, udf_signature(key, name, spec["udf_pickle"])):
            updates.append(Change("update", "on_demand_feature_view", name, odfv.to_dict(), (SIGNATURE_FIELD,)))
    return updates
