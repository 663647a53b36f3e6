"""A Sparkplug B edge node that is not the app's own (tests/support/sparkplug_edge.py: its own metric names, its own
state codes 10 run / 20 fault / 30 changeover, a broker that wants credentials), configured only as a user would
through the REST API: connection test, machine saved with its state codes and roles, discovery of the saved
machine (its password stored encrypted, shown as '***'). The app's collector gets the values as they are
published, and the database gets the right states and counts; NDEATH makes the machine offline and its tags bad
with the reason; a rebirth brings it back without counting its parts twice.

Also one MQTT JSON machine on the same broker (a UNS-style topic with a JSON object), counted the same way."""
from __future__ import annotations

import time

import pytest
import yaml
from sqlalchemy import text

from sparkplug.payload import DataType
from tests.config.conftest import Client, wait_for
from tests.support.json_publisher import JsonPublisher
from tests.support.mosquitto import Mosquitto
from tests.support.sparkplug_edge import EdgeNode
from tests.test_app import RunningApp

GROUP, EDGE, DEVICE = "Works2", "filler-gw", "filler9"
STATE_CODES = {"10": "running", "20": "faulted", "30": "changeover"}
METRICS = {"Line/State": (DataType.INT32, 30), "Counts/Good": (DataType.UINT32, 100),
           "Counts/Scrap": (DataType.UINT32, 7), "Speed": (DataType.FLOAT, 0.0)}
USERS = {"oee": "collect-pw", "edge": "edge-pw"}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    with Mosquitto(users=USERS) as broker:
        edge = EdgeNode(broker.host, broker.port, GROUP, EDGE, devices={DEVICE: METRICS}, aliases=True,
                        username="edge", password=USERS["edge"]).start()
        app = RunningApp(tmp_path_factory.mktemp("app"), "--no-demo")
        try:
            app.wait_healthy()
            yield broker, edge, app, Client(app.port, app.token("engineer"))
        finally:
            app.stop()
            edge.stop()


def _config(**extra):
    return {"group_id": GROUP, "edge_node_id": EDGE, "device_id": DEVICE, "username": "oee",
            "password": USERS["oee"], **extra}


def _states(app, pk):
    with app.engine().connect() as conn:
        return [r[0] for r in conn.execute(text("SELECT state FROM machine_states WHERE machine_id = :m "
                                                "ORDER BY start"), {"m": pk})]


def _counts(app, pk):
    with app.engine().connect() as conn:
        row = conn.execute(text("SELECT COALESCE(SUM(good), 0), COALESCE(SUM(reject), 0), COALESCE(SUM(total), 0) "
                                "FROM production_counts WHERE machine_id = :m"), {"m": pk}).one()
    return tuple(int(x) for x in row)


def test_an_edge_node_configured_through_the_api_gives_states_and_counts(world):
    broker, edge, app, api = world
    status, wrong = api.post("/api/plc/test-connection/", {"protocol": "SPARKPLUG_B", "ip_address": broker.host,
                                                           "port": broker.port,
                                                           "protocol_config": _config(password="nope")})
    assert status == 200 and wrong["ok"] is False and wrong["error"] == "auth_failed", wrong
    assert "nope" not in str(wrong)
    status, result = api.post("/api/plc/test-connection/", {"protocol": "SPARKPLUG_B", "ip_address": broker.host,
                                                            "port": broker.port, "protocol_config": _config(),
                                                            "probe_address": "Counts/Good"})
    assert status == 200 and result["ok"], result
    body = {"name": "Filler 9 (Sparkplug)", "machine_id": "WORKS-FILLER-9", "protocol": "SPARKPLUG_B",
            "ip_address": broker.host, "port": broker.port, "protocol_config": _config(), "poll_interval_ms": 1000,
            "state_code_map": STATE_CODES, "tags": [
                {"name": "State", "address": "Line/State", "data_type": "INT32", "role": "state.code"},
                {"name": "Good", "address": "Counts/Good", "data_type": "UINT32", "role": "counter.good"},
                {"name": "Scrap", "address": "Counts/Scrap", "data_type": "UINT32", "role": "counter.reject"},
                {"name": "Speed", "address": "Speed", "data_type": "FLOAT"}]}
    status, created = api.post("/api/plc/machines/", body)
    assert status == 201, created
    assert created["protocol_config"]["password"] == "***"
    mid = created["machine_id"]
    pk = created["id"]
    status, found = api.post(f"/api/plc/machines/{mid}/discover_tags/", {})
    assert status == 200, found
    assert {t["address"] for t in found["tags"]} == set(METRICS)

    def state():
        return api.get(f"/api/plc/machines/{mid}/")[1].get("state")

    wait_for(lambda: state() == "changeover", timeout=30)
    edge.data(DEVICE, {"Line/State": 10})
    wait_for(lambda: state() == "running", timeout=10)
    for i in range(1, 41):
        edge.data(DEVICE, {"Counts/Good": 100 + i, "Speed": 1.5})
    edge.data(DEVICE, {"Counts/Scrap": 10})
    edge.data(DEVICE, {"Line/State": 20})
    wait_for(lambda: state() == "faulted", timeout=10)
    wait_for(lambda: _counts(app, pk)[:2] == (40, 3), timeout=15)

    edge.node_death()  # the edge node goes away (its broker link, as its will says)
    wait_for(lambda: state() == "failing", timeout=10)  # as for a lost PLC; the database says offline
    tags = {t["name"]: t for t in api.get(f"/api/plc/machines/{mid}/tags/")[1]["results"]}
    assert tags["Good"]["quality"] == "bad" and "NDEATH" in (tags["Good"]["reason"] or ""), tags["Good"]
    status, machine = api.get(f"/api/plc/machines/{mid}/")
    assert "NDEATH" in str(machine.get("last_error")), machine

    edge.birth()  # back, with its counters where they were: nothing counted twice
    wait_for(lambda: state() == "faulted", timeout=10)
    edge.data(DEVICE, {"Line/State": 10})
    for i in range(41, 51):
        edge.data(DEVICE, {"Counts/Good": 100 + i})
    edge.data(DEVICE, {"Line/State": 30})
    wait_for(lambda: state() == "changeover", timeout=10)
    wait_for(lambda: _counts(app, pk)[:2] == (50, 3), timeout=15)
    time.sleep(1.5)
    assert _counts(app, pk)[:2] == (50, 3)
    assert _states(app, pk) == ["changeover", "running", "faulted", "offline", "faulted", "running", "changeover"]


def test_a_json_topic_machine_through_the_api(world):
    broker, _edge, app, api = world
    topic = "works2/packing/line1/wrapper"
    with JsonPublisher(broker.host, broker.port, "edge", USERS["edge"]) as pub:
        pub.publish(topic, {"state": {"code": 1}, "counts": {"good": 500, "reject": 2}}, retain=True)
        body = {"name": "Wrapper (MQTT)", "machine_id": "WORKS-WRAPPER", "protocol": "MQTT",
                "ip_address": broker.host, "port": broker.port, "poll_interval_ms": 1000,
                "protocol_config": {"username": "oee", "password": USERS["oee"], "topic_filter": "works2/#"},
                "tags": [
                    {"name": "State", "address": f"{topic}#/state/code", "data_type": "INT32", "role": "state.code"},
                    {"name": "Good", "address": f"{topic}#/counts/good", "data_type": "INT64",
                     "role": "counter.good"},
                    {"name": "Reject", "address": f"{topic}#/counts/reject", "data_type": "INT64",
                     "role": "counter.reject"}]}
        status, bad = api.post("/api/plc/machines/", {**body, "machine_id": "WORKS-BAD", "tags": [
            {"name": "All", "address": "works2/+/line1#/state", "data_type": "INT32"}]})
        assert status == 400 and "wildcard" in bad["fields"]["tags[0].address"], bad
        status, created = api.post("/api/plc/machines/", body)
        assert status == 201, created
        mid, pk = created["machine_id"], created["id"]
        status, found = api.post(f"/api/plc/machines/{mid}/discover_tags/", {"seconds": 1})
        assert status == 200 and any(t["address"] == topic for t in found["tags"]), found

        def state():
            return api.get(f"/api/plc/machines/{mid}/")[1].get("state")

        wait_for(lambda: state() == "running", timeout=30)  # the retained message, default codes: 1 running
        for i in range(1, 21):
            pub.publish(topic, {"state": {"code": 1}, "counts": {"good": 500 + i, "reject": 2 + (i == 20)}})
        pub.publish(topic, {"state": {"code": 4}, "counts": {"good": 520, "reject": 3}})
        wait_for(lambda: state() == "faulted", timeout=10)
        wait_for(lambda: _counts(app, pk)[:2] == (20, 1), timeout=15)


def test_yaml_import_and_export_of_a_sparkplug_machine(world):
    broker, edge, app, api = world
    machine = {"name": "Filler 9 (YAML)", "machine_id": "WORKS-FILLER-9-YAML", "protocol": "SPARKPLUG_B",
               "ip_address": broker.host, "port": broker.port, "protocol_config": _config(), "poll_interval_ms": 1000,
               "state_code_map": STATE_CODES,
               "tags": [{"name": "Good", "address": "Counts/Good", "data_type": "UINT32", "role": "counter.good"},
                        {"name": "State", "address": "Line/State", "data_type": "INT32", "role": "state.code"}]}
    bad = {**machine, "machine_id": "WORKS-BAD-YAML", "protocol_config": _config(edge_node_id="a/b")}
    status, refused = api.post("/api/config/import", raw=yaml.safe_dump({"version": 1, "machines": [bad]}).encode(),
                               content_type="application/yaml")
    assert status == 400 and any("edge_node_id" in k for k in str(refused).split("'")), refused
    status, result = api.post("/api/config/import", raw=yaml.safe_dump({"version": 1, "machines": [machine]}).encode(),
                              content_type="application/yaml")
    assert status == 200, result
    status, exported = api.get("/api/config/export?format=json")
    assert status == 200
    ours = next(m for m in exported["machines"] if m["machine_id"] == "WORKS-FILLER-9-YAML")
    assert ours["protocol"] == "SPARKPLUG_B" and ours["protocol_config"]["password"] == "***"
    assert ours["protocol_config"]["group_id"] == GROUP and ours["protocol_config"]["device_id"] == DEVICE
    assert USERS["oee"] not in str(exported)
    wait_for(lambda: api.get("/api/plc/machines/WORKS-FILLER-9-YAML/")[1].get("state") in STATE_CODES.values(),
             timeout=30)


def test_a_broker_outage_makes_the_machine_failing_and_it_comes_back(world):
    _broker, _edge, app, api = world
    topic = "works2/packing/line2/labeller"
    with Mosquitto() as broker:  # a broker of this test's own: it goes away and comes back on the same port
        body = {"name": "Labeller (MQTT)", "machine_id": "WORKS-LABELLER", "protocol": "MQTT",
                "ip_address": broker.host, "port": broker.port, "poll_interval_ms": 500,
                "tags": [{"name": "State", "address": f"{topic}#/state", "data_type": "INT32", "role": "state.code"},
                         {"name": "Good", "address": f"{topic}#/good", "data_type": "INT64",
                          "role": "counter.good"}]}
        status, created = api.post("/api/plc/machines/", body)
        assert status == 201, created
        pk = created["id"]

        def state():
            return api.get("/api/plc/machines/WORKS-LABELLER/")[1].get("state")

        with JsonPublisher(broker.host, broker.port) as pub:
            pub.publish(topic, {"state": 1, "good": 100}, retain=True)
            wait_for(lambda: state() == "running", timeout=30)
            for i in range(1, 6):
                pub.publish(topic, {"state": 1, "good": 100 + i}, retain=True)
            wait_for(lambda: _counts(app, pk)[0] == 5, timeout=15)
        broker.stop()
        wait_for(lambda: state() == "failing", timeout=15)
        status, machine = api.get("/api/plc/machines/WORKS-LABELLER/")
        assert machine["last_error"]["error"] == "cannot_connect", machine
        broker.start()
        with JsonPublisher(broker.host, broker.port) as pub:
            pub.publish(topic, {"state": 1, "good": 105}, retain=True)  # where it was when the broker went
            wait_for(lambda: state() == "running", timeout=40)  # reconnected with backoff, the retained value
            for i in range(6, 11):
                pub.publish(topic, {"state": 1, "good": 100 + i}, retain=True)
            wait_for(lambda: _counts(app, pk)[0] == 10, timeout=15)
    assert "offline" in _states(app, pk)
