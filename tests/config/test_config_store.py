"""config.store on SQLite and PostgreSQL: one transaction per save, history removed with what it belonged to,
and the whole configuration through YAML and back."""
from __future__ import annotations

import time

import pytest
import yaml
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from config import store as cs
from config.fields import ValidationError
from config.plant_file import validate_document
from config.validation import validate_machine
from db.models import Connection, Machine, Tag
from db.store import open_store
from keys.credentials import Credentials


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    url = f"sqlite:///{tmp_path / 'oee.sqlite3'}" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    s = open_store(url)
    yield s
    s.close()


MACHINE = {"name": "Wrapper", "machine_id": "LINE-021", "protocol": "MODBUS", "ip_address": "127.0.0.1",
           "port": 5020, "protocol_config": {"unit_id": 1},
           "tags": [{"name": "GoodCount", "address": "HR2", "data_type": "UINT32", "role": "counter.good"},
                    {"name": "Running", "address": "C0", "data_type": "BOOL", "role": "state.running"}]}

DOCUMENT = """
version: 1
sites:
- name: Riverside
  timezone: America/Chicago
  areas:
  - name: End of Line
    lines: [Palletising, Wrapping]
products:
- {code: '1001', name: Cola 0.5 l, ideal_cycle_time_s: 1.2}
reason_codes:
- {code: JAM, name: Film jam, planned: false, loss_category: idling_minor_stops}
- {code: PM, name: Maintenance, planned: true, loss_category: planned_maintenance}
calendars:
- name: Three shifts
  timezone: America/Chicago
  shifts:
  - {name: A, start: '06:00', end: '14:00', weekdays: '01234',
     breaks: [{name: Lunch, start: '10:00', duration_s: 1800}]}
  - {name: C, start: '22:00', end: '06:00', weekdays: '01234', breaks: []}
machines:
- machine_id: LINE-011
  name: Palletiser 1
  description: OPC-UA palletiser
  line: Riverside/End of Line/Palletising
  protocol: OPCUA
  ip_address: 127.0.0.1
  port: 4840
  protocol_config: {endpoint: 'opc.tcp://127.0.0.1:4840/oee/', username: operator, password: s3cret}
  poll_interval_ms: 500
  enabled: true
  tags:
  - {name: GoodCount, address: 'nsu=urn:oee:plant;s=LINE-011.GoodCount', data_type: Int32, role: counter.good,
     options: {rollover: 1000000}}
  - {name: Temperature1, address: 'nsu=urn:oee:plant;s=LINE-011.Temperature1', data_type: Double, scale: 1.8,
     offset: 32.0, deadband: 0.5, sampling_interval_ms: 5000, report_by_exception: true}
- machine_id: LINE-015
  name: Wrapper 1
  line: Riverside/End of Line/Wrapping
  protocol: MODBUS
  ip_address: 127.0.0.1
  port: 5020
  protocol_config: {unit_id: 1, zero_based: true}
  enabled: false
  tags:
  - {name: ProductionCount, address: HR0, data_type: UINT32, role: counter.total}
"""


def test_a_machine_is_saved_whole_or_not_at_all(store):
    engine = store.engine
    clean = validate_machine(MACHINE)
    broken = {**clean, "tags": clean["tags"] + [dict(clean["tags"][0])]}  # a duplicate name only the DB refuses
    with pytest.raises(ValidationError) as info:
        cs.create_machine(engine, broken, backend=store.backend_name)
    assert "refused" in info.value.fields["body"]
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(Machine)) == 0
        assert session.scalar(select(func.count()).select_from(Connection)) == 0
        assert session.scalar(select(func.count()).select_from(Tag)) == 0
    saved = cs.create_machine(engine, clean, backend=store.backend_name)
    assert saved["tag_count"] == 2 and saved["protocol_config"]["unit_id"] == 1


def test_duplicates_and_missing_lines_are_named(store):
    engine = store.engine
    cs.create_machine(engine, validate_machine(MACHINE))
    with pytest.raises(ValidationError) as info:
        cs.create_machine(engine, validate_machine({**MACHINE, "line": 4242}))
    assert "already used by machine" in info.value.fields["machine_id"]
    assert "no line with id 4242" in info.value.fields["line"]
    site = cs.create_item(engine, "sites", {"name": "S", "timezone": "UTC"})
    with pytest.raises(ValidationError) as info:
        cs.create_item(engine, "sites", {"name": "S", "timezone": "UTC"})
    assert "must be unique" in info.value.fields["name"]
    with pytest.raises(ValidationError) as info:
        cs.create_item(engine, "areas", {"name": "A", "site": site["id"] + 100})
    assert "no site with id" in info.value.fields["site"]


def test_tags_keep_their_ids_and_a_removed_tag_takes_its_history(store):
    engine = store.engine
    m = cs.create_machine(engine, validate_machine(MACHINE))
    before = {t["name"]: t["id"] for t in cs.machine_tags(engine, m["id"])}
    with engine.begin() as conn:
        for tid in before.values():
            conn.execute(text("INSERT INTO samples (time, tag_id, value, quality) VALUES (:t, :id, 1, 0)"),
                         {"t": _now(store), "id": tid})
    tags = validate_machine({**MACHINE, "tags": [MACHINE["tags"][0], {"name": "Faulted", "address": "C1",
                                                                      "data_type": "BOOL"}]})["tags"]
    after = {t["name"]: t["id"] for t in cs.replace_tags(engine, m["id"], tags, backend=store.backend_name)}
    assert after["GoodCount"] == before["GoodCount"] and "Running" not in after
    with engine.connect() as conn:
        ids = set(conn.execute(text("SELECT tag_id FROM samples")).scalars())
    assert ids == {before["GoodCount"]}


def _now(store):
    from db.backend import db_time

    return db_time(store.backend_name, time.time())


def test_deleting_a_machine_removes_its_history_and_says_how_much(store):
    engine = store.engine
    m = cs.create_machine(engine, validate_machine(MACHINE))
    other = cs.create_machine(engine, validate_machine({**MACHINE, "machine_id": "LINE-022", "name": "Other"}))
    tag_ids = [t["id"] for pk in (m["id"], other["id"]) for t in cs.machine_tags(engine, pk)]
    with engine.begin() as conn:
        for tid in tag_ids:
            conn.execute(text("INSERT INTO samples (time, tag_id, value, quality) VALUES (:t, :id, 1, 0)"),
                         {"t": _now(store), "id": tid})
        for pk in (m["id"], other["id"]):
            conn.execute(text('INSERT INTO machine_states (machine_id, start, "end", state) VALUES (:m, :t, NULL, '
                              "'running')"), {"m": pk, "t": _now(store)})
    impact = cs.deletion_impact(engine, m["id"])
    assert impact == {"machine_id": "LINE-021", "name": "Wrapper", "tags": 2, "samples": 2, "states": 1,
                      "counts": 0, "downtime_events": 0}
    assert cs.delete_machine(engine, m["id"], backend=store.backend_name) == impact
    with pytest.raises(cs.NotFound):
        cs.get_machine(engine, m["id"])
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM samples")).scalar() == 2  # the other machine's
        assert conn.execute(text("SELECT count(*) FROM machine_states")).scalar() == 1
    assert cs.get_machine(engine, other["id"])["tag_count"] == 2


KEY = Credentials(b"k" * 32)  # passwords are stored encrypted with the installation's key (keys.credentials)


def test_configuration_round_trip_through_yaml(store, tmp_path):
    engine = store.engine
    doc = validate_document(yaml.safe_load(DOCUMENT), **cs.import_context(engine))
    with pytest.raises(ValidationError) as info:  # never a password in plain text: without a key, nothing is saved
        cs.import_document(engine, doc, backend=store.backend_name)
    assert "OEE_SECRET_KEY" in info.value.fields["protocol_config.password"]
    assert cs.list_machines(engine)[0] == 0
    summary = cs.import_document(engine, doc, backend=store.backend_name, credentials=KEY)
    assert summary["machines"] == {"created": 2, "updated": 0} and summary["lines"]["created"] == 2
    exported = cs.export_document(engine)
    text_out = yaml.safe_dump(exported, sort_keys=False, allow_unicode=True)
    assert "s3cret" not in text_out and "password: '***'" in text_out
    # Into the same database again: nothing changes, the stored password stays.
    again = validate_document(yaml.safe_load(text_out), **cs.import_context(engine))
    summary = cs.import_document(engine, again, backend=store.backend_name, credentials=KEY)
    assert all(v["created"] == 0 for v in summary.values())
    assert cs.export_document(engine) == exported
    pk = cs.find_machine(engine, "LINE-011")
    assert KEY.open(cs.get_machine(engine, pk)["protocol_config"])["password"] == "s3cret"
    assert cs.get_machine(engine, cs.find_machine(engine, "LINE-015"))["enabled"] is False
    # Into a fresh database: a '***' password has nothing to stand for, and the file says where.
    fresh = open_store(f"sqlite:///{tmp_path / 'fresh.sqlite3'}")
    try:
        with pytest.raises(ValidationError) as info:
            validate_document(yaml.safe_load(text_out), **cs.import_context(fresh.engine))
        assert list(info.value.fields) == ["machines[0].protocol_config.password"]
        moved = yaml.safe_load(text_out)
        moved["machines"][0]["protocol_config"]["password"] = "s3cret"
        cs.import_document(fresh.engine, validate_document(moved, **cs.import_context(fresh.engine)), credentials=KEY)
        assert cs.export_document(fresh.engine) == exported
    finally:
        fresh.close()


def test_hierarchy_deletes_say_what_goes_with_them(store):
    engine = store.engine
    doc = validate_document(yaml.safe_load(DOCUMENT))
    cs.import_document(engine, doc, credentials=KEY)
    site = cs.list_items(engine, "sites")[1][0]
    assert cs.item_impact(engine, "sites", site["id"]) == {"areas": 1, "lines": 2, "machines_unassigned": 2}
    cs.delete_item(engine, "sites", site["id"])
    assert cs.list_items(engine, "lines") == (0, [])
    assert cs.get_machine(engine, cs.find_machine(engine, "LINE-011"))["line"] is None


SETTINGS_DOCUMENT = """
version: 1
calendars:
- {name: Days, timezone: UTC, shifts: [{name: A, start: '06:00', end: '14:00'}]}
- {name: Nights, timezone: UTC, shifts: [{name: C, start: '22:00', end: '06:00'}]}
sites:
- name: Riverside
  timezone: UTC
  micro_stop_threshold_s: 90
  areas:
  - name: Packaging
    lines: [{name: Bottling, calendar: Days}, Canning]
machines:
- machine_id: LINE-031
  name: Filler
  line: Riverside/Packaging/Bottling
  protocol: MODBUS
  ip_address: 127.0.0.1
  calendar: Nights
  state_code_map: {1: running, 3: faulted, 7: changeover}
  ideal_cycle_time_s: 1.5
  micro_stop_threshold_s: 45
  fault_codes:
  - {code: 42, text: Jam at infeed}
  - {code: 900, text: Cleaning, kind: planned_stop}
- {machine_id: LINE-032, name: Capper, line: Riverside/Packaging/Bottling, protocol: MODBUS, ip_address: 127.0.0.1}
"""


def test_machine_settings_through_the_file_the_store_and_the_audit_log(store):
    """On SQLite and PostgreSQL: the file's settings land, inherit, come back out the same, and each change of
    them is one audit entry with its before and after."""
    engine = store.engine
    cs.import_document(engine, validate_document(yaml.safe_load(SETTINGS_DOCUMENT), **cs.import_context(engine)))
    filler = cs.get_machine(engine, cs.find_machine(engine, "LINE-031"))
    assert (filler["calendar"], filler["state_code_map"], filler["ideal_cycle_time_s"],
            filler["micro_stop_threshold_s"]) == ("Nights", {"1": "running", "3": "faulted", "7": "changeover"}, 1.5,
                                                  45)
    assert filler["fault_codes"] == [{"code": 42, "text": "Jam at infeed", "kind": "fault"},
                                     {"code": 900, "text": "Cleaning", "kind": "planned_stop"}]
    capper = cs.get_machine(engine, cs.find_machine(engine, "LINE-032"))
    assert capper["calendar"] is None and capper["effective_calendar"]["from"] == "line"
    assert capper["effective_calendar"]["name"] == "Days"
    assert capper["effective_micro_stop_threshold_s"] == {"value": 90, "from": "site"}
    exported = cs.export_document(engine)
    again = validate_document(yaml.safe_load(yaml.safe_dump(exported)), **cs.import_context(engine))
    cs.import_document(engine, again)
    assert cs.export_document(engine) == exported  # the round trip changes nothing

    body = {k: v for k, v in filler.items() if k not in ("id", "connection_id", "tag_count", "line_name")}
    cs.update_machine(engine, filler["id"], validate_machine({**body, "calendar": "Days", "fault_codes": [
        {"code": 42, "text": "Jam at the infeed star", "kind": "fault"}], "state_code_map": None}))
    with Session(engine) as session:
        entry = session.execute(text("SELECT before, after FROM audit_log WHERE action = 'machine.update' "
                                     "ORDER BY id DESC")).first()
    before, after = (v if isinstance(v, dict) else __import__("json").loads(v) for v in entry)
    assert (before["calendar"], after["calendar"]) == ("Nights", "Days")
    assert before["state_code_map"] == {"1": "running", "3": "faulted", "7": "changeover"}
    assert after["state_code_map"] is None
    assert after["fault_codes"] == [{"code": 42, "text": "Jam at the infeed star", "kind": "fault"}]
    # a calendar goes: its machines and lines fall back, and the delete says so first
    pk = next(c["id"] for c in cs.list_items(engine, "calendars")[1] if c["name"] == "Days")
    assert cs.item_impact(engine, "calendars", pk) == {"shifts": 1, "machines_uncalendared": 1,
                                                       "lines_uncalendared": 1}
    cs.delete_item(engine, "calendars", pk)
    filler = cs.get_machine(engine, filler["id"])
    assert filler["calendar"] is None and filler["effective_calendar"]["text"] == "no calendar: every hour is planned"
