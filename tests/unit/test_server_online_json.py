"""The server writes get-online-features answers straight from the stored rows: byte for byte the
JSON of the SDK's response, for every value type, status and request shape."""

from __future__ import annotations

import decimal
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from repast import Entity, FeatureService, FeatureStore, FeatureView, Field, FileSource, ValueType
from repast.jobs.online_read import get_online_features
from repast.server.online_json import OnlineJsonAnswers
from repast.server.responses import online_response_json
from repast.types import (
    Array,
    Bool,
    Bytes,
    Decimal,
    Float32,
    Float64,
    Int32,
    Int64,
    String,
    UnixTimestamp,
)

NOW = datetime.now(UTC).replace(microsecond=0)
NUMBERS = [Field(name="i32", dtype=Int32), Field(name="i64", dtype=Int64), Field(name="f32", dtype=Float32),
           Field(name="f64", dtype=Float64), Field(name="flag", dtype=Bool)]
OTHERS = [Field(name="text", dtype=String), Field(name="blob", dtype=Bytes), Field(name="when", dtype=UnixTimestamp),
          Field(name="ints", dtype=Array(Int64)), Field(name="words", dtype=Array(String)),
          Field(name="price", dtype=Decimal)]


def _table(ids: list[int], values: dict[str, list[Any]], ages: list[timedelta]) -> pa.Table:
    stamps = [NOW - a for a in ages]
    return pa.table({"driver_id": pa.array(ids, pa.int64()), **values,
                     "event_timestamp": pa.array(stamps, pa.timestamp("us", tz="UTC")),
                     "created": pa.array(stamps, pa.timestamp("us", tz="UTC"))})


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> FeatureStore:
    from repast.cli.scaffold import init_repo

    repo: Path = init_repo(tmp_path_factory.mktemp("json") / "repo", "sample")
    fs = FeatureStore(repo_path=repo)
    fs.apply_repo()
    ids = [1, 2, 3, 4]
    # 1: every value; 2: nulls (and a NaN); 3: older than the ttl; 4: a timestamp with microseconds.
    ages = [timedelta(hours=1), timedelta(hours=2), timedelta(days=5), timedelta(seconds=1, microseconds=250)]
    numbers = {"i32": pa.array([1, None, -3, 2**31 - 1], pa.int32()), "i64": pa.array([2**53 + 1, 5, None, -7]),
               "f32": pa.array([0.1, float("nan"), 1.5, None], pa.float32()),
               "f64": pa.array([1e300, None, -0.0, 2.5]), "flag": pa.array([True, None, False, True])}
    others = {"text": pa.array(['a, "b", c', None, "", "ü\x1f"]),
              "blob": pa.array([b"\x00\xff,", None, b"", b"x"]),
              "when": pa.array([NOW, None, NOW - timedelta(microseconds=5), datetime(1, 1, 1, tzinfo=UTC)],
                               pa.timestamp("us", tz="UTC")),
              "ints": pa.array([[1, None, 3], None, [], [2**40]], pa.list_(pa.int64())),
              "words": pa.array([["x,y", None], None, [], ["z"]], pa.list_(pa.string())),
              "price": pa.array([decimal.Decimal("1.25"), None, decimal.Decimal("-3"), decimal.Decimal("0.5")],
                                pa.decimal128(38, 18))}
    data = repo / "data"
    pq.write_table(_table(ids, numbers, ages), data / "numbers.parquet")
    pq.write_table(_table(ids, others, ages), data / "others.parquet")
    driver = Entity(name="json_driver", join_keys=["driver_id"], value_type=ValueType.INT64)
    views = [FeatureView(name=name, entities=[driver], ttl=timedelta(days=1), schema=schema,
                         source=FileSource(name=f"{name}_source", path=str(data / f"{name}.parquet"),
                                           timestamp_field="event_timestamp", created_timestamp_column="created"))
             for name, schema in (("numbers", NUMBERS), ("others", OTHERS))]
    fs.apply([driver, *views])
    fs.materialize(NOW - timedelta(days=10), NOW + timedelta(seconds=1), ["numbers", "others"])
    fs.apply([FeatureService(name="mapped", features=[views[0][["f64", "i32"]].with_join_key_map(
        {"driver_id": "origin"}), views[1][["text"]]])])
    return fs


def _both(store: FeatureStore, features: Any, entities: dict[str, list[Any]],
          full: bool = False) -> tuple[bytes, bytes]:
    answers = OnlineJsonAnswers(store.registry)
    fast = answers.answer(store.online_store, features, entities, full)
    # The second time from the remembered request shape: the same bytes.
    assert answers.answer(store.online_store, features, entities, full) == fast
    general = get_online_features(store.registry, store.online_store, features, entities, full)
    return fast, online_response_json(general)


NUMBER_REFS = [f"numbers:{f.name}" for f in NUMBERS]
OTHER_REFS = [f"others:{f.name}" for f in OTHERS]
SHAPES = {
    "numbers": NUMBER_REFS,
    "numbers, reordered and in part": ["numbers:flag", "numbers:i32", "numbers:f32"],
    "other types": OTHER_REFS,
    "two views interleaved": ["others:text", "numbers:i64", "others:when", "numbers:f32"],
}


@pytest.mark.parametrize("ids", [[1], [2], [3], [4], [99], [1, 2, 3, 4, 99], [99, 99], [4, 1]],
                         ids=lambda ids: ",".join(map(str, ids)))
@pytest.mark.parametrize("shape", SHAPES)
def test_the_answer_is_byte_for_byte_the_sdk_responses_json(store: FeatureStore, shape: str, ids: list[int]) -> None:
    for full in (False, True):
        fast, general = _both(store, SHAPES[shape], {"driver_id": ids}, full)
        assert fast == general


def test_a_feature_service_with_a_join_key_map_answers_the_same(store: FeatureStore) -> None:
    service = store.get_feature_service("mapped")
    fast, general = _both(store, service, {"origin": [3, 1], "driver_id": [2, 9]})
    assert fast == general
    assert b'"feature_names":["origin","driver_id","f64","i32","text"]' in fast


def test_statuses_are_computed_per_request(store: FeatureStore) -> None:
    import orjson

    answers = OnlineJsonAnswers(store.registry)
    body = orjson.loads(answers.answer(store.online_store, ["numbers:f64"], {"driver_id": [1, 2, 3, 99]}, False))
    assert body["results"][1]["statuses"] == ["PRESENT", "NULL_VALUE", "OUTSIDE_MAX_AGE", "NOT_FOUND"]


def test_an_apply_between_two_requests_changes_the_next_answer(store: FeatureStore) -> None:
    """The remembered parts of a request shape follow the definitions: a ttl applied between two
    identical requests decides the second answer's statuses."""
    import orjson

    answers = OnlineJsonAnswers(store.registry)
    request = (store.online_store, ["numbers:f64"], {"driver_id": [3]}, False)
    assert orjson.loads(answers.answer(*request))["results"][1]["statuses"] == ["OUTSIDE_MAX_AGE"]
    view = store.get_feature_view("numbers")
    try:
        view.ttl = timedelta(days=10)
        store.apply(view)
        store.refresh_registry()
        assert orjson.loads(answers.answer(*request))["results"][1]["statuses"] == ["PRESENT"]
    finally:
        view.ttl = timedelta(days=1)
        store.apply(view)
        store.refresh_registry()
    assert orjson.loads(answers.answer(*request))["results"][1]["statuses"] == ["OUTSIDE_MAX_AGE"]
