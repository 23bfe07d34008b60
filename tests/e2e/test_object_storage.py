"""A feature repo whose data and registry live on S3 (SeaweedFS), driven as a user would: apply,
training data, materialization, offline writes from several writers, output to S3, and the errors
a wrong bucket or credential gives."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from repast import FeatureStore
from repast.cli.scaffold import generate_driver_stats
from repast.errors import InputError, ObjectStoreError
from repast.offline.storage_paths import filesystem_for
from tests.object_storage import ObjectServer

DEFINITIONS = '''
from datetime import timedelta
from repast import Entity, FeatureView, Field, FileSource
from repast.types import Float32, Int64

driver = Entity(name="driver", join_keys=["driver_id"])
source = FileSource(name="driver_stats_source", path="{path}", timestamp_field="event_timestamp",
                    created_timestamp_column="created")
driver_stats = FeatureView(name="driver_stats", entities=[driver], ttl=timedelta(days=2), source=source,
                           schema=[Field(name="conv_rate", dtype=Float32), Field(name="avg_daily_trips", dtype=Int64)])
'''


@pytest.fixture
def s3_repo(tmp_path: Path, s3_server: ObjectServer) -> tuple[Path, str, pa.Table]:
    """A repo with its data and registry under a fresh prefix of the test bucket."""
    prefix = uuid.uuid4().hex[:12]
    data_url = s3_server.url("s3", prefix, "driver_stats")
    table = generate_driver_stats(tmp_path / "local.parquet", drivers=3, days=2)
    fs, inner = filesystem_for(data_url)
    pq.write_table(table, f"{inner}/part-0.parquet", filesystem=fs)
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "feature_store.yaml").write_text(
        f"project: p{prefix}\nregistry: {s3_server.url('s3', prefix, 'registry.json')}\n"
        f"online_store: {{type: sqlite, path: data/online.db}}\n")
    (repo / "defs.py").write_text(DEFINITIONS.format(path=data_url))
    return repo, data_url, table


def test_training_data_and_materialization_read_the_source_on_s3(s3_repo: tuple[Path, str, pa.Table]) -> None:
    repo, _, table = s3_repo
    with FeatureStore(repo_path=repo) as store:
        store.apply_repo()
        rows = table.to_pandas().sort_values("event_timestamp").groupby("driver_id").tail(1).sort_values("driver_id")
        entity = rows[["driver_id", "event_timestamp"]].reset_index(drop=True)
        training = store.get_historical_features(entity, ["driver_stats:avg_daily_trips"]).to_df()
        assert training["avg_daily_trips"].tolist() == rows["avg_daily_trips"].tolist()
        end = rows["event_timestamp"].max().to_pydatetime() + timedelta(hours=1)
        store.materialize(end - timedelta(days=3), end)
        online = store.get_online_features(["driver_stats:avg_daily_trips"], {"driver_id": [1001, 1002, 1003]})
        assert online.to_dict()["avg_daily_trips"] == rows["avg_daily_trips"].tolist()


def test_concurrent_offline_writers_on_s3_lose_no_row(s3_repo: tuple[Path, str, pa.Table]) -> None:
    repo, _, table = s3_repo
    with FeatureStore(repo_path=repo) as store:
        store.apply_repo()
        base = datetime(2030, 1, 1, tzinfo=UTC)

        def write(writer: int) -> None:
            with FeatureStore(repo_path=repo) as own:
                for i in range(3):
                    own.write_to_offline_store("driver_stats", pd.DataFrame({
                        "driver_id": [5000 + writer], "event_timestamp": [base + timedelta(minutes=i)],
                        "conv_rate": [0.5], "acc_rate": [0.5], "avg_daily_trips": [writer * 10 + i],
                        "created": [base]}))

        threads = [threading.Thread(target=write, args=(w,)) for w in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        rows = store.offline_engine.read_range(store.get_feature_view("driver_stats"), base, base + timedelta(hours=1))
        written = sorted(rows.column("avg_daily_trips").to_pylist())
        assert written == sorted(w * 10 + i for w in range(4) for i in range(3))


def test_training_data_is_written_to_s3(s3_repo: tuple[Path, str, pa.Table], s3_server: ObjectServer) -> None:
    repo, _, table = s3_repo
    with FeatureStore(repo_path=repo) as store:
        store.apply_repo()
        entity = pd.DataFrame({"driver_id": [1001], "event_timestamp": [datetime.now(UTC)]})
        target = s3_server.url("s3", uuid.uuid4().hex[:8], "training.parquet")
        store.get_historical_features(entity, ["driver_stats:conv_rate"]).to_parquet(target)
    fs, inner = filesystem_for(target)
    assert pq.read_table(inner, filesystem=fs).column_names == ["driver_id", "event_timestamp", "conv_rate"]


def test_a_wrong_credential_is_an_error_naming_the_bucket_and_the_setting(
        s3_repo: tuple[Path, str, pa.Table], s3_server: ObjectServer, monkeypatch: pytest.MonkeyPatch) -> None:
    repo, data_url, _ = s3_repo
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong")
    from repast.definitions import FileSource
    from repast.offline.file_sources import list_source_files

    with pytest.raises(ObjectStoreError, match=f"s3://{s3_server.bucket} .*FileSource 'src' path .*AWS_ACCESS_KEY_ID"):
        list_source_files(FileSource(name="src", path=data_url, timestamp_field="event_timestamp"), str(repo))


def test_a_missing_bucket_in_the_registry_path_is_an_error_naming_it(tmp_path: Path, s3_server: ObjectServer) -> None:
    (tmp_path / "feature_store.yaml").write_text("project: p\nregistry: s3://no-such-bucket-here/registry.json\n")
    with pytest.raises(ObjectStoreError, match=r"bucket 'no-such-bucket-here', from registry\.path"):
        FeatureStore(repo_path=tmp_path).list_feature_views()


def test_a_materialization_window_downloads_only_the_row_groups_it_needs(tmp_path: Path,
                                                                          s3_server: ObjectServer) -> None:
    from repast.config.repo_config import RepoConfig
    from repast.definitions import Entity, FeatureView, Field, FileSource
    from repast.offline import object_scan as remote_scan
    from repast.offline.duckdb import DuckDBOfflineConfig, DuckDBOfflineEngine
    from repast.types import Int64

    start = datetime(2024, 1, 1, tzinfo=UTC)
    table = pa.table({"driver_id": pa.array(range(100), pa.int64()),
                      "event_timestamp": pa.array([start + timedelta(hours=i) for i in range(100)],
                                                  pa.timestamp("us", tz="UTC")),
                      "trips": pa.array(range(100), pa.int64())})
    url = s3_server.url("s3", uuid.uuid4().hex[:12], "stats")
    fs, inner = filesystem_for(url)
    pq.write_table(table, f"{inner}/part-0.parquet", filesystem=fs, row_group_size=10)  # in time order
    view = FeatureView(name="stats", entities=[Entity(name="driver", join_keys=["driver_id"])],
                       source=FileSource(name="stats", path=url, timestamp_field="event_timestamp"),
                       schema=[Field(name="trips", dtype=Int64)])
    engine = DuckDBOfflineEngine(DuckDBOfflineConfig(), RepoConfig.model_construct(project="t", repo_path=tmp_path))
    remote_scan.STATS.__init__()  # type: ignore[misc]
    rows = engine.read_range(view, start + timedelta(hours=20), start + timedelta(hours=30))
    assert sorted(rows.column("trips").to_pylist()) == list(range(20, 30))
    assert (remote_scan.STATS.row_groups_read, remote_scan.STATS.row_groups_total) == (1, 10)


def test_a_file_uri_source_is_read_and_written_like_a_local_path(tmp_path: Path) -> None:
    from repast.config.repo_config import RepoConfig
    from repast.definitions import FileSource
    from repast.offline.duckdb import DuckDBOfflineConfig, DuckDBOfflineEngine

    table = generate_driver_stats(tmp_path / "data" / "stats" / "part-0.parquet", drivers=2, days=1)
    source = FileSource(name="stats", path=f"file://{tmp_path}/data/stats", timestamp_field="event_timestamp")
    engine = DuckDBOfflineEngine(DuckDBOfflineConfig(), RepoConfig.model_construct(project="t", repo_path=tmp_path))
    engine.write_rows(source, table.slice(0, 3))
    with engine.session() as con:
        count = con.execute(f"SELECT count(*) FROM {engine.relation(source)}").fetchone()
    assert count is not None and count[0] == table.num_rows + 3


def test_a_saved_dataset_on_s3_is_written_once_and_read_back(s3_repo: tuple[Path, str, pa.Table],
                                                             s3_server: ObjectServer) -> None:
    from repast.definitions.saved_dataset import SavedDatasetFileStorage

    repo, _, _ = s3_repo
    with FeatureStore(repo_path=repo) as store:
        store.apply_repo()
        entity = pd.DataFrame({"driver_id": [1001, 1002], "event_timestamp": [datetime.now(UTC)] * 2})
        job = store.get_historical_features(entity, ["driver_stats:conv_rate"])
        storage = SavedDatasetFileStorage(path=s3_server.url("s3", uuid.uuid4().hex[:8], "training.parquet"))
        store.create_saved_dataset(from_=job, name="training", storage=storage)
        assert store.get_saved_dataset("training").to_df()["driver_id"].tolist() == [1001, 1002]
        with pytest.raises(InputError, match="already exists"):
            job.persist(storage)


KILLED_WRITER = '''
import os, signal, sys
import pyarrow.fs as pafs
from repast.offline.storage_paths import filesystem_for
fs, inner = filesystem_for(sys.argv[1])
out = fs.open_output_stream(inner)
out.write(b"x" * (12 * 2**20))  # more than one part: a multipart upload is under way
out.flush()
os.kill(os.getpid(), signal.SIGKILL)
'''


def _uploads(url: str) -> list[str]:
    from repast.offline.leftovers import incomplete_uploads, write_prefix

    return [u.location for u in incomplete_uploads(write_prefix(url), 0, None)]


def test_a_write_that_fails_while_serializing_leaves_no_object_and_no_upload(s3_server: ObjectServer) -> None:
    from repast.offline.leftovers import write_whole

    url = s3_server.url("s3", uuid.uuid4().hex[:12], "part-0.parquet")
    fs, inner = filesystem_for(url)

    def half_then_fail(out: pa.NativeFile) -> None:
        out.write(b"x" * (12 * 2**20))
        raise RuntimeError("the writer failed midway")

    with pytest.raises(RuntimeError):
        write_whole(url, fs, inner, half_then_fail)
    assert fs.get_file_info(inner).type.name == "NotFound"  # before: a partial object, visible to readers
    assert _uploads(url) == []


def test_a_failed_upload_is_aborted(s3_server: ObjectServer) -> None:
    from repast.offline.leftovers import abort_upload_of

    url = s3_server.url("s3", uuid.uuid4().hex[:12], "part-0.parquet")
    fs, inner = filesystem_for(url)
    out = fs.open_output_stream(inner)
    out.write(b"x" * (12 * 2**20))
    out.flush()
    assert _uploads(url) == [url]
    abort_upload_of(url, None)
    assert _uploads(url) == []
    del out  # its attempt to complete the aborted upload fails: no object
    assert fs.get_file_info(inner).type.name == "NotFound"


def test_gc_lists_a_killed_writers_upload_and_aborts_it_with_yes(s3_repo: tuple[Path, str, pa.Table]) -> None:
    import subprocess
    import sys

    from tests.e2e.test_server_harness import run_repast

    repo, data_url, _ = s3_repo
    assert run_repast(repo, "apply").returncode == 0
    part = f"{data_url}/part-{uuid.uuid4().hex}.parquet"
    killed = subprocess.run([sys.executable, "-c", KILLED_WRITER, part], capture_output=True, timeout=120)
    assert killed.returncode == -9, killed.stderr
    assert _uploads(part) == [part]

    young = run_repast(repo, "gc")  # default --older-than 1h: the upload may be a live writer's
    assert young.returncode == 0, young.stderr
    assert "Nothing left behind" in young.stdout
    listed = run_repast(repo, "gc", "--older-than", "0s")
    assert listed.returncode == 0, listed.stderr
    assert "incomplete upload" in listed.stdout and "--yes" in listed.stdout
    assert _uploads(part) == [part]  # listing changes nothing
    removed = run_repast(repo, "gc", "--older-than", "0s", "--yes")
    assert removed.returncode == 0, removed.stderr
    assert _uploads(part) == []
    assert "Nothing left behind" in run_repast(repo, "gc", "--older-than", "0s").stdout


def test_gc_removes_old_temporary_files_beside_a_local_source(tmp_path: Path) -> None:
    import os
    import time

    from repast.cli.scaffold import init_repo
    from tests.e2e.test_server_harness import run_repast

    repo = init_repo(tmp_path / "repo", "gclocal")
    assert run_repast(repo, "apply").returncode == 0
    parts = repo / "data" / "driver_stats.parquet.parts"
    parts.mkdir()
    old, fresh = parts / ".part-1-a.parquet.tmp", parts / ".part-2-b.parquet.tmp"
    old.write_bytes(b"x")
    fresh.write_bytes(b"x")
    two_hours_ago = time.time() - 7200
    os.utime(old, (two_hours_ago, two_hours_ago))
    listed = run_repast(repo, "gc")
    assert "temporary file" in listed.stdout and old.name in listed.stdout and fresh.name not in listed.stdout
    assert old.exists()
    assert run_repast(repo, "gc", "--yes").returncode == 0
    assert not old.exists() and fresh.exists()
