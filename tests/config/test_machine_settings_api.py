"""A machine's own settings through the REST API of `python app.py`: calendar (by name; null: the line's), state
code map, ideal cycle time, micro-stop threshold (null: the site's) and fault table. Each goes in with POST, PUT
and PATCH, comes back from GET, goes back to "inherit" with null, is refused with an error naming the field and
the entry, and is written to the audit log with its before and after."""
from __future__ import annotations

import pytest
import yaml

from tests.config.conftest import Client

MAP = {"1": "running", "3": "faulted", "7": "changeover"}
FAULTS = [{"code": 42, "text": "Jam at infeed", "kind": "fault"},
          {"code": 900, "text": "Cleaning", "kind": "planned_stop"}]


def machine(machine_id: str, **extra) -> dict:
    return {"name": f"Settings {machine_id}", "machine_id": machine_id, "protocol": "MODBUS", "ip_address": "127.0.0.1",
            "port": 5020, "enabled": False, **extra}  # never polled: the settings are the point


@pytest.fixture(scope="module")
def plant_settings(app):
    """Two calendars, a site with a micro-stop default, a line on the day calendar."""
    api = app.client
    ids = {}
    for name, start, end in (("Days", "06:00", "14:00"), ("Nights", "22:00", "06:00")):
        status, cal = api.post("/api/config/calendars/", {"name": name, "timezone": "UTC", "shifts": [
            {"name": name[0], "start": start, "end": end}]})
        assert status == 201, cal
        ids[name] = cal["id"]
    status, site = api.post("/api/config/sites/", {"name": "Settings site", "micro_stop_threshold_s": 90})
    assert status == 201 and site["micro_stop_threshold_s"] == 90, site
    _, area = api.post("/api/config/areas/", {"name": "Settings area", "site": site["id"]})
    status, line = api.post("/api/config/lines/", {"name": "Settings line", "area": area["id"], "calendar": "Days"})
    assert status == 201 and line["calendar"] == "Days", line
    return {"site": site["id"], "line": line["id"], **ids}


def test_every_setting_round_trips_and_null_inherits(app, plant_settings):
    api = app.client
    status, m = api.post("/api/plc/machines/", machine("SET-1", line=plant_settings["line"]))
    assert status == 201, m
    assert (m["calendar"], m["state_code_map"], m["ideal_cycle_time_s"], m["micro_stop_threshold_s"],
            m["fault_codes"]) == (None, None, None, None, [])
    assert m["effective_calendar"] == {"id": plant_settings["Days"], "name": "Days", "from": "line",
                                       "text": "Days (the line's)"}
    assert m["effective_micro_stop_threshold_s"] == {"value": 90, "from": "site"}

    status, m = api.patch("/api/plc/machines/SET-1/", {
        "calendar": "Nights", "state_code_map": MAP, "ideal_cycle_time_s": 1.5, "micro_stop_threshold_s": 45,
        "fault_codes": FAULTS})
    assert status == 200, m
    got = api.get("/api/plc/machines/SET-1/")[1]
    assert (got["calendar"], got["state_code_map"], got["ideal_cycle_time_s"], got["micro_stop_threshold_s"],
            got["fault_codes"]) == ("Nights", MAP, 1.5, 45, FAULTS)
    assert got["effective_calendar"]["from"] == "machine" and got["effective_micro_stop_threshold_s"] == {
        "value": 45, "from": "machine"}

    # a GET's answer sent back unchanged is a valid PUT (read-only fields ignored), and changes nothing
    status, same = api.put("/api/plc/machines/SET-1/", got)
    assert status == 200 and {k: same[k] for k in MAP_KEYS} == {k: got[k] for k in MAP_KEYS}

    status, m = api.patch("/api/plc/machines/SET-1/", {k: None for k in MAP_KEYS})  # null: inherit
    assert status == 200, m
    assert (m["calendar"], m["state_code_map"], m["ideal_cycle_time_s"], m["micro_stop_threshold_s"],
            m["fault_codes"]) == (None, None, None, None, [])
    assert m["effective_calendar"]["name"] == "Days" and m["effective_micro_stop_threshold_s"]["from"] == "site"

    # PUT gives the whole machine: settings by calendar id, a preset's name for the codes
    status, m = api.put("/api/plc/machines/SET-1/", machine("SET-1", line=plant_settings["line"],
                                                            calendar=plant_settings["Nights"], state_code_map="packml",
                                                            ideal_cycle_time_s=2, fault_codes=FAULTS[:1]))
    assert status == 200, m
    assert m["calendar"] == "Nights" and m["state_code_map"]["6"] == "running" and m["ideal_cycle_time_s"] == 2
    assert m["fault_codes"] == FAULTS[:1] and m["micro_stop_threshold_s"] is None  # left out of a PUT: inherit

    # a PUT without the settings sets them back to inherit, as it does every other field it leaves out
    status, m = api.put("/api/plc/machines/SET-1/", machine("SET-1"))
    assert status == 200 and m["calendar"] is None and m["fault_codes"] == []
    assert m["effective_calendar"] == {"id": None, "name": None, "from": None,
                                       "text": "no calendar: every hour is planned"}
    assert m["effective_micro_stop_threshold_s"] == {"value": 90, "from": "site"}  # the plant's (first) site


MAP_KEYS = ("calendar", "state_code_map", "ideal_cycle_time_s", "micro_stop_threshold_s", "fault_codes")


def test_a_machine_created_with_its_settings(app, plant_settings):
    status, m = app.client.post("/api/plc/machines/", machine("SET-2", calendar="Days", state_code_map=MAP,
                                                              ideal_cycle_time_s=0.8, micro_stop_threshold_s=0,
                                                              fault_codes=FAULTS))
    assert status == 201, m
    got = app.client.get(f"/api/plc/machines/{m['id']}/")[1]
    assert {k: got[k] for k in MAP_KEYS} == {"calendar": "Days", "state_code_map": MAP, "ideal_cycle_time_s": 0.8,
                                            "micro_stop_threshold_s": 0, "fault_codes": FAULTS}
    assert got["effective_micro_stop_threshold_s"] == {"value": 0, "from": "machine"}  # 0 is a value, not "none"


@pytest.mark.parametrize("change, field, expected", [
    ({"state_code_map": {"3": "broken"}}, "state_code_map.3",
     "'broken' is not a state; use one of running, idle, blocked, faulted, planned_stop, changeover, offline, unknown"),
    ({"state_code_map": {"three": "faulted"}}, "state_code_map.three", "codes are whole numbers"),
    ({"state_code_map": "siemens"}, "state_code_map", "not a preset of state codes"),
    ({"state_code_map": [3]}, "state_code_map", "must be a map of the PLC's state codes"),
    ({"calendar": "Weekends"}, "calendar", "no shift calendar named 'Weekends' (there are: 'Days', 'Nights'"),
    ({"calendar": 99999}, "calendar", "no shift calendar with id 99999"),
    ({"calendar": ""}, "calendar", "the name or id of a shift calendar"),
    ({"ideal_cycle_time_s": 0}, "ideal_cycle_time_s", "above 0"),
    ({"ideal_cycle_time_s": "fast"}, "ideal_cycle_time_s", "above 0"),
    ({"micro_stop_threshold_s": -5}, "micro_stop_threshold_s", "from 0 to 86400"),
    ({"fault_codes": [{"code": 42, "text": "Jam"}, {"code": 42, "text": "Again"}]}, "fault_codes[1].code",
     "42 is already fault_codes[0]"),
    ({"fault_codes": [{"code": 0, "text": "None"}]}, "fault_codes[0].code", "0 means no fault"),
    ({"fault_codes": [{"code": 5, "text": "Hot", "kind": "alarm"}]}, "fault_codes[0].kind",
     "'alarm' is not a kind; use fault"),
    ({"fault_codes": [{"code": 5}]}, "fault_codes[0].text", "required"),
    ({"fault_codes": {"42": "Jam"}}, "fault_codes", "must be a list"),
])
def test_bad_settings_are_named_with_how_to_fix_them(app, plant_settings, change, field, expected):
    api = app.client
    status, answer = api.post("/api/plc/machines/", machine("SET-BAD", **change))
    assert status == 400 and expected in answer["fields"][field], answer
    if api.get("/api/plc/machines/SET-3/")[0] == 404:
        assert api.post("/api/plc/machines/", machine("SET-3"))[0] == 201
    status, answer = api.patch("/api/plc/machines/SET-3/", change)
    assert status == 400 and expected in answer["fields"][field], answer
    assert api.get("/api/plc/machines/SET-BAD/")[0] == 404


def test_lines_and_sites_carry_the_defaults_machines_inherit(app, plant_settings):
    api = app.client
    line = f"/api/config/lines/{plant_settings['line']}/"
    status, answer = api.patch(line, {"calendar": "Weekends"})
    assert status == 400 and "no shift calendar named 'Weekends'" in answer["fields"]["calendar"]
    assert api.post("/api/plc/machines/", machine("SET-4", line=plant_settings["line"]))[0] == 201
    status, ln = api.patch(line, {"calendar": plant_settings["Nights"]})
    assert status == 200 and ln["calendar"] == "Nights"
    assert api.get("/api/plc/machines/SET-4/")[1]["effective_calendar"]["name"] == "Nights"
    status, site = api.patch(f"/api/config/sites/{plant_settings['site']}/", {"micro_stop_threshold_s": None})
    assert status == 200 and site["micro_stop_threshold_s"] is None
    assert api.get("/api/plc/machines/SET-4/")[1]["effective_micro_stop_threshold_s"] == {"value": 120,
                                                                                          "from": "default"}
    status, answer = api.patch(f"/api/config/sites/{plant_settings['site']}/", {"micro_stop_threshold_s": -1})
    assert status == 400 and "micro_stop_threshold_s" in answer["fields"]
    assert api.patch(f"/api/config/sites/{plant_settings['site']}/", {"micro_stop_threshold_s": 90})[0] == 200
    assert api.patch(line, {"calendar": "Days"})[0] == 200


def test_the_audit_log_keeps_each_settings_change_before_and_after(app, plant_settings):
    api, admin = app.client, Client(app.port, app.token("admin"))
    assert api.post("/api/plc/machines/", machine("SET-5", calendar="Days"))[0] == 201
    assert api.patch("/api/plc/machines/SET-5/", {"calendar": "Nights", "state_code_map": MAP,
                                                  "ideal_cycle_time_s": 3, "micro_stop_threshold_s": 30,
                                                  "fault_codes": FAULTS})[0] == 200
    status, page = admin.get("/api/audit/?action=machine.update&target=machine+SET-5")
    assert status == 200 and page["results"], page
    entry = page["results"][0]
    assert {k: entry["before"][k] for k in MAP_KEYS} == {"calendar": "Days", "state_code_map": None,
                                                         "ideal_cycle_time_s": None, "micro_stop_threshold_s": None,
                                                         "fault_codes": []}
    assert {k: entry["after"][k] for k in MAP_KEYS} == {"calendar": "Nights", "state_code_map": MAP,
                                                        "ideal_cycle_time_s": 3, "micro_stop_threshold_s": 30,
                                                        "fault_codes": FAULTS}
    status, page = admin.get("/api/audit/?action=machine.create&target=machine+SET-5")
    assert page["results"][0]["after"]["calendar"] == "Days"
    line = f"/api/config/lines/{plant_settings['line']}/"
    assert api.patch(line, {"calendar": "Nights"})[0] == 200 and api.patch(line, {"calendar": "Days"})[0] == 200
    status, page = admin.get("/api/audit/?action=settings.line.update&target=line+Settings+site")
    assert [(e["before"]["calendar"], e["after"]["calendar"]) for e in page["results"][:2]] == [
        ("Nights", "Days"), ("Days", "Nights")], page


def test_yaml_export_and_import_keep_the_settings(app, plant_settings):
    api = app.client
    body = machine("SET-YAML", line=plant_settings["line"], calendar="Nights", state_code_map=MAP,
                   ideal_cycle_time_s=1.25, micro_stop_threshold_s=60, fault_codes=FAULTS)
    assert api.post("/api/plc/machines/", body)[0] == 201
    status, text = api.get("/api/config/export")
    assert status == 200
    doc = yaml.safe_load(text)
    entry = next(m for m in doc["machines"] if m["machine_id"] == "SET-YAML")
    assert {k: entry[k] for k in MAP_KEYS} == {k: body[k] for k in MAP_KEYS}
    site = next(s for s in doc["sites"] if s["name"] == "Settings site")
    assert site["micro_stop_threshold_s"] == 90
    assert site["areas"][0]["lines"] == [{"name": "Settings line", "calendar": "Days"}]

    # gone, then back from the file alone: the machine with its settings, the line with its calendar
    assert api.delete("/api/plc/machines/SET-YAML/")[0] == 200
    assert api.patch(f"/api/config/lines/{plant_settings['line']}/", {"calendar": None})[0] == 200
    assert api.patch(f"/api/config/sites/{plant_settings['site']}/", {"micro_stop_threshold_s": None})[0] == 200
    doc["machines"] = [entry]
    status, done = api.post("/api/config/import", raw=yaml.safe_dump(doc).encode(), content_type="application/yaml")
    assert status == 200 and done["summary"]["machines"] == {"created": 1, "updated": 0}, done
    got = api.get("/api/plc/machines/SET-YAML/")[1]
    assert {k: got[k] for k in MAP_KEYS} == {k: body[k] for k in MAP_KEYS}
    assert api.get(f"/api/config/lines/{plant_settings['line']}/")[1]["calendar"] == "Days"
    assert api.get(f"/api/config/sites/{plant_settings['site']}/")[1]["micro_stop_threshold_s"] == 90

    # a file naming a calendar it neither has nor finds, or a bad state, changes nothing and says where
    entry = {**entry, "calendar": "Weekends", "state_code_map": {"3": "broken"}}
    doc["machines"] = [entry]
    doc["sites"][0]["areas"][0]["lines"][0]["calendar"] = "Holidays"
    status, answer = api.post("/api/config/import", raw=yaml.safe_dump(doc).encode(), content_type="application/yaml")
    assert status == 400, answer
    assert "'Weekends' is not a calendar of this file or the database" in answer["fields"]["machines[0].calendar"]
    assert "'broken' is not a state" in answer["fields"]["machines[0].state_code_map.3"]
    assert any(k.endswith(".lines[0].calendar") for k in answer["fields"]), answer
    assert api.get("/api/plc/machines/SET-YAML/")[1]["calendar"] == "Nights"


def test_a_saved_state_code_map_reaches_the_running_collector(app, plant):
    """The simulated Modbus PLC polled live: PATCHing its state codes changes the state the collector derives
    at once, without a restart (the tracker keeps its counters)."""
    from tests.config.conftest import endpoint, wait_for

    ep = endpoint(plant, "MODBUS")
    tags = [{"name": t["name"], "address": t["address"], "data_type": t["data_type"], "role": t["role"]}
            for t in ep["tags"] if t["role"] in ("state.code", "counter.total")]
    body = {**machine("SET-LIVE"), "port": ep["port"], "protocol_config": ep["protocol_config"],
            "poll_interval_ms": 250, "enabled": True, "tags": tags}
    api = app.client
    assert api.post("/api/plc/machines/", body)[0] == 201
    first = wait_for(lambda: (lambda s: s if s in ("running", "idle", "blocked", "faulted", "planned_stop",
                                                   "changeover") else None)(
        api.get("/api/plc/machines/SET-LIVE/")[1]["state"]), timeout=30)
    every = {str(c): "changeover" for c in range(1, 7)}
    assert api.patch("/api/plc/machines/SET-LIVE/", {"state_code_map": every})[0] == 200
    wait_for(lambda: api.get("/api/plc/machines/SET-LIVE/")[1]["state"] == "changeover", timeout=30)
    assert first is not None
    api.delete("/api/plc/machines/SET-LIVE/")
