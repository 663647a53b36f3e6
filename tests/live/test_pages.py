"""The app's live pages in real headless Chromium, against `python app.py` with the demo plant.

The browser reaches the app through a TCP proxy (tests/support/proxy.py) that can drop every connection and refuse
new ones, as a server that goes away does; the pages must show it and come back by themselves.

- /plc-monitor/: the values move with the plant as the WebSocket brings them, with no Dash callback request
  (Resource Timing counts /_dash-update-component requests), and they are values the server really sent (a
  WebSocket client of the test's own reads the same stream); ages tick in the browser.
- /machine/<id>: the live graph keeps gaining points while the user's zoom (a fixed x range) stays.
- Both: after the proxy dropped every connection the socket is shown broken, reconnects by itself, and the values
  move again.
"""
from __future__ import annotations

import json
import time
from types import SimpleNamespace

import pytest
from selenium.webdriver.common.keys import Keys

from tests.live.helpers import LiveClient
from tests.support.browser import By, make_browser
from tests.support.plants import demo_plant_without_breaks
from tests.support.proxy import FaultProxy
from tests.test_app import RunningApp

DASH_REQUESTS = ("return performance.getEntriesByType('resource')"
                 ".filter(function (e) { return e.name.indexOf('/_dash-update-component') >= 0; }).length;")


def wait_for(predicate, timeout: float = 30, message: str = "condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
            if last:
                return last
        except Exception as exc:  # an element re-drawn between two looks
            last = exc
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {message} (last: {last!r})")


@pytest.fixture(scope="module")
def plant(tmp_path_factory):
    folder = tmp_path_factory.mktemp("live-pages")
    app = RunningApp(folder, "--plant-file", str(demo_plant_without_breaks(folder)))  # machines run at any hour
    proxy = browser = None
    try:
        app.wait_healthy(90)
        wait_for(lambda: (lambda c: len(c) == 16 and all(x.get("cycles", 0) >= 3 for x in c))(
            json.loads(app.get("/healthz")[1])["connections"]), 90, "the demo plant reporting")
        proxy = FaultProxy(app.port).start()
        browser = make_browser()
        yield SimpleNamespace(app=app, proxy=proxy, browser=browser, base=f"http://127.0.0.1:{proxy.port}")
    finally:
        if browser is not None:
            browser.quit()
        if proxy is not None:
            proxy.cut()
        app.stop()


def table(browser) -> dict[str, tuple[str, str, str]]:
    """{tag id: (value, quality, age)} of the rows on screen."""
    return browser.execute_script("""
        var out = {};
        document.querySelectorAll('#plc-rows tbody tr').forEach(function (tr) {
          var td = tr.children;
          out[tr.getAttribute('data-tag')] = [td[5].textContent, td[6].textContent, td[7].textContent];
        });
        return out;""")


def seconds(age: str) -> float:
    """components.format.duration read back: '45 s', '2 min 5 s', '1 h 20 min'."""
    parts = age.split()
    return sum(float(n) * {"s": 1, "min": 60, "h": 3600, "d": 86400}[unit] for n, unit in zip(parts[::2], parts[1::2]))


def test_plc_monitor_values_move_over_the_websocket_without_dash_requests(plant):
    b = plant.browser
    b.get(plant.base + "/plc-monitor/?machine=LINE-001")
    socket = wait_for(lambda: b.find_element(By.ID, "plc-live-0"), message="the page's socket")
    assert socket.get_attribute("data-oee-live-url") == "/ws/plc/LINE-001/"
    wait_for(lambda: b.find_element(By.ID, "plc-live-0-status").text == "live", message="the socket live")
    first = wait_for(lambda: table(b), message="rows")
    assert len(first) >= 20 and all(q in ("good", "uncertain", "bad") for _, q, _ in first.values()), first
    b.execute_script("performance.setResourceTimingBufferSize(100000);")
    time.sleep(1.0)  # the page's own start-up callbacks are done
    requests_before = b.execute_script(DASH_REQUESTS)
    stats_before = b.execute_script("return Object.assign({}, window.oeePlcMonitor.stats);")
    first = table(b)  # read after the counters: what changes from here on was counted after them

    # What the server sends, read by a client of our own beside the browser.
    client = LiveClient(plant.app.port, "/ws/plc/LINE-001/")
    try:
        snapshot = client.recv()
        names = {tid: t["name"] for tid, t in snapshot["tags"].items()}
        sent: dict[str, set] = {}

        def moved():
            for msg in client.drain(0.5):
                if msg["type"] == "tag_update":
                    for tid, v in msg["tags"].items():
                        sent.setdefault(tid, set()).add(v[1])
            now = table(b)
            changed = [tid for tid in now if now[tid][0] != first[tid][0]]
            return changed if len(changed) >= 3 else None

        changed = wait_for(moved, 30, "values changing on the page")
        # A counter the plant raises shows a value the server sent (the browser may be one message ahead or behind).
        total = next(tid for tid, n in names.items() if n == "ProductionCount")

        def seen_counter():
            for msg in client.drain(0.5):
                if msg["type"] == "tag_update":
                    for tid, v in msg["tags"].items():
                        sent.setdefault(tid, set()).add(v[1])
            shown = table(b)[total][0]
            return shown if shown != "—" and float(shown) in sent.get(total, set()) else None

        wait_for(seen_counter, 30, "the browser showing a counter value the server sent")
    finally:
        client.close()
    stats = b.execute_script("return Object.assign({}, window.oeePlcMonitor.stats);")
    assert stats["values"] > stats_before["values"] and stats["messages"] > stats_before["messages"]
    assert b.execute_script(DASH_REQUESTS) == requests_before, "values came through Dash callbacks"
    assert changed

    # Ages tick in the browser: a tag whose value stays the same grows older, with no message for it.
    start = table(b)
    steady = [tid for tid, row in start.items() if row[2].endswith(" s")]

    def older():
        now = table(b)
        return [tid for tid in steady if now[tid][0] == start[tid][0] and seconds(now[tid][2]) > seconds(start[tid][2])]

    assert wait_for(older, 20, "an age ticking")
    assert b.execute_script(DASH_REQUESTS) == requests_before

    # The filters work in the browser; the text goes to the URL (that one request is the URL, not values).
    box = b.find_element(By.ID, "plc-filter")
    box.send_keys("ProductionCount")
    wait_for(lambda: len(table(b)) == 1, 20, "one row left")
    wait_for(lambda: "q=ProductionCount" in b.current_url, 20, "the filter in the URL")
    value = table(b)[total][0]
    wait_for(lambda: table(b)[total][0] != value, 30, "the filtered row still moving")


def test_a_dropped_connection_is_shown_and_the_plc_monitor_comes_back_by_itself(plant):
    b = plant.browser
    b.get(plant.base + "/plc-monitor/")
    wait_for(lambda: b.find_element(By.ID, "plc-live-0-status").text == "live", message="the socket live")
    wait_for(lambda: int(b.find_element(By.ID, "plc-count").text.split()[0].replace(",", "")) > 16 * 30,
             message="every tag of every machine")
    assert len(table(b)) == 100  # one page of them on screen
    connects = b.execute_script("return window.oeeLive.sockets['plc-live-0'].connects;")
    plant.proxy.cut()  # every connection dropped, new ones refused
    try:
        status = wait_for(lambda: (lambda t: t if "retrying" in t or "reconnecting" in t else None)(
            b.find_element(By.ID, "plc-live-0-status").text), 20, "the broken socket shown")
        assert "disconnected" in status or "reconnecting" in status
        assert "plc-offline" in b.find_element(By.ID, "plc-rows").get_attribute("class")
        wait_for(lambda: b.find_element(By.ID, "plc-source").text.startswith("Values as the server knew them"), 10,
                 "the summary saying the values are not live")
        time.sleep(2.0)
    finally:
        plant.proxy.restore()
    wait_for(lambda: b.find_element(By.ID, "plc-live-0-status").text == "live", 60, "the socket back")
    assert b.execute_script("return window.oeeLive.sockets['plc-live-0'].connects;") > connects
    assert "plc-offline" not in b.find_element(By.ID, "plc-rows").get_attribute("class")
    values = b.execute_script("return window.oeePlcMonitor.stats.values;")  # before the table is read: a change
    before = table(b)  # seen after this came with a value taken after that
    wait_for(lambda: sum(1 for tid, row in table(b).items() if row[0] != before[tid][0]) >= 3, 30,
             "values moving again")
    assert b.execute_script("return window.oeePlcMonitor.stats.values;") > values

    # Choosing a machine: a socket of its own, its tags only, kept in the URL; the values keep moving.
    b.find_element(By.ID, "plc-machine").click()  # Dash 4's dropdown: a button opening a list of options
    option = wait_for(lambda: next((o for o in b.find_elements(By.CSS_SELECTOR, "[role='option']")
                                    if "LINE-013" in o.text), None), 10, "LINE-013 in the list")
    option.click()
    b.find_element(By.TAG_NAME, "body").send_keys(Keys.ESCAPE)
    wait_for(lambda: b.find_element(By.ID, "plc-live-0").get_attribute("data-oee-live-url") == "/ws/plc/LINE-013/",
             20, "a socket for LINE-013")
    wait_for(lambda: "machine=LINE-013" in b.current_url, 20, "the machine in the URL")
    wait_for(lambda: b.find_element(By.ID, "plc-live-0-status").text == "live", 30, "the new socket live")
    machines = wait_for(lambda: (lambda m: m if m == {"LINE-013"} else None)(set(b.execute_script(
        "return Array.from(document.querySelectorAll('#plc-rows tbody tr td:first-child'), td => td.textContent);"))),
        20, "only LINE-013's tags")
    assert machines == {"LINE-013"}
    before = table(b)
    wait_for(lambda: sum(1 for tid, row in table(b).items() if row[0] != before[tid][0]) >= 2, 30,
             "LINE-013's values moving")


LIVE_GRAPH = """return (function () {
  var g = document.querySelector("[data-oee-live-socket='machine-live-ws'] .js-plotly-plot");
  if (!g || !g.data || !g.data.length) { return null; }
  return {last: g.data.map(function (t) { return t.x.length ? String(t.x[t.x.length - 1]) : ''; }),
          n: g.data.map(function (t) { return t.x.length; }),
          range: g.layout.xaxis.range ? g.layout.xaxis.range.map(String) : null,
          autorange: g.layout.xaxis.autorange};
})();"""

ZOOM = """var g = document.querySelector("[data-oee-live-socket='machine-live-ws'] .js-plotly-plot");
var xs = g.data[0].x, t = Date.parse(String(xs[xs.length - 1]).replace(' ', 'T') + 'Z');
function f(ms) { return new Date(ms).toISOString().replace('Z', '').replace('T', ' '); }
return Plotly.relayout(g, {'xaxis.range': [f(t - 120000), f(t + 600000)]}).then(function () { return null; });"""


def test_the_machine_graph_gains_points_keeps_the_zoom_and_reconnects(plant):
    b = plant.browser
    b.get(plant.base + "/machine/LINE-001")
    first = wait_for(lambda: (lambda g: g if g and min(g["n"]) > 0 else None)(b.execute_script(LIVE_GRAPH)), 40,
                     "the live graph drawn with history")
    b.execute_script(ZOOM)  # the user zooms: a fixed x range
    zoomed = wait_for(lambda: (lambda g: g if g["autorange"] is False and g["range"] else None)(
        b.execute_script(LIVE_GRAPH)), 10, "the zoom applied")

    def gained(since):
        g = b.execute_script(LIVE_GRAPH)
        return g if any(a > z for a, z in zip(g["last"], since["last"])) else None

    later = wait_for(lambda: gained(first), 30, "new points appended")
    later = wait_for(lambda: gained(later), 30, "more points appended")
    assert later["range"] == zoomed["range"] and later["autorange"] is False, (zoomed, later)

    connects = b.execute_script("return window.oeeLive.sockets['machine-live-ws'].connects;")
    plant.proxy.cut()
    time.sleep(2.0)
    plant.proxy.restore()
    wait_for(lambda: b.execute_script("return window.oeeLive.sockets['machine-live-ws'].connects;") > connects, 60,
             "the graph's socket reconnected")
    back = b.execute_script(LIVE_GRAPH)
    after = wait_for(lambda: gained(back), 30, "points appended after the reconnect")
    assert after["range"] == zoomed["range"], (zoomed, after)
