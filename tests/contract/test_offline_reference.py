"""Property: every engine's point-in-time join equals the plain-Python reference on random data.

The data is drawn to hit the edges: event times on a coarse minute grid (so ties, entity times
exactly on a row's time and exactly on the ttl boundary are common), equal event times with
different created times, exact ties on (event, created) (the row last in the source wins), null
values, keys with no rows, entity times before any row,
duplicate entity rows, zone-less and zoned timestamps, two views with different join keys.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from repast.types import Float64, Int64, String
from tests.contract.offline_harness import OfflineHarness, offline, view  # noqa: F401
from tests.reference import ReferenceView, latest_row, point_in_time_join

BASE = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
PLUS_TWO = timezone(timedelta(hours=2))

minute = st.integers(min_value=0, max_value=10)
a_rows = st.lists(st.tuples(st.integers(0, 3), minute, st.integers(0, 4),
                            st.none() | st.floats(-1e6, 1e6, allow_nan=False), st.none() | st.integers(-50, 50)),
                  max_size=12)
b_rows = st.lists(st.tuples(st.sampled_from(["p", "q", "r"]), minute, st.none() | st.text("abc", max_size=3)),
                  max_size=12)
entity_rows = st.lists(st.tuples(st.none() | st.integers(0, 4), st.sampled_from(["p", "q", "r", "z"]),
                                 st.integers(-2, 12)), max_size=15)
ttls = st.sampled_from([0, 1, 3, 7])
zones = st.sampled_from(["naive", "utc", "plus_two"])


def _time(minutes: int, zone: str) -> datetime:
    value = BASE + timedelta(minutes=minutes)
    if zone == "naive":
        return value.replace(tzinfo=None)
    return value.astimezone(PLUS_TWO) if zone == "plus_two" else value


def _ts_type(zone: str) -> pa.DataType:
    return pa.timestamp("us", tz={"naive": None, "utc": "UTC", "plus_two": "+02:00"}[zone])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(a=a_rows, b=b_rows, ents=entity_rows, ttl_a=ttls, ttl_b=ttls, source_zone=zones, entity_zone=zones)
def test_engine_matches_reference(offline: OfflineHarness, a: list[tuple[Any, ...]],  # noqa: F811
                                  b: list[tuple[Any, ...]], ents: list[tuple[Any, ...]], ttl_a: int, ttl_b: int,
                                  source_zone: str, entity_zone: str) -> None:
    ts_type = _ts_type("utc" if source_zone == "plus_two" else source_zone)
    a_table = pa.table({
        "a_id": pa.array([r[0] for r in a], pa.int64()),
        "event_timestamp": pa.array([_time(r[1], source_zone) for r in a], ts_type),
        "created": pa.array([_time(r[1] + r[2], source_zone) for r in a], ts_type),
        "x": pa.array([r[3] for r in a], pa.float64()),
        "n": pa.array([r[4] for r in a], pa.int64()),
    })
    b_table = pa.table({
        "b_id": pa.array([r[0] for r in b], pa.string()),
        "ts": pa.array([_time(r[1], source_zone) for r in b], ts_type),
        "s": pa.array([r[2] for r in b], pa.string()),
    })
    suffix = uuid.uuid4().hex[:8]
    va = view(f"va_{suffix}", offline.source(f"va_{suffix}", a_table, created="created"), ["a_id"],
              {"x": Float64, "n": Int64}, ttl=timedelta(minutes=ttl_a))
    vb = view(f"vb_{suffix}", offline.source(f"vb_{suffix}", b_table, timestamp_field="ts"), ["b_id"],
              {"s": String}, ttl=timedelta(minutes=ttl_b))
    entity = pa.table({
        "a_id": pa.array([r[0] for r in ents], pa.int64()),
        "b_id": pa.array([r[1] for r in ents], pa.string()),
        "event_timestamp": pa.array([_time(r[2], entity_zone) for r in ents], _ts_type(entity_zone)),
    })
    features = [f"{va.name}:x", f"{vb.name}:s", f"{va.name}:n"]
    got = offline.retrieve([va, vb], entity, features).to_arrow().to_pylist()

    expected = point_in_time_join(entity.to_pylist(), "event_timestamp", [
        ReferenceView(["a_id"], ["a_id"], a_table.to_pylist(), "event_timestamp", {"x": "x", "n": "n"},
                      timedelta(minutes=ttl_a), "created"),
        ReferenceView(["b_id"], ["b_id"], b_table.to_pylist(), "ts", {"s": "s"}, timedelta(minutes=ttl_b)),
    ])
    assert [list(r) for r in got] == [["a_id", "b_id", "event_timestamp", "x", "s", "n"]] * len(got)
    assert got == expected


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(a=a_rows, zone=zones)
def test_materialization_reads_the_reference_row_per_key(offline: OfflineHarness,  # noqa: F811
                                                         a: list[tuple[Any, ...]], zone: str) -> None:
    """read_latest (what materialization writes online) picks, per key, the row the join picks at the end
    of the window: training and serving agree, exact ties included."""
    ts_type = _ts_type("utc" if zone == "plus_two" else zone)
    a_table = pa.table({
        "a_id": pa.array([r[0] for r in a], pa.int64()),
        "event_timestamp": pa.array([_time(r[1], zone) for r in a], ts_type),
        "created": pa.array([_time(r[1] + r[2], zone) for r in a], ts_type),
        "x": pa.array([r[3] for r in a], pa.float64()),
        "n": pa.array([r[4] for r in a], pa.int64()),
    })
    name = f"va_{uuid.uuid4().hex[:8]}"
    va = view(name, offline.source(name, a_table, created="created"), ["a_id"], {"x": Float64, "n": Int64})
    end = BASE + timedelta(minutes=11)
    got = {r["a_id"]: (r["x"], r["n"]) for b in offline.engine.read_latest(va, BASE, end) for r in b.to_pylist()}
    reference = ReferenceView(["a_id"], ["a_id"], a_table.to_pylist(), "event_timestamp", {"x": "x", "n": "n"},
                              created_column="created")
    expected = {}
    for key in {r[0] for r in a}:
        row = latest_row(reference, (key,), end)
        assert row is not None
        expected[key] = (row["x"], row["n"])
    assert got == expected
