"""materialize / materialize_incremental on the sample repo: real DuckDB, real SQLite online store."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from repast import FeatureStore, FeatureView
from repast.errors import FeatureNotFound, InputError, StoreUnavailable, TransientError
from repast.jobs.materialize import BEGINNING_OF_TIME, ViewMaterialization, materialize

VIEW = "driver_hourly_stats"
DRIVERS = [1001, 1002, 1003, 1004, 1005]


@pytest.fixture
def store(sample_repo: Path) -> FeatureStore:
    fs = FeatureStore(repo_path=sample_repo)
    fs.apply_repo()
    return fs


def source_rows(store: FeatureStore) -> pd.DataFrame:
    return pq.read_table(store.repo_path / "data" / "driver_stats.parquet").to_pandas()


def latest_before(store: FeatureStore, start: datetime, end: datetime) -> dict[int, float]:
    """Plain pandas: per driver, conv_rate of the latest row with start <= event <= end."""
    df = source_rows(store)
    df = df[(df.event_timestamp >= start) & (df.event_timestamp <= end)]
    df = df.sort_values(["event_timestamp", "created"]).groupby("driver_id").tail(1)
    return {int(r.driver_id): float(r.conv_rate) for r in df.itertuples()}


def online_conv_rate(store: FeatureStore, view: str = VIEW) -> dict[int, float | None]:
    values = store.get_online_features([f"{view}:conv_rate"], {"driver_id": DRIVERS}).to_dict()["conv_rate"]
    return dict(zip(DRIVERS, values, strict=True))


def online_table(store: FeatureStore, view: str = VIEW) -> list[tuple[object, ...]]:
    with sqlite3.connect(store.repo_path / "data" / "online.db") as conn:
        return conn.execute(f'SELECT * FROM "{store.project}_{view}" ORDER BY _entity_key').fetchall()


def data_end(store: FeatureStore) -> datetime:
    return source_rows(store).event_timestamp.max().to_pydatetime()


def test_full_materialize_writes_the_latest_row_per_entity_in_the_window(store: FeatureStore) -> None:
    end = data_end(store) - timedelta(hours=5)  # inclusive, as Feast: rows at `end` are in, later ones out
    start = end - timedelta(days=2)
    [stats] = store.materialize(start, end, [VIEW])
    assert (stats.view, stats.rows, stats.done) == (VIEW, 5, True)
    assert online_conv_rate(store) == pytest.approx(latest_before(store, start, end))


def test_online_values_equal_the_point_in_time_join_at_end_without_ttl(store: FeatureStore) -> None:
    view = store.get_feature_view(VIEW)
    no_ttl = FeatureView(name="stats_no_ttl", entities=view.entity_objects, source=view.source, schema=view.schema)
    store.apply([no_ttl])
    end = data_end(store) - timedelta(minutes=90)
    store.materialize(BEGINNING_OF_TIME, end, ["stats_no_ttl"])
    # Both include `end`: the online values are the join's at `end`.
    entity_df = pd.DataFrame({"driver_id": DRIVERS, "event_timestamp": [end] * 5})
    joined = store.get_historical_features(entity_df, ["stats_no_ttl:conv_rate", "stats_no_ttl:avg_daily_trips"])
    expected = joined.to_df().sort_values("driver_id")
    online = store.get_online_features(["stats_no_ttl:conv_rate", "stats_no_ttl:avg_daily_trips"],
                                       {"driver_id": DRIVERS}).to_df()
    assert online.conv_rate.tolist() == pytest.approx(expected.conv_rate.tolist())
    assert online.avg_daily_trips.tolist() == expected.avg_daily_trips.tolist()


def test_rerun_leaves_the_same_state(store: FeatureStore) -> None:
    end = data_end(store)
    store.materialize(end - timedelta(days=3), end, [VIEW])
    first = online_table(store)
    store.materialize(end - timedelta(days=3), end, [VIEW])
    store.materialize(end - timedelta(days=6), end - timedelta(days=1), [VIEW])  # older rows: ignored
    assert online_table(store) == first


def test_incremental_for_a_view_never_materialized_starts_at_end_minus_ttl(store: FeatureStore) -> None:
    end = data_end(store) + timedelta(hours=1)
    results = store.materialize_incremental(end, [VIEW])
    assert [(r.start, r.end) for r in results] == [(end - timedelta(days=1), end)]
    assert store.registry.materializations()[VIEW].end == end


def test_incremental_starts_where_the_last_run_ended(store: FeatureStore) -> None:
    end = data_end(store)
    first_end = end - timedelta(hours=10)
    store.materialize(end - timedelta(days=2), first_end, [VIEW])
    [stats] = store.materialize_incremental(end + timedelta(hours=1), [VIEW])
    assert stats.start == first_end
    assert online_conv_rate(store) == pytest.approx(latest_before(store, first_end, end + timedelta(hours=1)))


def test_incremental_on_an_up_to_date_view_writes_nothing(store: FeatureStore) -> None:
    end = data_end(store)
    store.materialize_incremental(end, [VIEW])
    [stats] = store.materialize_incremental(end, [VIEW])
    assert (stats.rows, stats.done) == (0, True)


def test_incremental_without_ttl_starts_at_the_beginning_of_time(store: FeatureStore) -> None:
    view = store.get_feature_view(VIEW)
    store.apply([FeatureView(name="no_ttl", entities=view.entity_objects, source=view.source, schema=view.schema)])
    [stats] = store.materialize_incremental(data_end(store) + timedelta(hours=1), ["no_ttl"])
    assert stats.start == BEGINNING_OF_TIME
    assert stats.rows == 5


def test_progress_reports_start_batches_and_done(store: FeatureStore) -> None:
    seen: list[tuple[str, int, bool]] = []

    def progress(s: ViewMaterialization) -> None:
        seen.append((s.view, s.rows, s.done))

    end = data_end(store) + timedelta(hours=1)
    materialize(store.registry, store.offline_engine, store.online_store,
                end - timedelta(days=30), end, [VIEW], progress, batch_size=2)
    assert seen[0] == (VIEW, 0, False)
    assert seen[-1] == (VIEW, 5, True)
    assert [rows for _, rows, done in seen if not done][1:] == [2, 4, 5]


def test_watermark_is_recorded_only_after_the_view_finished(store: FeatureStore,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    calls = {"n": 0}
    original = store.online_store.write_batch

    def fail_on_second_batch(*args: object) -> int:
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("killed")
        return original(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(store.online_store, "write_batch", fail_on_second_batch)
    end = data_end(store) + timedelta(hours=1)
    with pytest.raises(RuntimeError):
        materialize(store.registry, store.offline_engine, store.online_store,
                end - timedelta(days=30), end, [VIEW], batch_size=2)
    assert VIEW not in store.registry.materializations()


def test_transient_store_failures_are_retried(store: FeatureStore, monkeypatch: pytest.MonkeyPatch) -> None:
    import repast.jobs.materialize as m

    monkeypatch.setattr(m, "_RETRY_DELAYS", (0.0, 0.0))
    original = store.online_store.write_batch
    failures = iter([True, False, True, True, False])

    def flaky(*args: object) -> int:
        if next(failures, False):
            raise StoreUnavailable("connection reset")
        return original(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(store.online_store, "write_batch", flaky)
    end = data_end(store) + timedelta(hours=1)
    [stats] = materialize(store.registry, store.offline_engine, store.online_store,
                end - timedelta(days=30), end, [VIEW], batch_size=3)
    assert stats.rows == 5


def test_bad_arguments_fail_before_anything_is_written(store: FeatureStore) -> None:
    now = datetime.now(UTC)
    with pytest.raises(InputError, match="before"):
        store.materialize(now, now - timedelta(days=1))
    with pytest.raises(FeatureNotFound, match="nope"):
        store.materialize(now - timedelta(days=1), now, ["nope"])
    assert store.registry.materializations() == {}


def test_views_with_online_false_are_not_materialized(store: FeatureStore) -> None:
    view = store.get_feature_view(VIEW)
    store.apply([FeatureView(name="offline_only", entities=view.entity_objects, source=view.source,
                             schema=view.schema, online=False)])
    now = datetime.now(UTC)
    results = store.materialize(now - timedelta(days=1), now)
    assert "offline_only" not in [r.view for r in results]
    with pytest.raises(InputError, match="offline_only"):
        store.materialize(now - timedelta(days=1), now, ["offline_only"])


def test_any_transient_error_is_retried_and_a_terminal_one_is_not(store: FeatureStore,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import repast.jobs.materialize as m

    monkeypatch.setattr(m, "_RETRY_DELAYS", (0.0, 0.0))
    original = store.online_store.write_batch
    failures = iter([TransientError("server busy"), InputError("bad rows")])

    def flaky(*args: object) -> int:
        error = next(failures, None)
        if error is not None:
            raise error
        return original(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(store.online_store, "write_batch", flaky)
    end = data_end(store) + timedelta(hours=1)
    with pytest.raises(InputError, match="bad rows"):
        materialize(store.registry, store.offline_engine, store.online_store,
                    end - timedelta(days=30), end, [VIEW], batch_size=3)


def test_materialize_includes_rows_at_exactly_end_as_feast_does(store: FeatureStore) -> None:
    rows = source_rows(store)
    end = rows.event_timestamp.max().to_pydatetime()
    at_end = rows[rows.event_timestamp == end].sort_values("created").groupby("driver_id").tail(1)
    store.materialize(end - timedelta(hours=1), end, [VIEW])
    online = online_conv_rate(store)
    assert {int(r.driver_id): online[int(r.driver_id)] for r in at_end.itertuples()} == pytest.approx(
        {int(r.driver_id): float(r.conv_rate) for r in at_end.itertuples()})
