"""HMAC signatures of on-demand functions stored in the registry.

With `registry: {signing_key: ${VAR}}`, apply stores an HMAC-SHA256 of each on-demand view's name,
serialized function and source text next to it, and a process with the key checks it before it
deserializes the function (only a process that runs the view does). A registry writer without the
key cannot make a function that such a process will run, nor make `describe` and the UI show
source text other than the signed function's. Signatures of earlier versions (`VERSION` absent)
covered the name and function only: they are refused, and the next apply with the key re-signs.
See docs/security.md.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from repast.errors import DefinitionError
from repast.registry.base import Change, Snapshot

if TYPE_CHECKING:
    from repast.definitions import RepoContents

SIGNATURE_FIELD = "udf_signature"
VERSION = "v2:"  # the prefix of signatures that cover the source text


def udf_signature(key: str, view: str, payload: str, source: str) -> str:
    """The HMAC of one view's serialized function and its source text; the name is included so
    that a signed payload cannot be moved to another view."""
    text = "\0".join((view, payload, source))
    return VERSION + hmac.new(key.encode(), text.encode(), hashlib.sha256).hexdigest()


def _signs(key: str, name: str, spec: dict[str, Any], signature: str | None) -> bool:
    expected = udf_signature(key, name, spec["udf_pickle"], spec.get("udf_source") or "")
    return signature is not None and hmac.compare_digest(signature, expected)


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


def check_udf_signature(key: str, view: str, payload: str, source: str, signature: str | None) -> None:
    """Raise DefinitionError naming the view unless `signature` is the key's HMAC of `payload` and
    `source`."""
    if signature is None:
        raise DefinitionError(f"on-demand feature view '{view}': its stored function is not signed, and "
                              "registry.signing_key is set; refusing to run it (apply it again with the key)")
    if not signature.startswith(VERSION):
        raise DefinitionError(f"on-demand feature view '{view}': its stored function was signed by an earlier "
                              "repast whose signature does not cover the source text; refusing to run it "
                              "(run `repast apply` again with registry.signing_key to re-sign it)")
    if not _signs(key, view, {"udf_pickle": payload, "udf_source": source}, signature):
        raise DefinitionError(f"on-demand feature view '{view}': the signature of its stored function and "
                              "source text does not match registry.signing_key; refusing to run it (was the "
                              "registry changed by someone without the key?)")


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
        if not _signs(key, name, spec, spec.get(SIGNATURE_FIELD)):
            updates.append(Change("update", "on_demand_feature_view", name, odfv.to_dict(), (SIGNATURE_FIELD,)))
    return updates
