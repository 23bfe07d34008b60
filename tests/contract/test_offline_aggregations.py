"""Property: every engine's windowed aggregations equal the brute-force reference on random events.

Events sit on a minute grid and entity rows on a half-minute grid; tiles of 5 s to 7 min put
entity rows both on tile ends (the window is (t - W, t]) and between them (the window starts on
the tile grid), and events exactly on a window's start (excluded) and end (included); rows repeat
(every copy counts), share (event, created) times (last/first break the tie by the value),
arrive late (created long after their event time, in no particular source order) and hold nulls;
keys without events, null keys and entity times before every event give empty windows. Either
an ordinary view over the same source is requested alongside (aggregated and point-in-time
features mix in one request), or the aggregations come from two aggregated views only.
"""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from repast import Aggregation, Entity, FeatureView, Field
from repast.types import Float64, Int64, String
from tests.contract.offline_harness import OfflineHarness, offline  # noqa: F401
from tests.reference import ReferenceAggregation, ReferenceView, point_in_time_join, windowed_aggregates

BASE = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)
# (column, function, window in minutes, n, tile in minutes or None for the default): every function,
# several (window, tile) shapes per view
SPECS = [("x", "count", 1, None, None), ("s", "count_distinct", 7, None, 7), ("n", "sum", 3, None, 1),
         ("x", "sum", 7, None, None), ("x", "mean", 3, None, 3), ("s", "min", 7, None, 1),
         ("n", "max", 1, None, 1), ("x", "last", 7, None, 7), ("n", "first", 3, None, 1),
         ("x", "stddev", 7, None, None), ("n", "variance", 7, None, 7), ("s", "last_n", 7, 2, 1),
         ("s", "last", 3, None, 3)]

event = st.tuples(st.integers(0, 3), st.integers(0, 10), st.integers(0, 3),
                  st.none() | st.integers(-400, 400).map(lambda v: v / 4), st.none() | st.integers(-50, 50),
                  st.none() | st.sampled_from(["a", "b", "c"]))
events = st.lists(event, max_size=16).flatmap(
    lambda rows: st.lists(st.sampled_from(rows), max_size=4).map(lambda dup: rows + dup) if rows else st.just(rows))
entity_rows = st.lists(st.tuples(st.none() | st.integers(0, 4), st.integers(-4, 25)), max_size=12)  # half minutes


def aggregated_view(name: str, source: Any, specs: list[tuple[str, str, int, int | None, int | None]]) -> FeatureView:
    aggregations = [Aggregation(column=c, function=f, time_window=w * MIN, n=n, name=f"{f}_{c}_{w}m",
                                slide_interval=None if tile is None else tile * MIN)
                    for c, f, w, n, tile in specs]
    return FeatureView(name=name, source=source, entities=[Entity(name="a_id", join_keys=["a_id"])],
                       schema=[Field(name="x", dtype=Float64), Field(name="n", dtype=Int64),
                               Field(name="s", dtype=String)], aggregations=aggregations)


def same(got: Any, expected: Any) -> bool:
    if isinstance(got, float) and isinstance(expected, float | int):
        return math.isclose(got, expected, rel_tol=1e-9, abs_tol=1e-9)
    return bool(got == expected)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=events, ents=entity_rows, with_plain=st.booleans())
def test_engine_aggregates_match_the_reference(offline: OfflineHarness, rows: list[tuple[Any, ...]],  # noqa: F811
                                               ents: list[tuple[Any, ...]], with_plain: bool) -> None:
    table = pa.table({
        "a_id": pa.array([r[0] for r in rows], pa.int64()),
        "event_timestamp": pa.array([BASE + r[1] * MIN for r in rows], pa.timestamp("us", tz="UTC")),
        "created": pa.array([BASE + (r[1] + r[2]) * MIN for r in rows], pa.timestamp("us", tz="UTC")),
        "x": pa.array([r[3] for r in rows], pa.float64()),
        "n": pa.array([r[4] for r in rows], pa.int64()),
        "s": pa.array([r[5] for r in rows], pa.string()),
    })
    suffix = uuid.uuid4().hex[:8]
    source = offline.source(f"agg_{suffix}", table, created="created")
    first = aggregated_view(f"agg_{suffix}", source, SPECS[:6])
    second = aggregated_view(f"bgg_{suffix}", source, SPECS[6:])
    plain = FeatureView(name=f"plain_{suffix}", source=source, entities=[Entity(name="a_id", join_keys=["a_id"])],
                        schema=[Field(name="x", dtype=Float64)])
    times = [BASE + e[1] * MIN / 2 for e in ents]
    entity = pa.table({"a_id": pa.array([e[0] for e in ents], pa.int64()),
                       "event_timestamp": pa.array(times, pa.timestamp("us", tz="UTC"))})
    names = [a.feature_name for view in (first, second) for a in view.aggregations]
    middle = [f"{plain.name}:x"] if with_plain else []
    features = [f"{first.name}:{n}" for n in names[:6]] + middle + [f"{second.name}:{n}" for n in names[6:]]
    got = offline.retrieve([first, second, plain], entity, features).to_arrow().to_pylist()

    reference = ReferenceView(["a_id"], ["a_id"], table.to_pylist(), "event_timestamp", {"x": "x"},
                              created_column="created")
    expected = windowed_aggregates(entity.to_pylist(), "event_timestamp", reference,
                                   [ReferenceAggregation(a.column, a.kind, a.time_window, a.tile_interval,
                                                         a.feature_name, a.n or 1)
                                    for view in (first, second) for a in view.aggregations])
    for row, plain_row in zip(expected, point_in_time_join(entity.to_pylist(), "event_timestamp", [reference]),
                              strict=True):
        if with_plain:
            row["x"] = plain_row["x"]
    columns = ["a_id", "event_timestamp", *names[:6], *(["x"] if with_plain else []), *names[6:]]
    assert [list(r) for r in got] == [columns] * len(got)
    for got_row, expected_row in zip(got, expected, strict=True):
        mismatched = {k: (got_row[k], v) for k, v in expected_row.items() if not same(got_row[k], v)}
        assert not mismatched, (expected_row, mismatched)


def trips(offline: OfflineHarness, base: datetime = BASE, tile: timedelta | None = None) -> FeatureView:  # noqa: F811
    """Driver 1: amounts 1, 2, 4 at minutes 0, 5, 10; driver 2: 8 at minute 10. Source columns drv/amt."""
    table = pa.table({"drv": pa.array([1, 1, 1, 2], pa.int64()),
                      "ts": pa.array([base, base + 5 * MIN, base + 10 * MIN, base + 10 * MIN],
                                     pa.timestamp("us", tz="UTC")),
                      "amt": pa.array([1.0, 2.0, 4.0, 8.0])})
    name = f"trips_{uuid.uuid4().hex[:8]}"
    source = offline.source(name, table, timestamp_field="ts", field_mapping={"drv": "driver_id", "amt": "amount"})
    return FeatureView(name=name, source=source, entities=[Entity(name="driver", join_keys=["driver_id"])],
                       schema=[Field(name="amount", dtype=Float64)],
                       aggregations=[Aggregation(column="amount", function="sum", time_window=10 * MIN,
                                                 slide_interval=tile)])


@pytest.mark.parametrize("base", [BASE, datetime(1960, 1, 1, tzinfo=UTC)], ids=["2024", "before-1970"])
def test_between_tile_ends_the_window_starts_on_the_tile_grid(offline: OfflineHarness, base: datetime) -> None:  # noqa: F811
    """5-minute tiles, a 10-minute window: at 7:30 the window is (10:00 - 10m, 7:30] = (0:00, 7:30],
    not (-2:30, 7:30]; at 10:00, a tile end, it is (0:00, 10:00]. Before 1970 the epoch is negative
    (SQL's % truncates toward zero there) and the tiles are the same."""
    fv = trips(offline, base, tile=5 * MIN)
    entity = pa.table({"driver_id": [1, 1, 1, 2], "event_timestamp": pa.array(
        [base + 7 * MIN + MIN / 2, base + 10 * MIN, base + 5 * MIN, base + 9 * MIN + MIN / 2],
        pa.timestamp("us", tz="UTC"))})
    result = offline.retrieve([fv], entity, [f"{fv.name}:sum_amount"]).to_arrow()
    assert result.column("sum_amount").to_pylist() == [2.0, 6.0, 3.0, None]


def test_aggregation_reads_mapped_columns_and_takes_full_feature_names(offline: OfflineHarness) -> None:  # noqa: F811
    fv = trips(offline)
    entity = pa.table({"driver_id": [1, 1, 2], "event_timestamp": pa.array(
        [BASE + 10 * MIN, BASE + 5 * MIN, BASE + 9 * MIN], pa.timestamp("us", tz="UTC"))})
    result = offline.retrieve([fv], entity, [f"{fv.name}:sum_amount"], full_feature_names=True).to_arrow()
    assert result.column(f"{fv.name}__sum_amount").to_pylist() == [6.0, 3.0, None]  # (t - 10m, t]


def test_aggregation_takes_an_entity_query(offline: OfflineHarness) -> None:  # noqa: F811
    fv = trips(offline)
    sql = offline.entity_sql(pa.table({"driver_id": [2, 1], "event_timestamp": pa.array(
        [BASE + 10 * MIN, BASE + 11 * MIN], pa.timestamp("us", tz="UTC"))}))
    assert offline.retrieve([fv], sql, [f"{fv.name}:sum_amount"]).to_arrow().column("sum_amount").to_pylist() \
        == [8.0, 6.0]


def test_aggregation_without_entity_frame_is_taken_at_each_entitys_latest_event(offline: OfflineHarness) -> None:  # noqa: F811
    from repast.offline.base import SpineRange

    fv = trips(offline)
    result = offline.retrieve([fv], SpineRange(BASE, BASE + 10 * MIN), [f"{fv.name}:sum_amount"]).to_arrow()
    assert sorted(zip(result.column("driver_id").to_pylist(), result.column("sum_amount").to_pylist(),
                      strict=True)) == [(1, 6.0), (2, 8.0)]
