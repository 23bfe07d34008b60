"""The OnlineStore contract, run unchanged against every online store (real servers, no mocks).

Each test gets a fresh project (and, for PostgreSQL, a fresh schema) so runs sharing a server
never see each other's rows; storage is torn down afterwards.
"""

from __future__ import annotations

import itertools
import random
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from repast import Entity, FeatureView, Field, FileSource
from repast.config.repo_config import RepoConfig
from repast.errors import StoreUnavailable
from repast.online import build_online_store
from repast.online.base import OnlineStore
from repast.plugins.table import ONLINE
from repast.types import (
    Array,
    Bool,
    Bytes,
    Float32,
    Float64,
    Int32,
    Int64,
    String,
    UnixTimestamp,
    ValueType,
)
from tests.contract.plugins import harness_for, suite_params

STORES = suite_params(ONLINE)
T0 = datetime(2024, 5, 1, tzinfo=UTC)


def us(ts: datetime) -> int:
    return (ts - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


# variant -> the `online_store:` mapping of feature_store.yaml for it, isolated by `name`.
ONLINE_HARNESSES: dict[str, Callable[[pytest.FixtureRequest, Path, str], dict[str, Any]]] = {
    "sqlite": lambda request, tmp_path, name: {"type": "sqlite", "path": str(tmp_path / "online.db")},
    "redis": lambda request, tmp_path, name: {"type": "redis",
                                              "connection_string": request.getfixturevalue("redis_url")},
    "postgres": lambda request, tmp_path, name: {"type": "postgres", "url": request.getfixturevalue("postgres_url"),
                                                 "db_schema": name},
}


def online_store_config(kind: str, request: pytest.FixtureRequest, tmp_path: Path, name: str) -> dict[str, Any]:
    """The `online_store:` mapping of feature_store.yaml for a store of `kind`, isolated by `name`."""
    return harness_for(ONLINE_HARNESSES, kind, "ONLINE_HARNESSES in tests/contract/test_online_store.py")(
        request, tmp_path, name)


def drop_postgres_schema(url: str, schema: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def build_store(config: dict[str, Any], project: str, repo_path: Path) -> OnlineStore:
    repo = RepoConfig.model_validate({"project": project, "online_store": config, "repo_path": repo_path})
    store = build_online_store(repo.online_store, repo)
    assert isinstance(store, OnlineStore), f"{type(store).__name__} only reads: the suite writes"
    return store


class Harness:
    """A store plus the project it writes, with helpers to write rows and read them back."""

    def __init__(self, store: OnlineStore, project: str) -> None:
        self.store = store
        self.project = project
        self.views: list[FeatureView] = []

    def apply(self, *views: FeatureView) -> None:
        self.views = [v for v in self.views if v.name not in {x.name for x in views}] + list(views)
        self.store.update(self.project, list(views), [])

    def write(self, view: FeatureView, rows: list[dict[str, Any]]) -> int:
        return self.store.write_batch(self.project, view, table(view, rows))

    def read(self, view: FeatureView, keys: list[Any], features: list[str] | None = None) -> list[Any]:
        return self.store.read(self.project, view, [str(k) for k in keys], features or view.feature_names())


@pytest.fixture(params=STORES)
def kind(request: pytest.FixtureRequest) -> str:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def harness(kind: str, request: pytest.FixtureRequest, tmp_path: Path, unique_name: str) -> Iterator[Harness]:
    config = online_store_config(kind, request, tmp_path, unique_name)
    store = build_store(config, unique_name, tmp_path)
    h = Harness(store, unique_name)
    yield h
    store.teardown(unique_name, h.views)
    store.close()
    if kind == "postgres":
        drop_postgres_schema(config["url"], unique_name)


driver = Entity(name="driver", join_keys=["driver_id"], value_type=ValueType.INT64)
source = FileSource(path="unused.parquet", timestamp_field="event_timestamp", created_timestamp_column="created")


def stats_view(name: str = "driver_stats", ttl: timedelta = timedelta(0), **extra: Any) -> FeatureView:
    schema = [Field(name="conv_rate", dtype=Float32), Field(name="trips", dtype=Int64),
              Field(name="city", dtype=String)]
    return FeatureView(name=name, entities=[driver], source=source, ttl=ttl, schema=extra.get("schema", schema))


def table(view: FeatureView, rows: list[dict[str, Any]]) -> pa.Table:
    """Rows in the engine column contract, typed as the view declares."""
    ts = pa.timestamp("us", tz="UTC")
    cols: dict[str, pa.Array] = {k: pa.array([r[k] for r in rows]) for k in view.join_keys}
    for f in view.features:
        cols[f.name] = pa.array([r.get(f.name) for r in rows], f.dtype.to_arrow())
    cols["event_timestamp"] = pa.array([r["ts"] for r in rows], ts)
    cols["created_timestamp"] = pa.array([r.get("created") for r in rows], ts)
    return pa.table(cols)


def f32(x: float) -> float:
    return float(np.float32(x))


@pytest.mark.parametrize("n_keys", [1, 3])
def test_read_returns_event_time_and_requested_features_in_order(harness: Harness, n_keys: int) -> None:
    view = stats_view()
    harness.apply(view)
    harness.write(view, [{"driver_id": i, "conv_rate": 0.5, "trips": i * 10, "city": f"c{i}", "ts": T0}
                         for i in range(1, 4)])
    rows = harness.read(view, list(range(1, n_keys + 1)), ["city", "conv_rate"])
    assert rows == [(us(T0), f"c{i}", 0.5) for i in range(1, n_keys + 1)]


def test_unknown_keys_read_as_none_in_request_order(harness: Harness) -> None:
    view = stats_view()
    harness.apply(view)
    harness.write(view, [{"driver_id": 2, "conv_rate": 0.25, "trips": 2, "city": "b", "ts": T0}])
    assert harness.read(view, [404, 2, 405]) == [None, (us(T0), 0.25, 2, "b"), None]


def test_older_write_is_ignored(harness: Harness) -> None:
    view = stats_view()
    harness.apply(view)
    harness.write(view, [{"driver_id": 1, "trips": 2, "ts": T0 + timedelta(hours=1)}])
    harness.write(view, [{"driver_id": 1, "trips": 1, "ts": T0}])
    assert harness.read(view, [1], ["trips"]) == [(us(T0 + timedelta(hours=1)), 2)]


def test_later_created_timestamp_wins_on_equal_event_time(harness: Harness) -> None:
    view = stats_view()
    harness.apply(view)
    harness.write(view, [{"driver_id": 1, "trips": 2, "ts": T0, "created": T0 + timedelta(minutes=2)}])
    harness.write(view, [{"driver_id": 1, "trips": 1, "ts": T0, "created": T0 + timedelta(minutes=1)}])
    harness.write(view, [{"driver_id": 1, "trips": 0, "ts": T0}])  # no created time: older than any
    assert harness.read(view, [1], ["trips"]) == [(us(T0), 2)]


def test_equal_timestamps_later_write_wins(harness: Harness) -> None:
    view = stats_view()
    harness.apply(view)
    harness.write(view, [{"driver_id": 1, "trips": 1, "ts": T0}])
    harness.write(view, [{"driver_id": 1, "trips": 2, "ts": T0}])
    assert harness.read(view, [1], ["trips"]) == [(us(T0), 2)]


def test_duplicate_keys_in_one_batch_keep_the_latest(harness: Harness) -> None:
    view = stats_view()
    harness.apply(view)
    harness.write(view, [{"driver_id": 1, "trips": 3, "ts": T0 + timedelta(hours=3)},
                         {"driver_id": 1, "trips": 1, "ts": T0 + timedelta(hours=1)},
                         {"driver_id": 1, "trips": 5, "ts": T0 + timedelta(hours=5)},
                         {"driver_id": 1, "trips": 2, "ts": T0 + timedelta(hours=2)}])
    assert harness.read(view, [1], ["trips"]) == [(us(T0 + timedelta(hours=5)), 5)]


def test_newer_null_value_replaces_a_stored_value(harness: Harness) -> None:
    view = stats_view()
    harness.apply(view)
    harness.write(view, [{"driver_id": 1, "trips": 7, "city": "x", "ts": T0}])
    harness.write(view, [{"driver_id": 1, "trips": None, "city": "y", "ts": T0 + timedelta(seconds=1)}])
    assert harness.read(view, [1], ["trips", "city"]) == [(us(T0 + timedelta(seconds=1)), None, "y")]


_examples = itertools.count()
_write = st.tuples(st.integers(0, 3), st.integers(0, 40), st.integers(0, 40) | st.none())


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(writes=st.lists(_write, min_size=1, max_size=40, unique_by=lambda w: (w[0], w[1], w[2])),
       seed=st.integers(0, 2**32 - 1), batch=st.integers(1, 7), repeat=st.booleans())
def test_latest_wins_under_shuffled_and_repeated_writes(harness: Harness, writes: list[tuple[int, int, int | None]],
                                                        seed: int, batch: int, repeat: bool) -> None:
    view = stats_view(name=f"shuffled_{next(_examples)}")  # fresh storage per example
    harness.apply(view)
    rows = [{"driver_id": k, "trips": e * 100 + (c if c is not None else -1), "ts": T0 + timedelta(seconds=e),
             "created": None if c is None else T0 + timedelta(seconds=c)} for k, e, c in writes]
    order = rows * 2 if repeat else list(rows)
    random.Random(seed).shuffle(order)
    for i in range(0, len(order), batch):
        harness.write(view, order[i:i + batch])
    expected = {}
    for r in rows:  # the latest per key by (event, created), a null created sorting first
        rank = (r["ts"], r["created"] or datetime.min.replace(tzinfo=UTC))
        if r["driver_id"] not in expected or rank > expected[r["driver_id"]][0]:
            expected[r["driver_id"]] = (rank, r)
    got = harness.read(view, [0, 1, 2, 3], ["trips"])
    for key, row in zip([0, 1, 2, 3], got, strict=True):
        want = expected.get(key)
        assert row == (None if want is None else (us(want[1]["ts"]), want[1]["trips"]))


ALL_TYPES = [Int32, Int64, Float32, Float64, String, Bytes, Bool, UnixTimestamp,
             Array(Int32), Array(Int64), Array(Float32), Array(Float64), Array(String), Array(Bytes),
             Array(Bool), Array(UnixTimestamp)]


def _sample(dtype: Any, i: int) -> Any:
    scalar = {"Int32": -7, "Int64": 2**40 + i, "Float32": 0.1, "Float64": 1 / 3, "String": "héllo, \"x\"\n",
              "Bytes": b"\x00\xff,\"", "Bool": True, "UnixTimestamp": T0 + timedelta(microseconds=5)}
    if isinstance(dtype, Array):
        return [scalar[dtype.base.name], None, scalar[dtype.base.name]] if i == 0 else []
    return scalar[dtype.name]


def _expected(dtype: Any, value: Any) -> Any:
    base = dtype.base.name if isinstance(dtype, Array) else dtype.name
    if base != "Float32" or value is None:
        return value
    return [None if v is None else f32(v) for v in value] if isinstance(dtype, Array) else f32(value)


def test_every_type_round_trips_including_arrays_and_nulls(harness: Harness) -> None:
    fields = [Field(name=f"f_{str(t).lower().replace('(', '_').replace(')', '')}", dtype=t) for t in ALL_TYPES]
    view = stats_view(name="typed", schema=fields)
    harness.apply(view)
    values = {f.name: _sample(f.dtype, 0) for f in fields}
    empties = {f.name: _sample(f.dtype, 1) for f in fields}
    harness.write(view, [{"driver_id": 1, "ts": T0, **values}, {"driver_id": 2, "ts": T0},
                         {"driver_id": 3, "ts": T0, **empties}])
    one, two, three = harness.read(view, [1, 2, 3])
    assert one == (us(T0), *[_expected(f.dtype, values[f.name]) for f in fields])
    assert two == (us(T0), *[None] * len(fields))
    assert three == (us(T0), *[_expected(f.dtype, empties[f.name]) for f in fields])


NUMERIC_TYPES = [Int32, Int64, Float32, Float64, String, Bool,
                 Array(Int32), Array(Int64), Array(Float32), Array(Float64)]


def test_numbers_text_and_lists_of_numbers_round_trip_exactly(harness: Harness) -> None:
    """Views of these types only (embeddings with their text) may be written by a faster path
    (PostgreSQL: binary COPY); values, extremes, nulls and empty lists come back as written."""
    fields = [Field(name=f"f_{str(t).lower().replace('(', '_').replace(')', '')}", dtype=t) for t in NUMERIC_TYPES]
    view = stats_view(name="numeric", schema=fields)
    harness.apply(view)
    f32_max, tiny = float(np.finfo(np.float32).max), float(np.float32(1e-45))
    extremes = {"Int32": [-2**31, 2**31 - 1, 0], "Int64": [-2**63, 2**63 - 1, 7],
                "Float32": [f32_max, -0.0, tiny, f32(0.1)], "Float64": [1e308, -5e-324, 1 / 3],
                "String": "héllo, \"x\"\n", "Bool": False}
    scalars = {"Int32": -2**31, "Int64": 2**63 - 1, "Float32": f32_max, "Float64": -1 / 3, "String": "",
               "Bool": True}
    first = {f.name: extremes[f.dtype.base.name] if isinstance(f.dtype, Array) else scalars[f.dtype.name]
             for f in fields}
    third = {f.name: [] if isinstance(f.dtype, Array) else extremes[f.dtype.name] if f.dtype.name in ("String", "Bool")
             else extremes[f.dtype.name][0] for f in fields}
    harness.write(view, [{"driver_id": 1, "ts": T0, **first}, {"driver_id": 2, "ts": T0},
                         {"driver_id": 3, "ts": T0, **third}])
    one, two, three = harness.read(view, [1, 2, 3])
    assert one == (us(T0), *[first[f.name] for f in fields])
    assert two == (us(T0), *[None] * len(fields))
    assert three == (us(T0), *[third[f.name] for f in fields])


def test_composite_and_string_keys(harness: Harness) -> None:
    rider = Entity(name="rider", join_keys=["rider_id"], value_type=ValueType.STRING)
    view = FeatureView(name="pairs", entities=[driver, rider], source=source,
                       schema=[Field(name="rides", dtype=Int64)])
    harness.apply(view)
    harness.store.write_batch(harness.project, view, pa.table({
        "driver_id": [1, 1], "rider_id": ["a", "b"], "rides": [10, 20],
        "event_timestamp": pa.array([T0, T0], pa.timestamp("us", tz="UTC"))}))
    keys = ["1\x1fb", "1\x1fa", "2\x1fa"]
    assert harness.store.read(harness.project, view, keys, ["rides"]) == [(us(T0), 20), (us(T0), 10), None]


def test_changed_schema_on_reapply_rebuilds_storage(harness: Harness) -> None:
    view = stats_view()
    harness.apply(view)
    harness.write(view, [{"driver_id": 1, "trips": 1, "ts": T0}])
    changed = stats_view(schema=[Field(name="trips", dtype=Float64), Field(name="rating", dtype=Float64)])
    harness.apply(changed)
    assert harness.read(changed, [1]) == [None]  # values come back with the next materialization
    harness.write(changed, [{"driver_id": 1, "trips": 1.5, "rating": 4.5, "ts": T0}])
    assert harness.read(changed, [1]) == [(us(T0), 1.5, 4.5)]


def test_declaring_the_key_type_on_reapply_keeps_the_view_readable(harness: Harness) -> None:
    untyped = Entity(name="driver", join_keys=["driver_id"])
    view = FeatureView(name="driver_stats", entities=[untyped], source=source,
                       schema=[Field(name="trips", dtype=Int64)])
    harness.apply(view)
    harness.write(view, [{"driver_id": 1, "trips": 1, "ts": T0}])
    typed = stats_view(schema=[Field(name="trips", dtype=Int64)])
    harness.apply(typed)
    harness.write(typed, [{"driver_id": 2, "trips": 2, "ts": T0}])
    assert harness.read(typed, [2], ["trips"]) == [(us(T0), 2)]


def test_integer_keys_beyond_64_bits_read_as_none(harness: Harness) -> None:
    view = stats_view()
    harness.apply(view)
    harness.write(view, [{"driver_id": 1, "trips": 1, "ts": T0}])
    assert harness.read(view, [2**70], ["trips"]) == [None]
    assert harness.read(view, [-(2**70), 1], ["trips"]) == [None, (us(T0), 1)]


def test_integer_declared_key_written_from_a_string_column_reads_by_integer(harness: Harness) -> None:
    view = stats_view(schema=[Field(name="trips", dtype=Int64)])
    harness.apply(view)
    harness.store.write_batch(harness.project, view, pa.table({
        "driver_id": ["7", "8"], "trips": [70, 80],
        "event_timestamp": pa.array([T0, T0], pa.timestamp("us", tz="UTC"))}))
    assert harness.read(view, [8, 7], ["trips"]) == [(us(T0), 80), (us(T0), 70)]


def test_unchanged_reapply_keeps_values(harness: Harness) -> None:
    view = stats_view()
    harness.apply(view)
    harness.write(view, [{"driver_id": 1, "trips": 1, "ts": T0}])
    harness.apply(stats_view())
    assert harness.read(view, [1], ["trips"]) == [(us(T0), 1)]


def test_deleted_view_storage_is_dropped(harness: Harness) -> None:
    keep, gone = stats_view("keep"), stats_view("gone")
    harness.apply(keep, gone)
    for v in (keep, gone):
        harness.write(v, [{"driver_id": 1, "trips": 1, "ts": T0}])
    harness.store.update(harness.project, [keep], [gone])
    assert harness.read(gone, [1]) == [None]
    assert harness.read(keep, [1], ["trips"]) == [(us(T0), 1)]


def test_teardown_removes_all_storage(harness: Harness) -> None:
    view = stats_view()
    harness.apply(view)
    harness.write(view, [{"driver_id": 1, "trips": 1, "ts": T0}])
    harness.store.teardown(harness.project, [view])
    assert harness.read(view, [1]) == [None]


def test_rows_without_key_or_event_time_are_skipped(harness: Harness) -> None:
    view = stats_view()
    harness.apply(view)
    batch = pa.table({"driver_id": pa.array([1, None], pa.int64()), "conv_rate": pa.array([0.5, 0.5], pa.float32()),
                      "trips": [1, 2], "city": ["a", "b"],
                      "event_timestamp": pa.array([None, T0], pa.timestamp("us", tz="UTC"))})
    harness.store.write_batch(harness.project, view, batch)
    assert harness.read(view, [1]) == [None]


def test_ping_answers(harness: Harness) -> None:
    harness.store.ping()


def _sqlite_key_column(harness: Harness, view: str) -> tuple[str, int]:
    conn = sqlite3.connect(harness.store.path)  # type: ignore[attr-defined]
    with closing(conn):
        info = conn.execute(f'PRAGMA table_info("{harness.project}_{view}")').fetchall()
    return next((row[2], row[5]) for row in info if row[1] == "_entity_key")


def test_sqlite_keys_a_single_integer_key_by_rowid_and_rebuilds_when_that_changes(tmp_path: Path) -> None:
    store = build_store({"type": "sqlite", "path": str(tmp_path / "online.db")}, "p", tmp_path)
    harness = Harness(store, "p")
    untyped = Entity(name="driver", join_keys=["driver_id"])
    harness.apply(FeatureView(name="driver_stats", entities=[untyped], source=source,
                              schema=[Field(name="trips", dtype=Int64)]))
    assert _sqlite_key_column(harness, "driver_stats") == ("TEXT", 0)
    typed = stats_view()
    harness.apply(typed)
    assert _sqlite_key_column(harness, "driver_stats") == ("INTEGER", 1)  # the rowid: no key index
    harness.write(typed, [{"driver_id": 3, "trips": 3, "ts": T0}])
    assert harness.read(typed, [3], ["trips"]) == [(us(T0), 3)]
    store.close()


UNREACHABLE = {"sqlite": {"type": "sqlite", "path": "/proc/no/such/dir/online.db"},
               "redis": {"type": "redis", "connection_string": "127.0.0.1:1"},
               "postgres": {"type": "postgres", "url": "postgresql://postgres@127.0.0.1:1/test",
                            "connect_timeout_seconds": 1}}


@pytest.mark.parametrize("kind_name", ["sqlite", "redis", "postgres"])
def test_unreachable_store_raises_store_unavailable(kind_name: str, tmp_path: Path) -> None:
    store = build_store(UNREACHABLE[kind_name], "p", tmp_path)
    with pytest.raises(StoreUnavailable):
        store.ping()
    store.close()


# ---- capability: the newest stored event time (the web UI's freshness) --------------------------

def test_newest_event_time_is_the_latest_stored_or_none(harness: Harness, kind: str) -> None:
    from repast.online.base import NewestValueReader

    if not isinstance(harness.store, NewestValueReader):
        pytest.xfail(f"the {kind} online store does not report its newest value (capability not declared)")
    view = stats_view()
    assert harness.store.newest_event_time(harness.project, view.name) is None  # no storage yet
    harness.apply(view)
    assert harness.store.newest_event_time(harness.project, view.name) is None  # empty
    harness.write(view, [{"driver_id": 1, "trips": 1, "ts": T0},
                         {"driver_id": 2, "trips": 2, "ts": T0 + timedelta(hours=2)}])
    assert harness.store.newest_event_time(harness.project, view.name) == T0 + timedelta(hours=2)


# ---- Feast's newer types: every name of its types module, stored and read back typed -------------------

def test_feast_newer_types_round_trip_with_their_python_types(harness: Harness) -> None:
    import decimal
    import uuid

    from repast.types import Decimal, ImageBytes, Json, Map, PdfBytes, Set, Struct, TimeUuid, Uuid

    person = Struct({"name": String, "age": Int64, "seen": UnixTimestamp, "tags": Array(String)})
    fields = [Field(name="uuid", dtype=Uuid), Field(name="time_uuid", dtype=TimeUuid),
              Field(name="amount", dtype=Decimal), Field(name="pdf", dtype=PdfBytes),
              Field(name="image", dtype=ImageBytes), Field(name="doc", dtype=Json), Field(name="attrs", dtype=Map),
              Field(name="person", dtype=person), Field(name="seen_ids", dtype=Set(Int64)),
              Field(name="uuids", dtype=Array(Uuid)), Field(name="amounts", dtype=Array(Decimal))]
    view = stats_view(name="feast_types", schema=fields)
    harness.apply(view)
    u = "12345678-1234-5678-1234-567812345678"
    values = {"uuid": u, "time_uuid": u, "amount": decimal.Decimal("1.5"), "pdf": b"%PDF-1.7", "image": b"\x89PNG",
              "doc": '{"a": [1, 2], "b": null}', "attrs": [("k", "v"), ("n", "1")],
              "person": {"name": "Ada", "age": 36, "seen": T0, "tags": ["x"]}, "seen_ids": [3, 1, 3],
              "uuids": [u, None], "amounts": [decimal.Decimal("2.25")]}
    harness.write(view, [{"driver_id": 1, "ts": T0, **values}, {"driver_id": 2, "ts": T0}])
    one, two = harness.read(view, [1, 2])
    assert one == (us(T0), uuid.UUID(u), uuid.UUID(u), decimal.Decimal("1.5"), b"%PDF-1.7", b"\x89PNG",
                   {"a": [1, 2], "b": None}, {"k": "v", "n": "1"},
                   {"name": "Ada", "age": 36, "seen": T0, "tags": ["x"]}, [3, 1], [uuid.UUID(u), None],
                   [decimal.Decimal("2.25")])
    assert two == (us(T0), *[None] * len(fields))


def test_invalid_json_text_is_refused_before_anything_is_written(harness: Harness) -> None:
    from repast.errors import InputError
    from repast.types import Json

    view = stats_view(name="json_view", schema=[Field(name="doc", dtype=Json)])
    harness.apply(view)
    with pytest.raises(InputError, match="doc"):
        harness.write(view, [{"driver_id": 1, "ts": T0, "doc": "{not json"}])
    assert harness.read(view, [1]) == [None]
