"""The REST API under /api/plc and /api/config against `python app.py` and the simulated plant (real protocol
servers on 127.0.0.1): a script connects each kind of PLC with the API alone and reads its values live; every
validation branch answers 400 naming the field; a failed test explains itself; passwords never come back."""
from __future__ import annotations

import json
import sqlite3

import pytest
import yaml

from keys.credentials import Credentials
from tests.config.conftest import endpoint, wait_for

PROTOCOLS = ("ETHERNET_IP", "S7", "OPCUA", "MODBUS")


def machine_body(plant, protocol: str, machine_id: str, **extra) -> dict:
    ep = endpoint(plant, protocol)
    return {"name": f"{protocol} machine", "machine_id": machine_id, "protocol": protocol, "ip_address": ep["host"],
            "port": ep["port"], "protocol_config": ep["protocol_config"], "poll_interval_ms": 250,
            "tags": [{"name": t["name"], "address": t["address"], "data_type": t["data_type"], "role": t["role"]}
                     for t in ep["tags"]], **extra}


def stored_samples(app, machine_id: str) -> int:
    with sqlite3.connect(app.data_db) as conn:
        return conn.execute("SELECT count(*) FROM samples s JOIN tags t ON t.id = s.tag_id JOIN machines m "
                            "ON m.id = t.machine_id WHERE m.machine_id = ?", (machine_id,)).fetchone()[0]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_script_connects_each_plc_kind_and_reads_it_live(app, plant, protocol):
    api = app.client
    machine_id = f"API-{protocol}"
    status, result = api.post("/api/plc/test-connection/", {k: v for k, v in machine_body(
        plant, protocol, machine_id).items() if k in ("protocol", "ip_address", "port", "protocol_config")})
    assert status == 200 and result["ok"], result
    assert [s["name"] for s in result["steps"]][0] == "tcp" and all(s["ok"] for s in result["steps"])

    status, created = api.post("/api/plc/machines/", machine_body(plant, protocol, machine_id))
    assert status == 201, created
    assert created["tag_count"] == len(endpoint(plant, protocol)["tags"])

    def all_good():
        _, page = api.get(f"/api/plc/machines/{machine_id}/tags/")
        return page if page["count"] and all(t["quality"] == "good" for t in page["results"]) else None

    page = wait_for(all_good, timeout=20)
    good = next(t for t in page["results"] if t["role"] == "counter.good")
    assert isinstance(good["value"], (int, float)) and good["time"]
    _, machine = api.get(f"/api/plc/machines/{created['id']}/")
    assert machine["state"] in ("running", "idle", "blocked", "faulted", "planned_stop", "changeover"), machine
    assert machine["connection_state"] == "connected"

    status, found = api.post(f"/api/plc/machines/{machine_id}/discover_tags/",
                             {"table": "HR", "start": 0, "count": 36} if protocol == "MODBUS" else None)
    assert status == 200 and found["count"] > 0, found
    status, tested = api.post(f"/api/plc/machines/{machine_id}/test_connection/")
    assert status == 200 and tested["ok"], tested
    status, reloaded = api.post(f"/api/plc/machines/{machine_id}/reload_connection/")
    assert status == 200 and reloaded["reloaded"] is True and reloaded["machine"]["machine_id"] == machine_id

    # The values above came live from the collector process; its writer commits them within a second.
    wait_for(lambda: stored_samples(app, machine_id), timeout=10)
    status, removed = api.delete(f"/api/plc/machines/{machine_id}/")
    assert status == 200 and removed["deleted"]["samples"] > 0 and "history" in removed["message"]
    assert api.get(f"/api/plc/machines/{machine_id}/")[0] == 404
    health = app.wait_healthy()
    assert not [c for c in health["connections"] if c.get("name") == machine_id]


def test_list_is_paginated(app, plant):
    api = app.client
    for n in range(3):
        body = machine_body(plant, "MODBUS", f"PAGE-{n}", enabled=False)
        assert api.post("/api/plc/machines/", body)[0] == 201
    status, first = api.get("/api/plc/machines/?page_size=2")
    assert status == 200 and first["count"] >= 3 and len(first["results"]) == 2 and first["previous"] is None
    assert first["next"].endswith("page=2&page_size=2")
    status, second = api.get(first["next"].split(str(app.port), 1)[1])
    assert second["previous"] and second["results"][0]["machine_id"] != first["results"][0]["machine_id"]
    for n in range(3):
        api.delete(f"/api/plc/machines/PAGE-{n}/")


def test_disable_keeps_the_machine_and_stops_polling(app, plant):
    api = app.client
    status, m = api.post("/api/plc/machines/", machine_body(plant, "S7", "DIS-1"))
    assert status == 201
    wait_for(lambda: api.get("/api/plc/machines/DIS-1/")[1]["connection_state"] == "connected")
    status, m = api.patch("/api/plc/machines/DIS-1/", {"enabled": False})
    assert status == 200 and m["enabled"] is False and m["state"] == "disabled" and m["tag_count"] == 30
    assert not [c for c in app.wait_healthy()["connections"] if c.get("name") == "DIS-1"]
    status, m = api.patch("/api/plc/machines/DIS-1/", {"enabled": True, "poll_interval_ms": 500})
    assert status == 200 and m["poll_interval_ms"] == 500
    wait_for(lambda: api.get("/api/plc/machines/DIS-1/")[1]["connection_state"] == "connected")
    api.delete("/api/plc/machines/DIS-1/")


# --- every validation branch answers 400 and names the field ---------------------------------------------------------

GOOD = {"name": "Press 4", "machine_id": "VAL-1", "protocol": "MODBUS", "ip_address": "127.0.0.1", "port": 1,
        "enabled": False}


@pytest.mark.parametrize("body, field, expected", [
    ({**GOOD, "name": ""}, "name", "1 to 200 characters"),
    ({k: v for k, v in GOOD.items() if k != "name"}, "name", "required"),
    ({**GOOD, "machine_id": "VAL 1"}, "machine_id", "letters, digits"),
    ({**GOOD, "protocol": "BACNET"}, "protocol", "not supported"),
    ({**GOOD, "ip_address": "300.1.1.1"}, "ip_address", "not an IP address or host name"),
    ({**GOOD, "port": 65536}, "port", "from 1 to 65535"),
    ({**GOOD, "poll_interval_ms": 50}, "poll_interval_ms", "from 100 to 3600000"),
    ({**GOOD, "line": 999}, "line", "no line with id 999"),
    ({**GOOD, "enabled": "no"}, "enabled", "true or false"),
    ({**GOOD, "protocol_config": {"unit_id": -1}}, "protocol_config.unit_id", "0 to 255"),
    ({**GOOD, "protocol_config": "unit 1"}, "protocol_config", "must be an object"),
    ({**GOOD, "protocol": "S7", "protocol_config": {"cpu_type": "S5"}}, "protocol_config.cpu_type", "not supported"),
    ({**GOOD, "protocol": "ETHERNET_IP", "protocol_config": {"slot": "A"}}, "protocol_config.slot", "not a slot"),
    ({**GOOD, "protocol": "OPCUA", "protocol_config": {"endpoint": "opc.tcp://"}}, "protocol_config.endpoint",
     "opc.tcp://host"),
    ({**GOOD, "protocol": "OPCUA", "protocol_config": {"password": "***", "username": "u"}},
     "protocol_config.password", "none is stored"),
    ({**GOOD, "ipaddress": "1.2.3.4"}, "ipaddress", "did you mean 'ip_address'"),
    ({**GOOD, "tags": [{"name": "G", "address": "HR99999", "data_type": "UINT16"}]}, "tags[0].address",
     "expected HR"),
    ({**GOOD, "tags": [{"name": "G", "address": "HR0", "data_type": "UINT16", "role": "counter.good"},
                       {"name": "H", "address": "HR1", "data_type": "UINT16", "role": "counter.good"}]},
     "tags[1].role", "a role belongs to one tag"),
    ({**GOOD, "tags": [{"name": "T", "address": "HR0", "data_type": "FLOAT32", "role": "counter.total"}]},
     "tags[0].role", "whole-number type"),
    ({**GOOD, "tags": "HR0"}, "tags", "must be a list"),
])
def test_machine_validation_branches(app, body, field, expected):
    status, answer = app.client.post("/api/plc/machines/", body)
    assert status == 400, answer
    assert answer["error"] == "invalid_input" and expected in answer["fields"][field], answer
    assert field in answer["message"]


def test_requests_that_are_not_json_objects(app):
    api = app.client
    status, answer = api.post("/api/plc/machines/", raw=b"name=x", content_type="application/x-www-form-urlencoded")
    assert status == 400 and "body" in answer["fields"]
    status, answer = api.post("/api/plc/machines/", [GOOD])
    assert status == 400 and "body" in answer["fields"]
    status, answer = api.get("/api/plc/machines/?page=0&page_size=1000")
    assert status == 400 and set(answer["fields"]) == {"page", "page_size"}
    status, answer = api.get("/api/plc/machines/NOPE/")
    assert status == 404 and answer["error"] == "not_found"


def test_existing_machine_validation_branches(app, plant):
    api = app.client
    status, m = api.post("/api/plc/machines/", {**GOOD, "machine_id": "VAL-2", "tags": [
        {"name": "G", "address": "HR0", "data_type": "UINT16"}]})
    assert status == 201, m
    status, answer = api.post("/api/plc/machines/", {**GOOD, "machine_id": "VAL-2"})
    assert status == 400 and "already used by machine" in answer["fields"]["machine_id"]
    status, answer = api.put("/api/plc/machines/VAL-2/", {"name": "only a name"})
    assert status == 400 and set(answer["fields"]) == {"machine_id", "protocol", "ip_address"}
    status, answer = api.patch("/api/plc/machines/VAL-2/", {"protocol": "S7"})
    assert status == 400 and "send the tag list for the new protocol" in answer["fields"]["tags"]
    status, answer = api.patch("/api/plc/machines/VAL-2/", {"protocol_config": {"zero_based": False}})
    assert status == 400 and "tags[0].address" in answer["fields"]  # HR0 does not exist 1-based
    status, answer = api.put("/api/plc/machines/VAL-2/tags/", [{"name": "G", "address": "HR0", "data_type": "UINT16",
                                                                "role": "state.bogus"}])
    assert status == 400 and "is not a role" in answer["fields"]["tags[0].role"]
    status, answer = api.put("/api/plc/machines/VAL-2/tags/", {"tag": []})
    assert status == 400 and "tag" in answer["fields"]
    status, answer = api.post("/api/plc/machines/VAL-2/discover_tags/", {"table": "XX", "count": 0})
    assert status == 400 and set(answer["fields"]) == {"table", "count"}
    status, answer = api.post("/api/plc/machines/VAL-2/discover_tags/", {"root": "ns=2"})
    assert status == 400 and "root" in answer["fields"] and "for MODBUS discovery" in answer["fields"]["root"]
    status, answer = api.post("/api/plc/machines/VAL-2/test_connection/", {"probe_address": "", "colour": 1})
    assert status == 400 and "colour" in answer["fields"]
    status, answer = api.post("/api/plc/test-connection/", {"protocol": "MODBUS", "ip_address": "127.0.0.1",
                                                            "port": "502", "timeout_s": 99})
    assert status == 400 and set(answer["fields"]) == {"port", "timeout_s"}
    api.delete("/api/plc/machines/VAL-2/")


@pytest.mark.parametrize("kind, body, field, expected", [
    ("sites", {"name": "S", "timezone": "Moon/Base"}, "timezone", "IANA"),
    ("areas", {"name": "A", "site": 4242}, "site", "no site with id 4242"),
    ("lines", {"name": "L"}, "area", "required"),
    ("products", {"code": "P", "ideal_cycle_time_s": 0}, "ideal_cycle_time_s", "above 0"),
    ("reasons", {"code": "R", "name": "Jam", "planned": True, "loss_category": "idling_minor_stops"},
     "loss_category", "is a loss category"),
    ("calendars", {"name": "C", "shifts": [{"name": "A", "start": "25:00", "end": "06:00"}]}, "shifts[0].start",
     "HH:MM"),
])
def test_plant_settings_validation_branches(app, kind, body, field, expected):
    status, answer = app.client.post(f"/api/config/{kind}/", body)
    assert status == 400 and expected in answer["fields"][field], answer


def test_plant_settings_crud(app):
    api = app.client
    status, site = api.post("/api/config/sites/", {"name": "Northside", "timezone": "Europe/Berlin"})
    assert status == 201
    status, area = api.post("/api/config/areas/", {"name": "Pressing", "site": site["id"]})
    status, line = api.post("/api/config/lines/", {"name": "Press line 1", "area": area["id"]})
    assert status == 201 and line["path"] == "Northside/Pressing/Press line 1"
    assert api.post("/api/config/sites/", {"name": "Northside"})[1]["fields"]["name"].endswith("must be unique")
    status, product = api.post("/api/config/products/", {"code": "B-7", "name": "Bracket", "ideal_cycle_time_s": 4.5})
    status, product = api.patch(f"/api/config/products/{product['id']}/", {"ideal_cycle_time_s": 4.0})
    assert status == 200 and product["ideal_cycle_time_s"] == 4.0 and product["name"] == "Bracket"
    status, cal = api.post("/api/config/calendars/", {"name": "Two shifts", "timezone": "Europe/Berlin", "shifts": [
        {"name": "Early", "start": "06:00", "end": "14:00", "weekdays": "01234",
         "breaks": [{"name": "Lunch", "start": "10:00", "duration_s": 1800}]}]})
    assert status == 201 and cal["shifts"][0]["breaks"][0]["duration_s"] == 1800
    status, m = api.post("/api/plc/machines/", {**GOOD, "machine_id": "PRESS-4", "line": line["id"]})
    assert status == 201 and m["line_name"] == "Northside/Pressing/Press line 1"
    status, gone = api.delete(f"/api/config/sites/{site['id']}/")
    assert status == 200 and gone["impact"] == {"areas": 1, "lines": 1, "machines_unassigned": 1}
    assert api.get("/api/plc/machines/PRESS-4/")[1]["line"] is None
    assert api.get(f"/api/config/lines/{line['id']}/")[0] == 404
    api.delete("/api/plc/machines/PRESS-4/")


# --- tests that fail explain themselves -----------------------------------------------------------------------------

def test_a_failed_connection_test_says_which_step_and_what_to_try(app, plant):
    api = app.client
    modbus = endpoint(plant, "MODBUS")
    status, result = api.post("/api/plc/test-connection/", {"protocol": "MODBUS", "ip_address": "127.0.0.1",
                                                            "port": 1})
    assert status == 200 and result["ok"] is False and result["error"] == "cannot_connect"
    assert result["steps"][-1]["name"] == "tcp" and "check the port number" in result["suggestion"]
    status, result = api.post("/api/plc/test-connection/", {"protocol": "MODBUS", "ip_address": "127.0.0.1",
                                                            "port": modbus["port"],
                                                            "protocol_config": {"unit_id": 7}})
    assert result["ok"] is False and result["error"] == "device_error" and "unit id" in result["suggestion"]
    s7 = endpoint(plant, "S7")
    status, result = api.post("/api/plc/test-connection/", {"protocol": "S7", "ip_address": "127.0.0.1",
                                                            "port": s7["port"], "protocol_config": {"rack": 0},
                                                            "probe_address": "DB9.DBW0"})
    assert result["ok"] is False and result["error"] == "invalid_address" and "DB9" in result["message"]
    assert result["suggestion"]
    logix = endpoint(plant, "ETHERNET_IP")
    status, result = api.post("/api/plc/test-connection/", {"protocol": "ETHERNET_IP", "ip_address": "127.0.0.1",
                                                            "port": logix["port"], "protocol_config": {"slot": 0},
                                                            "probe_address": "NoSuchTag"})
    assert result["ok"] is False and result["error"] == "invalid_address", result


def test_discovery_of_an_unreachable_plc_is_a_502_with_a_suggestion(app):
    api = app.client
    status, _ = api.post("/api/plc/machines/", {**GOOD, "machine_id": "GONE-1"})
    status, answer = api.post("/api/plc/machines/GONE-1/discover_tags/", {"table": "HR", "count": 10})
    assert status == 502 and answer["error"] == "cannot_connect" and answer["suggestion"], answer
    api.delete("/api/plc/machines/GONE-1/")


# --- passwords -------------------------------------------------------------------------------------------------------

def test_a_password_is_never_sent_back(app, plant):
    api = app.client
    opcua = endpoint(plant, "OPCUA")
    body = {"name": "Pal", "machine_id": "PWD-1", "protocol": "OPCUA", "enabled": False,
            "protocol_config": {"endpoint": opcua["protocol_config"]["endpoint"], "username": "operator",
                                "password": "hunter2-secret"}}
    status, m = api.post("/api/plc/machines/", body)
    assert status == 201 and m["protocol_config"]["password"] == "***"
    texts = [api.get(p)[1] for p in ("/api/plc/machines/", "/api/plc/machines/PWD-1/", "/api/config/export",
                                     "/api/config/export?format=json")]
    status, m = api.patch("/api/plc/machines/PWD-1/", {"name": "Palletiser", "protocol_config": m["protocol_config"]})
    texts.append(m)
    status, m = api.put("/api/plc/machines/PWD-1/", {**body, "protocol_config": {**body["protocol_config"],
                                                                                 "password": "***"}})
    texts.append(m)
    # a stored password only goes to the server it was given for: a new endpoint needs it again
    status, refused = api.patch("/api/plc/machines/PWD-1/", {"protocol_config": {
        "endpoint": "opc.tcp://localhost:4999/oee/", "username": "operator", "password": "***"}})
    assert status == 400 and "give the password again" in refused["fields"]["protocol_config.password"], refused
    texts.append(refused)
    status, moved = api.patch("/api/plc/machines/PWD-1/", {"protocol_config": {
        "endpoint": "opc.tcp://localhost:4999/oee/", "username": "operator", "password": "hunter2-secret"}})
    assert status == 200 and (moved["ip_address"], moved["port"]) == ("localhost", 4999), moved
    texts.append(moved)
    assert all("hunter2" not in str(t) for t in texts)
    with sqlite3.connect(app.data_db) as conn:
        stored = conn.execute("SELECT protocol_config FROM connections WHERE name = 'PWD-1'").fetchone()[0]
    assert "hunter2" not in stored  # stored encrypted (keys.credentials), and kept when '***' came back
    key = Credentials.from_data_dir(app.data_db.parent)
    assert key.open(json.loads(stored))["password"] == "hunter2-secret"
    api.delete("/api/plc/machines/PWD-1/")


# --- YAML export and import ------------------------------------------------------------------------------------------

def test_configuration_round_trip_through_yaml_over_the_api(app, plant):
    api = app.client
    api.post("/api/config/products/", {"code": "RT-1", "name": "Round trip", "ideal_cycle_time_s": 2.0})
    api.post("/api/config/reasons/", {"code": "RT-JAM", "name": "Jam", "loss_category": "idling_minor_stops"})
    status, m = api.post("/api/plc/machines/", machine_body(plant, "MODBUS", "RT-MODBUS", enabled=False))
    assert status == 201
    status, text = api.get("/api/config/export")
    assert status == 200 and text.startswith("# OEE configuration")
    doc = yaml.safe_load(text)
    assert any(x["machine_id"] == "RT-MODBUS" and len(x["tags"]) == 29 for x in doc["machines"])

    status, checked = api.post("/api/config/import?dry_run=true", raw=text.encode(), content_type="application/yaml")
    assert status == 200 and checked["valid"] and not checked["applied"]
    doc["machines"] = [x for x in doc["machines"] if x["machine_id"] == "RT-MODBUS"]
    doc["machines"][0]["name"] = "Renamed by import"
    doc["machines"][0]["tags"][0]["address"] = "HR9999"  # still a valid address: accepted
    status, done = api.post("/api/config/import", raw=yaml.safe_dump(doc).encode(), content_type="application/yaml")
    assert status == 200 and done["summary"]["machines"] == {"created": 0, "updated": 1}, done
    assert api.get("/api/plc/machines/RT-MODBUS/")[1]["name"] == "Renamed by import"

    doc["machines"][0]["tags"][1]["role"] = "counter.bogus"
    doc["machines"][0]["name"] = "Not saved"
    doc["products"] = [{"code": "RT-2", "ideal_cycle_time_s": -1}]
    status, answer = api.post("/api/config/import", raw=yaml.safe_dump(doc).encode(), content_type="application/yaml")
    assert status == 400 and "machines[0].tags[1].role" in answer["fields"]
    assert "products[0].ideal_cycle_time_s" in answer["fields"]
    assert api.get("/api/plc/machines/RT-MODBUS/")[1]["name"] == "Renamed by import"  # nothing applied
    status, answer = api.post("/api/config/import", raw=b"machines: [\n  - a: b\n bad", content_type="application/yaml")
    assert status == 400 and "not valid YAML" in answer["message"] and list(answer["fields"])[0].startswith("line ")
    api.delete("/api/plc/machines/RT-MODBUS/")
