"""The shop-floor screens in real headless Chromium with the demo plant (its machines on real protocol servers):
an operator gives a stop a reason on /operator/<machine> and the machine page's loss breakdown moves at once;
rejects counted there are stored and audited; an operator can do nothing beyond these; the Pareto's bars open the
stops behind them. (The andon board following a fault: tests/pages/test_andon_live.py.)"""
from __future__ import annotations

import json
import time
from types import SimpleNamespace

import pytest
from sqlalchemy import text

from tests.pages.conftest import click, console_errors, running_demo_app, screenshot, wait_for
from tests.support.auth import SessionClient, browser_login, browser_logout
from tests.support.browser import By


def _store(app):
    return SimpleNamespace(engine=app.engine(), backend_name="sqlite")


@pytest.fixture(scope="module")
def demo_app(tmp_path_factory):
    """A demo plant of this module's own: in the shared one, earlier modules' tests have given reasons to stops and
    changed counts, and the terminal's stop and reason buttons are then not the fresh ones these tests expect."""
    yield from running_demo_app(tmp_path_factory)


def waterfall(browser) -> dict:
    """The machine page's loss breakdown: {step label: value} from the drawn waterfall."""
    sel = "[id*='\"subcomponent\":\"waterfall\"'][id*='\"aio_id\":\"machine\"'] .js-plotly-plot"
    return browser.execute_script(
        "const g = document.querySelector(arguments[0]);"
        "if (!g || !g.data || !g.data.length) return null;"
        "const d = g.data[0], h = d.orientation === 'h';"  # horizontal: names on y, amounts on x
        "const names = h ? d.y : d.x, amounts = h ? d.x : d.y;"
        "const out = {}; names.forEach((x, i) => out[x] = amounts[i]); return out;", sel)


def machine_asking(app) -> tuple[str, dict]:
    """A demo machine whose terminal asks about a stop (going on or just ended, unplanned, no reason yet)."""
    from db import floor_queries

    def find():
        for mid in [f"LINE-{i:03d}" for i in range(1, 17)]:
            stop = floor_queries.current_stop(_store(app), mid)
            if stop is not None and stop["source"] != "operator" and time.time() - stop["start"] > 20:
                return mid, stop
        return None
    return wait_for(find, 240, interval=3, message="a demo machine with a stop that asks for a reason")


def test_a_reason_given_on_the_terminal_moves_the_machine_pages_loss_at_once(demo_app, browser):
    base = demo_app.base
    browser_login(browser, base, demo_app.user("operator"))
    try:
        console_errors(browser)
        machine, stop = machine_asking(demo_app)
        window_end = int(time.time()) - 5  # a range that has ended: only the reason can change its numbers
        page = f"{base}/machine/{machine}?range=custom&start={stop['start'] - 60:.0f}&end={window_end}"
        browser.get(page)
        before = wait_for(lambda: waterfall(browser), 60, message="the loss breakdown")
        browser.get(f"{base}/operator/{machine}")
        shown = wait_for(lambda: browser.find_element(By.ID, "op-stop-open"), 30, message="the stop")
        assert abs(float(shown.get_attribute("data-start")) - stop["start"]) < 0.01
        def reason_button():
            return wait_for(lambda: next(b for b in browser.find_elements(By.CSS_SELECTOR, "[id*='op-reason']")
                                         if b.text.startswith("Planned maintenance")), 20, message="the reason")

        assert reason_button().size["height"] >= 60  # touch-first: a finger's worth
        browser.find_element(By.ID, "op-note").send_keys("filler cleaned after a spill")
        for attempt in range(3):  # the buttons are drawn anew when the stop's facts change: a click on the old
            click(browser, reason_button())  # set goes nowhere, so the saved reason is what the test waits for
            try:
                wait_for(lambda: "Planned maintenance" in browser.find_element(By.ID, "op-reason-saved").text, 10,
                         message="the reason saved")
                break
            except AssertionError:
                if attempt == 2:
                    raise
        wait_for(lambda: browser.find_element(By.ID, "op-stop-reason").text == "Planned maintenance", 20,
                 message="the terminal showing the reason")
        screenshot(browser, "operator-terminal")
        browser.get(page)
        after = wait_for(lambda: waterfall(browser), 60, message="the loss breakdown again")
        # The waterfall draws losses as drops (negative): the planned maintenance drop grows.
        moved = abs(after.get("Planned maintenance") or 0) - abs(before.get("Planned maintenance") or 0)
        print(f"\n{machine}: planned maintenance {before.get('Planned maintenance')} -> "
              f"{after.get('Planned maintenance')} (waterfall units)")
        assert moved > 0
        assert console_errors(browser) == []
    finally:
        browser_logout(browser, base)


def test_rejects_counted_on_the_terminal_are_stored_and_audited(demo_app, browser):
    base = demo_app.base
    browser_login(browser, base, demo_app.user("operator"))
    try:
        machine = "LINE-002"
        browser.get(f"{base}/operator/{machine}")
        wait_for(lambda: browser.find_element(By.ID, "op-reject-count"), 30, message="the terminal")
        field = browser.find_element(By.ID, "op-reject-count")
        field.clear()
        field.send_keys("3")
        click(browser, browser.find_element(By.ID, "op-reject-more"))  # 4
        click(browser, browser.find_element(By.ID, "op-reject-save"))
        wait_for(lambda: "4 rejects counted" in browser.find_element(By.ID, "op-reject-saved").text, 20,
                 message="the rejects saved")
        with demo_app.engine().connect() as conn:
            entry = conn.execute(text("SELECT actor, after FROM audit_log WHERE action = 'quality.manual_reject' "
                                      "ORDER BY id DESC LIMIT 1")).one()
        assert entry[0] == demo_app.user("operator")
        assert json.loads(entry[1])["rejects"] == 4
        # The order the PLC reports: its id and progress (OrderId, OrderQuantity, OrderGood on the demo's PLCs).
        order_id, counts = wait_for(lambda: browser.execute_script(  # one look: the order is drawn every tick
            "const i = document.getElementById('op-order-id'), c = document.getElementById('op-order-counts');"
            " return i && c ? [i.textContent, c.textContent] : null;"), 20, message="the order")
        assert order_id.startswith("ORD") and " of " in counts, (order_id, counts)
    finally:
        browser_logout(browser, base)


def test_an_operator_can_do_nothing_else_and_a_viewer_cannot_use_the_terminal(demo_app):
    operator = SessionClient(demo_app.base, demo_app.user("operator"))
    for method, path in (("GET", "/settings/"), ("GET", "/machine-config/"), ("GET", "/api/config/lines/"),
                         ("POST", "/api/auth/embed-links/"), ("GET", "/api/audit/")):
        status, _ = operator.call(method, path, {} if method == "POST" else None)
        assert status == 403, (method, path, status)
    viewer = SessionClient(demo_app.base, demo_app.user("viewer"))
    status, _ = viewer.call("GET", "/operator/LINE-001", headers={"Accept": "application/json"})
    assert status == 403
    body = {"output": "op-reject-message.children", "outputs": {"id": "op-reject-message", "property": "children"},
            "inputs": [{"id": "op-reject-save", "property": "n_clicks", "value": 1}], "changedPropIds": []}
    status, _ = viewer.call("POST", "/_dash-update-component", body)
    assert status == 403
    status, _ = operator.call("POST", "/_dash-update-component", {**body, "outputs": {
        "id": "sr-table", "property": "children"}, "output": "sr-table.children"})  # an engineer's callback
    assert status == 403


def test_the_pareto_bars_open_the_stops_behind_them(demo_app, browser):
    base = demo_app.base
    browser.get(f"{base}/downtime/?range=hour")
    sel = "#loss-pareto-downtime .js-plotly-plot"
    wait_for(lambda: browser.execute_script(
        "const g = document.querySelector(arguments[0]); return g && g.data && g.data.length === 2 &&"
        " g.data[0].x.length > 0;", sel), 240, interval=2, message="the downtime Pareto's bars")
    labels = browser.execute_script("return document.querySelector(arguments[0]).data[0].x", sel)
    unit = browser.execute_script("return document.querySelector(arguments[0]).layout.yaxis.title.text", sel)
    assert unit in ("s", "min", "h")
    from selenium.webdriver.common.action_chains import ActionChains

    bar = browser.find_elements(By.CSS_SELECTOR, f"{sel} .barlayer .point path")[0]
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", bar)
    ActionChains(browser).move_to_element(bar).click().perform()  # Plotly takes clicks on its drag layer
    detail = wait_for(lambda: browser.find_element(By.CSS_SELECTOR, "#loss-pareto-downtime .loss-pareto-detail"),
                      20, message="the stops behind the bar")
    assert detail.find_element(By.TAG_NAME, "h5").text.startswith(labels[0])
    rows = detail.find_elements(By.CSS_SELECTOR, "table tbody tr")
    assert rows and all(r.find_elements(By.TAG_NAME, "a") for r in rows)  # each stop links its machine
    screenshot(browser, "downtime-pareto")
    browser.get(f"{base}/?range=hour")
    wait_for(lambda: browser.execute_script(
        "const g = document.querySelector('#loss-pareto-overview .js-plotly-plot'); return g && g.data &&"
        " g.data[0].x && g.data[0].x.length > 0;"), 60, interval=1, message="the overview's six losses")
    shown = browser.execute_script("return document.querySelector('#loss-pareto-overview .js-plotly-plot').data[0].x")
    from db.loss_pareto import SIX
    from oee.vocabulary import LABELS

    assert set(shown) <= {LABELS[c] for c in SIX}  # the six losses by category, as the overview opens it
