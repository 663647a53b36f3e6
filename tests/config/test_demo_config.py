"""The demo is never privileged: its configuration (calendars, state codes, products' ideal cycle times, reason
codes) is written as a configuration file a user could import, on real SQLite and PostgreSQL; what it sets comes
back out of the export and goes into a fresh database through the user's import alone; a restart of the demo keeps
what a user changed on a demo machine."""
from __future__ import annotations

import pytest
import yaml

from config import store as cs
from config.demo_plant import ensure_reason_codes, sync_demo_plant
from config.plant_file import validate_document
from config.validation import validate_machine
from db import audit
from db.store import open_store
from plant import default_layout
from processes.demo import demo_calendars, demo_reasons


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    url = f"sqlite:///{tmp_path / 'oee.sqlite3'}" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    s = open_store(url)
    yield s
    s.close()


def seed(store, port: int = 1) -> dict:
    layout = default_layout()
    endpoints = [{"machine_id": m.id, "name": m.name, "protocol": m.protocol, "host": "127.0.0.1", "port": port,
                  "area": m.area, "line": m.line,
                  "protocol_config": {"group_id": "DemoPlant", "edge_node_id": f"{m.id}-gw", "device_id": m.id}
                  if m.protocol == "SPARKPLUG_B" else {},
                  "tags": [{"name": "State", "address": "State" if m.protocol in ("ETHERNET_IP", "SPARKPLUG_B") else {
                      "S7": "DB1.DBW12", "OPCUA": f"ns=2;s={m.id}.State", "MODBUS": "HR6"}[m.protocol],
                            "data_type": {"ETHERNET_IP": "DINT", "S7": "INT", "OPCUA": "Int32", "MODBUS": "UINT16",
                                          "SPARKPLUG_B": "INT32"}[m.protocol], "role": "state.code",
                            "writable": False}]}
                 for m in layout.machines]
    products = {p.code: p for m in layout.machines for p in m.products}
    calendars, assignment = demo_calendars(layout)
    ids = sync_demo_plant(store.engine, {"name": layout.site_name, "timezone": layout.timezone}, endpoints,
                          [{"code": c, "name": p.name, "ideal_cycle_time": p.ideal_cycle_time}
                           for c, p in products.items()], calendars, assignment, backend=store.backend_name)
    ensure_reason_codes(store.engine, demo_reasons(layout), backend=store.backend_name)
    return ids


def test_what_the_demo_sets_a_user_sets_through_the_file(store, tmp_path):
    ids = seed(store)
    engine = store.engine
    doc = cs.export_document(engine)
    assert len(doc["machines"]) == 16 and doc["calendars"] and doc["products"] and doc["reason_codes"]
    for m in doc["machines"]:
        assert m["calendar"] in {c["name"] for c in doc["calendars"]}
        assert m["state_code_map"] == {"1": "running", "2": "idle", "3": "blocked", "4": "faulted",
                                       "5": "planned_stop", "6": "changeover"}
    _, entries = audit.list_entries(engine)
    assert {e["action"] for e in entries} == {"settings.import"}  # the user's import, nothing written beside it
    assert cs.get_machine(engine, ids["LINE-001"])["effective_calendar"]["from"] == "machine"

    fresh = open_store(f"sqlite:///{tmp_path / 'user.sqlite3'}")
    try:
        text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)
        cs.import_document(fresh.engine, validate_document(yaml.safe_load(text), **cs.import_context(fresh.engine)))
        assert cs.export_document(fresh.engine) == doc  # a user's own file gives the same plant
    finally:
        fresh.close()


def test_a_restart_of_the_demo_keeps_what_a_user_changed(store):
    ids = seed(store, port=1)
    engine = store.engine
    pk = ids["LINE-003"]
    m = cs.get_machine(engine, pk)
    body = {k: v for k, v in m.items() if k not in ("id", "connection_id", "tag_count", "line_name")}
    cs.update_machine(engine, pk, validate_machine({
        **body, "micro_stop_threshold_s": 30, "enabled": False, "state_code_map": {"1": "running", "4": "faulted"},
        "fault_codes": [{"code": 101, "text": "Infeed jam", "kind": "fault"}], "ideal_cycle_time_s": 0.5}))
    seed(store, port=2)  # the simulated PLCs came back on other ports
    m = cs.get_machine(engine, pk)
    assert m["port"] == 2
    assert (m["micro_stop_threshold_s"], m["enabled"], m["ideal_cycle_time_s"]) == (30, False, 0.5)
    assert m["state_code_map"] == {"1": "running", "4": "faulted"}
    assert m["fault_codes"] == [{"code": 101, "text": "Infeed jam", "kind": "fault"}]
    assert cs.get_machine(engine, ids["LINE-001"])["state_code_map"]["6"] == "changeover"
