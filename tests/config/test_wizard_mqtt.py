"""The wizard in real headless Chromium for a Sparkplug B edge node that is not the app's own, behind a broker that
wants credentials: the protocol's card, the broker's address, group/edge/device ids, user and password, the
connection test, discovery of the BIRTH metrics, roles suggested from the metric names, the live preview, save,
and live values from the collectors; the password is never put on a page. And a JSON topic (MQTT) the same way:
discovery under a topic filter, fields by JSON pointer."""
from __future__ import annotations

import pytest

from sparkplug.payload import DataType
from tests.config.conftest import wait_for
from tests.config.test_wizard import browser, click, fill, map_and_save, pick_suggested, run_connection_test, \
    start_new  # noqa: F401 (browser is a fixture)
from tests.support.browser import EC, By, WebDriverWait, wait_text
from tests.support.mosquitto import Mosquitto
from tests.support.sparkplug_edge import EdgeNode

PASSWORD = "wizard-secret-7"
METRICS = {"Counts/Good": (DataType.UINT32, 10), "Counts/Total": (DataType.UINT32, 11),
           "Line/Running": (DataType.BOOLEAN, True), "Line/State": (DataType.INT32, 1),
           "Oven/Temperature": (DataType.FLOAT, 180.5)}


@pytest.fixture(scope="module")
def edge_node():
    with Mosquitto(users={"oee": PASSWORD, "edge": "edge-pw"}) as broker:
        with EdgeNode(broker.host, broker.port, "Bakery", "oven-gw", devices={"oven3": METRICS},
                      username="edge", password="edge-pw") as edge:
            yield broker, edge


def test_a_sparkplug_edge_node_through_the_wizard(browser, app, edge_node):  # noqa: F811
    broker, edge = edge_node
    start_new(browser, app, "SPARKPLUG_B")
    fill(browser, "mc-machine-id", "WIZ-SPB")
    fill(browser, "mc-name", "Oven 3 (Sparkplug)")
    fill(browser, "mc-poll", 1000)
    fill(browser, "mc-host", broker.host)
    fill(browser, "mc-port", broker.port)
    fill(browser, "mc-spb-group", "Bakery")
    fill(browser, "mc-spb-edge", "oven-gw")
    fill(browser, "mc-spb-device", "oven3")
    fill(browser, "mc-broker-user", "oee")
    fill(browser, "mc-broker-password", PASSWORD)
    click(browser, "#mc-settings-next")
    run_connection_test(browser)
    WebDriverWait(browser, 10).until(EC.visibility_of_element_located((By.ID, "mc-discover-run")))
    assert browser.find_element(By.ID, "mc-discover-run").text == "List BIRTH metrics"
    click(browser, "#mc-discover-run")
    wait_text(browser, "#mc-discover-status", "5 tags found", timeout=30)
    assert pick_suggested(browser) >= 3  # Counts/Good, Counts/Total, Line/Running, Line/State by their names
    map_and_save(browser, roles_expected=("counter.good", "counter.total", "state.running"))
    wait_for(lambda: browser.execute_script(
        "const q = [...document.querySelectorAll('#mc-live-table td:last-child')].map(c => c.textContent);"
        "return q.length > 0 && q.every(t => t === 'good');"), timeout=20)
    edge.data("oven3", {"Counts/Good": 25, "Counts/Total": 27})
    wait_for(lambda: browser.execute_script(
        "return [...document.querySelectorAll('#mc-live-table tr')].some(r => r.textContent.includes('25'));"),
        timeout=20)
    status, machine = app.client.get("/api/plc/machines/WIZ-SPB/")
    assert machine["connection_state"] == "connected" and machine["protocol_config"]["password"] == "***"
    assert machine["protocol_config"]["device_id"] == "oven3"
    # editing it shows the settings, never the password
    browser.get(f"http://127.0.0.1:{app.port}/machine-config/?machine=WIZ-SPB")
    WebDriverWait(browser, 15).until(lambda b: b.find_element(By.ID, "mc-spb-edge").get_attribute("value")
                                     == "oven-gw")
    assert browser.find_element(By.ID, "mc-broker-password").get_attribute("value") == ""
    assert PASSWORD not in browser.page_source


def test_json_topics_through_the_wizard(browser, app, edge_node):  # noqa: F811
    broker, _edge = edge_node
    from tests.support.json_publisher import JsonPublisher

    topic = "bakery/line2/mixer"
    with JsonPublisher(broker.host, broker.port, "edge", "edge-pw") as pub:
        pub.publish(topic, {"counts": {"good": 40, "total": 42}, "running": True, "state": 1}, retain=True)
        start_new(browser, app, "MQTT")
        fill(browser, "mc-machine-id", "WIZ-MQTT")
        fill(browser, "mc-name", "Mixer (MQTT)")
        fill(browser, "mc-poll", 1000)
        fill(browser, "mc-host", broker.host)
        fill(browser, "mc-port", broker.port)
        fill(browser, "mc-mq-filter", "bakery/#")
        fill(browser, "mc-broker-user", "oee")
        fill(browser, "mc-broker-password", PASSWORD)
        click(browser, "#mc-settings-next")
        run_connection_test(browser)
        WebDriverWait(browser, 10).until(EC.visibility_of_element_located((By.ID, "mc-discover-run")))
        click(browser, "#mc-discover-run")
        wait_text(browser, "#mc-discover-status", "found", timeout=30)
        assert pick_suggested(browser) >= 3  # /counts/good, /counts/total, /running, /state by their names
        map_and_save(browser, roles_expected=("counter.good", "counter.total", "state.running"))
        pub.publish(topic, {"counts": {"good": 41, "total": 43}, "running": True, "state": 1}, retain=True)
        status, tags = app.client.get("/api/plc/machines/WIZ-MQTT/tags/")
        assert {t["address"] for t in tags["results"]} >= {f"{topic}#/counts/good", f"{topic}#/running"}
        wait_for(lambda: any(t["value"] == 41 for t in app.client.get("/api/plc/machines/WIZ-MQTT/tags/")[1]
                             ["results"]), timeout=20)  # the new value, pushed
