"""Headless Chromium driving the real UI (`repast ui` behind the /repast prefix on a free port).

Needs Debian's `chromium` and `chromium-driver` (with selenium from the test extra). Without them
these tests skip with a message; with REPAST_TEST_BROWSER=1 (set by .ci/run) they are required.
A screenshot of each page kind is saved under $REPAST_UI_SCREENSHOTS (default: a pytest temp dir).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ui.conftest import PROJECT, make_registry, running_ui

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


def _require_browser() -> None:
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not Path(p).exists()]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("selenium (pip install -e '.[test]')")
    if not missing:
        return
    message = (f"browser tests need Chromium and its driver: {', '.join(missing)} not found; "
               "apt-get install chromium chromium-driver")
    if os.environ.get("REPAST_TEST_BROWSER"):
        pytest.fail(message + " (REPAST_TEST_BROWSER is set: they are required)")
    pytest.skip(message)


@pytest.fixture(scope="module")
def ui_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    _require_browser()
    store = make_registry(tmp_path_factory.mktemp("browser"))
    with running_ui(store.repo_path) as url:
        yield url


@pytest.fixture(scope="module")
def browser(ui_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1400,1000",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.implicitly_wait(5)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = os.environ.get("REPAST_UI_SCREENSHOTS")
    path = Path(target) if target else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


P = f"/projects/{PROJECT}"


def wait_for_url(browser: object, fragment: str) -> None:
    """Wait until a click or submit has navigated: elements of the old page go stale."""
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(browser, 10).until(expected_conditions.url_contains(fragment))  # type: ignore[arg-type]


PAGE_KINDS = {
    "projects": ("/projects", "Projects"),
    "project": (P, f"Project {PROJECT}"),
    "entity": (f"{P}/entities/driver", "driver"),
    "data-source": (f"{P}/data-sources/driver_hourly_stats_source", "driver_hourly_stats_source"),
    "feature-views": (f"{P}/feature-views", "Feature views (2)"),
    "feature-view": (f"{P}/feature-views/driver_hourly_stats", "driver_hourly_stats"),
    "on-demand-feature-view": (f"{P}/on-demand-feature-views/transformed_conv_rate", "transformed_conv_rate"),
    "feature-service": (f"{P}/feature-services/driver_activity_v1", "driver_activity_v1"),
    "feature": (f"{P}/features/driver_hourly_stats:conv_rate", "driver_hourly_stats:conv_rate"),
    "lineage": (f"{P}/lineage", "Lineage"),
    "search": (f"{P}/search?q=rate", "Search"),
    "history": (f"{P}/history", "Apply history"),
    "history-version": (f"{P}/history/2", "Version 2"),
    "freshness": (f"{P}/freshness", "Freshness"),
    "not-found": (f"{P}/feature-views/nope", "Not found"),
}


@pytest.mark.parametrize("kind", list(PAGE_KINDS))
def test_each_page_kind_shows_its_heading(browser: object, ui_url: str, shots: Path, kind: str) -> None:
    from selenium.webdriver.common.by import By

    path, heading = PAGE_KINDS[kind]
    browser.get(ui_url + path)  # type: ignore[attr-defined]
    assert browser.find_element(By.TAG_NAME, "h1").text == heading  # type: ignore[attr-defined]
    # The stylesheet was found under the prefix: the side navigation is laid out as a column.
    if kind != "projects" and kind != "not-found":
        nav = browser.find_element(By.CSS_SELECTOR, "nav.side")  # type: ignore[attr-defined]
        assert nav.value_of_css_property("width") == "190px"
    browser.save_screenshot(str(shots / f"{kind}.png"))  # type: ignore[attr-defined]


def test_search_from_the_top_box_finds_a_feature_and_opens_it(browser: object, ui_url: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    browser.get(ui_url + P)  # type: ignore[attr-defined]
    box = browser.find_element(By.ID, "topsearch")  # type: ignore[attr-defined]
    box.send_keys("avg_daily_trips", Keys.ENTER)
    wait_for_url(browser, "/search?q=avg_daily_trips")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Search"  # type: ignore[attr-defined]
    links = browser.find_elements(By.CSS_SELECTOR, "table.results a")  # type: ignore[attr-defined]
    assert "driver_hourly_stats:avg_daily_trips" in [a.text for a in links]
    next(a for a in links if a.text == "driver_hourly_stats:avg_daily_trips").click()
    wait_for_url(browser, "/features/driver_hourly_stats:avg_daily_trips")
    assert "Trips per day, 7-day average" in browser.find_element(By.TAG_NAME, "main").text  # type: ignore


def test_search_filters_results_by_kind(browser: object, ui_url: str) -> None:
    from selenium.webdriver.common.by import By

    browser.get(ui_url + f"{P}/search?q=driver")  # type: ignore[attr-defined]
    browser.find_element(By.CSS_SELECTOR, "input[name=kind][value=feature-services]").click()  # type: ignore
    browser.find_element(By.CSS_SELECTOR, "#search-form button").click()  # type: ignore[attr-defined]
    wait_for_url(browser, "kind=feature-services")
    kinds = {k.text for k in browser.find_elements(By.CSS_SELECTOR, "table.results .kind")}  # type: ignore
    assert kinds == {"Feature service"}


def test_a_lineage_node_opens_its_object(browser: object, ui_url: str) -> None:
    from selenium.webdriver.common.by import By

    browser.get(ui_url + f"{P}/lineage")  # type: ignore[attr-defined]
    node = browser.find_element(By.CSS_SELECTOR, 'a.node-link[data-id="feature_service/driver_activity_v1"]')  # type: ignore
    node.click()
    wait_for_url(browser, "/feature-services/driver_activity_v1")
    assert browser.find_element(By.TAG_NAME, "h1").text == "driver_activity_v1"  # type: ignore[attr-defined]
    assert browser.current_url == ui_url + f"{P}/feature-services/driver_activity_v1"  # type: ignore[attr-defined]
    upstream = browser.find_element(By.CSS_SELECTOR, 'a.node-link[data-id="feature_view/driver_hourly_stats"]')  # type: ignore
    upstream.click()
    wait_for_url(browser, "/feature-views/driver_hourly_stats")
    assert browser.find_element(By.TAG_NAME, "h1").text == "driver_hourly_stats"  # type: ignore[attr-defined]


def test_try_it_shows_online_values_and_the_matching_snippets(browser: object, ui_url: str, shots: Path) -> None:
    from selenium.webdriver.common.by import By

    browser.get(ui_url + f"{P}/feature-views/driver_hourly_stats")  # type: ignore[attr-defined]
    field = browser.find_element(By.CSS_SELECTOR, "#try-form input[name=driver_id]")  # type: ignore
    field.send_keys("1001,1002")
    browser.find_element(By.CSS_SELECTOR, "#try-form button").click()  # type: ignore[attr-defined]
    wait_for_url(browser, "try=1")
    table = browser.find_element(By.ID, "try-result")  # type: ignore[attr-defined]
    statuses = [s.text for s in table.find_elements(By.CSS_SELECTOR, ".status")]
    assert statuses == ["PRESENT"] * 6
    assert "'driver_id': 1002" in browser.find_element(By.ID, "snippet-python").text  # type: ignore
    assert '"driver_id": [1001, 1002]' in browser.find_element(By.ID, "snippet-curl").text  # type: ignore
    table.location_once_scrolled_into_view  # noqa: B018  (scrolls the result into the screenshot)
    browser.save_screenshot(str(shots / "try-it.png"))  # type: ignore[attr-defined]


def test_the_copy_button_confirms_it_copied(browser: object, ui_url: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(ui_url + f"{P}/feature-views/driver_hourly_stats")  # type: ignore[attr-defined]
    button = browser.find_element(By.CSS_SELECTOR, 'button[data-copy="snippet-python"]')  # type: ignore
    browser.execute_script("arguments[0].scrollIntoView()", button)  # type: ignore[attr-defined]
    button.click()
    WebDriverWait(browser, 5).until(lambda _: button.text == "Copied")


# The drawing as the browser renders it: each edge's rendered ends touch the nodes the API names, its
# arrowhead marker is there, and no point of it lies inside a node's rendered box.
EDGE_GEOMETRY_JS = """
const boxes = {};
for (const a of document.querySelectorAll('svg.lineage a.node-link')) {
  const b = a.querySelector('rect').getBBox();
  boxes[a.dataset.id] = [b.x, b.y, b.width, b.height];
}
const edges = [];
for (const p of document.querySelectorAll('svg.lineage path.edge')) {
  const n = p.getTotalLength(), pts = [];
  for (let i = 0; i <= 100; i++) { const q = p.getPointAtLength(n * i / 100); pts.push([q.x, q.y]); }
  edges.push({from: p.dataset.from, to: p.dataset.to, marker: p.getAttribute('marker-end'), pts: pts});
}
return {boxes: boxes, edges: edges, arrow: !!document.querySelector('svg.lineage marker#arrow path')};
"""


def test_the_rendered_lineage_edges_join_the_nodes_the_api_names(browser: object, ui_url: str) -> None:
    import httpx

    browser.get(ui_url + f"{P}/lineage")  # type: ignore[attr-defined]
    drawn = browser.execute_script(EDGE_GEOMETRY_JS)  # type: ignore[attr-defined]
    api = httpx.get(ui_url + f"/api/v1{P}/lineage").json()
    assert drawn["arrow"]
    assert sorted((e["from"], e["to"]) for e in drawn["edges"]) == sorted((e["from"], e["to"]) for e in api["edges"])
    boxes = drawn["boxes"]
    for edge in drawn["edges"]:
        (sx, sy), (ex, ey) = edge["pts"][0], edge["pts"][-1]
        fx, fy, fw, fh = boxes[edge["from"]]
        tx, ty, _, th = boxes[edge["to"]]
        assert abs(sx - (fx + fw)) < 1 and fy < sy < fy + fh, edge["from"]
        assert tx - 10 <= ex <= tx and ty < ey < ty + th, edge["to"]
        assert edge["marker"] == "url(#arrow)"
        for node, (x, y, w, h) in boxes.items():
            inside = [p for p in edge["pts"] if x + 1 < p[0] < x + w - 1 and y + 1 < p[1] < y + h - 1]
            assert not inside, f"{edge['from']} -> {edge['to']} is drawn under {node}"
