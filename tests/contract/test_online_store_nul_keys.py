"""PostgreSQL text cannot hold NUL: a string key containing one is an EntityKeyError naming the key,
on read and on write, instead of a psycopg.DataError (an HTTP 500 and a materialization traceback)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from repast import Entity, FeatureView, Field, FileSource, ValueType
from repast.errors import EntityKeyError
from repast.online.base import OnlineStore
from repast.types import Float32
from tests.contract.test_online_store import build_store, drop_postgres_schema, table

pytestmark = pytest.mark.postgres

user = Entity(name="user", join_keys=["user_id"], value_type=ValueType.STRING)
view = FeatureView(name="user_stats", entities=[user], source=FileSource(path="unused.parquet",
                   timestamp_field="event_timestamp"), schema=[Field(name="score", dtype=Float32)])


@pytest.fixture
def store(postgres_url: str, tmp_path: Path, unique_name: str) -> Iterator[OnlineStore]:
    online = build_store({"type": "postgres", "url": postgres_url, "db_schema": unique_name}, unique_name, tmp_path)
    online.update(unique_name, [view], [])
    yield online
    online.close()
    drop_postgres_schema(postgres_url, unique_name)


def test_reading_a_key_with_nul_names_the_key(store: OnlineStore, unique_name: str) -> None:
    with pytest.raises(EntityKeyError, match=r"entity key 'a\\x00b' contains a NUL character"):
        store.read(unique_name, view, ["ok", "a\x00b"], ["score"])


def test_writing_a_key_with_nul_names_the_key_and_writes_nothing(store: OnlineStore, unique_name: str) -> None:
    now = datetime.now(UTC)
    rows = [{"user_id": "fine", "score": 1.0, "ts": now}, {"user_id": "bad\x00key", "score": 2.0, "ts": now}]
    with pytest.raises(EntityKeyError, match=r"entity key 'bad\\x00key' contains a NUL character"):
        store.write_batch(unique_name, view, table(view, rows))
    assert store.read(unique_name, view, ["fine"], ["score"]) == [None]
