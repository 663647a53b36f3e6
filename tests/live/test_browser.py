"""assets/live.js in a real browser: a page with components.live's socket and graph, fed by the demo plant.

The graph grows through extendData as the plant's values change, keeps its uirevision, the store reports the
machine, and the socket comes back by itself after the server cut it.
"""
from __future__ import annotations

import threading
import time
from pathlib import Path

import dash
import pytest
from dash import Input, Output, html
from flask import Flask
from werkzeug.serving import make_server

from components.live import live_graph, live_socket
from live.websocket import install as install_websockets
from processes.runtime import Runtime
from processes.settings import Settings
from tests.support.browser import make_browser, wait_text
from tests.support.pgcluster import free_port
from tests.support.plants import demo_plant_without_breaks

ROOT = Path(__file__).resolve().parents[2]
TAGS = ["ProductionCount", "MotorCurrent"]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("live-browser")
    runtime = Runtime(Settings(data_dir=tmp, plant_time_scale=60, ws_heartbeat_s=1.0,  # the plant runs at any hour
                               plant_file=str(demo_plant_without_breaks(tmp)))).start()
    server = Flask(__name__)
    server.extensions["oee"] = runtime
    app = dash.Dash(__name__, server=server, assets_folder=str(ROOT / "assets"), title="live test")
    app.layout = html.Div([
        live_socket("t-live", "/ws/dashboard/machine/LINE-001/"),
        live_graph("t-graph", "t-live", tags=TAGS, window_s=60),
        html.Div(id="t-state"),
    ])

    @app.callback(Output("t-state", "children"), Input("t-live-store", "data"))
    def show(data):
        machine = (data or {}).get("machines", {}).get("LINE-001") or {}
        state = (machine.get("status") or {}).get("state")
        return f"connected={bool(data and data.get('connected'))} state={state}"

    install_websockets(server, runtime)
    port = free_port()
    http = make_server("127.0.0.1", port, server, threaded=True)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while runtime.live.machines.get(1) is None and time.monotonic() < deadline:
        time.sleep(0.2)
    browser = make_browser()
    try:
        yield runtime, port, browser
    finally:
        browser.quit()
        http.shutdown()
        runtime.stop()


def points(browser) -> list[int]:
    return browser.execute_script(
        "var g = document.querySelector('#t-graph .js-plotly-plot');"
        "return g && g.data ? g.data.map(function (t) { return t.x.length; }) : [];")


def test_graph_moves_with_the_plant_keeps_its_zoom_and_reconnects(served):
    runtime, port, browser = served
    browser.get(f"http://127.0.0.1:{port}/")
    wait_text(browser, "#t-live-status", "live", timeout=30)
    wait_text(browser, "#t-state", "connected=True state=", timeout=15)
    assert "state=None" not in browser.find_element("css selector", "#t-state").text
    deadline = time.monotonic() + 20
    first = []
    while time.monotonic() < deadline:
        first = points(browser)
        if len(first) == 2 and min(first) >= 2:
            break
        time.sleep(0.3)
    assert len(first) == 2 and min(first) >= 2, first
    # zoom in as a user would; new points must not reset it
    browser.execute_script("var g = document.querySelector('#t-graph .js-plotly-plot');"
                           "Plotly.relayout(g, {'yaxis.range': [-5, 5]});")
    time.sleep(3)
    later = points(browser)
    assert sum(later) > sum(first), (first, later)
    y_range = browser.execute_script("return document.querySelector('#t-graph .js-plotly-plot').layout.yaxis.range;")
    assert y_range == [-5, 5]
    # the server cuts every socket: the page reconnects by itself and the graph keeps moving
    opened = runtime.live.sockets_opened
    for info in list(runtime.live.sockets.values()):
        info["kill"]()
    deadline = time.monotonic() + 20
    while runtime.live.sockets_opened == opened and time.monotonic() < deadline:
        time.sleep(0.2)
    assert runtime.live.sockets_opened > opened, "the page did not reconnect"
    wait_text(browser, "#t-live-status", "live", timeout=10)
    before = sum(points(browser))
    time.sleep(3)
    assert sum(points(browser)) > before
