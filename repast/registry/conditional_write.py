"""One object on object storage, read with its version tag and written only if unchanged.

The registry on S3/GCS needs what pyarrow.fs does not offer: a conditional write. S3 takes
`If-Match: <ETag>` (and `If-None-Match: *` to create), GCS `ifGenerationMatch` (0 to create);
both answer 412 when another writer came first, which surfaces here as `Stale`.

Every request is bounded by the registry's `connect_timeout_seconds` and `read_timeout_seconds`
(tried twice at most): a store that is down or frozen is an ObjectStoreUnavailable naming the
bucket and the setting within about twice those bounds, never a hang.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from repast.errors import ObjectStoreError, ObjectStoreUnavailable, require_module

# Attempts per request (the first included): one retry rides out a dropped connection, and a
# frozen store costs at most twice the read timeout.
ATTEMPTS = 2


@dataclass(frozen=True)
class Timeouts:
    connect_seconds: float
    read_seconds: float


class Stale(Exception):  # noqa: N818 - a condition, not a failure to report
    """The object changed since it was read (HTTP 412): read again and retry or give up."""


class ConditionalObject(ABC):
    """`url` as one object: `read` gives (body, tag) or None, `write` succeeds only if the tag still matches."""

    def __init__(self, url: str, setting: str, timeouts: Timeouts) -> None:
        parsed = urlparse(url)
        self.url, self.bucket, self.key, self.setting = url, parsed.netloc, parsed.path.lstrip("/"), setting
        self.timeouts = timeouts

    @abstractmethod
    def read(self, known_tag: str | None = None) -> tuple[bytes | None, str] | None:
        """The body and its tag (ETag / generation), or None when the object does not exist; the
        body is None when the tag is still `known_tag` (nothing downloaded)."""

    @abstractmethod
    def write(self, body: bytes, tag: str | None) -> str:
        """Replace the object if its tag is still `tag` (create it if `tag` is None); the new tag."""

    def error(self, reason: str) -> ObjectStoreError:
        return ObjectStoreError(f"registry {self.url} (bucket '{self.bucket}', from {self.setting}): {reason}")

    def unavailable(self, reason: str) -> ObjectStoreUnavailable:
        t = self.timeouts
        return ObjectStoreUnavailable(
            f"registry {self.url} (bucket '{self.bucket}', from {self.setting}) does not answer: {reason}; "
            f"each call is bounded by registry.connect_timeout_seconds ({t.connect_seconds:g} s) and "
            f"registry.read_timeout_seconds ({t.read_seconds:g} s): check that the endpoint is up, or raise them")


class S3Object(ConditionalObject):
    def __init__(self, url: str, setting: str, endpoint: str | None, timeouts: Timeouts) -> None:
        super().__init__(url, setting, timeouts)
        require_module("boto3", "s3")
        import boto3
        from botocore.config import Config

        endpoint = endpoint or os.environ.get("AWS_ENDPOINT_URL") or None
        region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
        self.client: Any = boto3.client("s3", endpoint_url=endpoint, region_name=region,
                                        config=Config(s3={"addressing_style": "path"} if endpoint else {},
                                                      connect_timeout=timeouts.connect_seconds,
                                                      read_timeout=timeouts.read_seconds,
                                                      retries={"total_max_attempts": ATTEMPTS, "mode": "standard"}))

    def read(self, known_tag: str | None = None) -> tuple[bytes | None, str] | None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            condition = {"IfNoneMatch": known_tag} if known_tag else {}
            response = self.client.get_object(Bucket=self.bucket, Key=self.key, **condition)
            return response["Body"].read(), str(response["ETag"])
        except ClientError as e:
            code = e.response.get("Error", {}).get("Code")
            if code in ("304", "NotModified") and known_tag:
                return None, known_tag
            if code in ("NoSuchKey", "404"):
                return None
            raise self.error(_reason(e)) from None
        except BotoCoreError as e:
            raise self._boto_error(e) from None

    def write(self, body: bytes, tag: str | None) -> str:
        from botocore.exceptions import BotoCoreError, ClientError

        condition = {"IfMatch": tag} if tag is not None else {"IfNoneMatch": "*"}
        try:
            response = self.client.put_object(Bucket=self.bucket, Key=self.key, Body=body,
                                              ContentType="application/json", **condition)
            return str(response["ETag"])
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") in ("PreconditionFailed", "412", "ConditionalRequestConflict"):
                raise Stale() from None
            raise self.error(_reason(e)) from None
        except BotoCoreError as e:
            raise self._boto_error(e) from None

    def _boto_error(self, e: Exception) -> ObjectStoreError:
        from botocore.exceptions import ConnectionError as BotoConnectionError
        from botocore.exceptions import HTTPClientError

        if isinstance(e, BotoConnectionError | HTTPClientError):  # refused, reset, timed out
            return self.unavailable(str(e))
        return self.error(str(e))


def _reason(e: Any) -> str:
    err = e.response.get("Error", {})
    return f"{err.get('Code', 'error')}: {err.get('Message', str(e))}; check the bucket, the endpoint and " \
           "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (or the pod's IAM role)"


class GCSObject(ConditionalObject):
    """Over the GCS JSON API with httpx: generation preconditions; Google's default credentials,
    or anonymous requests to STORAGE_EMULATOR_HOST / an endpoint override."""

    def __init__(self, url: str, setting: str, endpoint: str | None, timeouts: Timeouts) -> None:
        super().__init__(url, setting, timeouts)
        require_module("httpx", "server")
        import httpx

        endpoint = endpoint or os.environ.get("STORAGE_EMULATOR_HOST") or None
        self.base = (endpoint if endpoint is None or "://" in endpoint else "http://" + endpoint) \
            or "https://storage.googleapis.com"
        self.anonymous = endpoint is not None
        self.http = httpx.Client(timeout=httpx.Timeout(timeouts.read_seconds, connect=timeouts.connect_seconds),
                                 transport=httpx.HTTPTransport(retries=ATTEMPTS - 1))

    def _headers(self) -> dict[str, str]:
        if self.anonymous:
            return {}
        require_module("google.auth", "gcs")
        import google.auth
        import google.auth.transport.requests

        credentials, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/devstorage.read_write"])
        credentials.refresh(google.auth.transport.requests.Request())  # type: ignore[no-untyped-call]
        return {"Authorization": f"Bearer {credentials.token}"}

    def read(self, known_tag: str | None = None) -> tuple[bytes | None, str] | None:
        from urllib.parse import quote

        url = f"{self.base}/storage/v1/b/{self.bucket}/o/{quote(self.key, safe='')}"
        try:
            meta = self.http.get(url, headers=self._headers())
            if meta.status_code == 404:
                return None
            if meta.status_code != 200:
                raise self.error(f"HTTP {meta.status_code}: {meta.text[:200]}")
            generation = str(meta.json()["generation"])
            if generation == known_tag:
                return None, generation
            # That generation's bytes exactly, whatever was written since the metadata was read.
            r = self.http.get(url, params={"alt": "media", "generation": generation}, headers=self._headers())
        except Exception as e:
            raise self._http_error(e) from None
        if r.status_code != 200:
            raise self.error(f"HTTP {r.status_code}: {r.text[:200]}")
        return r.content, generation

    def write(self, body: bytes, tag: str | None) -> str:
        try:
            r = self.http.post(f"{self.base}/upload/storage/v1/b/{self.bucket}/o", content=body,
                               params={"uploadType": "media", "name": self.key, "ifGenerationMatch": tag or "0"},
                               headers={**self._headers(), "Content-Type": "application/octet-stream"})
        except Exception as e:
            raise self._http_error(e) from None
        if r.status_code == 412:
            raise Stale()
        if r.status_code not in (200, 201):
            raise self.error(f"HTTP {r.status_code}: {r.text[:200]}")
        return str(r.json().get("generation", ""))

    def _http_error(self, e: Exception) -> Exception:
        """A transport failure (refused, timed out) as ObjectStoreUnavailable; other errors unchanged."""
        import httpx

        if isinstance(e, httpx.TransportError | OSError):
            return self.unavailable(f"{type(e).__name__}: {e}")
        return e


def conditional_object(url: str, setting: str, endpoint: str | None, timeouts: Timeouts) -> ConditionalObject:
    kind = S3Object if url.startswith("s3://") else GCSObject
    return kind(url, setting, endpoint, timeouts)
