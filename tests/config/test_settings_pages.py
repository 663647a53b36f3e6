"""The settings pages in real headless Chromium: hierarchy, products, shift calendars, reason codes, and the
configuration file; each refuses bad input naming the field, and a delete says what goes with it first."""
from __future__ import annotations

import pytest
from selenium.webdriver.support.ui import Select

from tests.config.test_wizard import click, fill
from tests.support.auth import browser_login
from tests.support.browser import By, make_browser, wait_text


@pytest.fixture(scope="module")
def browser(app):
    b = make_browser(1400, 1200)
    browser_login(b, app.base, app.user("engineer"))  # the settings pages are for engineers
    yield b
    b.quit()


def open_page(browser, app, path: str, heading: str) -> None:
    browser.get(f"http://127.0.0.1:{app.port}{path}")
    wait_text(browser, "h2", heading)


def choose_label(browser, element_id: str, label: str) -> None:
    from tests.config.conftest import wait_for

    wait_for(lambda: any(o.text == label for o in Select(browser.find_element(By.ID, element_id)).options))
    Select(browser.find_element(By.ID, element_id)).select_by_visible_text(label)


def test_hierarchy(browser, app):
    open_page(browser, app, "/settings/hierarchy/", "Hierarchy")
    fill(browser, "sh-site-name", "Riverside")
    fill(browser, "sh-site-timezone", "Mars/Base")
    click(browser, "#sh-site-save")
    wait_text(browser, "#sh-site-timezone-fb", "IANA name")
    fill(browser, "sh-site-timezone", "America/Chicago")
    click(browser, "#sh-site-save")
    wait_text(browser, "#sh-site-list", "America/Chicago")
    fill(browser, "sh-area-name", "Packing")
    choose_label(browser, "sh-area-site", "Riverside")
    click(browser, "#sh-area-save")
    wait_text(browser, "#sh-area-list", "Packing")
    fill(browser, "sh-line-name", "Line 1")
    choose_label(browser, "sh-line-area", "Riverside / Packing")
    click(browser, "#sh-line-save")
    wait_text(browser, "#sh-line-list", "Riverside/Packing/Line 1")
    status, lines = app.client.get("/api/config/lines/")
    assert [ln["path"] for ln in lines["results"]] == ["Riverside/Packing/Line 1"]

    click(browser, "#sh-site-list button.btn-outline-danger")
    wait_text(browser, "#sh-site-impact", "1 areas, 1 lines")
    click(browser, "#sh-site-delete-confirm")
    wait_text(browser, "#sh-line-empty", "None yet")
    assert app.client.get("/api/config/sites/")[1]["count"] == 0


def test_a_lines_calendar_and_a_sites_micro_stop_threshold(browser, app):
    """What machines inherit is set on the hierarchy page; a machine on the line then reads it as in effect."""
    api = app.client
    assert api.post("/api/config/calendars/", {"name": "Page shifts", "timezone": "UTC", "shifts": [
        {"name": "A", "start": "06:00", "end": "14:00"}]})[0] == 201
    open_page(browser, app, "/settings/hierarchy/", "Hierarchy")
    fill(browser, "sh-site-name", "Hillside")
    fill(browser, "sh-site-micro_stop_threshold_s", -3)
    click(browser, "#sh-site-save")
    wait_text(browser, "#sh-site-micro_stop_threshold_s-fb", "from 0 to 86400")
    fill(browser, "sh-site-micro_stop_threshold_s", 75)
    click(browser, "#sh-site-save")
    wait_text(browser, "#sh-site-list", "75 s")
    fill(browser, "sh-area-name", "Filling")
    choose_label(browser, "sh-area-site", "Hillside")
    click(browser, "#sh-area-save")
    wait_text(browser, "#sh-area-list", "Filling")
    fill(browser, "sh-line-name", "Line 2")
    choose_label(browser, "sh-line-area", "Hillside / Filling")
    choose_label(browser, "sh-line-calendar", "Page shifts")
    click(browser, "#sh-line-save")
    wait_text(browser, "#sh-line-list", "Page shifts")
    line = next(ln for ln in api.get("/api/config/lines/")[1]["results"] if ln["name"] == "Line 2")
    assert line["calendar"] == "Page shifts"
    status, m = api.post("/api/plc/machines/", {"name": "Inherits", "machine_id": "PAGE-INHERIT", "protocol": "S7",
                                                "ip_address": "127.0.0.1", "enabled": False, "line": line["id"]})
    assert status == 201
    assert m["effective_calendar"]["text"] == "Page shifts (the line's)"
    assert m["effective_micro_stop_threshold_s"] == {"value": 75, "from": "site"}
    api.delete("/api/plc/machines/PAGE-INHERIT/")
    site = next(x for x in api.get("/api/config/sites/")[1]["results"] if x["name"] == "Hillside")
    api.delete(f"/api/config/sites/{site['id']}/")
    cal = next(c for c in api.get("/api/config/calendars/")[1]["results"] if c["name"] == "Page shifts")
    api.delete(f"/api/config/calendars/{cal['id']}/")


def test_products_and_reasons(browser, app):
    open_page(browser, app, "/settings/products/", "Products")
    fill(browser, "sp-product-code", "1001")
    fill(browser, "sp-product-name", "Cola 0.5 l")
    fill(browser, "sp-product-ideal_cycle_time_s", "0")
    click(browser, "#sp-product-save")
    wait_text(browser, "#sp-product-ideal_cycle_time_s-fb", "above 0")
    fill(browser, "sp-product-ideal_cycle_time_s", "1.2")
    click(browser, "#sp-product-save")
    wait_text(browser, "#sp-product-list", "1.2 s")
    click(browser, "#sp-product-list button.btn-outline-secondary")  # edit
    wait_text(browser, "#sp-product-form-title", "Edit Cola")
    fill(browser, "sp-product-ideal_cycle_time_s", "1.5")
    click(browser, "#sp-product-save")
    wait_text(browser, "#sp-product-list", "1.5 s")

    open_page(browser, app, "/settings/reasons/", "Reason codes")
    fill(browser, "sr-reason-code", "PM")
    fill(browser, "sr-reason-name", "Preventive maintenance")
    click(browser, "label[for='sr-reason-planned']")
    choose_label(browser, "sr-reason-loss_category", "loss: equipment failure")
    click(browser, "#sr-reason-save")
    wait_text(browser, "#sr-reason-loss_category-fb", "is a loss category but planned is true")
    choose_label(browser, "sr-reason-loss_category", "planned: planned maintenance")
    click(browser, "#sr-reason-save")
    wait_text(browser, "#sr-reason-list", "planned maintenance")
    reasons = app.client.get("/api/config/reasons/")[1]["results"]
    assert reasons[0]["planned"] is True and reasons[0]["loss_category"] == "planned_maintenance"


def test_shift_calendars(browser, app):
    open_page(browser, app, "/settings/calendars/", "Shift calendars")
    fill(browser, "sc-calendar-name", "Two shifts")
    fill(browser, "sc-calendar-timezone", "Europe/Berlin")
    fill(browser, "sc-calendar-shifts", "Early, 06:00-14:00, 01234, Lunch 13:50+30")
    click(browser, "#sc-calendar-save")
    wait_text(browser, "#sc-calendar-invalid", "does not fit in the shift")
    fill(browser, "sc-calendar-shifts", "Early, 06:00-14:00, 01234, Lunch 10:00+30\nNight, 22:00-06:00, 0123")
    click(browser, "#sc-calendar-save")
    wait_text(browser, "#sc-calendar-list", "Night, 22:00-06:00, 0123")
    cal = next(c for c in app.client.get("/api/config/calendars/")[1]["results"] if c["name"] == "Two shifts")
    assert cal["shifts"][0]["breaks"] == [{"name": "Lunch", "start": "10:00", "duration_s": 1800}]


def test_configuration_file_import_checks_first(browser, app):
    open_page(browser, app, "/settings/", "Settings")
    fill(browser, "st-yaml", "products:\n- {code: X1, ideal_cycle_time_s: -2}\nmachines:\n- {machine_id: 'a b'}\n")
    click(browser, "#st-check")
    wait_text(browser, "#st-invalid", "products[0].ideal_cycle_time_s")
    assert "machines[0].machine_id" in browser.find_element(By.ID, "st-invalid").text
    fill(browser, "st-yaml", "sites:\n- name: Hillside\n  timezone: UTC\n  areas: [{name: Press, lines: [P1, P2]}]\n"
                             "products:\n- {code: X1, name: Bracket, ideal_cycle_time_s: 4}\n")
    click(browser, "#st-check")
    wait_text(browser, "#st-valid", "The file is valid")
    assert app.client.get("/api/config/products/?page_size=500")[1]["results"] == [] or all(
        p["code"] != "X1" for p in app.client.get("/api/config/products/?page_size=500")[1]["results"])
    click(browser, "#st-import")
    wait_text(browser, "#st-imported", "lines 2 new")
    assert any(p["code"] == "X1" for p in app.client.get("/api/config/products/?page_size=500")[1]["results"])
    click(browser, "#st-export")  # the download is built without an error
    wait_text(browser, "#st-counts", "lines")
