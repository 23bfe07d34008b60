"""Objects written whole or not at all (write_whole), what a killed writer can still leave behind, and
its clean-up (`repast gc`).

Offline writes add whole objects (repast/offline/file_sources.py): on S3 an object is visible only
once its upload completes, so a killed writer never leaves a partial file that readers see. It
can leave an *incomplete multipart upload*: invisible to readers but billed by S3 until aborted.
A writer that fails (an exception, a lost connection) aborts its own upload; one killed with
SIGKILL cannot, and its upload is aborted here once it is older than a threshold (an upload still
in progress by a live writer is younger than that). On local disks the write protocol can leave
hidden temporary files (`.part-*.tmp` beside a source's parts, `*.partial` beside a saved
dataset); no reader lists them, and they are removed here on the same threshold.

GCS needs nothing: an interrupted resumable upload is never an object and expires on its own.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlparse

import pyarrow as pa
import pyarrow.fs as pafs

from repast.errors import ObjectStoreError, ObjectStoreUnavailable, require_module
from repast.offline.storage_paths import scheme_of

_GLOB_CHARS = "*?["


@dataclass(frozen=True)
class Leftover:
    """An incomplete multipart upload (`upload_id` set) or a local temporary file."""

    location: str  # s3://bucket/key or a local path
    started: datetime
    upload_id: str = ""

    @property
    def kind(self) -> str:
        return "incomplete upload" if self.upload_id else "temporary file"


def s3_client(endpoint: str | None) -> Any:
    """A boto3 S3 client bounded by the object_storage timeouts (storage_paths), path-style with an endpoint."""
    require_module("boto3", "s3")
    import boto3
    from botocore.config import Config

    from repast.offline.storage_paths import ATTEMPTS, current_timeouts

    connect, read = current_timeouts()
    endpoint = endpoint or os.environ.get("AWS_ENDPOINT_URL") or None
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    return boto3.client("s3", endpoint_url=endpoint, region_name=region,
                        config=Config(s3={"addressing_style": "path"} if endpoint else {}, connect_timeout=connect,
                                      read_timeout=read, retries={"total_max_attempts": ATTEMPTS, "mode": "standard"}))


def abort_upload_of(url: str, endpoint: str | None) -> None:
    """Best effort, after a failed write of `url`: abort its incomplete multipart uploads (keys
    are unique per write, so none belongs to another writer). Failing quietly is safe: `repast gc`
    finds what is left."""
    if scheme_of(url) != "s3":
        return
    with contextlib.suppress(Exception):
        client = s3_client(endpoint)
        parsed = urlparse(url)
        key = parsed.path.lstrip("/")
        for upload in _uploads(client, parsed.netloc, key):
            if upload["Key"] == key:
                client.abort_multipart_upload(Bucket=parsed.netloc, Key=key, UploadId=upload["UploadId"])


def _uploads(client: Any, bucket: str, prefix: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for page in client.get_paginator("list_multipart_uploads").paginate(Bucket=bucket, Prefix=prefix):
        found.extend(page.get("Uploads", []))
    return found


def write_prefix(path: str) -> str:
    """The key prefix under which writes of a source or dataset at `path` land: a glob's directory,
    else the path itself (which covers `<file>.parts/` of a single-file source)."""
    cut = min((path.find(c) for c in _GLOB_CHARS if c in path), default=-1)
    return path if cut < 0 else path[:cut].rpartition("/")[0] + "/"


def incomplete_uploads(url_prefix: str, older_than_seconds: float, endpoint: str | None) -> list[Leftover]:
    """Incomplete multipart uploads under an s3:// prefix, started more than the threshold ago."""
    parsed = urlparse(url_prefix)
    client = s3_client(endpoint)
    cutoff = time.time() - older_than_seconds
    with _explained(url_prefix):
        uploads = _uploads(client, parsed.netloc, parsed.path.lstrip("/"))
    return [Leftover(f"s3://{parsed.netloc}/{u['Key']}", u["Initiated"].astimezone(UTC), u["UploadId"])
            for u in uploads if u["Initiated"].timestamp() < cutoff]


@contextlib.contextmanager
def _explained(url: str) -> Any:
    """botocore's errors as one line naming the bucket (a store that does not answer: unavailable)."""
    from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
    from botocore.exceptions import ConnectionError as BotoConnectionError

    from repast.offline.storage_paths import bucket_of, current_timeouts

    where = f"s3://{bucket_of(url)} (for {url})"
    try:
        yield
    except ClientError as e:
        err = e.response.get("Error", {})
        raise ObjectStoreError(f"{where}: {err.get('Code', 'error')}: {err.get('Message', str(e))}; check the "
                               "bucket, the endpoint and AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY") from None
    except BotoCoreError as e:
        connect, read = current_timeouts()
        cls = ObjectStoreUnavailable if isinstance(e, BotoConnectionError | HTTPClientError) else ObjectStoreError
        raise cls(f"{where} does not answer: {e}; requests are bounded by object_storage.connect_timeout_seconds "
                  f"({connect:g} s) and object_storage.read_timeout_seconds ({read:g} s)") from None


def temporary_files(directory: str, older_than_seconds: float) -> list[Leftover]:
    """Temporary files of the local write protocol under `directory`, older than the threshold."""
    cutoff = time.time() - older_than_seconds
    found = []
    for root, _, names in os.walk(directory):
        for name in names:
            temporary = (name.startswith(".part-") and name.endswith(".tmp")) or name.endswith(".partial")
            path = os.path.join(root, name)
            if temporary and (mtime := os.path.getmtime(path)) < cutoff:
                found.append(Leftover(path, datetime.fromtimestamp(mtime, UTC)))
    return sorted(found, key=lambda leftover: leftover.location)


def local_directory(path: str) -> str:
    """The local directory whose temporary files belong to a source or dataset at `path`."""
    path = path.removeprefix("file://")
    prefix = write_prefix(path)
    if prefix != path:
        return prefix
    return path if os.path.isdir(path) else posixpath.dirname(path) or "."


def remove(leftover: Leftover, endpoint: str | None) -> None:
    """Abort the upload or delete the temporary file."""
    if not leftover.upload_id:
        with contextlib.suppress(FileNotFoundError):
            os.remove(leftover.location)
        return
    parsed = urlparse(leftover.location)
    with _explained(leftover.location):
        s3_client(endpoint).abort_multipart_upload(Bucket=parsed.netloc, Key=parsed.path.lstrip("/"),
                                                   UploadId=leftover.upload_id)


def write_whole(url: str, fs: pafs.FileSystem, inner: str, write: Callable[[pa.NativeFile], None],
                endpoint_override: str | None = None) -> None:
    """Write one object on object storage whole or not at all.

    `write` serializes into memory first, so a failure there uploads nothing (pyarrow's stream
    would complete the upload of what it had on close, a partial object readers would see). A
    failure during the upload aborts it (S3 multipart; leftovers/repast gc cover a killed writer).
    An object smaller than one part is sent as one PUT, which leaves nothing behind at all.
    """
    sink = pa.BufferOutputStream()
    write(sink)
    data = sink.getvalue()
    out = fs.open_output_stream(inner)
    try:
        out.write(data)
        out.close()
    except BaseException:
        # Aborted before `out` is collected: its destructor's attempt to complete then fails.
        abort_upload_of(url, endpoint_override)
        raise
