"""The plant overview in real headless Chromium: a fresh database says what to do; with the demo plant it shows
the KPIs, a tile per machine grouped by area and line, and a click on a tile opens the machine."""
from __future__ import annotations

import json

from components.format import pct

from tests.pages.conftest import (
    click,
    console_errors,
    past_range,
    same_as_api,
    screenshot,
    wait_for,
    wait_for_whole_minute_after,
)
from tests.support.browser import By, wait_text
from tests.test_app import RunningApp


def test_a_fresh_database_points_to_the_wizard(tmp_path, browser):
    app = RunningApp(tmp_path, "--no-demo")
    try:
        app.wait_healthy()
        console_errors(browser)  # what earlier pages left in the log is theirs
        browser.get(f"http://127.0.0.1:{app.port}/")
        wait_text(browser, "h2", "Plant overview")
        wait_text(browser, "#overview-backend", "sqlite (schema")
        empty = browser.find_element(By.ID, "overview-empty")
        assert "No machines yet" in empty.text
        assert browser.find_element(By.ID, "overview-wizard-link").get_attribute("href").endswith("/machine-config/")
        assert browser.find_element(By.ID, "shell-nav").is_displayed()
        screenshot(browser, "overview-empty")

        browser.get(f"http://127.0.0.1:{app.port}/?embed=1")  # Grafana iframes and kiosks: no navigation
        wait_text(browser, "h2", "Plant overview")
        assert not browser.find_element(By.ID, "shell-nav").is_displayed()
        assert console_errors(browser) == []
    finally:
        app.stop()


def test_overview_with_the_demo_plant(demo_app, browser):
    base = f"http://127.0.0.1:{demo_app.port}"
    console_errors(browser)
    browser.get(base + "/")
    wait_text(browser, "#overview-title", "Riverside Beverages")
    oee = wait_for(lambda: browser.find_element(By.ID, "overview-kpi-oee").text.endswith("%"), 30,
                   message="the site's OEE")
    assert oee
    tiles = browser.find_elements(By.CSS_SELECTOR, ".machine-tile")
    assert len(tiles) >= 16
    wait_for(lambda: len(browser.find_elements(By.CSS_SELECTOR, ".tile-oee-value")) >= 16, 30,
             message="every tile's OEE")
    wait_for(lambda: any("state-running" in t.get_attribute("class")
                         for t in browser.find_elements(By.CSS_SELECTOR, ".machine-tile")), message="live states")
    groups = [g.text for g in browser.find_elements(By.CSS_SELECTOR, ".group-title")]
    assert groups == ["Bottling", "Canning", "End of Line", "Processing"]
    assert "Lowest OEE" in browser.find_element(By.ID, "overview-worst-strip").text  # listed, or collecting

    screenshot(browser, "overview")

    # The site's OEE equals the API's for the same range (one that has ended, so both read the same data).
    wait_for_whole_minute_after(demo_app.started)
    start, end = past_range()

    def page():
        browser.get(base + f"/?range=custom&start={start}&end={end}")
        wait_for(lambda: browser.find_element(By.ID, "overview-kpi-oee").text.endswith("%"), 30, message="OEE")
        caption = browser.find_element(By.ID, "overview-range-caption")
        page.range = caption.get_attribute("data-start"), caption.get_attribute("data-end")
        kpi = browser.find_element(By.ID, "overview-kpi-oee")
        # Each line's OEE beside its name, once the tiles' numbers are in (the same callback draws both).
        wait_for(lambda: len(browser.find_elements(By.CSS_SELECTOR, ".tile-oee-value")) >= 16, 30, message="tiles")
        page.lines = {e.get_attribute("data-line"): e.text
                      for e in browser.find_elements(By.CSS_SELECTOR, ".group-oee") if e.text}
        assert len(page.lines) >= 10, page.lines  # the demo's lines
        return kpi.get_attribute("data-value"), kpi.text, page.lines

    def api():
        a, b = page.range
        site = json.loads(demo_app.get(f"/api/oee/?site=Riverside%20Beverages&start={a}&end={b}")[1])
        lines = {}
        for line_id in page.lines:
            line = json.loads(demo_app.get(f"/api/oee/?line={line_id}&start={a}&end={b}")[1])
            lines[line_id] = f"OEE {pct(line['oee'])}"  # the page's own formatting ('—' for no planned time)
        return repr(site["oee"]), f"{site['oee'] * 100:.1f} %", lines

    shown, expected = same_as_api(page, api)
    assert shown == expected

    # Drill down: a tile opens its machine.
    click(browser, browser.find_element(By.CSS_SELECTOR, "a.tile-link[href$='/machine/LINE-005']"))
    wait_text(browser, "#machine-title-id", "LINE-005")
    assert browser.current_url.endswith("/machine/LINE-005")
    assert console_errors(browser) == []
