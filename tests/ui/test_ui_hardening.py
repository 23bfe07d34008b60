"""UI answers under bad input and outages: paging numbers out of range are 4xx JSON, registry pages
render when the PostgreSQL online store is down (freshness unknown), the sign-in cookie is Secure
under HTTPS (TLS, or X-Forwarded-Proto from a proxy uvicorn trusts)."""

from __future__ import annotations

import os
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from repast.cli.scaffold import init_repo
from repast.store import FeatureStore
from repast.ui import create_ui_app
from tests.ui.conftest import PROJECT, ROOT, running_ui

P = f"{ROOT}/api/v1/projects/{PROJECT}"
TOKEN = "ui-read-token"


@pytest.mark.parametrize("path", ["/feature-views", "/search", "/history"])
@pytest.mark.parametrize("offset", ["1e20", "99999999999999999999999", "-1"])
def test_an_offset_out_of_range_is_a_4xx_json_error(client: TestClient, path: str, offset: str) -> None:
    response = client.get(f"{P}{path}", params={"offset": offset})
    assert 400 <= response.status_code < 500, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert "offset" in response.json()["detail"]


@pytest.fixture
def postgres_down_repo(tmp_path: Path) -> Iterator[Path]:
    url = os.environ.get("REPAST_TEST_POSTGRES")
    if not url:
        pytest.skip("REPAST_TEST_POSTGRES is not set")
    schema = f"ui_down_{uuid.uuid4().hex[:8]}"
    repo = init_repo(tmp_path / "repo", "sample")
    config = repo / "feature_store.yaml"
    data = yaml.safe_load(config.read_text())
    data["online_store"] = {"type": "postgres", "url": url, "db_schema": schema}
    config.write_text(yaml.safe_dump(data))
    FeatureStore(repo).apply_repo()
    data["online_store"]["url"] = "postgresql://postgres@127.0.0.1:1/test"  # nothing listens there: down
    config.write_text(yaml.safe_dump(data))
    yield repo
    data["online_store"]["url"] = url
    config.write_text(yaml.safe_dump(data))
    FeatureStore(repo).teardown()


@pytest.mark.parametrize("page", ["", "/feature-views/driver_hourly_stats", "/freshness"])
def test_registry_pages_render_with_freshness_unknown_when_postgres_is_down(postgres_down_repo: Path,
                                                                             page: str) -> None:
    with TestClient(create_ui_app(FeatureStore(postgres_down_repo).backends)) as client:
        response = client.get(f"/projects/sample{page}")
        assert response.status_code == 200, response.text[:500]
        freshness = client.get("/api/v1/projects/sample/freshness")
        assert freshness.status_code == 200
        body = freshness.json()
        assert {v["newest_value"] for v in body["views"]} == {None} and body["stale"] == []
        assert any("unknown" in note for note in body["notes"])


@pytest.fixture(scope="module")
def secured_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = init_repo(tmp_path_factory.mktemp("secure") / "repo", "sample")
    path = repo / "feature_store.yaml"
    data = yaml.safe_load(path.read_text())
    data["feature_server"] = {"auth": {"type": "token", "read_tokens": [TOKEN]}}
    path.write_text(yaml.safe_dump(data))
    FeatureStore(repo).apply_repo()
    return repo


@pytest.mark.parametrize("base_url, secure", [("https://testserver", True), ("http://testserver", False)])
def test_the_cookie_is_secure_under_https_only(secured_repo: Path, base_url: str, secure: bool) -> None:
    with TestClient(create_ui_app(FeatureStore(secured_repo).backends), base_url=base_url) as client:
        response = client.post("/login", data={"token": TOKEN}, follow_redirects=False)
    assert response.status_code == 303
    assert ("; secure" in response.headers["set-cookie"].lower()) is secure


@pytest.mark.slow
def test_the_cookie_is_secure_behind_a_proxy_that_says_https(secured_repo: Path) -> None:
    with running_ui(secured_repo) as url:
        behind = httpx.post(url + "/login", data={"token": TOKEN}, headers={"X-Forwarded-Proto": "https"})
        direct = httpx.post(url + "/login", data={"token": TOKEN})
    assert "; secure" in behind.headers["set-cookie"].lower()
    assert "; secure" not in direct.headers["set-cookie"].lower()
