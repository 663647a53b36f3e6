"""The page at / in real headless Chromium: it answers from the first start, with and without navigation."""
from __future__ import annotations

import pytest

from tests.support.browser import By, make_browser, wait_text
from tests.test_app import RunningApp


@pytest.fixture(scope="module")
def browser():
    b = make_browser()
    yield b
    b.quit()


def test_overview_renders_on_a_fresh_database(tmp_path, browser):
    app = RunningApp(tmp_path, "--no-demo")
    try:
        app.wait_healthy()
        browser.get(f"http://127.0.0.1:{app.port}/")
        wait_text(browser, "h2", "Plant overview")
        wait_text(browser, "#overview-backend", "sqlite (schema 0001)")
        assert "No machines configured yet" in browser.find_element(By.ID, "overview-empty").text
        assert browser.find_element(By.ID, "shell-nav").is_displayed()

        browser.get(f"http://127.0.0.1:{app.port}/?embed=1")  # Grafana iframes and kiosks: no navigation
        wait_text(browser, "h2", "Plant overview")
        assert not browser.find_element(By.ID, "shell-nav").is_displayed()
    finally:
        app.stop()
