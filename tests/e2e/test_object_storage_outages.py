"""The registry and the offline files on object storage while the object store is frozen (SIGSTOP:
it accepts connections and never answers) or killed: the server keeps answering from its cached
definitions and says so, an operation that needs the store is a 503, and the CLI fails within its
timeouts with one line naming the bucket and the setting to raise.

Each test starts its own SeaweedFS (S3) or gcp-storage-emulator (GCS) on 127.0.0.1 and freezes or
kills only that one. No duration is asserted tightly: the bounds are generous multiples of the
configured timeouts (a frozen store used to hold the whole server for about 4 minutes).
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from repast.cli.scaffold import init_repo
from repast.errors import ObjectStoreUnavailable, StoreUnavailable
from repast.store import FeatureStore
from tests.e2e.test_server_harness import ServerProcess, run_repast
from tests.object_storage import ObjectServer, running_gcs_emulator, running_seaweedfs

pytestmark = pytest.mark.slow

ONLINE = {"features": ["driver_hourly_stats:conv_rate"], "entities": {"driver_id": [1001, 1002]}}
# Small timeouts so a test waits seconds, not minutes; bounds below are generous multiples of them.
TIMEOUTS = "connect_timeout_seconds: 1, read_timeout_seconds: 2"
GENEROUS = 60  # seconds: "fails or answers at all", never a measured performance figure


@pytest.fixture(params=["s3", "gcs"])
def own_store(request: pytest.FixtureRequest) -> Iterator[tuple[str, ObjectServer]]:
    """An object store of this test's own, resumed (SIGCONT) at the end whatever happened."""
    running = running_seaweedfs() if request.param == "s3" else running_gcs_emulator()
    with running as server:
        try:
            yield ("s3" if request.param == "s3" else "gs"), server
        finally:
            _signal(server, signal.SIGCONT)


def _signal(server: ObjectServer, sig: signal.Signals) -> None:
    try:
        os.kill(server.pid, sig)
    except ProcessLookupError:
        pass


def _repo(tmp_path: Path, scheme: str, server: ObjectServer) -> tuple[Path, str]:
    """The sample repo with its registry on the object store, applied and materialized."""
    repo = init_repo(tmp_path / "repo", "objoutage")
    url = server.url(scheme, uuid.uuid4().hex[:12], "registry.json")
    config = repo / "feature_store.yaml"
    config.write_text(config.read_text().replace(
        "registry: data/registry.db", f"registry: {{path: \"{url}\", cache_ttl_seconds: 1, {TIMEOUTS}}}"))
    result = run_repast(repo, "apply")
    assert result.returncode == 0, result.stderr
    now = datetime.now(UTC)
    with FeatureStore(repo) as store:
        store.materialize(now - timedelta(days=8), now, ["driver_hourly_stats"])
    return repo, url


def test_a_frozen_object_store_registry_keeps_the_server_answering_from_its_cache(
        tmp_path: Path, own_store: tuple[str, ObjectServer]) -> None:
    scheme, server = own_store
    repo, _ = _repo(tmp_path, scheme, server)
    with ServerProcess(repo, "--no-access-log") as served, httpx.Client(base_url=served.url, timeout=GENEROUS) as http:
        ok = http.post("/get-online-features", json=ONLINE)
        assert ok.status_code == 200
        _signal(server, signal.SIGSTOP)
        time.sleep(1.5)  # past the cache TTL: requests now trigger re-checks that cannot finish
        slowest = 0.0
        until = time.monotonic() + 8  # several re-check rounds of the frozen store
        while time.monotonic() < until:
            start = time.monotonic()
            health = http.get("/health", timeout=10)
            slowest = max(slowest, time.monotonic() - start)
            assert health.status_code == 200
            answer = http.post("/get-online-features", json=ONLINE, timeout=10)
            assert answer.status_code == 200, answer.text
            assert answer.json() == ok.json()
            time.sleep(0.2)
        ready = http.get("/ready", timeout=10)
        assert ready.status_code == 200
        assert ready.json()["registry"]["status"] == "stale"
        assert "registry.read_timeout_seconds" in ready.json()["registry"]["detail"]
        print(f"slowest /health while the {scheme} store was frozen: {slowest:.3f} s")
        assert slowest < 2  # the event loop is never held by a registry re-check
        _signal(server, signal.SIGCONT)
        deadline = time.monotonic() + GENEROUS
        while "registry" in (ready := http.get("/ready").json()):
            assert time.monotonic() < deadline, ready
            http.post("/get-online-features", json=ONLINE)
            time.sleep(0.5)
    assert "Traceback" not in served.output()


def test_a_killed_object_store_registry_is_a_503_while_reads_are_served_from_the_cache(
        tmp_path: Path, own_store: tuple[str, ObjectServer]) -> None:
    scheme, server = own_store
    repo, _ = _repo(tmp_path, scheme, server)
    with ServerProcess(repo, "--no-access-log") as served, httpx.Client(base_url=served.url, timeout=GENEROUS) as http:
        ok = http.post("/get-online-features", json=ONLINE)
        _signal(server, signal.SIGKILL)
        time.sleep(1.5)
        answers = [http.post("/get-online-features", json=ONLINE) for _ in range(10)]
        assert {r.status_code for r in answers} == {200}
        assert all(r.json() == ok.json() for r in answers)
        assert http.get("/ready").json()["registry"]["status"] == "stale"
        # /registry sends the stored definitions themselves: it needs the store, which is away.
        registry = http.get("/registry")
        assert registry.status_code == 503, registry.text
        assert registry.json()["error"] == "store_unavailable"
        assert server.bucket in registry.json()["detail"]
    assert "Traceback" not in served.output()


def test_the_cli_fails_within_its_timeouts_with_one_line_when_the_registry_store_is_frozen(
        tmp_path: Path, own_store: tuple[str, ObjectServer]) -> None:
    scheme, server = own_store
    repo, _ = _repo(tmp_path, scheme, server)
    _signal(server, signal.SIGSTOP)
    start = time.monotonic()
    result = run_repast(repo, "feature-views", "list")
    took = time.monotonic() - start
    print(f"`repast feature-views list` with the {scheme} store frozen failed after {took:.1f} s")
    assert result.returncode == 1
    assert took < GENEROUS  # read timeout 2 s, two attempts; it took 241 s before
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert lines[0].startswith("Error:"), result.stderr
    assert "Traceback" not in result.stderr
    message = " ".join(line.strip() for line in lines)
    assert server.bucket in message and "registry.read_timeout_seconds" in message


def test_the_sdk_raises_store_unavailable_naming_the_bucket_for_a_killed_registry_store(
        tmp_path: Path, own_store: tuple[str, ObjectServer]) -> None:
    scheme, server = own_store
    repo, _ = _repo(tmp_path, scheme, server)
    _signal(server, signal.SIGKILL)
    with FeatureStore(repo) as store, pytest.raises(StoreUnavailable, match=server.bucket):
        store.list_feature_views()


def test_offline_reads_of_a_frozen_s3_source_fail_within_the_object_storage_timeouts(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    from repast.cli.scaffold import generate_driver_stats
    from repast.offline.storage_paths import filesystem_for

    with running_seaweedfs() as server:
        try:
            data_url = server.url("s3", uuid.uuid4().hex[:12], "driver_stats")
            table = generate_driver_stats(tmp_path / "local.parquet", drivers=3, days=2)
            fs, inner = filesystem_for(data_url)
            pq.write_table(table, f"{inner}/part-0.parquet", filesystem=fs)
            repo = init_repo(tmp_path / "repo", "offlineoutage")
            defs = next(p for p in repo.glob("*.py") if "FileSource" in p.read_text())
            local = next(p for p in (repo / "data").glob("*.parquet"))
            defs.write_text(defs.read_text().replace(f"data/{local.name}", data_url))
            config = repo / "feature_store.yaml"
            config.write_text(config.read_text() + f"object_storage: {{{TIMEOUTS}}}\n")
            with FeatureStore(repo) as store:
                store.apply_repo()
                _signal(server, signal.SIGSTOP)
                entity = table.select(["driver_id", "event_timestamp"]).slice(0, 3).to_pandas()
                start = time.monotonic()
                with pytest.raises(ObjectStoreUnavailable, match=r"object_storage\.read_timeout_seconds") as raised:
                    store.get_historical_features(entity, ["driver_hourly_stats:conv_rate"]).to_df()
                took = time.monotonic() - start
            print(f"training data from a frozen S3 source failed after {took:.1f} s")
            assert server.bucket in str(raised.value)
            assert took < GENEROUS
        finally:
            _signal(server, signal.SIGCONT)
