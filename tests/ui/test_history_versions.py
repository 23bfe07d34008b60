"""The UI's history hides the internal `view@vN` records a schema change also writes (issue 27)."""

from __future__ import annotations

import warnings
from pathlib import Path

from repast.cli.scaffold import init_repo
from repast.store import FeatureStore
from repast.ui import create_ui_app

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient


def test_a_schema_change_shows_as_the_views_update_without_its_version_record(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "repo", "hist")
    store = FeatureStore(repo)
    store.apply_repo()
    definitions = repo / "example_repo.py"
    definitions.write_text(definitions.read_text().replace('        Field(name="acc_rate", dtype=Float32),\n', "", 1))
    store.apply_repo()
    assert [v.version for v in store.list_feature_view_versions("driver_hourly_stats")] == [1, 2]
    client = TestClient(create_ui_app(store.backends))
    listed = client.get("/api/v1/projects/hist/history").json()["items"]
    shown = client.get("/api/v1/projects/hist/history/2").json()["changes"]
    page = client.get("/projects/hist/history/2").text
    for changes in (listed[0]["changes"], shown):
        kinds = {(c["op"], c["kind"], c["name"]) for c in changes}
        assert ("update", "feature_view", "driver_hourly_stats") in kinds
        assert not [c for c in changes if c["kind"] == "feature_view_version"]
    assert "driver_hourly_stats@v" not in page
