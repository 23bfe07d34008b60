"""The UI on a generated registry of 1,000 feature views (10,000 features): the same answers at
scale. Load times are measured by benchmarks/ui.py, not here."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from benchmarks.ui import PROJECT, make_repo
from repast.store import FeatureStore
from repast.ui import create_ui_app

pytestmark = pytest.mark.slow

VIEWS, FEATURES = 1000, 10


@pytest.fixture(scope="module")
def large(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    repo = make_repo(Path(tmp_path_factory.mktemp("large")), VIEWS, FEATURES)
    with TestClient(create_ui_app(FeatureStore(repo).backends)) as client:
        yield client


def get(client: TestClient, path: str, **params: object) -> dict:  # type: ignore[type-arg]
    response = client.get(f"/api/v1/projects/{PROJECT}{path}", params=params)  # type: ignore[arg-type]
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def test_every_view_and_feature_is_counted(large: TestClient) -> None:
    counts = get(large, "")["counts"]
    # 10 features per view, plus the one feature of each of the 50 on-demand views
    assert (counts["feature_view"], counts["feature"], counts["feature_service"]) == (1000, 10050, 100)


def test_search_across_ten_thousand_features_pages_through_every_match(large: TestClient) -> None:
    first = get(large, "/search", q="fraud signal", kind="features", limit=500)
    assert first["total"] == 2000  # 200 fraud views x 10 features
    seen = {i["name"] for offset in range(0, 2000, 500)
            for i in get(large, "/search", q="fraud signal", kind="features", limit=500, offset=offset)["items"]}
    assert len(seen) == 2000 and all(name.startswith("fraud_view_") for name in seen)


def test_tag_filter_on_a_large_registry(large: TestClient) -> None:
    body = get(large, "/feature-views", tag="tier=gold", limit=500)
    assert body["total"] == len(range(0, VIEWS, 7))


def test_the_project_lineage_holds_every_source_view_and_service(large: TestClient) -> None:
    graph = get(large, "/lineage")
    assert len(graph["nodes"]) == 1000 + 1000 + 100 + 50
    assert large.get(f"/projects/{PROJECT}/lineage").status_code == 200
