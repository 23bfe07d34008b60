"""The monitoring page in headless Chromium: per feature the distribution now vs the reference, drift and
null rate over time, the skew result; per view freshness over time. Static SVG drawn on the server."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.monitoring.repo import CURRENT_DAY, REFERENCE_START, monitored_repo, trips
from tests.monitoring.test_skew import serve
from tests.ui.conftest import running_ui
from tests.ui.test_browser import browser, shots  # noqa: F401 - the shared headless Chromium

pytestmark = pytest.mark.slow
PAGE = "/projects/monitored/monitoring"
REFERENCE = f"{REFERENCE_START:%Y-%m-%d}..{CURRENT_DAY:%Y-%m-%d}"


def monitored_store(root: Path) -> None:
    """Day 1 after the reference is clean, day 2 has fares one standard deviation higher; ten riders
    were pushed online-only values that the offline source cannot reproduce, then served."""
    import pandas as pd
    import pyarrow as pa

    clean, shifted = trips(CURRENT_DAY, 24, seed=2), trips(CURRENT_DAY + timedelta(days=1), 24, seed=3, shift=4.0)
    store = monitored_repo(root, pa.concat_tables([clean, shifted]))
    for day in (1, 2):
        store.check_drift(REFERENCE, timedelta(days=1), CURRENT_DAY + timedelta(days=day))
    store.compute_feature_statistics(None, REFERENCE_START, CURRENT_DAY + timedelta(days=2))
    store.materialize(REFERENCE_START, CURRENT_DAY + timedelta(days=2))
    store.write_to_online_store("rides", pd.DataFrame({"rider_id": range(10), "fare": [50.0] * 10,
                                                       "city": ["paris"] * 10, "ts": [datetime.now(UTC)] * 10}))
    serve(store, list(range(20)))
    store.check_skew(window=timedelta(hours=1))
    store.record_freshness()


@pytest.fixture(scope="module")
def ui_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from tests.ui.test_browser import _require_browser

    _require_browser()
    root = tmp_path_factory.mktemp("monitoring-ui")
    monitored_store(root)
    with running_ui(root) as url:
        yield url


def section(driver: object, feature: str) -> object:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.ID, f"f-rides-{feature}")  # type: ignore[attr-defined]


def test_the_distribution_now_is_drawn_beside_the_reference(browser: object, ui_url: str,  # noqa: F811
                                                            shots: Path) -> None:  # noqa: F811
    from selenium.webdriver.common.by import By

    browser.get(ui_url + PAGE)  # type: ignore[attr-defined]
    assert browser.find_element(By.TAG_NAME, "h1").text == "Monitoring"  # type: ignore[attr-defined]
    fare = section(browser, "fare")
    assert fare.find_element(By.CSS_SELECTOR, ".drift-state").text == "drift"  # type: ignore[attr-defined]
    chart = fare.find_element(By.CSS_SELECTOR, "figure.distribution svg")  # type: ignore[attr-defined]
    assert chart.size["width"] > 300 and chart.size["height"] > 100  # laid out, not collapsed

    def centre(series: str) -> float:
        bars = chart.find_elements(By.CSS_SELECTOR, f"rect.bar.{series}")
        shares = [float(b.get_attribute("data-share")) for b in bars]
        assert sum(shares) == pytest.approx(1.0, abs=1e-4) and any(b.size["height"] > 0 for b in bars)
        return sum(i * s for i, s in enumerate(shares))
    assert centre("current") > centre("reference") + 1  # the shifted fares sit a bin or more to the right
    assert section(browser, "city").find_element(  # type: ignore[attr-defined]
        By.CSS_SELECTOR, ".drift-state").text == "no drift"
    browser.save_screenshot(str(shots / "monitoring.png"))  # type: ignore[attr-defined]


def test_drift_over_time_crosses_the_threshold_on_the_drifted_day(browser: object, ui_url: str) -> None:  # noqa: F811
    from selenium.webdriver.common.by import By

    browser.get(ui_url + PAGE)  # type: ignore[attr-defined]
    chart = section(browser, "fare").find_element(By.CSS_SELECTOR, "figure.drift-over-time svg")  # type: ignore
    points = chart.find_elements(By.CSS_SELECTOR, "circle.point")
    threshold = float(chart.find_element(By.CSS_SELECTOR, "line.threshold").get_attribute("y1"))
    days = [p.get_attribute("data-day") for p in points]
    assert days == [f"{CURRENT_DAY + timedelta(days=1):%Y-%m-%d}", f"{CURRENT_DAY + timedelta(days=2):%Y-%m-%d}"]
    heights = [float(p.get_attribute("cy")) for p in points]  # SVG y grows downwards
    assert heights[0] > threshold > heights[1]


def test_null_rate_over_time_has_a_point_per_day_and_skew_is_reported(browser: object, ui_url: str) -> None:  # noqa: F811
    from selenium.webdriver.common.by import By

    browser.get(ui_url + PAGE)  # type: ignore[attr-defined]
    fare = section(browser, "fare")
    points = fare.find_elements(By.CSS_SELECTOR, "figure.null-rate-over-time circle.point")  # type: ignore
    assert len(points) == 9 and {p.get_attribute("data-value") for p in points} == {"0"}
    assert fare.find_element(By.CSS_SELECTOR, ".skew-state").text == "skew"  # type: ignore[attr-defined]
    text = fare.find_element(By.CSS_SELECTOR, ".skew-result").text  # type: ignore[attr-defined]
    assert "50.0% of 20 served rows differ offline" in text and "10 missing offline" in text


def test_each_view_shows_its_freshness_over_time(browser: object, ui_url: str) -> None:  # noqa: F811
    from selenium.webdriver.common.by import By

    browser.get(ui_url + PAGE)  # type: ignore[attr-defined]
    figure = browser.find_element(By.ID, "v-rides")  # type: ignore[attr-defined]
    (point,) = figure.find_elements(By.CSS_SELECTOR, "circle.point")
    assert float(point.get_attribute("data-value")) < 1  # hours: the pushed rows are minutes old
    assert "newest online value" in figure.text
