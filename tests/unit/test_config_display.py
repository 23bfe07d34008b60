"""Passwords in printed configuration are masked by parsing the URL, whatever characters they hold."""

from __future__ import annotations

from pathlib import Path

import pytest

from repast.config.display import displayable, masked_connection_string, masked_url
from repast.config.repo_config import load_config


@pytest.mark.parametrize(("url", "shown"), [
    ("postgresql+psycopg://u:S3cret/PW@host/db", "postgresql+psycopg://u:***@host/db"),
    ("postgresql://u:pa ss@host:5432/db?sslmode=require", "postgresql://u:***@host:5432/db?sslmode=require"),
    ("postgresql+psycopg://app:s3cret@db:5432/features", "postgresql+psycopg://app:***@db:5432/features"),
    ("postgresql://postgres@127.0.0.1/test", "postgresql://postgres@127.0.0.1/test"),
    ("data/registry.db", "data/registry.db"),
    ("redis://:pa ss/x@redis.internal:6379/2", "redis://:***@redis.internal:6379/2"),
    ("rediss://user:secret@redis.internal:6380/0", "rediss://user:***@redis.internal:6380/0"),
    ("redis://redis.internal:6379/3", "redis://redis.internal:6379/3"),
])
def test_only_the_password_of_a_url_is_masked(url: str, shown: str) -> None:
    assert masked_url(url) == shown


def test_feasts_redis_form_masks_the_password_option_alone() -> None:
    assert masked_connection_string("redis.internal:6379,db=2,password=a/b c,ssl=true") == \
        "redis.internal:6379,db=2,password=***,ssl=true"


def test_config_show_data_has_readable_urls_and_no_password(tmp_path: Path) -> None:
    (tmp_path / "feature_store.yaml").write_text(
        'project: p\nregistry: "postgresql+psycopg://u:S3cret/PW@host/db"\n'
        'online_store: {type: redis, connection_string: "redis://:hunter 2@cache:6379/1"}\n')
    data = displayable(load_config(tmp_path))
    assert data["registry"]["path"] == "postgresql+psycopg://u:***@host/db"
    assert data["online_store"]["connection_string"] == "redis://:***@cache:6379/1"
    assert "S3cret" not in str(data) and "hunter" not in str(data)
