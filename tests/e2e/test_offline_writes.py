"""Offline writes under concurrency and kills: every acknowledged row is stored exactly once.

Writers are real processes pushing one row at a time to the sample repo's push source; one of
them is SIGKILLed while it writes. Its acknowledged rows must be there, its row in flight may be
there or not (all or nothing), and the source stays readable by training retrieval and by
materialization. Both layouts a FileSource can have are covered: a single Parquet file (parts go
to `<file>.parts/`) and a directory of part files.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from repast import FeatureStore

PROCESSES = 8
PUSHES = 200
KILLED = 3  # index of the writer that is SIGKILLed midway
NOW = datetime.now(UTC).replace(microsecond=0)


def _driver(process: int, i: int) -> int:
    return 100_000 + process * 1_000 + i


def _one_row(driver: int) -> pa.Table:
    ts = NOW - timedelta(minutes=30)
    return pa.table({"driver_id": pa.array([driver], pa.int64()),
                     "event_timestamp": pa.array([ts], pa.timestamp("us", tz="UTC")),
                     "created": pa.array([ts], pa.timestamp("us", tz="UTC")),
                     "conv_rate": pa.array([0.5], pa.float32()), "acc_rate": pa.array([0.25], pa.float32()),
                     "avg_daily_trips": pa.array([driver], pa.int64())})


def push_rows(repo: str, process: int, pushes: int, acknowledged: str, to: str) -> None:
    """One writer: push rows one by one; record each row only after push returned."""
    store = FeatureStore(repo)
    with open(acknowledged, "a") as log:
        for i in range(pushes):
            driver = _driver(process, i)
            store.push("driver_stats_push_source", _one_row(driver), to=to)
            log.write(f"{driver}\n")
            log.flush()


def _acknowledged(path: Path) -> list[int]:
    return [int(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def _run_writers(repo: Path, tmp: Path, to: str) -> dict[int, list[int]]:
    ctx = multiprocessing.get_context("spawn")
    logs = {p: tmp / f"acked-{p}.txt" for p in range(PROCESSES)}
    procs = {p: ctx.Process(target=push_rows, args=(str(repo), p, PUSHES, str(logs[p]), to))
             for p in range(PROCESSES)}
    for proc in procs.values():
        proc.start()
    deadline = time.monotonic() + 300
    while len(_acknowledged(logs[KILLED])) < PUSHES // 4 and procs[KILLED].is_alive():
        assert time.monotonic() < deadline, "the writer to kill made no progress"
        time.sleep(0.005)
    procs[KILLED].kill()  # SIGKILL, wherever it is in its write
    for p, proc in procs.items():
        proc.join(timeout=600)
        assert proc.exitcode == (-9 if p == KILLED else 0), f"writer {p} exited with {proc.exitcode}"
    return {p: _acknowledged(logs[p]) for p in range(PROCESSES)}


def _stored_drivers(store: FeatureStore) -> Counter[int]:
    view = store.get_feature_view("driver_hourly_stats")
    rows = store.offline_engine.read_range(view, datetime(1970, 1, 1, tzinfo=UTC), NOW + timedelta(days=1))
    return Counter(d for d in rows.column("driver_id").to_pylist() if d >= 100_000)


def _check_every_acknowledged_row_once(store: FeatureStore, acked: dict[int, list[int]]) -> None:
    stored = _stored_drivers(store)
    for p, drivers in acked.items():
        assert all(stored[d] == 1 for d in drivers), f"writer {p}: an acknowledged row is missing or doubled"
        mine = sum(n for d, n in stored.items() if (d - 100_000) // 1_000 == p)
        in_flight = 1 if p == KILLED else 0  # a killed write is all there or not at all
        assert len(drivers) <= mine <= len(drivers) + in_flight, f"writer {p}: {mine} rows, {len(drivers)} acked"
    assert len(acked[KILLED]) < PUSHES


def _check_training_and_serving_read_the_pushes(store: FeatureStore, acked: dict[int, list[int]]) -> None:
    drivers = [acked[0][0], acked[KILLED][-1], acked[PROCESSES - 1][-1]]
    entity_df = pd.DataFrame({"driver_id": drivers, "event_timestamp": [NOW] * len(drivers)})
    training = store.get_historical_features(entity_df, ["driver_hourly_stats:avg_daily_trips"]).to_df()
    assert training["avg_daily_trips"].tolist() == drivers
    store.materialize(NOW - timedelta(days=1), NOW + timedelta(minutes=1), ["driver_hourly_stats"])
    online = store.get_online_features(["driver_hourly_stats:avg_daily_trips"],
                                       {"driver_id": drivers}).to_dict()
    assert online["avg_daily_trips"] == drivers


def _use_directory_source(repo: Path) -> None:
    """The sample repo with its batch source as a directory of part files instead of one file."""
    (repo / "data" / "driver_stats").mkdir()
    shutil.move(repo / "data" / "driver_stats.parquet", repo / "data" / "driver_stats" / "part-0.parquet")
    definitions = repo / "example_repo.py"
    definitions.write_text(definitions.read_text().replace('"data/driver_stats.parquet"', '"data/driver_stats"'))


@pytest.mark.parametrize("layout", ["single_file", "directory"])
def test_concurrent_offline_pushes_store_every_acknowledged_row_once(sample_repo: Path, tmp_path: Path,
                                                                     layout: str) -> None:
    if layout == "directory":
        _use_directory_source(sample_repo)
    store = FeatureStore(sample_repo)
    store.apply_repo()
    acked = _run_writers(sample_repo, tmp_path, to="offline")
    store = FeatureStore(sample_repo)
    _check_every_acknowledged_row_once(store, acked)
    _check_training_and_serving_read_the_pushes(store, acked)


def test_single_file_source_keeps_its_file_and_adds_parts_beside_it(sample_repo: Path) -> None:
    original = sample_repo / "data" / "driver_stats.parquet"
    before = original.read_bytes()
    store = FeatureStore(sample_repo)
    store.apply_repo()
    store.push("driver_stats_push_source", _one_row(_driver(0, 0)), to="online_and_offline")
    store.push("driver_stats_push_source", _one_row(_driver(0, 1)), to="offline")
    assert original.read_bytes() == before
    parts = sorted(p.name for p in (sample_repo / "data" / "driver_stats.parquet.parts").iterdir())
    assert len(parts) == 2 and all(p.startswith("part-") and p.endswith(".parquet") for p in parts)
    assert sorted(_stored_drivers(store)) == [_driver(0, 0), _driver(0, 1)]


def test_a_write_killed_before_its_rename_leaves_a_hidden_file_no_reader_lists(sample_repo: Path) -> None:
    store = FeatureStore(sample_repo)
    store.apply_repo()
    parts = sample_repo / "data" / "driver_stats.parquet.parts"
    parts.mkdir()
    (parts / ".part-0123.parquet.tmp").write_bytes(b"PAR1 half a file")  # what a kill leaves behind
    store.push("driver_stats_push_source", _one_row(_driver(0, 0)), to="offline")
    assert sorted(_stored_drivers(store)) == [_driver(0, 0)]
    assert store.plan_repo() == []  # schema reads at plan skip it too


def test_offline_push_keeps_source_columns_no_view_declares(sample_repo: Path) -> None:
    data = sample_repo / "data" / "driver_stats.parquet"
    table = pq.read_table(data)
    pq.write_table(table.append_column("region", pa.array(["north"] * table.num_rows)), data)
    store = FeatureStore(sample_repo)
    store.apply_repo()
    row = _one_row(_driver(0, 0)).append_column("region", pa.array(["south"]))
    store.push("driver_stats_push_source", row, to="offline")
    (part,) = (sample_repo / "data" / "driver_stats.parquet.parts").iterdir()
    assert pq.read_table(part).column("region").to_pylist() == ["south"]


def test_write_to_offline_store_appends_rows_of_a_view(sample_repo: Path) -> None:
    store = FeatureStore(sample_repo)
    store.apply_repo()
    store.write_to_offline_store("driver_hourly_stats", _one_row(_driver(1, 0)).to_pandas(),
                                 allow_registry_cache=False)
    assert sorted(_stored_drivers(store)) == [_driver(1, 0)]


def test_offline_write_refused_before_anything_is_written(sample_repo: Path) -> None:
    from repast.errors import InputError

    store = FeatureStore(sample_repo)
    store.apply_repo()
    with pytest.raises(InputError, match="conv_rate"):
        store.push("driver_stats_push_source", _one_row(1).drop_columns(["conv_rate"]), to="offline")
    assert not os.path.exists(sample_repo / "data" / "driver_stats.parquet.parts")


def _push_over_http(url: str, first: int, pushes: int) -> list[int]:
    import httpx

    acked = []
    with httpx.Client(base_url=url, timeout=60) as http:
        for driver in range(first, first + pushes):
            row = {c: [v.isoformat() if isinstance(v, datetime) else v] for c, v in
                   _one_row(driver).to_pylist()[0].items()}
            response = http.post("/push", json={"push_source_name": "driver_stats_push_source", "df": row,
                                                 "to": "online_and_offline"})
            assert response.status_code == 200, response.text
            acked.append(driver)
    return acked


@pytest.mark.slow
def test_concurrent_http_pushes_to_offline_are_all_stored(sample_repo: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from tests.e2e.test_server_harness import ServerProcess

    store = FeatureStore(sample_repo)
    store.apply_repo()
    with ServerProcess(sample_repo, "--workers", "2", "--no-access-log") as server, \
            ThreadPoolExecutor(4) as pool:
        acked = [d for ds in pool.map(lambda c: _push_over_http(server.url, _driver(c, 0), 20), range(4))
                 for d in ds]
    assert _stored_drivers(store) == Counter(acked)


@pytest.mark.parametrize("kind", ["duckdb", "postgres"])
def test_concurrent_engine_writes_store_every_row_once(kind: str, request: pytest.FixtureRequest,
                                                       tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from tests.contract.offline_harness import make_harness, view

    harness = make_harness(kind, request, tmp_path)
    try:
        t0 = datetime(2024, 1, 1, tzinfo=UTC)
        source = harness.source("s", pa.table({"id": pa.array([0], pa.int64()),
                                               "ts": pa.array([t0], pa.timestamp("us", tz="UTC"))}),
                                timestamp_field="ts")

        def write(writer: int) -> None:
            for i in range(25):
                harness.engine.write_rows(source, pa.table({"id": pa.array([writer * 100 + i], pa.int64()),
                                                            "ts": pa.array([t0], pa.timestamp("us", tz="UTC"))}))

        with ThreadPoolExecutor(4) as pool:
            list(pool.map(write, range(4)))
        fv = view("s", source, ["id"], {})
        ids = harness.engine.read_range(fv, t0, t0 + timedelta(days=1)).column("id").to_pylist()
        assert sorted(ids) == sorted([0] + [w * 100 + i for w in range(4) for i in range(25)])
    finally:
        harness.cleanup()
