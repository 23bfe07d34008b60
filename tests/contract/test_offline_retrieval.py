"""Contract: point-in-time retrieval, identical on every offline engine (DESIGN.md semantics)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pandas as pd
import pyarrow as pa
import pytest

from repast.definitions import Field, FileSource, PostgreSQLSource, RequestSource, on_demand_feature_view
from repast.errors import DefinitionError, EntityKeyError, FeatureNotFound, InputError
from repast.offline.base import SpineRange
from repast.types import Float64, Int64, String
from tests.contract.offline_harness import OfflineHarness, offline, view  # noqa: F401

BASE = datetime(2024, 3, 1, tzinfo=UTC)
UTC_US = pa.timestamp("us", tz="UTC")


def at(minutes: float) -> datetime:
    return BASE + timedelta(minutes=minutes)


def stats(rows: list[tuple[int, float, float, float | None]]) -> pa.Table:
    """driver_id, event minute, created minute, value."""
    return pa.table({
        "driver_id": pa.array([r[0] for r in rows], pa.int64()),
        "event_timestamp": pa.array([at(r[1]) for r in rows], UTC_US),
        "created": pa.array([at(r[2]) for r in rows], UTC_US),
        "value": pa.array([r[3] for r in rows], pa.float64()),
    })


def entities(rows: list[tuple[int | None, float]], naive: bool = False) -> pa.Table:
    times = [at(m).replace(tzinfo=None) if naive else at(m) for _, m in rows]
    return pa.table({"driver_id": pa.array([r[0] for r in rows], pa.int64()),
                     "event_timestamp": pa.array(times, pa.timestamp("us") if naive else UTC_US),
                     "label": pa.array([f"row{i}" for i in range(len(rows))])})


def driver_view(offline: OfflineHarness, rows: list[tuple[int, float, float, float | None]],  # noqa: F811
                ttl: timedelta = timedelta(0), name: str = "driver_stats"):  # type: ignore[no-untyped-def]
    source = offline.source(name, stats(rows), created="created")
    return view(name, source, ["driver_id"], {"value": Float64}, ttl=ttl)


def values(offline: OfflineHarness, fv, entity, features=None) -> list:  # type: ignore[no-untyped-def] # noqa: F811
    result = offline.retrieve([fv], entity, features or [f"{fv.name}:value"]).to_arrow()
    return result.column("value").to_pylist()


def test_later_created_timestamp_wins_on_equal_event_time(offline: OfflineHarness) -> None:  # noqa: F811
    fv = driver_view(offline, [(1, 10, 12, 1.0), (1, 10, 15, 2.0), (1, 10, 11, 3.0)])
    assert values(offline, fv, entities([(1, 20)])) == [2.0]


def test_greatest_event_time_wins_over_later_created(offline: OfflineHarness) -> None:  # noqa: F811
    fv = driver_view(offline, [(1, 10, 50, 1.0), (1, 11, 12, 2.0)])
    assert values(offline, fv, entities([(1, 20)])) == [2.0]


def test_rows_after_the_entity_time_are_never_used(offline: OfflineHarness) -> None:  # noqa: F811
    fv = driver_view(offline, [(1, 10, 10, 1.0), (1, 30, 30, 2.0)])
    assert values(offline, fv, entities([(1, 5), (1, 29.99), (1, 30)])) == [None, 1.0, 2.0]


def test_every_entity_row_is_kept_in_order_with_its_columns(offline: OfflineHarness) -> None:  # noqa: F811
    fv = driver_view(offline, [(1, 0, 0, 1.0), (2, 0, 0, 2.0)])
    entity = entities([(2, 5), (9, 5), (1, 5), (2, 5), (None, 5)])
    result = offline.retrieve([fv], entity, ["driver_stats:value"]).to_arrow()
    assert result.column_names == ["driver_id", "event_timestamp", "label", "value"]
    assert result.column("label").to_pylist() == ["row0", "row1", "row2", "row3", "row4"]
    assert result.column("value").to_pylist() == [2.0, None, 1.0, 2.0, None]


def test_batches_hold_the_rows_of_to_arrow_in_entity_order(offline: OfflineHarness) -> None:  # noqa: F811
    fv = driver_view(offline, [(1, 0, 0, 1.0), (2, 0, 0, 2.0)])
    entity = entities([(2, 5), (9, 5), (1, 5), (2, 5), (None, 5)])
    job = offline.retrieve([fv], entity, ["driver_stats:value"])
    batches = list(job.to_batches(2))
    assert pa.Table.from_batches(batches).equals(job.to_arrow())


def test_ttl_window_includes_both_ends(offline: OfflineHarness) -> None:  # noqa: F811
    fv = driver_view(offline, [(1, 10, 10, 1.0)], ttl=timedelta(minutes=5))
    assert values(offline, fv, entities([(1, 10), (1, 15), (1, 15.001)])) == [1.0, 1.0, None]


def test_zero_ttl_means_no_age_limit(offline: OfflineHarness) -> None:  # noqa: F811
    fv = driver_view(offline, [(1, 0, 0, 1.0)], ttl=timedelta(0))
    assert values(offline, fv, entities([(1, 60 * 24 * 365)])) == [1.0]


def test_stale_latest_row_gives_null_not_an_older_row(offline: OfflineHarness) -> None:  # noqa: F811
    fv = driver_view(offline, [(1, 0, 0, 1.0), (1, 10, 10, None)], ttl=timedelta(minutes=5))
    assert values(offline, fv, entities([(1, 12), (1, 30)])) == [None, None]


def test_timestamps_without_zone_are_utc_and_output_is_utc(offline: OfflineHarness) -> None:  # noqa: F811
    fv = driver_view(offline, [(1, 10, 10, 1.0)])
    result = offline.retrieve([fv], entities([(1, 9), (1, 10)], naive=True), ["driver_stats:value"]).to_arrow()
    assert result.schema.field("event_timestamp").type == UTC_US
    assert result.column("value").to_pylist() == [None, 1.0]


def test_entity_times_in_another_zone_compare_as_instants(offline: OfflineHarness) -> None:  # noqa: F811
    fv = driver_view(offline, [(1, 10, 10, 1.0)])
    plus2 = timezone(timedelta(hours=2))
    frame = pd.DataFrame({"driver_id": [1, 1], "event_timestamp": [at(9).astimezone(plus2), at(10).astimezone(plus2)]})
    assert values(offline, fv, frame) == [None, 1.0]


def test_entity_frame_may_be_pandas(offline: OfflineHarness) -> None:  # noqa: F811
    fv = driver_view(offline, [(1, 10, 10, 1.0)])
    frame = pd.DataFrame({"driver_id": [1], "event_timestamp": [pd.Timestamp(at(20)).tz_localize(None)]})
    assert offline.retrieve([fv], frame, ["driver_stats:value"]).to_df()["value"].tolist() == [1.0]


def test_entity_frame_may_be_an_sql_query(offline: OfflineHarness) -> None:  # noqa: F811
    fv = driver_view(offline, [(1, 10, 10, 1.0), (2, 10, 10, 2.0)])
    sql = offline.entity_sql(entities([(2, 20), (1, 20), (1, 5)]))
    result = offline.retrieve([fv], sql, ["driver_stats:value"]).to_arrow()
    assert result.column("value").to_pylist() == [2.0, 1.0, None]
    assert result.column("label").to_pylist() == ["row0", "row1", "row2"]


def test_field_mapping_renames_source_columns(offline: OfflineHarness) -> None:  # noqa: F811
    table = stats([(1, 10, 10, 1.5)]).rename_columns(["drv", "ts", "created", "raw_value"])
    source = offline.source("mapped", table, timestamp_field="ts", created="created",
                            field_mapping={"raw_value": "value", "drv": "driver_id"})
    fv = view("mapped", source, ["driver_id"], {"value": Float64})
    assert values(offline, fv, entities([(1, 20)]), ["mapped:value"]) == [1.5]


def test_views_with_different_join_keys_and_full_names(offline: OfflineHarness) -> None:  # noqa: F811
    fv = driver_view(offline, [(1, 10, 10, 1.0)])
    city = pa.table({"city": ["ams", "ber"], "event_timestamp": pa.array([at(0), at(0)], UTC_US),
                     "value": pa.array([7, 8], pa.int64())})
    cv = view("city_stats", offline.source("city_stats", city), ["city"], {"value": Int64})
    entity = entities([(1, 20), (2, 20)]).append_column("city", pa.array(["ber", "xyz"]))
    result = offline.retrieve([fv, cv], entity, ["driver_stats:value", "city_stats:value"],
                              full_feature_names=True).to_arrow()
    assert result.column("driver_stats__value").to_pylist() == [1.0, None]
    assert result.column("city_stats__value").to_pylist() == [8, None]


def test_projection_alias_and_join_key_map(offline: OfflineHarness) -> None:  # noqa: F811
    fv = driver_view(offline, [(1, 10, 10, 1.0), (2, 10, 10, 2.0)])
    other = fv.with_name("rider_stats").with_join_key_map({"driver_id": "rider_id"})
    entity = entities([(1, 20)]).append_column("rider_id", pa.array([2], pa.int64()))
    from repast.definitions import FeatureService

    service = FeatureService(name="svc", features=[fv[["value"]], other])
    result = offline.retrieve([fv], entity, service, full_feature_names=True).to_arrow()
    assert result.column("driver_stats__value").to_pylist() == [1.0]
    assert result.column("rider_stats__value").to_pylist() == [2.0]


def test_features_are_typed_as_declared(offline: OfflineHarness) -> None:  # noqa: F811
    table = pa.table({"driver_id": [1], "event_timestamp": pa.array([at(0)], UTC_US),
                      "n": pa.array([3], pa.int32()), "s": ["x"]})
    fv = view("typed", offline.source("typed", table), ["driver_id"], {"n": Int64, "s": String})
    result = offline.retrieve([fv], entities([(1, 1)]), ["typed:n", "typed:s"]).to_arrow()
    assert result.schema.field("n").type == pa.int64() and result.column("s").to_pylist() == ["x"]


@pytest.mark.parametrize("mode", ["pandas", "python"])
def test_on_demand_view_reads_request_columns_from_entity_frame(offline: OfflineHarness, mode: str) -> None:  # noqa: F811
    fv = driver_view(offline, [(1, 10, 10, 1.5)])
    request = RequestSource(name="req", schema=[Field(name="bonus", dtype=Int64)])

    def plus_bonus(inputs):  # type: ignore[no-untyped-def]
        if mode == "pandas":
            return pd.DataFrame({"boosted": inputs["value"] + inputs["bonus"],
                                 "check": inputs["driver_stats__value"] * 0})
        return {"boosted": [None if v is None else v + b for v, b in zip(inputs["value"], inputs["bonus"],
                                                                          strict=True)],
                "check": [0.0] * len(inputs["bonus"])}

    odfv = on_demand_feature_view(sources=[fv, request], mode=mode,
                                  schema=[Field(name="boosted", dtype=Float64),
                                          Field(name="check", dtype=Float64)])(plus_bonus)
    entity = entities([(1, 20), (1, 0)]).append_column("bonus", pa.array([10, 20], pa.int64()))
    result = offline.retrieve([fv], entity, ["plus_bonus:boosted"], on_demand=[odfv]).to_arrow()
    assert result.column_names == ["driver_id", "event_timestamp", "label", "bonus", "boosted"]
    assert result.column("boosted").to_pylist()[0] == 11.5
    assert result.column("boosted").to_pylist()[1] in (None,) or pd.isna(result.column("boosted").to_pylist()[1])


def test_without_entity_frame_each_entity_gets_its_latest_row_in_the_window(offline: OfflineHarness) -> None:  # noqa: F811
    fv = driver_view(offline, [(1, 10, 10, 1.0), (1, 10, 11, 2.0), (1, 15, 15, 5.0), (2, 20, 20, 3.0),
                               (1, 40, 40, 4.0)])
    result = offline.retrieve([fv], SpineRange(at(10), at(20)), ["driver_stats:value"]).to_arrow()
    assert result.column("driver_id").to_pylist() == [1, 2]
    assert result.column("event_timestamp").to_pylist() == [at(15), at(20)]
    assert result.column("value").to_pylist() == [5.0, 3.0]


def test_to_parquet_writes_the_result(offline: OfflineHarness, tmp_path) -> None:  # type: ignore[no-untyped-def] # noqa: F811
    import pyarrow.parquet as pq

    fv = driver_view(offline, [(1, 10, 10, 1.0)])
    offline.retrieve([fv], entities([(1, 20)]), ["driver_stats:value"]).to_parquet(str(tmp_path / "out.parquet"))
    assert pq.read_table(tmp_path / "out.parquet").column("value").to_pylist() == [1.0]


# ---- bad input fails before any work, naming the column --------------------------------------

def test_entity_frame_without_timestamp_column_fails_naming_it(offline: OfflineHarness) -> None:  # noqa: F811
    fv = driver_view(offline, [(1, 10, 10, 1.0)])
    with pytest.raises(InputError, match="event_timestamp"):
        offline.retrieve([fv], pa.table({"driver_id": [1]}), ["driver_stats:value"])


def test_entity_sql_that_fails_is_a_one_line_input_error(offline: OfflineHarness) -> None:  # noqa: F811
    fv = driver_view(offline, [(1, 10, 10, 1.0)])
    with pytest.raises(InputError, match="entity_df query failed") as info:
        offline.retrieve([fv], "SELEC 1", ["driver_stats:value"])
    assert "\n" not in str(info.value)


def test_single_timestamp_column_with_another_name_is_used(offline: OfflineHarness) -> None:  # noqa: F811
    fv = driver_view(offline, [(1, 10, 10, 1.0)])
    entity = entities([(1, 20)]).rename_columns(["driver_id", "asof", "label"])
    result = offline.retrieve([fv], entity, ["driver_stats:value"]).to_arrow()
    assert result.column("value").to_pylist() == [1.0]


def test_timestamp_column_of_wrong_type_fails_naming_it(offline: OfflineHarness) -> None:  # noqa: F811
    fv = driver_view(offline, [(1, 10, 10, 1.0)])
    # ISO text is parsed as Feast does (tests/unit/test_retrieval_inputs.py); numbers are not times.
    entity = pa.table({"driver_id": [1], "event_timestamp": [20240301]})
    with pytest.raises(InputError, match="'event_timestamp' has type int64"):
        offline.retrieve([fv], entity, ["driver_stats:value"])


def test_missing_join_key_fails_naming_it(offline: OfflineHarness) -> None:  # noqa: F811
    fv = driver_view(offline, [(1, 10, 10, 1.0)])
    entity = entities([(1, 20)]).rename_columns(["driver", "event_timestamp", "label"])
    with pytest.raises(EntityKeyError, match="'driver_id'"):
        offline.retrieve([fv], entity, ["driver_stats:value"])


def test_join_key_of_another_type_fails_naming_it(offline: OfflineHarness) -> None:  # noqa: F811
    fv = driver_view(offline, [(1, 10, 10, 1.0)])
    entity = pa.table({"driver_id": ["1"], "event_timestamp": pa.array([at(20)], UTC_US)})
    with pytest.raises(EntityKeyError, match="'driver_id' is string"):
        offline.retrieve([fv], entity, ["driver_stats:value"])


def test_unknown_feature_fails(offline: OfflineHarness) -> None:  # noqa: F811
    fv = driver_view(offline, [(1, 10, 10, 1.0)])
    with pytest.raises(FeatureNotFound, match="nope"):
        offline.retrieve([fv], entities([(1, 20)]), ["driver_stats:nope"])
    with pytest.raises(FeatureNotFound, match="no_view"):
        offline.retrieve([fv], entities([(1, 20)]), ["no_view:value"])


def test_same_output_name_from_two_views_fails_without_full_names(offline: OfflineHarness) -> None:  # noqa: F811
    fv = driver_view(offline, [(1, 10, 10, 1.0)])
    other = driver_view(offline, [(1, 10, 10, 1.0)], name="driver_stats_2")
    with pytest.raises(InputError, match=r"'value'.*full_feature_names"):
        offline.retrieve([fv, other], entities([(1, 20)]), ["driver_stats:value", "driver_stats_2:value"])


def test_feature_named_like_an_entity_column_fails(offline: OfflineHarness) -> None:  # noqa: F811
    fv = driver_view(offline, [(1, 10, 10, 1.0)])
    entity = entities([(1, 20)]).append_column("value", pa.array([0.0]))
    with pytest.raises(InputError, match="'value' is also a column"):
        offline.retrieve([fv], entity, ["driver_stats:value"])


def test_source_of_another_engine_is_a_definition_error(offline: OfflineHarness) -> None:  # noqa: F811
    foreign = (FileSource(name="f", path="x.parquet", timestamp_field="ts") if offline.kind == "postgres"
               else PostgreSQLSource(name="pg", table="t", timestamp_field="ts"))
    with pytest.raises(DefinitionError, match="cannot be read by the"):
        offline.engine.source_schema(foreign)
