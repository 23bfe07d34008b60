"""Retrieval input handling and on-demand transforms, without any engine."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pyarrow as pa
import pytest

from repast.definitions import (
    Entity,
    FeatureView,
    Field,
    FileSource,
    RepoContents,
    RequestSource,
    on_demand_feature_view,
)
from repast.definitions.feature_refs import resolve_features
from repast.errors import DefinitionError, InputError
from repast.jobs.retrieval import entity_input
from repast.offline.base import SpineRange
from repast.offline.point_in_time import check_entity, entity_timestamp_column, key_frame
from repast.ondemand.transform import apply_on_demand
from repast.types import Float64, Int64
from repast.types.timestamps import normalize_timestamps

driver = Entity(name="driver", join_keys=["driver_id"])
stats = FeatureView(name="stats", entities=[driver], ttl=timedelta(hours=2),
                    schema=[Field(name="rate", dtype=Float64)],
                    source=FileSource(path="x.parquet", timestamp_field="ts"))
request_source = RequestSource(name="req", schema=[Field(name="add", dtype=Int64)])


@on_demand_feature_view(sources=[stats, request_source], schema=[Field(name="total", dtype=Float64)])
def totals(inputs: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"total": inputs["rate"] + inputs["add"]})


def contents() -> RepoContents:
    c = RepoContents(entities={"driver": driver}, feature_views={"stats": stats},
                     on_demand_feature_views={"totals": totals})
    return c.bind()


def test_pandas_entity_frame_becomes_arrow() -> None:
    request = resolve_features(contents(), ["stats:rate"], False)
    frame = pd.DataFrame({"driver_id": [1], "event_timestamp": [datetime(2024, 1, 1)]})
    assert isinstance(entity_input(frame, request, None, None), pa.Table)


def test_no_entity_frame_spans_the_longest_ttl_before_end() -> None:
    request = resolve_features(contents(), ["stats:rate"], False)
    end = datetime(2024, 1, 1, 12)
    spine = entity_input(None, request, None, end)
    assert spine == SpineRange(datetime(2024, 1, 1, 10, tzinfo=UTC), datetime(2024, 1, 1, 12, tzinfo=UTC))


def test_no_entity_frame_with_request_columns_fails() -> None:
    request = resolve_features(contents(), ["totals:total"], False)
    with pytest.raises(InputError, match="add"):
        entity_input(None, request, datetime(2024, 1, 1), datetime(2024, 1, 2))


def test_start_after_end_fails() -> None:
    request = resolve_features(contents(), ["stats:rate"], False)
    with pytest.raises(InputError, match="after end_date"):
        entity_input(None, request, datetime(2024, 1, 2), datetime(2024, 1, 1))


def test_entity_frame_and_dates_together_fail() -> None:
    request = resolve_features(contents(), ["stats:rate"], False)
    with pytest.raises(InputError, match="either"):
        entity_input(pa.table({"a": [1]}), request, datetime(2024, 1, 2), None)


def test_two_timestamp_columns_without_event_timestamp_fail() -> None:
    schema = pa.schema([("a", pa.timestamp("us")), ("b", pa.timestamp("us"))])
    with pytest.raises(InputError, match="several"):
        entity_timestamp_column(schema)


def test_no_timestamp_column_fails_with_one_clear_sentence() -> None:
    with pytest.raises(InputError, match="no 'event_timestamp' column and no timestamp column: add"):
        entity_timestamp_column(pa.schema([("driver_id", pa.int64())]))


def test_request_column_of_another_type_than_declared_fails_naming_it() -> None:
    request = resolve_features(contents(), ["totals:total"], False)
    schema = pa.schema([("driver_id", pa.int64()), ("event_timestamp", pa.timestamp("us")), ("add", pa.string())])
    with pytest.raises(InputError, match="entity frame column 'add' has type string, but request source 'req' "
                                         "declares it Int64"):
        check_entity(schema, request)
    check_entity(schema.set(2, pa.field("add", pa.int32())), request)


def test_nanosecond_and_zoned_timestamps_normalize_to_utc_microseconds() -> None:
    column = pa.array([1_000_001_999], pa.timestamp("ns", tz="Europe/Paris"))
    assert normalize_timestamps(column).to_pylist() == [datetime(1970, 1, 1, 0, 0, 1, 1, tzinfo=UTC)]


def test_key_frame_numbers_rows_and_decodes_categories() -> None:
    request = resolve_features(contents(), ["stats:rate"], False)
    frame = pa.Table.from_pandas(pd.DataFrame({"driver_id": pd.Categorical(["a", "b"]),
                                               "event_timestamp": [datetime(2024, 1, 1)] * 2}))
    keys = key_frame(frame, "event_timestamp", request)
    assert keys.column("__repast_row").to_pylist() == [0, 1]
    assert not pa.types.is_dictionary(keys.schema.field("driver_id").type)


def test_on_demand_sees_short_and_long_names_and_request_columns() -> None:
    request = resolve_features(contents(), ["totals:total"], True)
    table = pa.table({"add": [1, 2], "stats__rate": [0.5, None]})
    out = apply_on_demand(table, request.on_demand, True)
    assert out.column("totals__total").to_pylist() == [1.5, None]
    assert out.schema.field("totals__total").type == pa.float64()


def test_on_demand_returning_a_missing_column_fails_naming_the_view() -> None:
    @on_demand_feature_view(sources=[stats], schema=[Field(name="total", dtype=Float64)], mode="python")
    def broken(inputs: dict) -> dict:  # type: ignore[type-arg]
        return {"other": inputs["rate"]}

    c = contents()
    c.on_demand_feature_views["broken"] = broken
    request = resolve_features(c, ["broken:total"], False)
    with pytest.raises(DefinitionError, match="broken"):
        apply_on_demand(pa.table({"stats__rate": [1.0]}), request.on_demand, False)


def test_string_event_timestamps_are_parsed_as_iso_8601_utc() -> None:
    request = resolve_features(contents(), ["stats:rate"], False)
    frame = pd.DataFrame({"driver_id": [1, 2], "event_timestamp": ["2024-01-01T10:00:00", "2024-01-01 12:30:00+02:00"]})
    table = entity_input(frame, request, None, None)
    assert isinstance(table, pa.Table)
    assert table.column("event_timestamp").to_pylist() == [datetime(2024, 1, 1, 10, tzinfo=UTC),
                                                           datetime(2024, 1, 1, 10, 30, tzinfo=UTC)]


def test_string_event_timestamp_that_is_not_a_time_names_the_column() -> None:
    request = resolve_features(contents(), ["stats:rate"], False)
    frame = pd.DataFrame({"driver_id": [1], "event_timestamp": ["yesterday-ish"]})
    with pytest.raises(InputError, match="'event_timestamp' holds text that is not an ISO 8601 time"):
        entity_input(frame, request, None, None)
