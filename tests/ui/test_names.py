"""Every name apply accepts is reachable in the UI and its API through the links the UI makes,
and so are data sources named by their path (Feast style) and names registered before the rule."""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from html import unescape

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from repast.cli.scaffold import init_repo
from repast.registry import Change
from repast.store import FeatureStore
from repast.ui import create_ui_app
from tests.registry_backend import registry_backend

ROOT = "/repast"
PROJECT = "names"
SOURCE = "data/driver stats.parquet"  # an unnamed FileSource is named by its path
VIEWS = ["a.b-c", "ünïcode", "...", "x..", "legacy/slash", "a?b#c %"]  # the last two: applied before the rule


def _specs() -> list[Change]:
    changes = [Change("add", "entity", "driver", {"name": "driver", "join_keys": ["driver_id"]}),
               Change("add", "data_source", SOURCE, {"type": "file", "name": SOURCE, "path": SOURCE})]
    for view in VIEWS:
        changes.append(Change("add", "feature_view", view, {
            "name": view, "source": {"type": "file", "name": SOURCE, "path": SOURCE}, "entities": ["driver"],
            "schema": [{"name": "trips", "dtype": "Int64"}]}))
    return changes


@pytest.fixture(scope="module")
def names_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    store = FeatureStore(init_repo(tmp_path_factory.mktemp("names") / "repo", "sample"))
    registry_backend(store).apply(PROJECT, _specs(), 0, "tester")
    with TestClient(create_ui_app(store.backends, root_path=ROOT)) as client:
        yield client


def _links(html: str, slug: str) -> list[str]:
    return [unescape(h) for h in re.findall(rf'href="({ROOT}/projects/{PROJECT}/{slug}/[^"]+)"', html)]


@pytest.mark.parametrize("slug, names", [("feature-views", VIEWS), ("data-sources", [SOURCE])])
def test_every_link_of_a_list_page_opens_its_object(names_client: TestClient, slug: str, names: list[str]) -> None:
    links = _links(names_client.get(f"{ROOT}/projects/{PROJECT}/{slug}").text, slug)
    assert len(links) == len(names)
    for link in links:
        page = names_client.get(link)
        assert page.status_code == 200, (link, page.text[:300])
        assert any(f"<h1>{n}" in unescape(page.text) or f">{n}<" in unescape(page.text) for n in names), link
    opened = {names_client.get(link.replace(f"{ROOT}/projects", f"{ROOT}/api/v1/projects")).json()["name"]
              for link in links}
    assert opened == set(names)


def test_the_api_gives_each_object_a_url_that_opens_it(names_client: TestClient) -> None:
    for view in VIEWS:
        listed = names_client.get(f"{ROOT}/api/v1/projects/{PROJECT}/feature-views").json()
        url = next(i["url"] for i in listed["items"] if i["name"] == view)
        api = names_client.get(url.replace(f"{ROOT}/projects", f"{ROOT}/api/v1/projects"))
        assert api.status_code == 200 and api.json()["name"] == view
        for suffix in ("lineage", "history"):
            assert names_client.get(url.replace(f"{ROOT}/projects", f"{ROOT}/api/v1/projects") + "/" + suffix
                                    ).status_code == 200, (view, suffix)
