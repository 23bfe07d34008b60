"""Aggregated features online, on every online store: materialized tiles plus pushed events,
read at t, equal the brute-force windowed aggregate at t (tests/reference.py), for every function.

Timestamps are around the next hours (tiles older than every window expire against the wall clock); reads pass
`at=t` to the read job, always at or after the newest event, as a read at "now" is.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from repast import Aggregation, Entity, FeatureStore, FeatureView, Field, FileSource, PushSource
from repast.jobs.online_read import FieldStatus, get_online_features
from repast.types import Float64, Int64
from tests.contract.test_online_store import STORES, drop_postgres_schema, online_store_config
from tests.reference import US_PER_S, windowed_value

FUNCTIONS = ["count", "sum", "mean", "min", "max", "first", "last", "variance", "stddev", "count_distinct", "last_n"]
TILE = timedelta(minutes=5)
WINDOW = timedelta(hours=1)
# Ahead of the wall clock: tiles ending (longest window + tile) before the real now expire, and a
# suite may run these tests long after this module was imported.
NOW = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(hours=3)
BASE = NOW - timedelta(hours=2)


def aggregations() -> list[Aggregation]:
    aggs = [Aggregation(column="amount", function=f, time_window=WINDOW, slide_interval=TILE,
                        n=3 if f == "last_n" else None) for f in FUNCTIONS]
    aggs.append(Aggregation(column="amount", function="sum", time_window=timedelta(minutes=20), name="sum_20m"))
    aggs.append(Aggregation(column="items", function="max", time_window=timedelta(hours=2), name="max_items_2h"))
    return aggs


def frame(events: list[tuple[int, datetime, datetime | None, float | None, int | None]]) -> pd.DataFrame:
    return pd.DataFrame({
        "rider_id": pd.Series([e[0] for e in events], dtype="int64"),
        "event_timestamp": pd.to_datetime([e[1] for e in events], utc=True),
        "created": pd.to_datetime([e[2] for e in events], utc=True),
        "amount": pd.Series([e[3] for e in events], dtype="float64"),
        "items": pd.Series([e[4] for e in events], dtype="Int64"),
    })


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest, tmp_path: Path, unique_name: str) -> Iterator[FeatureStore]:
    config = online_store_config(request.param, request, tmp_path, unique_name)
    (tmp_path / "data").mkdir()
    frame([(0, BASE, None, 0.0, 0)]).iloc[:0].to_parquet(tmp_path / "data" / "rides.parquet")
    (tmp_path / "feature_store.yaml").write_text(yaml.safe_dump({
        "project": unique_name, "registry": "data/registry.db", "provider": "local", "online_store": config}))
    fs = FeatureStore(repo_path=tmp_path)
    rider = Entity(name="rider", join_keys=["rider_id"], value_type=None)
    batch = FileSource(name="rides_source", path=str(tmp_path / "data" / "rides.parquet"),
                       timestamp_field="event_timestamp", created_timestamp_column="created")
    source = PushSource(name="rides_push", batch_source=batch)
    view = FeatureView(name="rides", entities=[rider], source=source, ttl=timedelta(0),
                       schema=[Field(name="rider_id", dtype=Int64), Field(name="amount", dtype=Float64),
                               Field(name="items", dtype=Int64)], aggregations=aggregations())
    fs.apply([rider, batch, source, view])
    yield fs
    fs.teardown()
    fs.online_store.close()
    if request.param == "postgres":
        drop_postgres_schema(config["url"], unique_name)


def generated_events(seed: int, n: int) -> list[tuple[int, datetime, datetime | None, float | None, int | None]]:
    """Events of 3 riders over 2 hours: nulls, duplicates, equal times, times on tile ends."""
    rnd = random.Random(seed)
    out = []
    for _ in range(n):
        when = BASE + timedelta(seconds=rnd.choice([rnd.randrange(7200), 300 * rnd.randrange(24)]))
        created = rnd.choice([None, when, when + timedelta(seconds=1)])
        amount = rnd.choice([None, float(rnd.randrange(5)), rnd.uniform(-10, 10)])
        out.append((rnd.randrange(3), when, created, amount, rnd.choice([None, rnd.randrange(100)])))
    out += out[: n // 10]  # exact duplicates count twice, online and offline
    return out


def us(ts: datetime) -> int:
    return int(ts.timestamp()) * US_PER_S + ts.microsecond


def expected(events: list[Any], rider: int, t: datetime, agg: Aggregation) -> Any:
    column = 3 if agg.column == "amount" else 4
    mine = [(us(e[1]), None if e[2] is None else us(e[2]), e[column]) for e in events if e[0] == rider]
    tile_us = int(agg.tile_interval.total_seconds()) * US_PER_S
    return windowed_value(mine, agg.kind, us(t), agg.window_us, tile_us, agg.n or 0)


def same(a: Any, b: Any) -> bool:
    if isinstance(b, float) and a is not None:
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    return bool(a == b)


def read_at(fs: FeatureStore, t: datetime) -> Any:
    refs = [f"rides:{a.feature_name}" for a in aggregations()]
    return get_online_features(fs.registry, fs.online_store, refs, {"rider_id": [0, 1, 2, 9]}, at=t)


def check_against_reference(fs: FeatureStore, events: list[Any], t: datetime) -> None:
    response = read_at(fs, t).to_dict()
    for agg in aggregations():
        for i, rider in enumerate([0, 1, 2, 9]):
            want = expected(events, rider, t, agg)
            got = response[agg.feature_name][i]
            assert same(got, want), f"{agg.feature_name} of rider {rider} at {t}: online {got!r}, reference {want!r}"


def read_times(events: list[Any]) -> list[datetime]:
    newest = max(e[1] for e in events)
    return [newest, newest + timedelta(seconds=7), newest + TILE - timedelta(microseconds=1),
            newest + timedelta(minutes=23), newest + WINDOW]


def test_materialized_tiles_and_pushes_equal_the_reference_at_every_read_time(store: FeatureStore) -> None:
    events = generated_events(1, 300)
    split = BASE + timedelta(minutes=70)
    materialized = [e for e in events if e[1] <= split]
    frame(materialized).to_parquet(Path(store.repo_path) / "data" / "rides.parquet")
    store.materialize(BASE - timedelta(hours=1), split)
    pushed = [e for e in events if e[1] > split]
    store.push("rides_push", frame(pushed[:40]))
    store.push("rides_push", frame(pushed[40:]))
    for t in read_times(events):
        check_against_reference(store, events, t)


def test_replayed_materialization_and_push_do_not_double_count(store: FeatureStore) -> None:
    events = generated_events(2, 200)
    split = BASE + timedelta(minutes=50)
    frame([e for e in events if e[1] <= split]).to_parquet(Path(store.repo_path) / "data" / "rides.parquet")
    pushed = frame([e for e in events if e[1] > split])
    for _ in range(2):
        store.materialize(BASE - timedelta(hours=1), split)
        store.push("rides_push", pushed)
    store.write_to_online_store("rides", pushed)  # the same rows once more, by the other entry
    for t in read_times(events)[:2]:
        check_against_reference(store, events, t)


def test_no_event_in_the_window_is_not_found_with_counts_zero(store: FeatureStore) -> None:
    store.push("rides_push", frame([(0, BASE, None, 2.5, 1)]))
    response = read_at(store, BASE + timedelta(hours=3))
    values, statuses = response.to_dict(), response.statuses()
    assert values["count_amount"] == [0, 0, 0, 0] and values["sum_amount"] == [None] * 4
    assert statuses["count_amount"] == [FieldStatus.NOT_FOUND] * 4


def test_fresh_push_is_read_without_rematerializing(store: FeatureStore) -> None:
    at = BASE + timedelta(minutes=30, seconds=10)
    store.push("rides_push", frame([(0, at - timedelta(seconds=5), None, 2.5, 1)]))
    before = read_at(store, at)
    store.push("rides_push", frame([(0, at, None, 4.0, 3)]))
    after = read_at(store, at)
    assert before.to_dict()["sum_amount"][0] == 2.5 and after.to_dict()["sum_amount"][0] == 6.5
    assert after.to_dict()["last_amount"][0] == 4.0
    assert after.statuses()["sum_amount"][:2] == [FieldStatus.PRESENT, FieldStatus.NOT_FOUND]
    assert after.event_timestamps()["sum_amount"][0] == at


# --- The tile storage contract (repast.online.base.TileStorage), on every store --------------------

def tiles_of(fs: FeatureStore, events: list[Any]) -> tuple[Any, Any, Any]:
    from repast.aggregations.layout import tile_layout
    from repast.aggregations.partials import compute_tiles
    from repast.aggregations.spec import events_view
    from repast.jobs.push import view_rows

    view = fs.get_feature_view("rides")
    layout = tile_layout(view)
    rows = view_rows(view, pa.Table.from_pandas(frame(events)), "test")
    return view, layout, compute_tiles(events_view(view), layout, rows)


def stored_count(fs: FeatureStore, rider: int, at: datetime) -> int:
    return int(read_at(fs, at).to_dict()["count_amount"][[0, 1, 2, 9].index(rider)])


def tiles_count(fs: FeatureStore, view: Any, layout: Any, rider: int) -> int:
    """The non-null amounts the store holds in the rider's tiles of `layout` (its fine level)."""
    rows = fs.online_store.read_tiles(fs.project, view, layout, [str(rider)], us(BASE) - 3 * 3600 * US_PER_S, us(NOW))
    at = layout.column_names.index("amount__n") + 1
    return sum(r[at] for r in rows[0])


def test_a_batch_applied_twice_counts_once_and_marks_commit_with_it(store: FeatureStore) -> None:
    view, layout, tiles = tiles_of(store, [(0, BASE, None, 1.0, 1), (0, BASE + timedelta(minutes=7), None, 2.0, 1)])
    online = store.online_store
    marks = {"kafka:rides:0": "41"}
    assert online.write_tiles(store.project, view, layout, tiles, add=True, batch_id="b1", marks=marks) == 2
    assert online.write_tiles(store.project, view, layout, tiles, add=True, batch_id="b1",
                              marks={"kafka:rides:0": "99"}) == 0  # replayed: nothing changes, marks neither
    assert online.read_marks(store.project, view, ["kafka:rides:0", "kafka:rides:1"]) == marks
    assert tiles_count(store, view, layout, 0) == 2


def test_a_stream_batch_adds_to_every_level_once_with_its_offsets(store: FeatureStore) -> None:
    from repast.jobs.push import view_rows
    from repast.jobs.tile_writes import push_tiles

    view = store.get_feature_view("rides")
    rows = view_rows(view, pa.Table.from_pandas(frame([(1, BASE + timedelta(minutes=m), None, 1.0, 1)
                                                        for m in range(0, 50, 7)])), "test")
    online, offsets = store.online_store, ["kafka:rides:0"]
    assert push_tiles(store.project, online, view, rows, {"kafka:rides:0": "8"}, batch="rides:0:0-7") > 0
    assert push_tiles(store.project, online, view, rows, {"kafka:rides:0": "99"}, batch="rides:0:0-7") == 0
    assert online.read_marks(store.project, view, offsets) == {"kafka:rides:0": "8"}
    assert stored_count(store, 1, BASE + timedelta(minutes=55)) == 8  # the read merges coarse and fine tiles
    push_tiles(store.project, online, view, None, {"kafka:rides:0": "12"})  # offsets only: no events
    assert online.read_marks(store.project, view, offsets) == {"kafka:rides:0": "12"}


def test_materialized_tiles_replace_what_is_stored(store: FeatureStore) -> None:
    view, layout, tiles = tiles_of(store, [(1, BASE, None, 1.0, 1)])
    for _ in range(3):
        store.online_store.write_tiles(store.project, view, layout, tiles, add=False)
    assert tiles_count(store, view, layout, 1) == 1


def test_tiles_outside_every_window_are_deleted_when_their_key_is_written(store: FeatureStore) -> None:
    view, layout, tiles = tiles_of(store, [(2, BASE, None, 1.0, 1), (2, NOW, None, 1.0, 1)])
    store.online_store.write_tiles(store.project, view, layout, tiles, add=False)
    newest = us(NOW)
    store.online_store.write_tiles(store.project, view, layout, tiles.slice(1, 1), add=False,
                                   expire_through_us=us(BASE) + 1)
    rows = store.online_store.read_tiles(store.project, view, layout, ["2"], us(BASE) - 3600 * US_PER_S, newest)
    assert [r[0] for r in rows[0]] == [newest]


def test_concurrent_pushes_to_one_tile_lose_nothing(store: FeatureStore) -> None:
    from concurrent.futures import ThreadPoolExecutor

    def push(i: int) -> None:
        store.push("rides_push", frame([(0, BASE + timedelta(seconds=i), None, 1.0, i)]))

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(push, range(24)))
    assert stored_count(store, 0, BASE + timedelta(minutes=1)) == 24


def test_the_feature_server_answers_aggregated_features_as_the_sdk_does(store: FeatureStore) -> None:
    import orjson

    from repast.server.online_json import OnlineJsonAnswers
    from repast.server.responses import online_response_json

    now = datetime.now(UTC)
    store.push("rides_push", frame([(0, now - timedelta(minutes=20), None, 2.0, 1),
                                    (0, now - timedelta(minutes=10), None, 5.0, 7)]))
    refs = ["rides:sum_amount", "rides:count_amount", "rides:last_n_amount", "rides:mean_amount"]
    entities = {"rider_id": [0, 5]}
    fast = OnlineJsonAnswers(store.registry).answer(store.online_store, refs, entities, False)
    general = online_response_json(get_online_features(store.registry, store.online_store, refs, entities))
    assert fast == general
    results = orjson.loads(fast)["results"]
    assert [r["values"] for r in results[1:]] == [[7.0, None], [2, 0], [[2.0, 5.0], None], [3.5, None]]
    assert results[2]["statuses"] == ["PRESENT", "NOT_FOUND"]


# --- Online at t == offline (get_historical_features) for an entity row at t ------------------------

def offline_values(fs: FeatureStore, riders: list[int], t: datetime) -> dict[str, list[Any]]:
    refs = [f"rides:{a.feature_name}" for a in aggregations()]
    entity = pd.DataFrame({"rider_id": riders, "event_timestamp": pd.to_datetime([t] * len(riders), utc=True)})
    table = fs.get_historical_features(entity_df=entity, features=refs).to_arrow()
    return {name: table.column(name).to_pylist() for name in table.column_names}


def untied(events: list[Any]) -> list[Any]:
    """The events without exact ties on (rider, event time, created time)."""
    seen: set[Any] = set()
    out = []
    for e in events:
        if (e[0], e[1], e[2]) not in seen:
            seen.add((e[0], e[1], e[2]))
            out.append(e)
    return out


def online_equals_offline(fs: FeatureStore, events: list[Any], times: list[datetime]) -> None:
    frame(events).to_parquet(Path(fs.repo_path) / "data" / "rides.parquet")
    split = BASE + timedelta(minutes=65)
    fs.materialize(BASE - timedelta(hours=1), split)
    fs.push("rides_push", frame([e for e in events if e[1] > split]), to="online")
    riders = [0, 1, 2, 9]
    for t in times:
        online = read_at(fs, t).to_dict()
        offline = offline_values(fs, riders, t)
        for agg in aggregations():
            name = agg.feature_name
            for i, rider in enumerate(riders):
                got, want = online[name][i], offline[name][i]
                assert same(got, want), f"{name} of rider {rider} at {t}: online {got!r}, offline {want!r}"


def tile_ends(events: list[Any]) -> list[datetime]:
    """Tile ends (of every aggregation's tiles: 5 minutes and its divisors) at or after the newest event."""
    from repast.definitions.aggregation import tile_end

    end = datetime.fromtimestamp(tile_end(us(max(e[1] for e in events)), 300 * US_PER_S) / US_PER_S, UTC)
    return [end, end + TILE, end + timedelta(minutes=20), end + WINDOW]


def test_online_at_a_tile_end_equals_training_data_at_that_time(store: FeatureStore) -> None:
    events = untied(generated_events(3, 300))
    online_equals_offline(store, events, tile_ends(events))


def test_online_between_tile_ends_equals_training_data_at_that_time(store: FeatureStore) -> None:
    events = untied(generated_events(4, 300))
    online_equals_offline(store, events, [t + timedelta(minutes=2, seconds=7) for t in tile_ends(events)])


def test_online_equals_training_data_with_exact_ties(store: FeatureStore) -> None:
    when = BASE + timedelta(minutes=90)
    events = [(0, when, when, 9.0, 1), (0, when, when, 1.0, 2), (0, when, when, 5.0, 3)]
    online_equals_offline(store, events, tile_ends(events))


# --- Property: any events, materialized in part and pushed in part (some batches twice) ------------

_EXAMPLE = iter(range(10**9))
tied_event = st.tuples(st.integers(0, 2), st.integers(0, 40), st.sampled_from([None, 0, 60]),
                       st.none() | st.integers(-8, 8).map(lambda v: v / 2), st.none() | st.integers(0, 9))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(tied_event, max_size=25), split=st.integers(0, 40), later=st.lists(st.integers(0, 90), max_size=3),
       replay=st.booleans())
def test_online_reads_equal_the_reference_after_materialization_and_pushes(
        store: FeatureStore, rows: list[tuple[Any, ...]], split: int, later: list[int], replay: bool) -> None:
    example = next(_EXAMPLE) * 10  # fresh riders per example: the store is shared by the examples
    minute = timedelta(minutes=1)  # events on a minute grid: on tile ends and window starts often
    events = [(r + example, BASE + m * minute, None if c is None else BASE + m * minute + c * timedelta(seconds=1),
               v, i) for r, m, c, v, i in rows]
    cut = BASE + split * minute
    frame([e for e in events if e[1] <= cut]).to_parquet(Path(store.repo_path) / "data" / "rides.parquet")
    store.materialize(BASE - timedelta(hours=1), cut)
    pushed = frame([e for e in events if e[1] > cut])
    for batch in ([pushed, pushed] if replay else [pushed]):
        if len(batch):
            store.push("rides_push", batch)
    newest = max((e[1] for e in events), default=cut)
    riders = [example, example + 1, example + 2]
    refs = [f"rides:{a.feature_name}" for a in aggregations()]
    first = max(newest, cut)
    for t in [first] + [first + m * minute + timedelta(seconds=s) for m, s in zip(later, [0, 7, 59], strict=False)]:
        response = get_online_features(store.registry, store.online_store, refs, {"rider_id": riders}, at=t).to_dict()
        for agg in aggregations():
            for i, rider in enumerate(riders):
                want, got = expected(events, rider, t, agg), response[agg.feature_name][i]
                assert same(got, want), f"{agg.feature_name} of {rider} at {t}: online {got!r}, reference {want!r}"


KILLED_PUSHER = """
import sys
from datetime import datetime, timedelta
from repast import FeatureStore
from tests.contract.test_online_aggregations import frame
store = FeatureStore(repo_path=sys.argv[1])
base = datetime.fromisoformat(sys.argv[3])  # the parent's BASE: this process may start in another minute
for i in range(int(sys.argv[2])):
    store.push("rides_push", frame([(7, base + timedelta(seconds=i * 13), None, float(i), i)]))
    print(i, flush=True)
"""


def test_pushes_killed_at_any_point_then_resent_count_each_event_once(store: FeatureStore) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    n = 30
    script = Path(store.repo_path) / "pusher.py"
    script.write_text(KILLED_PUSHER)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[2]), *sys.path])}
    proc = subprocess.Popen([sys.executable, str(script), str(store.repo_path), str(n), BASE.isoformat()],
                            stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    acknowledged = [int(proc.stdout.readline()) for _ in range(5)]
    time.sleep(random.Random(1).uniform(0, 0.3))  # somewhere in a later push: between levels, mid-transaction
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert acknowledged == list(range(5))
    for i in range(n):  # the writer's retry after the crash: every batch again, the same rows
        store.push("rides_push", frame([(7, BASE + timedelta(seconds=i * 13), None, float(i), i)]))
    at = BASE + timedelta(minutes=10)
    rider = get_online_features(store.registry, store.online_store, ["rides:count_amount", "rides:sum_amount"],
                                {"rider_id": [7]}, at=at).to_dict()
    assert rider["count_amount"] == [n] and rider["sum_amount"] == [float(sum(range(n)))]


# --- Merged values kept between reads (repast.aggregations.cache): never stale -------------------

PUSHER = """
import sys
from datetime import datetime
from repast import FeatureStore
from tests.contract.test_online_aggregations import frame
FeatureStore(repo_path=sys.argv[1]).push("rides_push", frame([(0, datetime.fromisoformat(sys.argv[2]), None, 4.0, 1)]))
"""


def test_a_push_by_another_process_is_read_at_once_by_a_process_that_read_before(store: FeatureStore) -> None:
    import os
    import subprocess
    import sys

    at = BASE + timedelta(minutes=30, seconds=10)
    store.push("rides_push", frame([(0, at - timedelta(minutes=9), None, 2.5, 1)]))
    for _ in range(2):  # read twice: the second read may be served from what the first merged
        assert read_at(store, at).to_dict()["sum_amount"][0] == 2.5
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[2]), *sys.path])}
    subprocess.run([sys.executable, "-c", PUSHER, str(store.repo_path), (at - timedelta(minutes=8)).isoformat()],
                   check=True, env=env)
    assert read_at(store, at).to_dict()["sum_amount"][0] == 6.5


def test_a_push_through_another_feature_store_is_read_at_once(store: FeatureStore) -> None:
    at = BASE + timedelta(minutes=30, seconds=10)
    store.push("rides_push", frame([(1, at - timedelta(minutes=20), None, 1.0, 1)]))
    assert read_at(store, at).to_dict()["count_amount"][1] == 1
    assert read_at(store, at).to_dict()["count_amount"][1] == 1
    other = FeatureStore(repo_path=store.repo_path)  # its own connections / clients
    other.push("rides_push", frame([(1, at - timedelta(minutes=19), None, 1.0, 1)]))
    assert read_at(store, at).to_dict()["count_amount"][1] == 2
    other.online_store.close()


def test_reads_as_the_window_moves_forward_equal_the_reference_at_each_time(store: FeatureStore) -> None:
    events = generated_events(5, 120)
    store.push("rides_push", frame(events))
    newest = max(e[1] for e in events)
    # Twice at each time (the second read may be served from the first), tile after tile past the window.
    for k in range(0, 15):
        t = newest + k * TILE + timedelta(seconds=k)
        check_against_reference(store, events, t)
        check_against_reference(store, events, t)


def test_a_caller_changing_a_returned_list_does_not_change_later_reads(store: FeatureStore) -> None:
    at = BASE + timedelta(minutes=30)
    store.push("rides_push", frame([(0, at - timedelta(minutes=1), None, 3.0, 1)]))
    read_at(store, at).to_dict()["last_n_amount"][0].append(99.0)
    assert read_at(store, at).to_dict()["last_n_amount"][0] == [3.0]
