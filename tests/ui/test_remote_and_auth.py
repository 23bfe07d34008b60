"""The UI over a thin-client (remote) registry, and behind token auth (a read token is enough)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
import yaml
from starlette.testclient import TestClient

from repast.store import FeatureStore
from repast.ui import create_ui_app
from tests.kubeflow.test_remote_stores import ThreadServer, client_store

READ, WRITE = "ui-read-token", "ui-write-token"


@pytest.fixture(scope="module")
def remote(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FeatureStore, str]]:
    """A feature server over the sample repo, applied twice and materialized."""
    from repast.cli.scaffold import init_repo

    repo = init_repo(tmp_path_factory.mktemp("remote") / "repo", "sample")
    served = FeatureStore(repo)
    served.apply_repo()
    definitions = repo / "example_repo.py"
    definitions.write_text(definitions.read_text().replace('tags={"team": "driver_performance"},',
                                                           'tags={"team": "ranking"},'))
    served.apply_repo()
    served.materialize_incremental(datetime.now(UTC), ["driver_hourly_stats"])
    with ThreadServer(served) as server:
        yield served, server.url


@pytest.fixture(scope="module")
def remote_ui(remote: tuple[FeatureStore, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """The UI of a thin client: registry and online store are the feature server's."""
    with TestClient(create_ui_app(client_store(remote[1], tmp_path_factory.mktemp("client")).backends)) as c:
        yield c


def test_a_remote_registry_is_browsed_like_a_local_one(remote_ui: TestClient) -> None:
    names = [i["name"] for i in remote_ui.get("/api/v1/projects/sample/feature-views").json()["items"]]
    assert names == ["driver_hourly_stats", "driver_hourly_stats_fresh"]
    page = remote_ui.get("/projects/sample/on-demand-feature-views/transformed_conv_rate")
    assert page.status_code == 200 and "def transformed_conv_rate" in page.text


def test_try_it_reads_through_the_remote_online_store(remote_ui: TestClient) -> None:
    body = remote_ui.get("/api/v1/projects/sample/feature-views/driver_hourly_stats/online",
                         params={"driver_id": "1001"}).json()
    assert {v["status"] for v in body["rows"][0]["values"]} == {"PRESENT"}


def test_history_and_its_diffs_come_through_the_feature_server(remote_ui: TestClient) -> None:
    items = remote_ui.get("/api/v1/projects/sample/history").json()["items"]
    assert [e["version"] for e in items] == [2, 1]
    (change,) = remote_ui.get("/api/v1/projects/sample/history/2").json()["changes"]
    assert change["diff"] == [{"path": "tags.team", "old": "driver_performance", "new": "ranking"}]


def test_watermarks_and_runs_come_through_the_feature_server(remote_ui: TestClient) -> None:
    body = remote_ui.get("/api/v1/projects/sample/freshness").json()
    views = {v["view"]: v for v in body["views"]}
    assert views["driver_hourly_stats"]["watermark"] and views["driver_hourly_stats"]["rows_written"] == 5
    assert body["notes"] == ["The online store (RemoteOnlineStore) does not report its newest values."]


def test_the_registry_routes_answer_only_for_the_served_project(remote: tuple[FeatureStore, str]) -> None:
    url = remote[1]
    assert httpx.get(url + "/registry/history", params={"project": "other"}).status_code == 404
    assert httpx.get(url + "/registry/history", params={"limit": "x"}).status_code == 400
    marks = httpx.get(url + "/registry/materializations").json()
    assert set(marks) == {"watermarks", "runs"} and marks["runs"]["driver_hourly_stats"]["rows"] == 5


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    from repast.cli.scaffold import init_repo

    repo = init_repo(tmp_path_factory.mktemp("secured") / "repo", "sample")
    path = repo / "feature_store.yaml"
    data = yaml.safe_load(path.read_text())
    data["feature_server"] = {"auth": {"type": "token", "read_tokens": [READ], "write_tokens": [WRITE]}}
    path.write_text(yaml.safe_dump(data))
    store = FeatureStore(repo)
    store.apply_repo()
    with TestClient(create_ui_app(store.backends, root_path="/repast"), base_url="https://testserver") as c:
        yield c


def test_the_api_needs_a_token_when_the_server_has_auth(secured: TestClient) -> None:
    response = secured.get("/repast/api/v1/projects")
    assert response.status_code == 401 and response.json()["error"] == "unauthorized"
    bad = secured.get("/repast/api/v1/projects", headers={"Authorization": "Bearer wrong"})
    assert bad.status_code == 401


@pytest.mark.parametrize("token", [READ, WRITE])
def test_a_read_or_write_token_may_use_the_api(secured: TestClient, token: str) -> None:
    response = secured.get("/repast/api/v1/projects", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200


def test_pages_send_a_visitor_without_a_token_to_the_login_form(secured: TestClient) -> None:
    secured.cookies.clear()
    response = secured.get("/repast/projects/sample/entities", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/repast/login?next=/repast/projects/sample/entities"


def test_logging_in_with_a_read_token_sets_a_cookie_that_opens_the_pages(secured: TestClient) -> None:
    secured.cookies.clear()
    response = secured.post("/repast/login", data={"token": READ, "next": "/repast/projects/sample/entities"},
                            follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/repast/projects/sample/entities"
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/repast" in cookie
    assert secured.get("/repast/projects/sample/entities").status_code == 200
    secured.cookies.clear()


def test_a_wrong_token_at_login_is_refused(secured: TestClient) -> None:
    secured.cookies.clear()
    response = secured.post("/repast/login", data={"token": "wrong"}, follow_redirects=False)
    assert response.status_code == 401 and "not valid" in response.text


def test_login_never_redirects_off_the_ui(secured: TestClient) -> None:
    response = secured.post("/repast/login", data={"token": READ, "next": "https://evil.example/"},
                            follow_redirects=False)
    assert response.headers["location"] == "/repast/"
    secured.cookies.clear()


def test_health_and_static_assets_need_no_token(secured: TestClient) -> None:
    secured.cookies.clear()
    assert secured.get("/repast/healthz").status_code == 200
    assert secured.get("/repast/static/ui.css").status_code == 200


