"""The pages' "CSV" links in real headless Chromium: each carries the page's range, scope and filters, and the file
it links to holds what the page shows."""
from __future__ import annotations

import io
import time
import urllib.request

import pandas as pd
import pytest

from processes.runtime import Runtime
from processes.settings import Settings
from tests.export.conftest import T0, H, seed
from tests.support.browser import By, make_browser
from tests.test_app import RunningApp

RANGE = f"range=custom&start={T0!r}&end={T0 + 8 * H!r}"


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    folder = tmp_path_factory.mktemp("downloads")
    url = f"sqlite:///{folder / 'oee.sqlite3'}"
    runtime = Runtime(Settings(database_url=url, data_dir=folder, demo=False, role="web")).start()
    seed(runtime.store)
    runtime.stop()
    running = RunningApp(folder, "--no-demo", "--role", "web", "--database-url", url)
    running.wait_healthy()
    browser = make_browser()
    yield running, browser
    browser.quit()
    running.stop()


def link(browser, text: str, must_contain: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for a in browser.find_elements(By.PARTIAL_LINK_TEXT, text):
            href = a.get_attribute("href") or ""
            if must_contain in href:
                assert a.get_attribute("download") is not None
                return href
        time.sleep(0.25)
    raise AssertionError(f"no {text!r} link with {must_contain!r}")


def fetch(href: str) -> pd.DataFrame:
    with urllib.request.urlopen(href, timeout=30) as resp:
        assert resp.status == 200 and resp.headers["Content-Type"] == "text/csv; charset=utf-8"
        return pd.read_csv(io.BytesIO(resp.read()), encoding="utf-8-sig")


def test_machine_page_links_its_oee_by_bucket(app):
    running, browser = app
    browser.get(f"http://127.0.0.1:{running.port}/machine/M1?{RANGE}&bucket=hour")
    href = link(browser, "CSV", "/export/oee.csv?machine=M1")
    assert "bucket=hour" in href and f"start={T0!r}" in href
    df = fetch(href)
    assert len(df) == 8 and set(df["key"]) == {"M1"}


def test_downtime_page_links_its_filtered_stops(app):
    running, browser = app
    browser.get(f"http://127.0.0.1:{running.port}/downtime/?{RANGE}&category=equipment_failure")
    href = link(browser, "Download CSV", "category=equipment_failure")
    df = fetch(href)
    assert list(df["state"]) == ["faulted", "faulted"] and set(df["machine"]) == {"M1"}
    rows = browser.find_elements(By.CSS_SELECTOR, "#downtime-rows tbody tr")
    assert len(rows) == len(df)


def test_shift_report_page_links_its_shift(app):
    running, browser = app
    browser.get(f"http://127.0.0.1:{running.port}/reports/?date=2026-09-21&shift=Swing&line=1")
    href = link(browser, "CSV by machine", "/export/shift-report.csv?line=1")
    df = fetch(href)
    assert list(df["shift"]) == ["2026-09-21 Swing"] * 3 and list(df["machine"].fillna("")) == ["M1", "M2", ""]
    assert len(fetch(link(browser, "CSV by hour", "bucket=hour"))) >= 3
