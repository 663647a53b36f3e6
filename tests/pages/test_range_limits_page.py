"""Ranges the app does not answer, asked of the pages in real headless Chromium with the demo plant: the page
shows the nearest range it answers and says why, at once, and nothing fails in the browser."""
from __future__ import annotations

import time

from tests.pages.conftest import console_errors, wait_for
from tests.support.browser import By


def test_a_machine_page_in_the_year_3000_shows_why_at_once(demo_app, browser):
    """Regression: the page's callbacks took the URL's range to the OEE engine, which listed every shift from now
    to the year 3000 (the API's 18.7 s and +750 MB, once per callback)."""
    console_errors(browser)
    started = time.monotonic()
    browser.get(f"http://127.0.0.1:{demo_app.port}/machine/LINE-001?range=custom&start=3000-01-01T00:00"
                "&end=3000-01-01T01:00")
    wait_for(lambda: "more than a day after now" in browser.find_element(By.TAG_NAME, "body").text, 30,
             message="the page's note on the range")
    wait_for(lambda: browser.find_element(By.ID, "machine-kpi-oee").text.endswith("%"), 30, message="OEE")
    assert time.monotonic() - started < 30
    assert console_errors(browser) == []


def test_the_report_of_a_day_the_app_cannot_hold_asks_for_another(demo_app, browser):
    console_errors(browser)
    browser.get(f"http://127.0.0.1:{demo_app.port}/reports/?date=9999-12-31")
    wait_for(lambda: browser.find_element(By.ID, "report-bad-date").text, 30, message="the date's warning")
    assert "from 1970 to today" in browser.find_element(By.ID, "report-bad-date").text
    assert console_errors(browser) == []
