"""Connection strings made safe to print: passwords masked by parsing, never by pattern.

A regex missed passwords holding `/` or a space (`postgresql+psycopg://u:S3cret/PW@host/db` was
printed in clear). Database URLs are parsed with SQLAlchemy's URL, Redis URLs by their last '@', and
Feast's Redis form (`host:port,password=...`) option by option; only the password is replaced,
so host, port and database stay readable.
"""

from __future__ import annotations

from typing import Any

MASK = "***"


def masked_url(url: str) -> str:
    """`url` with its password replaced by `***`; anything that is not a URL is returned as is."""
    if "://" not in url:
        return url
    if url.startswith(("redis://", "rediss://", "unix://")):
        return _masked_redis_url(url)
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        # Not a database URL: keep only what precedes any userinfo.
        scheme, _, rest = url.partition("://")
        return f"{scheme}://{MASK}@{rest.rpartition('@')[2]}" if "@" in rest else url
    if parsed.password is None:
        return url
    return parsed.render_as_string(hide_password=True)


def _masked_redis_url(url: str) -> str:
    # Not urlsplit: it ends the host at the first '/', which may be inside the password. The
    # userinfo is whatever precedes the last '@' before the query.
    scheme, _, rest = url.partition("://")
    address, question, query = rest.partition("?")
    if "@" not in address:
        return url
    userinfo, _, host = address.rpartition("@")
    user, colon, _ = userinfo.partition(":")
    return f"{scheme}://{user}:{MASK}@{host}{question}{query}" if colon else url


def masked_connection_string(value: str) -> str:
    """A Redis connection string as Feast writes it, or a URL, with only the password masked."""
    if "://" in value:
        return masked_url(value)
    head, *options = value.split(",")
    shown = [f"{key}={MASK}" if key.strip() == "password" else f"{key}={v}" if sep else key
             for key, sep, v in (o.partition("=") for o in options)]
    return ",".join([head, *shown])


def displayable(config: Any) -> dict[str, Any]:
    """`config` (a RepoConfig) as JSON-ready data for printing: secrets masked, URLs readable."""
    data: dict[str, Any] = config.model_dump(mode="json", exclude={"repo_path"})
    data["registry"]["path"] = masked_url(data["registry"]["path"])
    for section in ("online_store", "offline_store"):
        backend = getattr(config, section)
        secret = getattr(backend, "connection_string", None)
        if secret is not None:
            data[section]["connection_string"] = masked_connection_string(secret.get_secret_value())
        url = getattr(backend, "url", None)
        if url is not None and hasattr(url, "get_secret_value"):
            data[section]["url"] = masked_url(url.get_secret_value())
    return data
