"""The Spark engine gives DuckDB's rows: on generated edge-case data, on pandas' nanosecond
Parquet, and for the entity inputs and outputs only Spark has (Spark DataFrames, to_spark_df)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from repast.definitions import Field, FileSource, RequestSource, on_demand_feature_view
from repast.offline.base import SpineRange
from repast.offline.spark_job import read_staged, staged_batches
from repast.types import Float64, Int64, String
from tests.contract.offline_harness import DuckDBHarness, SparkHarness, view

T0 = datetime(2024, 1, 1, tzinfo=UTC)
UTC_US = pa.timestamp("us", tz="UTC")


@pytest.fixture
def engines(spark_session: object, tmp_path: Path) -> tuple[DuckDBHarness, SparkHarness]:
    return DuckDBHarness(tmp_path), SparkHarness(tmp_path)


def _generated(rng: np.random.Generator, n: int) -> pa.Table:
    """Event times on a coarse grid (duplicates and exact ties), nulls in values and created."""
    minutes = rng.integers(0, 40, n)
    created = rng.integers(0, 3, n)
    value = rng.normal(size=n)
    return pa.table({
        "driver_id": pa.array(rng.integers(0, 30, n), pa.int64()),
        "event_timestamp": pa.array([T0 + timedelta(minutes=int(m)) for m in minutes], UTC_US),
        "created": pa.array([None if c == 0 else T0 + timedelta(minutes=int(m + c)) for m, c in
                             zip(minutes, created, strict=True)], UTC_US),
        "value": pa.array([None if i % 7 == 0 else float(v) for i, v in enumerate(value)], pa.float64()),
        "label": pa.array([f"r{i}" if i % 5 else None for i in range(n)], pa.string()),
    })


def _entity(rng: np.random.Generator, n: int) -> pa.Table:
    """Keys 0..39 (30..39 have no rows), times from before any data to after all of it."""
    keys = rng.integers(0, 40, n)
    return pa.table({
        "driver_id": pa.array([None if i % 50 == 0 else int(k) for i, k in enumerate(keys)], pa.int64()),
        "event_timestamp": pa.array([T0 + timedelta(minutes=int(m)) for m in rng.integers(-5, 50, n)], UTC_US),
        "row": pa.array(range(n), pa.int64()),
    })


@pytest.mark.parametrize("ttl_minutes", [0, 7])
def test_spark_and_duckdb_give_identical_training_rows_on_generated_data(
        engines: tuple[DuckDBHarness, SparkHarness], ttl_minutes: int) -> None:
    duck, spark = engines
    rng = np.random.default_rng(13)
    table = _generated(rng, 600)
    (duck.root / "stats").mkdir()
    pq.write_table(table.slice(0, 300), duck.root / "stats" / "part-0.parquet")
    pq.write_table(table.slice(300), duck.root / "stats" / "part-1.parquet")  # ties across files too
    source = FileSource(name="stats", path="stats", timestamp_field="event_timestamp",
                        created_timestamp_column="created")
    fv = view("stats", source, ["driver_id"], {"value": Float64, "label": String},
              ttl=timedelta(minutes=ttl_minutes))
    entity = _entity(rng, 400)
    features = ["stats:value", "stats:label"]
    expected = duck.retrieve([fv], entity, features).to_arrow()
    assert spark.retrieve([fv], entity, features).to_arrow().equals(expected)


def test_spark_and_duckdb_materialize_the_same_latest_rows(engines: tuple[DuckDBHarness, SparkHarness]) -> None:
    duck, spark = engines
    pq.write_table(_generated(np.random.default_rng(5), 500), duck.root / "stats.parquet")
    source = FileSource(name="stats", path="stats.parquet", timestamp_field="event_timestamp",
                        created_timestamp_column="created")
    fv = view("stats", source, ["driver_id"], {"value": Float64, "label": String})
    start, end = T0 + timedelta(minutes=3), T0 + timedelta(minutes=35)
    expected = pa.Table.from_batches(list(duck.engine.read_latest(fv, start, end)))
    assert pa.Table.from_batches(list(spark.engine.read_latest(fv, start, end))).equals(expected)


def test_pandas_nanosecond_parquet_reads_as_the_same_instants(
        engines: tuple[DuckDBHarness, SparkHarness]) -> None:
    duck, spark = engines
    stamps = pd.to_datetime(["2024-01-01 00:00:00.000001500", "2024-01-01 00:00:00.000003999"], utc=True)
    frame = pd.DataFrame({"driver_id": [1, 2], "event_timestamp": stamps, "value": [1.5, 2.5]})
    frame.to_parquet(duck.root / "nanos.parquet")  # pandas keeps nanoseconds; both round to the nearest µs
    assert pq.read_schema(duck.root / "nanos.parquet").field("event_timestamp").type.unit == "ns"
    source = FileSource(name="nanos", path="nanos.parquet", timestamp_field="event_timestamp")
    fv = view("nanos", source, ["driver_id"], {"value": Float64})
    entity = pa.table({"driver_id": [1, 2, 2], "event_timestamp": pa.array(
        [T0 + timedelta(microseconds=2), T0 + timedelta(microseconds=3), T0 + timedelta(microseconds=4)], UTC_US)})
    expected = duck.retrieve([fv], entity, ["nanos:value"]).to_arrow()
    assert expected.column("value").to_pylist() == [1.5, None, 2.5]
    assert spark.retrieve([fv], entity, ["nanos:value"]).to_arrow().equals(expected)
    end = T0 + timedelta(seconds=1)
    assert spark.engine.read_range(fv, T0, end).column("event_timestamp").equals(
        duck.engine.read_range(fv, T0, end).column("event_timestamp"))


def _stats_view(spark: SparkHarness):  # type: ignore[no-untyped-def]
    rows = pa.table({"driver_id": pa.array([1, 2], pa.int64()), "event_timestamp": pa.array([T0, T0], UTC_US),
                     "value": pa.array([10, 20], pa.int64())})
    return view("s", spark.source("s", rows), ["driver_id"], {"value": Int64})


def test_entity_frame_may_be_a_spark_dataframe(engines: tuple[DuckDBHarness, SparkHarness],
                                                spark_session) -> None:  # type: ignore[no-untyped-def]
    _, spark = engines
    fv = _stats_view(spark)
    entity = spark_session.createDataFrame(pa.table({
        "driver_id": pa.array([2, 3, 1], pa.int64()),
        "event_timestamp": pa.array([T0 + timedelta(hours=1)] * 3, UTC_US)}))
    result = spark.retrieve([fv], entity, ["s:value"]).to_arrow()
    assert result.column("driver_id").to_pylist() == [2, 3, 1]
    assert result.column("value").to_pylist() == [20, None, 10]


def test_to_spark_df_returns_the_distributed_result(engines: tuple[DuckDBHarness, SparkHarness]) -> None:
    _, spark = engines
    fv = _stats_view(spark)
    entity = pa.table({"driver_id": pa.array([2, 1], pa.int64()),
                       "event_timestamp": pa.array([T0, T0], UTC_US)})
    frame = spark.retrieve([fv], entity, ["s:value"], full_feature_names=True).to_spark_df()
    assert type(frame).__name__ == "DataFrame"
    assert [(r["driver_id"], r["s__value"]) for r in frame.collect()] == [(2, 20), (1, 10)]


@pytest.mark.parametrize("mode", ["pandas", "python"])
def test_to_spark_df_runs_on_demand_views_on_the_executors_as_duckdb_does(
        engines: tuple[DuckDBHarness, SparkHarness], mode: str) -> None:
    duck, spark = engines
    rng = np.random.default_rng(17)
    (duck.root / "stats").mkdir()
    pq.write_table(_generated(rng, 300), duck.root / "stats" / "part-0.parquet")
    source = FileSource(name="stats", path="stats", timestamp_field="event_timestamp",
                        created_timestamp_column="created")
    fv = view("stats", source, ["driver_id"], {"value": Float64, "label": String}, ttl=timedelta(minutes=9))
    request = RequestSource(name="req", schema=[Field(name="bonus", dtype=Int64)])

    def boosted(inputs):  # type: ignore[no-untyped-def]
        if mode == "pandas":
            return pd.DataFrame({"boosted": inputs["value"] + inputs["bonus"],
                                 "tagged": inputs["stats__label"].fillna("none") + "!"})
        return {"boosted": [None if v is None else v + b for v, b in zip(inputs["value"], inputs["bonus"],
                                                                          strict=True)],
                "tagged": [f"{label or 'none'}!" for label in inputs["stats__label"]]}

    odfv = on_demand_feature_view(sources=[fv, request], mode=mode, schema=[
        Field(name="boosted", dtype=Float64), Field(name="tagged", dtype=String)])(boosted)
    entity = _entity(rng, 200)
    entity = entity.append_column("bonus", pa.array(rng.integers(0, 5, entity.num_rows), pa.int64()))
    # stats:value is read for the view but not requested: hidden from the result on both engines.
    features = ["stats:label", "boosted:boosted", "boosted:tagged"]
    expected = duck.retrieve([fv], entity, features, on_demand=[odfv], full_feature_names=True).to_arrow()
    frame = spark.retrieve([fv], entity, features, on_demand=[odfv], full_feature_names=True).to_spark_df()
    result = frame.toArrow()
    assert result.column_names == expected.column_names
    assert result.cast(expected.schema).equals(expected)


def test_to_parquet_streams_the_result_through_staging_and_leaves_it_empty(
        engines: tuple[DuckDBHarness, SparkHarness], tmp_path: Path) -> None:
    _, spark = engines
    fv = _stats_view(spark)
    entity = pa.table({"driver_id": pa.array([1, 2, 9], pa.int64()),
                       "event_timestamp": pa.array([T0] * 3, UTC_US)})
    spark.retrieve([fv], entity, ["s:value"]).to_parquet(str(tmp_path / "out.parquet"))
    assert pq.read_table(tmp_path / "out.parquet").column("value").to_pylist() == [10, 20, None]
    assert list((tmp_path / "staging").iterdir()) == []


def test_spine_retrieval_works_on_spark(engines: tuple[DuckDBHarness, SparkHarness]) -> None:
    _, spark = engines
    fv = _stats_view(spark)
    result = spark.retrieve([fv], SpineRange(T0, T0 + timedelta(days=1)), ["s:value"]).to_arrow()
    assert result.column("value").to_pylist() == [10, 20]


def test_staged_results_reach_the_driver_one_bounded_batch_at_a_time(
        engines: tuple[DuckDBHarness, SparkHarness], spark_session) -> None:  # type: ignore[no-untyped-def]
    # to_arrow, to_df and to_parquet read the result this way. One partition of 200,000 rows would
    # be one file and one row group if Spark chose: the Arrow memory in use while a batch is in
    # hand stays a small fraction of the 16 MB result, with the rows in order.
    _, spark = engines
    rows, batch_size = 200_000, 5_000
    frame = spark_session.range(rows, numPartitions=1).selectExpr("id", *[f"id * {i} + 0.5 AS c{i}" for i in range(9)])
    before = pa.total_allocated_bytes()
    held, ids = 0, []
    for batch in staged_batches(spark.engine, frame, batch_size):
        held = max(held, pa.total_allocated_bytes() - before)
        assert batch.num_rows <= batch_size
        ids += batch.column("id").to_pylist()
    assert ids == list(range(rows))
    assert held < rows * 10 * 8 / 4


def test_staged_parts_are_read_in_spark_order_past_the_thousandth_file_of_a_partition(tmp_path: Path) -> None:
    names = ["part-00000-job-c998", "part-00000-job-c999", "part-00000-job-c1000", "part-00001-job-c000"]
    for i, name in enumerate(names):
        pq.write_table(pa.table({"i": [i]}), tmp_path / f"{name}.snappy.parquet")
    assert [v for batch in read_staged(str(tmp_path), 10) for v in batch.column("i").to_pylist()] == [0, 1, 2, 3]
