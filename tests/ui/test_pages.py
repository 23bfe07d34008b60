"""HTML pages: every page kind renders, links stay under the root path, 404s are pages, no write forms."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from tests.ui.conftest import BARE, PROJECT, ROOT

P = f"{ROOT}/projects/{PROJECT}"
PAGES = {
    "projects": (f"{ROOT}/projects", [PROJECT, BARE]),
    "project": (P, ["Feature views", "tier=gold", "1 stale feature view", "version 2"]),
    "list": (f"{P}/feature-views", ["driver_hourly_stats_fresh"]),
    "search": (f"{P}/search?q=conv", ["transformed_conv_rate", "driver_hourly_stats:conv_rate"]),
    "entity": (f"{P}/entities/driver", ["driver_id", "INT64"]),
    "data_source": (f"{P}/data-sources/driver_stats_push_source", ["driver_hourly_stats_source"]),
    "feature_view": (f"{P}/feature-views/driver_hourly_stats", ["Hourly driver statistics", "ana@example.com",
                                                                 "1.0 d", "Float32", "Try it"]),
    "on_demand_feature_view": (f"{P}/on-demand-feature-views/transformed_conv_rate",
                               ["def transformed_conv_rate", "vals_to_add"]),
    "feature_service": (f"{P}/feature-services/driver_activity_v1", ["conv_rate_plus_val1", "Try it"]),
    "feature": (f"{P}/features/driver_hourly_stats:avg_daily_trips", ["Trips per day, 7-day average"]),
    "lineage": (f"{P}/lineage", ["<svg", "driver_activity_v1"]),
    "history": (f"{P}/history", ["update", "driver_hourly_stats"]),
    "version": (f"{P}/history/2", ["tags.tier", "gold"]),
    "freshness": (f"{P}/freshness", ["driver_hourly_stats_fresh", "stale"]),
    "monitoring": (f"{P}/monitoring", ["No monitoring results yet.", "repast drift"]),
}


@pytest.mark.parametrize("page", sorted(PAGES))
def test_every_page_kind_renders_its_content(client: TestClient, page: str) -> None:
    path, expected = PAGES[page]
    response = client.get(path)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    for text in expected:
        assert text in response.text, f"{text!r} not on the {page} page"


@pytest.mark.parametrize("page", sorted(PAGES))
def test_every_link_and_asset_of_a_page_is_under_the_root_path(client: TestClient, page: str) -> None:
    html = client.get(PAGES[page][0]).text
    urls = re.findall(r'(?:href|src|action)="([^"]*)"', html)
    assert urls
    outside = [u for u in urls if not u.startswith((ROOT + "/", "?", "#"))]
    assert outside == []


@pytest.mark.parametrize("path", [f"{P}/feature-views/nope", f"{P}/features/driver_hourly_stats:nope",
                                  f"{ROOT}/projects/nowhere", f"{P}/widgets", f"{ROOT}/no/such/page",
                                  f"{P}/history/99"])
def test_an_unknown_object_or_path_is_a_404_page(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404 and response.headers["content-type"].startswith("text/html")
    assert "Not found" in response.text


@pytest.mark.parametrize("path", ["/entities/bare_entity", "/data-sources/bare_source", "/feature-views/bare_view",
                                  "/on-demand-feature-views/bare_odfv", "/feature-services/bare_service",
                                  "/features/bare_view:bare_feature", "", "/lineage", "/freshness", "/history"])
def test_a_project_whose_objects_miss_every_optional_field_renders(client: TestClient, path: str) -> None:
    response = client.get(f"{ROOT}/projects/{BARE}{path}")
    assert response.status_code == 200, response.text


def test_the_root_redirects_to_the_configured_project(client: TestClient) -> None:
    response = client.get(f"{ROOT}/", follow_redirects=False)
    assert response.status_code == 307 and response.headers["location"] == P


def test_try_it_shows_values_statuses_and_event_times(client: TestClient) -> None:
    html = client.get(f"{P}/feature-views/driver_hourly_stats", params={"try": "1", "driver_id": "1001,42"}).text
    assert html.count("status-PRESENT") == 3 and html.count("status-NOT_FOUND") == 3
    assert "entity_rows=[{&#39;driver_id&#39;: 1001}, {&#39;driver_id&#39;: 42}]" in html


def test_try_it_with_a_mistyped_key_shows_the_error_on_the_page(client: TestClient) -> None:
    response = client.get(f"{P}/feature-views/driver_hourly_stats", params={"try": "1", "driver_id": "x"})
    assert response.status_code == 200 and "&#39;driver_id&#39; must be a value of type INT64" in response.text


def test_stale_views_stand_out_on_the_freshness_page(client: TestClient) -> None:
    html = client.get(f"{P}/freshness").text
    stale_rows = re.findall(r'<tr class="stale">.*?</tr>', html, re.S)
    assert len(stale_rows) == 1 and "driver_hourly_stats_fresh" in stale_rows[0]


def test_pages_offer_no_form_that_writes(client: TestClient) -> None:
    for path, _ in PAGES.values():
        html = client.get(path).text
        assert 'method="post"' not in html.lower()


def test_a_repo_never_applied_shows_an_empty_project(sample_repo: Path) -> None:
    from repast.store import FeatureStore
    from repast.ui import create_ui_app

    with TestClient(create_ui_app(FeatureStore(sample_repo).backends)) as fresh:
        page = fresh.get("/projects/sample")
        assert page.status_code == 200 and "registry version 0" in page.text
        assert fresh.get("/api/v1/projects/sample/feature-views").json()["total"] == 0
        assert fresh.get("/projects/sample/history").status_code == 200
        assert fresh.get("/projects/sample/lineage").status_code == 200


def test_every_template_and_static_asset_ships_as_package_data() -> None:
    import fnmatch
    import tomllib

    import repast.ui

    root = Path(__file__).resolve().parents[2]
    patterns = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["repast.ui"]
    ui_dir = Path(repast.ui.__file__).parent
    files = [p.relative_to(ui_dir).as_posix() for p in ui_dir.rglob("*")
             if p.is_file() and p.suffix not in (".py", ".pyc")]
    assert files and [f for f in files if not any(fnmatch.fnmatch(f, pat) for pat in patterns)] == []
