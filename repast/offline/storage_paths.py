"""Where a FileSource path lives: the local disk, S3 (or an S3-compatible server) or GCS.

`filesystem_for(path, endpoint)` turns `s3://bucket/key`, `gs://bucket/key`, `file:///dir` or a
plain path into a pyarrow FileSystem and the path inside it. Credentials come the way cloud users
already provide them, never from feature_store.yaml:

- S3: the standard AWS chain (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN,
  AWS_PROFILE, web identity tokens as IRSA mounts them, instance metadata); the region from
  AWS_REGION / AWS_DEFAULT_REGION. For an S3-compatible server, `s3_endpoint_override` on the
  source, else `endpoint_override` of the offline store, else AWS_ENDPOINT_URL; addressing is then
  path-style.
- GCS: Google's default credentials (GOOGLE_APPLICATION_CREDENTIALS, workload identity). With
  STORAGE_EMULATOR_HOST set (Google's variable for emulators) or an endpoint override, requests go
  there anonymously.

A wrong credential or endpoint fails with ObjectStoreError naming the bucket and the setting.
Every request is bounded by `object_storage.connect_timeout_seconds` / `.read_timeout_seconds` of
feature_store.yaml (an offline engine applies them to the process when it is built; until then the
defaults below hold), with one retry: a store that is down or frozen is an ObjectStoreUnavailable
(transient, HTTP 503 from the server) within about twice the read timeout, never a hang.
"""

from __future__ import annotations

import functools
import os
from datetime import timedelta
from urllib.parse import urlparse

import pyarrow.fs as pafs

from repast.errors import ObjectStoreError, ObjectStoreUnavailable

REMOTE_SCHEMES = ("s3", "gs")

# The defaults of feature_store.yaml's object_storage section (repast/config/repo_config.py).
DEFAULT_CONNECT_TIMEOUT_SECONDS = 3.0
DEFAULT_READ_TIMEOUT_SECONDS = 20.0
# Attempts per request, the first included: one retry rides out a dropped connection.
ATTEMPTS = 2
_timeouts = (DEFAULT_CONNECT_TIMEOUT_SECONDS, DEFAULT_READ_TIMEOUT_SECONDS)


def use_timeouts(connect_seconds: float, read_seconds: float) -> None:
    """Bound every object-storage request of this process (the filesystems built from now on)."""
    global _timeouts
    _timeouts = (connect_seconds, read_seconds)


def current_timeouts() -> tuple[float, float]:
    """(connect, read) seconds in force for object-storage requests of this process."""
    return _timeouts


def scheme_of(path: str) -> str:
    """"s3", "gs", "file" (file:// URIs) or "" (a plain local path)."""
    return path.split("://", 1)[0].lower() if "://" in path else ""


def is_remote(path: str) -> bool:
    return scheme_of(path) in REMOTE_SCHEMES


def bucket_of(path: str) -> str:
    return urlparse(path).netloc


def filesystem_for(path: str, endpoint_override: str | None = None) -> tuple[pafs.FileSystem, str]:
    """The filesystem holding `path` and the path inside it (`bucket/key` on object storage)."""
    scheme = scheme_of(path)
    if scheme == "file":
        return pafs.LocalFileSystem(), os.path.abspath(urlparse(path).path)
    if scheme == "":
        return pafs.LocalFileSystem(), os.path.abspath(path)
    parsed = urlparse(path)
    inner = (parsed.netloc + parsed.path).rstrip("/") if parsed.path not in ("", "/") else parsed.netloc
    if scheme == "s3":
        # The credentials in the environment are part of the key: a changed secret takes effect.
        env = tuple(os.environ.get(k, "") for k in _AWS_ENV)
        return _s3(endpoint_override or os.environ.get("AWS_ENDPOINT_URL") or None, env, _timeouts), inner
    if scheme == "gs":
        return _gcs(endpoint_override or os.environ.get("STORAGE_EMULATOR_HOST") or None, _timeouts), inner
    raise ObjectStoreError(f"path '{path}': unknown scheme '{scheme}://'; use a local path, file://, s3:// or gs://")


def _split_endpoint(endpoint: str) -> tuple[str, str]:
    """("host:port", "http" | "https") from "http://host:port" or "host:port" (https assumed)."""
    if "://" in endpoint:
        scheme, _, rest = endpoint.partition("://")
        return rest.rstrip("/"), scheme
    return endpoint.rstrip("/"), "https"


# Built once per endpoint: a filesystem holds connection pools, and building one resolves credentials.
_AWS_ENV = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
            "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN", "AWS_REGION", "AWS_DEFAULT_REGION")


@functools.lru_cache(maxsize=16)
def _s3(endpoint: str | None, env: tuple[str, ...], timeouts: tuple[float, float]) -> pafs.FileSystem:
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    # request_timeout is documented for Windows and macOS only, but on Linux it bounds a request
    # that transfers nothing for that long (curl's low-speed limit): what a frozen server does.
    bounds = {"connect_timeout": timeouts[0], "request_timeout": timeouts[1],
              "retry_strategy": pafs.AwsStandardS3RetryStrategy(max_attempts=ATTEMPTS),
              # A small object is then one PUT at close: a writer killed before it leaves nothing.
              "allow_delayed_open": True}
    if endpoint is None:
        return pafs.S3FileSystem(region=region, **bounds)
    host, scheme = _split_endpoint(endpoint)
    return pafs.S3FileSystem(endpoint_override=host, scheme=scheme, region=region, force_virtual_addressing=False,
                             **bounds)


@functools.lru_cache(maxsize=16)
def _gcs(endpoint: str | None, timeouts: tuple[float, float]) -> pafs.FileSystem:
    # GCS's client retries for up to 15 minutes by default. pyarrow exposes no per-request bound:
    # one request to a server that never answers waits for the client's stall timeout (120 s).
    limit = timedelta(seconds=ATTEMPTS * timeouts[1])
    if endpoint is None:
        return pafs.GcsFileSystem(retry_time_limit=limit)
    host, scheme = _split_endpoint(endpoint if "://" in endpoint else "http://" + endpoint)
    return pafs.GcsFileSystem(endpoint_override=host, scheme=scheme, anonymous=True, retry_time_limit=limit)


# How the AWS SDK (curl) and Google's client say the server did not answer or refused to connect.
_UNREACHABLE = ("NETWORK_CONNECTION", "curlCode: 28", "curlCode: 7", "UNAVAILABLE", "DEADLINE_EXCEEDED",
                "Could not connect", "Timeout was reached")


def explain(error: OSError, path: str, setting: str) -> ObjectStoreError:
    """An OSError from object storage as one line naming the bucket and the setting to check; a
    server that does not answer is an ObjectStoreUnavailable naming the timeouts to raise."""
    first = " ".join(str(error).split())
    scheme = scheme_of(path)
    if any(marker in first for marker in _UNREACHABLE):
        return ObjectStoreUnavailable(
            f"{scheme}://{bucket_of(path)} (from {setting}) does not answer: {first}; each request is bounded by "
            f"object_storage.connect_timeout_seconds ({_timeouts[0]:g} s) and object_storage.read_timeout_seconds "
            f"({_timeouts[1]:g} s) in feature_store.yaml: check that the endpoint is up, or raise them")
    creds = "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (or the pod's IAM role)" if scheme == "s3" \
        else "GOOGLE_APPLICATION_CREDENTIALS (or workload identity)"
    return ObjectStoreError(f"{scheme}://{bucket_of(path)} (from {setting}): {first}; check the bucket name, "
                            f"the endpoint ({setting} / endpoint_override) and {creds}")
