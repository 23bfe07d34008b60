"""Abilities only one engine has: file layouts for DuckDB, to_table for PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from repast.definitions import FileSource
from repast.types import Int64
from tests.contract.offline_harness import DuckDBHarness, PostgresHarness, view

UTC_US = pa.timestamp("us", tz="UTC")
T0 = datetime(2024, 1, 1, tzinfo=UTC)


def _rows(ids: list[int]) -> pa.Table:
    return pa.table({"id": pa.array(ids, pa.int64()), "ts": pa.array([T0] * len(ids), UTC_US),
                     "v": pa.array(ids, pa.int64())})


@pytest.mark.parametrize("layout", ["file.parquet", "dir", "glob/*.parquet", "file.csv"])
def test_duckdb_write_rows_appends_in_every_file_layout(tmp_path: Path, layout: str) -> None:
    harness = DuckDBHarness(tmp_path)
    path = tmp_path / layout.replace("*.parquet", "part-0.parquet").replace("dir", "dir/part-0.parquet")
    path.parent.mkdir(parents=True, exist_ok=True)
    if layout.endswith(".csv"):
        _rows([1]).to_pandas().to_csv(path, index=False)
    else:
        pq.write_table(_rows([1]), path)
    source = FileSource(name="s", path=layout, timestamp_field="ts")
    harness.engine.write_rows(source, _rows([2, 3]))
    fv = view("s", source, ["id"], {"v": Int64})
    assert sorted(harness.engine.read_range(fv, T0, datetime(2025, 1, 1, tzinfo=UTC)).column("v").to_pylist()) \
        == [1, 2, 3]


def test_postgres_job_writes_result_to_a_table(postgres_url: str, unique_name: str) -> None:
    harness = PostgresHarness(postgres_url, unique_name)
    try:
        fv = view("s", harness.source("s", _rows([1]), timestamp_field="ts"), ["id"], {"v": Int64})
        entity = pa.table({"id": [1, 2], "event_timestamp": pa.array([T0, T0], UTC_US)})
        harness.retrieve([fv], entity, ["s:v"]).to_table(f"{unique_name}.training")
        with harness.pg.connect() as conn:
            got = conn.execute(f"SELECT id, v FROM {unique_name}.training ORDER BY id").fetchall()
        assert got == [(1, 1), (2, None)]
    finally:
        harness.cleanup()
