"""Property: every engine's windowed aggregations equal the brute-force reference on random events.

Events sit on a minute grid and entity rows too, so events exactly on a window's start (excluded)
and end (included) are common; rows repeat (every copy counts), share (event, created) times
(last/first break the tie by place in the source), arrive late (created long after their event
time, in no particular source order) and hold nulls; keys without events, null keys and entity
times before every event give empty windows. Either an ordinary view over the same source is
requested alongside (aggregated and point-in-time features mix in one request), or the
aggregations come from two aggregated views only.
"""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from repast import Aggregation, Entity, FeatureView, Field
from repast.types import Float64, Int64, String
from tests.contract.offline_harness import OfflineHarness, offline  # noqa: F401
from tests.reference import ReferenceAggregation, ReferenceView, point_in_time_join, windowed_aggregates

BASE = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)
# (column, function, window in minutes, n): every function, three windows per view
SPECS = [("x", "count", 1, None), ("s", "count_distinct", 7, None), ("n", "sum", 3, None), ("x", "sum", 7, None),
         ("x", "mean", 3, None), ("s", "min", 7, None), ("n", "max", 1, None), ("x", "last", 7, None),
         ("n", "first", 3, None), ("x", "stddev", 7, None), ("n", "variance", 7, None), ("s", "last_n", 7, 2),
         ("s", "last", 3, None)]

event = st.tuples(st.integers(0, 3), st.integers(0, 10), st.integers(0, 3),
                  st.none() | st.integers(-400, 400).map(lambda v: v / 4), st.none() | st.integers(-50, 50),
                  st.none() | st.sampled_from(["a", "b", "c"]))
events = st.lists(event, max_size=16).flatmap(
    lambda rows: st.lists(st.sampled_from(rows), max_size=4).map(lambda dup: rows + dup) if rows else st.just(rows))
entity_rows = st.lists(st.tuples(st.none() | st.integers(0, 4), st.integers(-2, 12)), max_size=12)


def aggregated_view(name: str, source: Any, specs: list[tuple[str, str, int, int | None]]) -> FeatureView:
    aggregations = [Aggregation(column=c, function=f, time_window=w * MIN, n=n, name=f"{f}_{c}_{w}m")
                    for c, f, w, n in specs]
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
    entity = pa.table({"a_id": pa.array([e[0] for e in ents], pa.int64()),
                       "event_timestamp": pa.array([BASE + e[1] * MIN for e in ents], pa.timestamp("us", tz="UTC"))})
    names = [a.feature_name for view in (first, second) for a in view.aggregations]
    middle = [f"{plain.name}:x"] if with_plain else []
    features = [f"{first.name}:{n}" for n in names[:6]] + middle + [f"{second.name}:{n}" for n in names[6:]]
    got = offline.retrieve([first, second, plain], entity, features).to_arrow().to_pylist()

    reference = ReferenceView(["a_id"], ["a_id"], table.to_pylist(), "event_timestamp", {"x": "x"},
                              created_column="created")
    expected = windowed_aggregates(entity.to_pylist(), "event_timestamp", reference,
                                   [ReferenceAggregation(c, f, w * MIN, f"{f}_{c}_{w}m", n or 1)
                                    for c, f, w, n in SPECS])
    for row, plain_row in zip(expected, point_in_time_join(entity.to_pylist(), "event_timestamp", [reference]),
                              strict=True):
        if with_plain:
            row["x"] = plain_row["x"]
    columns = ["a_id", "event_timestamp", *names[:6], *(["x"] if with_plain else []), *names[6:]]
    assert [list(r) for r in got] == [columns] * len(got)
    for got_row, expected_row in zip(got, expected, strict=True):
        mismatched = {k: (got_row[k], v) for k, v in expected_row.items() if not same(got_row[k], v)}
        assert not mismatched, (expected_row, mismatched)
