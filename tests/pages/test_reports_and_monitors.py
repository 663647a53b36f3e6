"""/reports/, /plc-monitor/ and /dataflow-monitor/ in real headless Chromium with the demo plant."""
from __future__ import annotations

import base64
import json
import re
from urllib.parse import parse_qs, urlparse

from selenium.webdriver.common.print_page_options import PrintOptions

from tests.pages.conftest import console_errors, screenshot, wait_for
from tests.support.browser import By, wait_text


def test_shift_report_prints_on_one_page_and_matches_the_api(demo_app, browser):
    base = f"http://127.0.0.1:{demo_app.port}"
    console_errors(browser)
    browser.get(base + "/")
    link = wait_for(lambda: browser.find_element(
        By.XPATH, "//h6[contains(@class,'line-title')]/a[text()='Bottling 1']"), 30, message="the line")
    line_id = link.get_attribute("href").rstrip("/").rsplit("/", 1)[1]
    browser.get(base + f"/reports/?line={line_id}")
    wait_text(browser, "#report-title", "Shift report · Bottling 1", 30)
    query = {k: v[0] for k, v in parse_qs(urlparse(browser.current_url).query).items()}
    assert query["line"] == line_id and re.fullmatch(r"\d{4}-\d\d-\d\d", query["date"]) and query["shift"]
    assert browser.find_element(By.ID, "report-kpi-oee").text.endswith("%")
    assert "LINE-001" in browser.find_element(By.ID, "report-machines").text

    options = PrintOptions()
    options.page_width, options.page_height = 21.0, 29.7  # A4
    pdf = base64.b64decode(browser.print_page(options))
    pages = len(re.findall(rb"/Type\s*/Page(?![s\w])", pdf))
    assert pages == 1, f"the shift report printed on {pages} pages"
    screenshot(browser, "report")

    # A bookmarked report opens the same report.
    browser.get(browser.current_url)
    wait_text(browser, "#report-title", "Bottling 1", 30)
    assert console_errors(browser) == []


def test_plc_monitor_shows_value_quality_and_age_of_every_tag_and_filters(demo_app, browser):
    browser.get(f"http://127.0.0.1:{demo_app.port}/plc-monitor/")
    count = wait_for(lambda: browser.find_element(By.ID, "plc-count").text, 30, message="the tag count")
    wait_text(browser, "#plc-live-0-status", "live", 30)  # values over /ws/plc/ (tests/live/test_pages.py: more)
    total = int(count.split()[0].replace(",", ""))
    assert total > 16 * 30  # every tag of every demo machine
    first = browser.find_element(By.CSS_SELECTOR, "#plc-rows tbody tr").find_elements(By.TAG_NAME, "td")
    assert first[0].text.startswith("LINE-") and first[6].text == "good" and first[7].text.endswith(" s")
    box = browser.find_element(By.ID, "plc-filter")
    box.send_keys("LINE-013 counter.good")
    wait_for(lambda: len(browser.find_elements(By.CSS_SELECTOR, "#plc-rows tbody tr")) == 1, 20,
             message="one tag left")
    row = browser.find_element(By.CSS_SELECTOR, "#plc-rows tbody tr").find_elements(By.TAG_NAME, "td")
    assert (row[0].text, row[4].text) == ("LINE-013", "counter.good") and row[5].text.isdigit()
    wait_for(lambda: "q=LINE-013" in browser.current_url, message="the filter in the URL")
    screenshot(browser, "plc-monitor")
    browser.get(browser.current_url)  # a bookmarked filter
    wait_for(lambda: len(browser.find_elements(By.CSS_SELECTOR, "#plc-rows tbody tr")) == 1, 20,
             message="the bookmarked filter")


def test_dataflow_monitor_shows_connections_writer_and_database(demo_app, browser):
    browser.get(f"http://127.0.0.1:{demo_app.port}/dataflow-monitor/")
    wait_text(browser, "#dataflow-backend", "sqlite", 30)
    health = json.loads(demo_app.get("/healthz")[1])
    rows = wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "#dataflow-table tbody tr"), 20,
                    message="connections")
    assert len(rows) == len(health["connections"]) == 16
    assert {r.find_elements(By.TAG_NAME, "td")[1].text for r in rows} == {"ETHERNET_IP", "OPCUA", "S7", "MODBUS",
                                                                          "SPARKPLUG_B"}
    assert browser.find_element(By.ID, "dataflow-drops").text == "0"
    assert int(browser.find_element(By.ID, "dataflow-written").text.replace(",", "")) > 0
    # the collectors, the writer and their numbers are those of the child process `python app.py` started
    child = health["collector_process"]
    assert child["running"] and child["reporting"] and health["writer"]["written_rows"] > 0
    assert browser.find_element(By.ID, "dataflow-collector-process").text == f"Collectors: process {child['pid']}"
    # TimescaleDB's jobs as the writer read them (none on SQLite), and no problem while everything works
    wait_text(browser, "#dataflow-jobs", "no TimescaleDB jobs (SQLite)", 90)
    assert health["problems"] == [] and not browser.find_elements(By.ID, "dataflow-problems")
    screenshot(browser, "dataflow-monitor")
    assert console_errors(browser) == []
