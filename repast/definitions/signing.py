"""HMAC signatures of on-demand functions stored in the registry.

With `registry: {signing_key: ${VAR}}`, apply stores an HMAC-SHA256 of each on-demand view's name,
serialized function and source text next to it, and a process with the key checks it before it
deserializes the function (only a process that runs the view does). A registry writer without the
key cannot make a function that such a process will run, nor make `describe` and the UI show
source text other than the signed function's. Signatures of earlier versions (`VERSION` absent)
covered the name and function only: they are refused, and the next apply with the key re-signs.
What an apply signs (and re-signs) is in repast/registry/signing.py. See docs/security.md.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from repast.errors import DefinitionError

SIGNATURE_FIELD = "udf_signature"
VERSION = "v2:"  # the prefix of signatures that cover the source text


def udf_signature(key: str, view: str, payload: str, source: str) -> str:
    """The HMAC of one view's serialized function and its source text; the name is included so
    that a signed payload cannot be moved to another view."""
    text = "\0".join((view, payload, source))
    return VERSION + hmac.new(key.encode(), text.encode(), hashlib.sha256).hexdigest()


def spec_is_signed(key: str, name: str, spec: dict[str, Any], signature: str | None) -> bool:
    expected = udf_signature(key, name, spec["udf_pickle"], spec.get("udf_source") or "")
    return signature is not None and hmac.compare_digest(signature, expected)


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
    if not spec_is_signed(key, view, {"udf_pickle": payload, "udf_source": source}, signature):
        raise DefinitionError(f"on-demand feature view '{view}': the signature of its stored function and "
                              "source text does not match registry.signing_key; refusing to run it (was the "
                              "registry changed by someone without the key?)")
