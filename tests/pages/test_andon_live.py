"""/andon/ follows a fault live, in real headless Chromium: a machine on a real protocol server (the third-party
PLC of tests/support/third_party_plc.py over Modbus TCP on 127.0.0.1: run 20 s, then fault 42 for 10 s, every
30 s) goes faulted, and its tile turns to faulted with the fault's text from the machine's fault table, within
seconds, without a reload; then it runs again. The board's embed link shows that line's board without a login,
and nothing else."""
from __future__ import annotations

import json
import time

import pytest

from tests.config.conftest import Client
from tests.pages.conftest import console_errors, screenshot, wait_for
from tests.support.browser import By
from tests.support.third_party_plc import Schedule, ThirdPartyPlc
from tests.test_app import RunningApp

OWN_SETTINGS = {"state_code_map": {"1": "running", "3": "faulted", "7": "changeover"},
                "micro_stop_threshold_s": 5, "fault_codes": [{"code": 42, "text": "Filler jam", "kind": "fault"}]}
MACHINE = "ANDON-1"


@pytest.fixture(scope="module")
def plant(tmp_path_factory):
    app = RunningApp(tmp_path_factory.mktemp("andon"), "--no-demo")
    plc = None
    try:
        app.wait_healthy()
        api = Client(app.port, app.token("engineer"))
        _, site = api.post("/api/config/sites/", {"name": "Andon site"})
        _, area = api.post("/api/config/areas/", {"name": "Hall 1", "site": site["id"]})
        status, line = api.post("/api/config/lines/", {"name": "Filling 1", "area": area["id"]})
        assert status == 201, line
        plc = ThirdPartyPlc(Schedule(time.time() + 86400)).start()  # in changeover until the schedule starts
        status, created = api.post("/api/plc/machines/", plc.machine_body("MODBUS", MACHINE, line=line["id"],
                                                                          **OWN_SETTINGS))
        assert status == 201, created
        wait_for(lambda: api.get(f"/api/plc/machines/{MACHINE}/")[1].get("state") == "changeover", 60,
                 message="the machine reporting")
        yield app, plc, line, api
    finally:
        if plc is not None:
            plc.stop()
        app.stop()


def tiles(browser) -> dict:
    """{machine: (state, why, label)} in one look: the tiles are drawn again as the socket brings news."""
    return {json.loads(i)["machine"]: (state, why, label) for i, state, why, label in browser.execute_script(
        "return Array.from(document.querySelectorAll('.andon-tile')).map(t => [t.id, t.dataset.state,"
        " t.querySelector('.andon-why').textContent, t.querySelector('.andon-state').textContent]);")}


def test_the_board_follows_a_fault_live_without_a_reload(plant, browser):
    app, plc, line, _api = plant
    console_errors(browser)
    browser.get(f"{app.base}/andon/?line={line['id']}")
    wait_for(lambda: tiles(browser).get(MACHINE, ("",))[0] == "changeover", 30, message="the tile in changeover")
    wait_for(lambda: browser.find_element(By.ID, "andon-live-status").text == "live", 30, message="the socket")
    browser.execute_script("window.sameAndonPage = true;")
    plc.schedule = Schedule(time.time() + 2)  # runs 20 s from now, then fault 42 for 10 s
    wait_for(lambda: tiles(browser)[MACHINE][0] == "running", 30, message="the tile running")
    fault_at = plc.schedule.t0 + plc.schedule.run_s
    state, why, label = wait_for(lambda: (lambda t: t if t[0] == "faulted" else None)(tiles(browser)[MACHINE]),
                                 40, interval=0.2, message="the tile faulted")
    lag = time.time() - fault_at
    print(f"\nthe tile turned faulted {lag:.1f} s after the PLC's fault: {label} · {why}")
    assert why == "Fault 42 Filler jam" and label == "Faulted"
    assert lag < 5
    # Good parts of the day (no calendar) against plan (planned time over the PLC's ideal cycle time of 0.1 s).
    def counted():
        text = browser.execute_script("const t = document.querySelector('.andon-tile .andon-count');"
                                      " return t ? t.textContent : '';")
        if "/" not in text:
            return None
        good, plan = (float(x.replace(",", "")) for x in text.split("/"))
        return (good, plan) if good > 0 else None
    good, plan = wait_for(counted, 40, message="good parts against plan")
    print(f"count against plan: {good:.0f} / {plan:.0f}")
    assert good <= plan
    screenshot(browser, "andon-faulted")
    wait_for(lambda: tiles(browser)[MACHINE][0] == "running", 30, message="the tile running again")
    assert browser.execute_script("return window.sameAndonPage === true")  # the same page all along: no reload
    assert console_errors(browser) == []


def test_the_boards_embed_link_shows_its_line_and_nothing_else(plant, browser):
    app, _plc, line, api = plant
    status, made = api.post("/api/auth/embed-links/", {"page": "andon", "key": str(line["id"]),
                                                        "expires_in_days": 1})
    assert status == 201, made
    assert made["url"].startswith(f"/andon/?line={line['id']}&embed=1&embed_token=")
    browser.delete_all_cookies()
    browser.get(app.base + made["url"])
    wait_for(lambda: MACHINE in tiles(browser), 30, message="the board through its embed link")
    wait_for(lambda: browser.find_element(By.ID, "andon-live-status").text == "live", 30, message="the socket")
    assert not browser.find_element(By.ID, "shell-nav").is_displayed()
    token = made["url"].split("embed_token=")[1]
    for other in ("/andon/", f"/andon/?line={line['id']}&site=Andon%20site", f"/line/{line['id']}",
                  "/operator/ANDON-1"):
        status, _ = Client(app.port).get(other + ("&" if "?" in other else "?") + f"embed_token={token}")
        assert status == 403, other


def test_an_operator_acknowledges_the_fault_on_the_terminal(plant, browser):
    from tests.support.auth import browser_login, browser_logout

    app, plc, _line, _api = plant
    if plc.schedule.t0 > time.time():  # the schedule of the first test, when run alone
        plc.schedule = Schedule(time.time())
    browser_login(browser, app.base, app.user("operator"))
    try:
        browser.get(f"{app.base}/operator/{MACHINE}")
        button = wait_for(lambda: browser.find_element(By.CSS_SELECTOR, "[id*='op-fault-ack']"), 60,
                          message="a fault to acknowledge")
        fault_id = json.loads(button.get_attribute("id"))["index"]
        button.click()
        from sqlalchemy import text

        def acknowledged_by():
            with app.engine().connect() as conn:
                return conn.execute(text("SELECT acknowledged_by FROM faults WHERE id = :i"), {"i": fault_id}).scalar()
        assert wait_for(acknowledged_by, 20, message="the acknowledgement stored") == app.user("operator")

        def shown():  # a fault going on shows who acknowledged it; an ended one acknowledged leaves the list
            row = browser.find_elements(By.CSS_SELECTOR, f"#op-faults [data-fault='{fault_id}']")
            return not row or f"acknowledged by {app.user('operator')}" in row[0].text
        wait_for(shown, 20, message="the terminal showing the acknowledgement")
    finally:
        browser_logout(browser, app.base)


def test_a_board_of_a_line_that_does_not_exist_says_so(plant, browser):
    app, _plc, _line, _api = plant
    browser.get(f"{app.base}/andon/?line=99999")
    text = wait_for(lambda: browser.find_element(By.ID, "andon-missing").text, 30, message="the message")
    assert "There is no line '99999'" in text
