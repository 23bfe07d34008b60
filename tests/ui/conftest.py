"""A registry for the UI tests: the sample repo applied twice (so history has a diff), materialized,
plus a second project whose objects have every optional field missing and an on-demand view
whose stored function is not loadable (the UI must never unpickle it)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

with warnings.catch_warnings():  # starlette asks for "httpx2", which is not released; httpx works
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from repast.cli.scaffold import init_repo
from repast.registry import Change
from repast.store import FeatureStore
from repast.ui import create_ui_app
from tests.registry_backend import registry_backend

PROJECT = "shop"
BARE = "bare"
ROOT = "/repast"

BARE_SPECS = [
    Change("add", "entity", "bare_entity", {"name": "bare_entity", "join_keys": ["bare_id"]}),
    Change("add", "data_source", "bare_source", {"type": "file", "name": "bare_source"}),
    Change("add", "feature_view", "bare_view", {
        "name": "bare_view", "source": {"type": "file", "name": "bare_source"}, "entities": ["bare_entity"],
        "schema": [{"name": "bare_feature", "dtype": "Int64"}]}),
    Change("add", "on_demand_feature_view", "bare_odfv", {
        "name": "bare_odfv", "source_views": [{"view_name": "bare_view", "features": ["bare_feature"]}],
        "request_sources": [], "schema": [{"name": "doubled", "dtype": "Int64"}],
        "udf_pickle": "bm90IGEgcGlja2xl"}),  # "not a pickle": unpickling it would fail
    Change("add", "feature_service", "bare_service", {
        "name": "bare_service", "features": [{"view_name": "bare_view", "features": ["bare_feature"]}]}),
]


def make_registry(root: Path) -> FeatureStore:
    repo = init_repo(root / "repo", PROJECT)
    definitions = repo / "example_repo.py"
    store = FeatureStore(repo)
    store.apply_repo()
    # A second apply changing one view: history then has an update with a field diff.
    definitions.write_text(definitions.read_text().replace(
        'tags={"team": "driver_performance"},',
        'tags={"team": "driver_performance", "tier": "gold"}, owner="ana@example.com",\n'
        '    description="Hourly driver statistics",'))
    store.apply_repo()
    store.materialize_incremental(datetime.now(UTC), ["driver_hourly_stats"])
    registry_backend(store).apply(BARE, BARE_SPECS, 0, "tester")
    return store


@pytest.fixture(scope="package")
def ui_store(tmp_path_factory: pytest.TempPathFactory) -> FeatureStore:
    return make_registry(tmp_path_factory.mktemp("ui"))


@pytest.fixture(scope="package")
def client(ui_store: FeatureStore) -> Iterator[TestClient]:
    """The UI behind the /repast prefix, as a proxy that does not strip it would send requests."""
    with TestClient(create_ui_app(ui_store.backends, root_path=ROOT)) as c:
        yield c


def api(client: TestClient, path: str, status: int = 200, **params: object) -> dict:  # type: ignore[type-arg]
    response = client.get(f"{ROOT}/api/v1{path}", params=params)  # type: ignore[arg-type]
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    return response.json()  # type: ignore[no-any-return]


REPAST = str(Path(sys.executable).parent / "repast")


@contextmanager
def running_ui(repo: Path, *args: str) -> Iterator[str]:
    """`repast ui` as a real process on a free loopback port; yields its base URL (with the prefix)."""
    from tests.e2e.test_server_harness import free_port

    port = free_port()
    log = repo / f"ui-{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([REPAST, "ui", "--port", str(port), "--root-path", ROOT, "--no-access-log", *args],
                                cwd=repo, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}{ROOT}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, f"repast ui exited:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"repast ui did not answer:\n{log.read_text()}"
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)
