"""Aggregation definitions: Feast's names, the tile size, the window rule and the checks at definition time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from repast import Aggregation, BatchFeatureView, Entity, FeatureView, Field, FileSource
from repast.definitions.aggregation import default_tile, epoch_us, in_window, tile_end, window_start_us
from repast.errors import DefinitionError
from repast.types import Array, Float32, Float64, Int32, Int64, String, UnixTimestamp

driver = Entity(name="driver", join_keys=["driver_id"])
source = FileSource(name="trips", path="data/trips.parquet", timestamp_field="event_timestamp")
SCHEMA = [Field(name="driver_id", dtype=Int64), Field(name="amount", dtype=Float32),
          Field(name="trips", dtype=Int32), Field(name="city", dtype=String)]
HOUR = timedelta(hours=1)


def view(*aggregations: Aggregation, schema: list[Field] = SCHEMA) -> FeatureView:
    return FeatureView(name="driver_trips", entities=[driver], schema=schema, source=source,
                       aggregations=list(aggregations))


def test_feature_is_named_function_then_column_as_feast_names_it() -> None:
    assert Aggregation(column="amount", function="sum", time_window=HOUR).feature_name == "sum_amount"


def test_a_given_name_replaces_the_default() -> None:
    agg = Aggregation(column="amount", function="mean", time_window=timedelta(days=7), name="amount_mean_7d")
    assert agg.feature_name == "amount_mean_7d"


def test_avg_is_mean_and_keeps_its_spelling_in_the_name() -> None:
    agg = Aggregation(column="amount", function="avg", time_window=HOUR)
    assert (agg.kind, agg.feature_name) == ("mean", "avg_amount")


@pytest.mark.parametrize(("function", "column", "expected"), [
    ("count", "city", Int64), ("count_distinct", "city", Int64), ("sum", "trips", Int64),
    ("sum", "amount", Float64), ("mean", "trips", Float64), ("stddev", "amount", Float64),
    ("variance", "trips", Float64), ("min", "city", String), ("max", "amount", Float32),
    ("last", "city", String), ("first", "trips", Int32),
])
def test_each_function_has_its_output_type(function: str, column: str, expected: object) -> None:
    agg = Aggregation(column=column, function=function, time_window=HOUR)
    assert view(agg).features == [Field(name=f"{function}_{column}", dtype=expected)]  # type: ignore[arg-type]


def test_last_n_is_a_list_of_the_columns_type() -> None:
    agg = Aggregation(column="city", function="last_n", time_window=HOUR, n=3)
    assert view(agg).features[0].dtype == Array(String)


def test_last_n_without_n_is_refused() -> None:
    with pytest.raises(DefinitionError, match="'last_n' needs n"):
        Aggregation(column="city", function="last_n", time_window=HOUR)


def test_unknown_function_is_refused_with_the_known_ones() -> None:
    with pytest.raises(DefinitionError, match=r"unknown function .median.; use one of count, count_distinct, sum"):
        Aggregation(column="amount", function="median", time_window=HOUR)


@pytest.mark.parametrize("window", [timedelta(0), timedelta(hours=-1)])
def test_window_must_be_positive(window: timedelta) -> None:
    with pytest.raises(DefinitionError, match="time_window must be a positive"):
        Aggregation(column="amount", function="sum", time_window=window)


def test_window_that_is_not_a_whole_number_of_tiles_is_refused() -> None:
    with pytest.raises(DefinitionError, match="time_window 1h is not a whole number of slide_interval 7m tiles"):
        Aggregation(column="amount", function="sum", time_window=HOUR, slide_interval=timedelta(minutes=7))


@pytest.mark.parametrize(("window", "tile"), [
    (HOUR, timedelta(minutes=5)), (timedelta(days=1), timedelta(hours=2)), (timedelta(days=7), timedelta(hours=12)),
    (timedelta(minutes=7), timedelta(seconds=30)), (timedelta(seconds=5), timedelta(seconds=5)),
])
def test_default_tile_fits_twelve_times_in_the_window_and_divides_it(window: timedelta, tile: timedelta) -> None:
    assert default_tile(window) == tile
    assert Aggregation(column="amount", function="sum", time_window=window).tile_interval == tile


def test_a_given_slide_interval_is_the_tile() -> None:
    agg = Aggregation(column="amount", function="sum", time_window=HOUR, slide_interval=timedelta(minutes=1))
    assert agg.tile_interval == timedelta(minutes=1)


def test_at_a_tile_end_the_window_excludes_its_start_and_includes_its_end() -> None:
    t, hourly = datetime(2026, 1, 1, 12, tzinfo=UTC), Aggregation(column="amount", function="sum", time_window=HOUR)
    assert in_window(t, t, hourly)
    assert not in_window(t - HOUR, t, hourly)
    assert in_window(t - HOUR + timedelta(microseconds=1), t, hourly)
    assert not in_window(t + timedelta(microseconds=1), t, hourly)


@pytest.mark.parametrize("day", [datetime(2026, 1, 1, tzinfo=UTC), datetime(1960, 1, 1, tzinfo=UTC)])
def test_between_tile_ends_the_window_starts_on_the_tile_grid(day: datetime) -> None:
    """1 h window of 5-minute tiles at 12:02: t's tile ends at 12:05, so the window is (11:05, 12:02]."""
    hourly = Aggregation(column="amount", function="sum", time_window=HOUR)  # 5-minute tiles
    t = day + timedelta(hours=12, minutes=2)
    start = window_start_us(epoch_us(t), hourly.window_us, hourly.tile_us)
    assert start == epoch_us(day + timedelta(hours=11, minutes=5))
    assert not in_window(day + timedelta(hours=11, minutes=5), t, hourly)
    assert in_window(day + timedelta(hours=11, minutes=5, microseconds=1), t, hourly)
    assert not in_window(day + timedelta(hours=11, minutes=3), t, hourly)  # within t - W, before the grid
    assert in_window(t, t, hourly)


def test_tiles_end_on_the_window_rule_side_of_their_boundary() -> None:
    five_minutes = 300_000_000
    assert tile_end(five_minutes, five_minutes) == five_minutes  # on the end: in the tile that ends there
    assert tile_end(five_minutes + 1, five_minutes) == 2 * five_minutes
    assert tile_end(-1, five_minutes) == 0


def test_aggregated_view_has_only_its_aggregations_as_features() -> None:
    fv = view(Aggregation(column="amount", function="sum", time_window=HOUR),
              Aggregation(column="trips", function="count", time_window=HOUR))
    assert fv.feature_names() == ["sum_amount", "count_trips"]
    assert fv.aggregation_inputs == ["amount", "trips"]
    assert fv[["count_trips"]].projection.features == ["count_trips"]


def test_a_raw_column_of_an_aggregated_view_is_not_a_feature() -> None:
    with pytest.raises(DefinitionError, match="no feature"):
        view(Aggregation(column="amount", function="sum", time_window=HOUR))[["amount"]]


def test_aggregations_round_trip_through_the_registry_form() -> None:
    fv = view(Aggregation(column="amount", function="sum", time_window=HOUR, slide_interval=timedelta(minutes=1)),
              Aggregation(column="city", function="last_n", time_window=timedelta(days=1), n=5, name="last_cities"))
    again = FeatureView.from_dict(fv.to_dict(), {"driver": driver})
    assert again == fv and again.aggregations == fv.aggregations
    assert again.feature_names() == ["sum_amount", "last_cities"]


def test_a_view_without_aggregations_is_stored_as_before() -> None:
    assert "aggregations" not in view().to_dict()


def test_batch_feature_view_takes_aggregations() -> None:
    fv = BatchFeatureView(name="b", entities=[driver], schema=SCHEMA, source=source,
                          aggregations=[Aggregation(column="amount", function="max", time_window=HOUR)])
    assert fv.feature_names() == ["max_amount"]


def test_sum_of_a_string_is_refused_naming_view_aggregation_and_column() -> None:
    with pytest.raises(DefinitionError, match="feature view 'driver_trips': aggregation 'sum_city' applies sum "
                                              "to column 'city' of type String; sum needs a number"):
        view(Aggregation(column="city", function="sum", time_window=HOUR))


def test_min_of_a_timestamp_is_accepted() -> None:
    schema = [*SCHEMA, Field(name="pickup", dtype=UnixTimestamp)]
    assert view(Aggregation(column="pickup", function="min", time_window=HOUR),
                schema=schema).features[0].dtype == UnixTimestamp


def test_column_missing_from_the_schema_is_refused_with_the_fix() -> None:
    with pytest.raises(DefinitionError, match=r"reads column 'fare', which is not in the view's schema.*"
                                              r'add Field\(name="fare"'):
        view(Aggregation(column="fare", function="sum", time_window=HOUR))


def test_two_aggregations_under_one_name_are_refused_with_a_suggested_name() -> None:
    with pytest.raises(DefinitionError, match=r"two aggregations are named 'sum_amount'.*name=.sum_amount_1d."):
        view(Aggregation(column="amount", function="sum", time_window=HOUR),
             Aggregation(column="amount", function="sum", time_window=timedelta(days=1)))


def test_feast_module_path_holds_aggregation() -> None:
    from repast.aggregation import Aggregation as FeastPathAggregation  # type: ignore[import-not-found]

    assert FeastPathAggregation is Aggregation
