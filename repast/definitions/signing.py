"""HMAC signatures of the functions stored in the registry: on-demand views' and stream views' udfs.

With `registry: {signing_key: ${VAR}}`, apply stores an HMAC-SHA256 of each view's name, serialized
function and source text next to it, and a process with the key checks it before it deserializes
the function (only a process that runs the view does: a server or job for an on-demand view,
`repast stream` for a stream feature view's udf). A registry writer without the key cannot make a
function that such a process will run, nor make `describe` and the UI show source text other than
the signed function's. Signatures of earlier versions (`VERSION` absent) covered the name and
function only: they are refused, and the next apply with the key re-signs. What an apply signs (and
re-signs) is in repast/registry/signing.py. See docs/security.md.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable
from typing import Any

from repast.errors import DefinitionError

SIGNATURE_FIELD = "udf_signature"
PAYLOAD_FIELD = "udf_pickle"
VERSION = "v2:"  # the prefix of signatures that cover the source text
# A stream feature view's udf is signed under "feature_view:<name>" (":" is in no object name), so a
# signed on-demand function cannot be moved into a stream view of the same name, nor the reverse.
STREAM_SCOPE = "feature_view:"


def udf_signature(key: str, view: str, payload: str, source: str) -> str:
    """The HMAC of one view's serialized function and its source text; the name is included so
    that a signed payload cannot be moved to another view."""
    text = "\0".join((view, payload, source))
    return VERSION + hmac.new(key.encode(), text.encode(), hashlib.sha256).hexdigest()


def stored_function(kind: str, name: str, spec: dict[str, Any]) -> tuple[str, str, str] | None:
    """(the name it is signed under, the serialized function, its source text) of the function a
    registry spec stores, or None when it stores none."""
    if kind == "on_demand_feature_view":
        return name, spec["udf_pickle"], spec.get("udf_source") or ""
    if kind == "feature_view" and spec.get("udf_pickle"):
        return STREAM_SCOPE + name, spec["udf_pickle"], spec.get("stream_feature_view", {}).get("udf_source") or ""
    return None


def sign_spec(key: str, kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    """The spec with its stored function's signature (unchanged when it stores none)."""
    stored = stored_function(kind, name, spec)
    return spec if stored is None else {**spec, SIGNATURE_FIELD: udf_signature(key, *stored)}


def spec_is_signed(key: str, kind: str, name: str, spec: dict[str, Any]) -> bool:
    """True when the spec stores no function, or one whose signature matches `key`."""
    stored = stored_function(kind, name, spec)
    signature = spec.get(SIGNATURE_FIELD)
    return stored is None or signature is not None and hmac.compare_digest(signature, udf_signature(key, *stored))


def check_udf_signature(key: str, view: str, payload: str, source: str, signature: str | None,
                        label: str = "on-demand feature view", scope: str = "") -> None:
    """Raise DefinitionError naming the view (`label` 'view') unless `signature` is the key's HMAC of
    `payload` and `source` signed under `scope` + `view`."""
    at = f"{label} '{view}'"
    if signature is None:
        raise DefinitionError(f"{at}: its stored function is not signed, and registry.signing_key is set; "
                              "refusing to run it (apply it again with the key)")
    if not signature.startswith(VERSION):
        raise DefinitionError(f"{at}: its stored function was signed by an earlier repast whose signature does "
                              "not cover the source text; refusing to run it (run `repast apply` again with "
                              "registry.signing_key to re-sign it)")
    if not hmac.compare_digest(signature, udf_signature(key, scope + view, payload, source)):
        raise DefinitionError(f"{at}: the signature of its stored function and source text does not match "
                              "registry.signing_key; refusing to run it (was the registry changed by someone "
                              "without the key?)")


def serialize_function(function: Callable[..., Any]) -> str:
    """A view's function as the registry stores it: cloudpickle, base64."""
    import cloudpickle

    return base64.b64encode(cloudpickle.dumps(function)).decode()


def load_stored_function(payload: str, view: str, source: str, signature: str | None, signing_key: str | None,
                         label: str = "on-demand feature view", scope: str = "") -> Callable[..., Any]:
    """A stored function deserialized, after its signature check when the reader holds the key: the
    only place a view's stored function is unpickled."""
    import cloudpickle

    if signing_key is not None:
        check_udf_signature(signing_key, view, payload, source, signature, label=label, scope=scope)
    return cloudpickle.loads(base64.b64decode(payload))  # type: ignore[no-any-return]


def without_stored_function(spec: dict[str, Any]) -> dict[str, Any]:
    """What a diff compares: a spec without its serialized function and signature (pickles differ
    across runs; the source text stays)."""
    return {k: v for k, v in spec.items() if k not in (PAYLOAD_FIELD, SIGNATURE_FIELD)}
