"""The audit log against `python app.py` (real HTTP, real SQLite and PostgreSQL): every configuration change
path writes exactly one entry with the right actor, action, before and after; a change that fails writes none;
secrets are masked; GET /api/audit/ filters and pages; /export/audit.csv reads back through pandas with formula
cells neutralised; the admin page shows the entries and keeps its filters in the URL.

There is no PLC write in the app yet (no route, no driver method writes a tag): tag.write has nothing to hook
onto, and nothing to test here until one exists.
"""
from __future__ import annotations

import io
import json
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from db import audit
from db.engine import make_engine
from tests.test_app import RunningApp


def token_for(app, role: str) -> str | None:
    """An API token of a user with this role, where the app has authentication (tests.support.auth)."""
    return app.token(role) if hasattr(app, "token") else None


def actor_for(app, role: str) -> str:
    """What the audit log records for requests made with token_for(app, role)."""
    if not hasattr(app, "token"):
        return "anonymous"
    return f"token:{app.user(role)}/tests"


class Api:
    def __init__(self, app, role: str):
        self.base = f"http://127.0.0.1:{app.port}"
        self.token = token_for(app, role)

    def headers(self) -> dict:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def call(self, method: str, path: str, body=None, *, raw: bytes | None = None,
             content_type: str = "application/json") -> tuple[int, object, dict]:
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        headers = self.headers()
        if data is not None:
            headers["Content-Type"] = content_type
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                status, body_text, hdrs = resp.status, resp.read().decode(), dict(resp.headers)
        except urllib.error.HTTPError as exc:
            status, body_text, hdrs = exc.code, exc.read().decode(), dict(exc.headers)
        ctype = hdrs.get("Content-Type", "")
        return status, (json.loads(body_text) if "json" in ctype and body_text else body_text), hdrs

    def get(self, path):
        return self.call("GET", path)[:2]

    def post(self, path, body=None, **kw):
        return self.call("POST", path, body, **kw)[:2]

    def put(self, path, body=None):
        return self.call("PUT", path, body)[:2]

    def patch(self, path, body=None):
        return self.call("PATCH", path, body)[:2]

    def delete(self, path):
        return self.call("DELETE", path)[:2]


class AuditLog:
    """The audit_log table of the app's database, read with plain SQL."""

    def __init__(self, url: str):
        self.engine = make_engine(url)

    def count(self) -> int:
        with self.engine.connect() as conn:
            return conn.execute(text("SELECT count(*) FROM audit_log")).scalar()

    def since(self, last_id: int) -> list[dict]:
        from db import audit

        with self.engine.connect() as conn:
            rows = conn.execute(text("SELECT id FROM audit_log WHERE id > :i ORDER BY id"), {"i": last_id}).all()
        ids = {r[0] for r in rows}
        _total, entries = audit.list_entries(self.engine, limit=10_000)
        return sorted((e for e in entries if e["id"] in ids), key=lambda e: e["id"])

    def last_id(self) -> int:
        with self.engine.connect() as conn:
            return conn.execute(text("SELECT coalesce(max(id), 0) FROM audit_log")).scalar()

    def close(self) -> None:
        self.engine.dispose()


# --- the app under test ---------------------------------------------------------------------------------------------

SECRET = "Audit-Hunter2-Secret"


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    folder = tmp_path_factory.mktemp("audit-app")
    running = RunningApp(folder, "--no-demo")
    running.wait_healthy()
    running.url = f"sqlite:///{folder / 'data' / 'oee.sqlite3'}"
    running.log_table = AuditLog(running.url)
    yield running
    running.log_table.close()
    running.stop()


@pytest.fixture(scope="module")
def engineer(app):
    return Api(app, "engineer")


@pytest.fixture(scope="module")
def admin(app):
    return Api(app, "admin")


def changed(app, fn):
    """Run fn(); returns (its result, the audit entries it wrote)."""
    last = app.log_table.last_id()
    result = fn()
    return result, app.log_table.since(last)


def one(entries: list[dict], action: str) -> dict:
    assert [e["action"] for e in entries] == [action], entries
    return entries[0]


MACHINE = {"name": "Audited palletiser", "machine_id": "AUD-1", "protocol": "OPCUA", "enabled": False,
           "protocol_config": {"endpoint": "opc.tcp://127.0.0.1:4999/oee/", "username": "operator",
                               "password": SECRET}}


# --- machines, connections and tags through /api/plc ------------------------------------------------------------------

def test_machine_changes_through_the_api_each_write_one_entry(app, engineer):
    actor = actor_for(app, "engineer")
    (status, m), entries = changed(app, lambda: engineer.post("/api/plc/machines/", MACHINE))
    assert status == 201, m
    e = one(entries, "machine.create")
    assert (e["actor"], e["target"], e["before"]) == (actor, "machine AUD-1", None)
    assert e["after"]["name"] == "Audited palletiser" and e["after"]["protocol_config"]["password"] == "***"
    assert e["after"]["protocol_config"]["username"] == "operator" and e["source_ip"] == "127.0.0.1"

    (status, m), entries = changed(app, lambda: engineer.patch("/api/plc/machines/AUD-1/", {"name": "Renamed"}))
    assert status == 200, m
    e = one(entries, "machine.update")
    assert e["actor"] == actor and audit.changes(e["before"], e["after"]) == [("name", "Audited palletiser",
                                                                                "Renamed")]

    # the same values again change nothing, and write nothing
    (status, _), entries = changed(app, lambda: engineer.patch("/api/plc/machines/AUD-1/", {"name": "Renamed"}))
    assert status == 200 and entries == []

    # a new password: the entry says it changed, never what it is
    new_config = {**MACHINE["protocol_config"], "password": SECRET + "-2"}
    (status, _), entries = changed(app, lambda: engineer.patch("/api/plc/machines/AUD-1/",
                                                               {"protocol_config": new_config}))
    e = one(entries, "machine.update")
    assert e["after"]["changed_credentials"] == ["password"]
    assert e["before"]["protocol_config"]["password"] == e["after"]["protocol_config"]["password"] == "***"

    tags = [{"name": "Count", "address": "ns=2;s=LINE-011.ProductionCount", "data_type": "Int32",
             "role": "counter.total"}]
    (status, body), entries = changed(app, lambda: engineer.put("/api/plc/machines/AUD-1/tags/", tags))
    assert status == 200, body
    e = one(entries, "machine.tags.update")
    assert e["before"] == {"tags": []} and [t["name"] for t in e["after"]["tags"]] == ["Count"]

    (status, _), entries = changed(app, lambda: engineer.delete("/api/plc/machines/AUD-1/"))
    assert status == 200
    e = one(entries, "machine.delete")  # one entry: the delete, not the disable that stops its poller first
    assert e["before"]["name"] == "Renamed" and e["before"]["tags"][0]["name"] == "Count" and e["after"] is None
    assert all(SECRET not in json.dumps(x) for x in app.log_table.since(0))


def test_a_change_that_fails_writes_no_entry(app, engineer):
    assert engineer.post("/api/plc/machines/", {**MACHINE, "machine_id": "AUD-2"})[0] == 201
    before = app.log_table.last_id()
    # refused by the validation
    status, body = engineer.post("/api/plc/machines/", {**MACHINE, "machine_id": "AUD-3", "port": 0})
    assert status == 400 and "port" in body["fields"], body
    # refused inside the transaction, by what only the database knows (the machine_id is taken, no line 4242)
    status, body = engineer.post("/api/plc/machines/", {**MACHINE, "machine_id": "AUD-2"})
    assert status == 400 and "already used" in body["fields"]["machine_id"], body
    status, body = engineer.patch("/api/plc/machines/AUD-2/", {"line": 4242})
    assert status == 400 and "no line" in body["fields"]["line"], body
    status, body = engineer.post("/api/config/areas/", {"name": "Nowhere", "site": 4242})
    assert status == 400 and "site" in body["fields"], body
    assert app.log_table.since(before) == []
    assert engineer.delete("/api/plc/machines/AUD-2/")[0] == 200


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    from db.store import open_store

    url = f"sqlite:///{tmp_path / 'oee.sqlite3'}" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    s = open_store(url)
    yield s
    s.close()


def _count(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM audit_log")).scalar()


def test_the_entry_is_part_of_the_change_transaction(store):
    """Written on the change's own session: rolled back with it, committed with it (SQLite and PostgreSQL)."""
    from config import store as cs
    from config.validation import validate_machine

    engine = store.engine
    with Session(engine) as session:
        audit.record(session, "alice", "settings.product.update", "product X", {"a": 1}, {"a": 2})
        session.rollback()
    assert _count(engine) == 0
    clean = validate_machine({"name": "M", "machine_id": "TX-1", "protocol": "MODBUS", "ip_address": "127.0.0.1",
                              "tags": [{"name": "A", "address": "HR0", "data_type": "UINT16"}]})
    broken = {**clean, "tags": clean["tags"] * 2}  # a duplicate tag name: only the database refuses it
    with pytest.raises(Exception):
        cs.create_machine(engine, broken, backend=store.backend_name)
    assert _count(engine) == 0
    cs.create_machine(engine, clean, backend=store.backend_name)
    total, entries = audit.list_entries(engine)
    assert total == 1 and entries[0]["action"] == "machine.create" and entries[0]["actor"] == "system"


def test_enabling_and_disabling_a_machine_is_one_entry_each(store):
    """The machine list's on/off switch (config.admin.set_enabled): one entry per real change."""
    from config import store as cs
    from config.validation import validate_machine

    m = cs.create_machine(store.engine, validate_machine({"name": "M", "machine_id": "EN-1", "protocol": "MODBUS",
                                                          "ip_address": "127.0.0.1"}), backend=store.backend_name)
    cs.set_machine_enabled(store.engine, m["id"], False)
    cs.set_machine_enabled(store.engine, m["id"], False)  # no change, no entry
    cs.set_machine_enabled(store.engine, m["id"], True)
    _total, entries = audit.list_entries(store.engine)
    assert [(e["action"], e["before"]["enabled"] if e["before"] else None, e["after"].get("enabled"))
            for e in entries] == [("machine.update", False, True), ("machine.update", True, False),
                                  ("machine.create", None, True)]


def test_secrets_are_masked_in_every_entry(store):
    with Session(store.engine) as session, session.begin():
        audit.record(session, "bob", "machine.update", "machine M",
                     {"protocol_config": {"password": "plain-one", "private_key_password": "k", "nested":
                                          {"api_token": "t0k"}}, "list": [{"secret": "s"}]},
                     {"protocol_config": {"password": {"$enc": "v1:abc"}, "username": "u"}})
    _total, (e,) = audit.list_entries(store.engine)
    assert e["before"] == {"protocol_config": {"password": "***", "private_key_password": "***",
                                               "nested": {"api_token": "***"}}, "list": [{"secret": "***"}]}
    assert e["after"] == {"protocol_config": {"password": "***", "username": "u"}}
    with store.engine.connect() as conn:
        raw = " ".join(str(r) for r in conn.execute(text("SELECT before, after FROM audit_log")).all())
    assert "plain-one" not in raw and "t0k" not in raw and "v1:abc" not in raw


def test_reading_back_filters_and_streams_in_batches(store):
    """list_entries and iter_entries on SQLite and PostgreSQL: newest first, ties broken by id, every entry once
    when streamed in small batches, and the filters (text within, action prefix, time range)."""
    t = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
    with Session(store.engine) as session, session.begin():
        for i in range(7):
            session.execute(audit.audit_table.insert().values(
                time=t + timedelta(minutes=i // 3), actor="Alice" if i % 2 else "bob_%",
                action=["machine.update", "machine.tags.update", "machinery.x"][i % 3], target=f"machine M-{i}",
                before=None, after={"i": i}))
    total, page = audit.list_entries(store.engine, limit=3)
    assert total == 7 and [e["after"]["i"] for e in page] == [6, 5, 4]
    streamed = [e["after"]["i"] for e in audit.iter_entries(store.engine, batch=2)]
    assert streamed == [6, 5, 4, 3, 2, 1, 0]
    assert [e["after"]["i"] for e in audit.iter_entries(store.engine, batch=2, actor="alice")] == [5, 3, 1]
    assert [e["after"]["i"] for e in audit.iter_entries(store.engine, actor="_%")] == [6, 4, 2, 0]  # literally
    assert [e["after"]["i"] for e in audit.iter_entries(store.engine, action="machine")] == [6, 4, 3, 1, 0]
    assert [e["after"]["i"] for e in audit.iter_entries(store.engine, action="machine.tags.update")] == [4, 1]
    assert [e["after"]["i"] for e in audit.iter_entries(store.engine, target="m-5")] == [5]
    assert [e["after"]["i"] for e in audit.iter_entries(
        store.engine, since=t + timedelta(minutes=1), until=t + timedelta(minutes=2))] == [5, 4, 3]


# --- the settings: hierarchy, products, calendars, reasons, the configuration file ------------------------------------

def test_settings_changes_each_write_one_entry(app, engineer):
    actor = actor_for(app, "engineer")
    (status, site), entries = changed(app, lambda: engineer.post("/api/config/sites/", {"name": "Audit site",
                                                                                        "timezone": "UTC"}))
    assert status == 201, site
    assert one(entries, "settings.site.create")["after"]["name"] == "Audit site"
    (status, area), entries = changed(app, lambda: engineer.post("/api/config/areas/", {"name": "A1",
                                                                                        "site": site["id"]}))
    one(entries, "settings.area.create")
    (status, line), entries = changed(app, lambda: engineer.post("/api/config/lines/", {"name": "L1",
                                                                                        "area": area["id"]}))
    assert one(entries, "settings.line.create")["target"] == "line Audit site/A1/L1"

    (status, p), entries = changed(app, lambda: engineer.post("/api/config/products/", {
        "code": "AUD-P", "name": "Cola", "ideal_cycle_time_s": 1.5}))
    e = one(entries, "settings.product.create")
    assert (e["actor"], e["target"], e["before"]) == (actor, "product AUD-P", None)
    (status, _), entries = changed(app, lambda: engineer.patch(f"/api/config/products/{p['id']}/",
                                                               {"ideal_cycle_time_s": 2.0}))
    e = one(entries, "settings.product.update")
    assert audit.changes(e["before"], e["after"]) == [("ideal_cycle_time_s", 1.5, 2.0)]

    (status, r), entries = changed(app, lambda: engineer.post("/api/config/reasons/", {
        "code": "AUD-JAM", "name": "Jam", "planned": False, "loss_category": "idling_minor_stops"}))
    one(entries, "settings.reason_code.create")
    calendar = {"name": "Audit shifts", "timezone": "UTC",
                "shifts": [{"name": "A", "start": "06:00", "end": "14:00", "weekdays": "01234", "breaks": []}]}
    (status, c), entries = changed(app, lambda: engineer.post("/api/config/calendars/", calendar))
    assert status == 201, c
    one(entries, "settings.calendar.create")
    (status, _), entries = changed(app, lambda: engineer.put(f"/api/config/calendars/{c['id']}/", {
        **calendar, "shifts": [{**calendar["shifts"][0], "end": "15:00"}]}))
    e = one(entries, "settings.calendar.update")
    assert audit.changes(e["before"], e["after"]) == [("shifts[0].end", "14:00", "15:00")]

    for kind, pk, action in (("products", p["id"], "settings.product.delete"),
                             ("reasons", r["id"], "settings.reason_code.delete"),
                             ("calendars", c["id"], "settings.calendar.delete"),
                             ("sites", site["id"], "settings.site.delete")):
        (status, _), entries = changed(app, lambda: engineer.delete(f"/api/config/{kind}/{pk}/"))
        e = one(entries, action)
        assert e["before"] is not None and e["actor"] == actor


IMPORT = """
version: 1
products:
- {code: AUD-IMP, name: Imported, ideal_cycle_time_s: 3}
machines:
- machine_id: AUD-IMP-1
  name: Imported machine
  protocol: OPCUA
  ip_address: 127.0.0.1
  port: 4999
  protocol_config: {endpoint: 'opc.tcp://127.0.0.1:4999/oee/', username: operator, password: %s}
  enabled: false
""" % SECRET


def test_the_configuration_import_writes_one_entry_and_a_dry_run_none(app, engineer):
    (status, body), entries = changed(app, lambda: engineer.post("/api/config/import?dry_run=true",
                                                                 raw=IMPORT.encode(),
                                                                 content_type="application/yaml"))
    assert status == 200 and body["applied"] is False and entries == []
    (status, body), entries = changed(app, lambda: engineer.post("/api/config/import", raw=IMPORT.encode(),
                                                                 content_type="application/yaml"))
    assert status == 200 and body["applied"] is True, body
    e = one(entries, "settings.import")
    assert e["actor"] == actor_for(app, "engineer") and e["target"] == "configuration"
    assert e["after"]["summary"]["machines"] == {"created": 1, "updated": 0}
    paths = [p for p, _old, _new in audit.changes(e["before"], e["after"])]
    assert "products[0].code" in paths and "machines[0].machine_id" in paths
    assert SECRET not in json.dumps(e)
    # a file with an error changes nothing and writes nothing
    (status, body), entries = changed(app, lambda: engineer.post("/api/config/import", raw=b"version: 1\n"
                                                                 b"products: [{code: X}]\n",
                                                                 content_type="application/yaml"))
    assert status == 400 and entries == []
    engineer.delete("/api/plc/machines/AUD-IMP-1/")


def test_a_change_on_a_settings_page_is_recorded_with_the_signed_in_user(app):
    """The pages write through the same functions inside Dash's requests: the actor is the session's user."""
    from tests.config.test_wizard import click, fill
    from tests.support.browser import By, make_browser, wait_text

    browser = make_browser(1400, 1100)
    try:
        actor = "anonymous"
        if hasattr(app, "token"):
            from tests.support.auth import browser_login

            actor = app.user("engineer")
            browser_login(browser, f"http://127.0.0.1:{app.port}", actor)
        browser.get(f"http://127.0.0.1:{app.port}/settings/products/")
        wait_text(browser, "h2", "Products")
        if hasattr(app, "token"):  # not linked for an engineer (admins only)
            assert "Audit log" not in browser.find_element(By.ID, "shell-navbar").text
        last = app.log_table.last_id()
        fill(browser, "sp-product-code", "AUD-PAGE")
        fill(browser, "sp-product-name", "From the page")
        fill(browser, "sp-product-ideal_cycle_time_s", "0")
        click(browser, "#sp-product-save")
        wait_text(browser, "#sp-product-ideal_cycle_time_s-fb", "above 0")
        assert app.log_table.since(last) == []  # refused: nothing changed, nothing written
        fill(browser, "sp-product-ideal_cycle_time_s", "2.5")
        click(browser, "#sp-product-save")
        wait_text(browser, "#sp-product-list", "2.5 s")
    finally:
        browser.quit()
    e = one(app.log_table.since(last), "settings.product.create")
    assert (e["actor"], e["target"], e["source_ip"]) == (actor, "product AUD-PAGE", "127.0.0.1")
    assert e["after"]["ideal_cycle_time_s"] == 2.5


# --- operators' decisions about stops ---------------------------------------------------------------------------------

def test_downtime_decisions_are_audited_with_the_requests_actor(store):
    """assign_downtime_reason and split_downtime, as the downtime page calls them inside a request: the actor and
    the address come from the request (flask.g.actor, set by the authentication), outside one it is 'system'."""
    from flask import Flask, g

    from db import downtime_queries as dq
    from db.models import Area, Line, Machine, MachineState, ReasonCode, Site

    t0 = (int(time.time()) // 3600) * 3600 - 3 * 3600
    with Session(store.engine) as session, session.begin():
        site = Site(name="S", timezone="UTC")
        line = Line(name="L", area=Area(name="A", site=site))
        m = Machine(machine_id="M1", name="Filler", line=line)
        session.add_all([site, m, ReasonCode(code="PM", name="Maintenance", planned=True,
                                             loss_category="planned_maintenance")])
        session.flush()
        for start, end, state in ((t0, t0 + 600, "running"), (t0 + 600, t0 + 1200, "faulted"),
                                  (t0 + 1200, t0 + 3600, "running")):
            session.add(MachineState(machine_id=m.id, start=datetime.fromtimestamp(start, timezone.utc),
                                     end=datetime.fromtimestamp(end, timezone.utc), state=state))
    flask_app = Flask(__name__)
    with flask_app.test_request_context("/downtime/", environ_base={"REMOTE_ADDR": "10.1.2.3"}):
        g.actor = "olga"
        dq.assign_downtime_reason(store, "M1", t0 + 600, "PM", "filter change")
        dq.split_downtime(store, "M1", t0 + 600, t0 + 900)
    dq.assign_downtime_reason(store, "M1", t0 + 900, None, "second half")  # outside a request
    _total, entries = audit.list_entries(store.engine)
    second, split, first = entries  # newest first
    assert (first["action"], first["actor"], first["source_ip"]) == ("downtime.update", "olga", "10.1.2.3")
    assert first["target"].startswith("downtime M1 ")
    assert first["before"]["reason"] is None and first["after"]["reason"] == "PM"
    assert first["after"]["note"] == "filter change" and first["after"]["planned"] is True
    assert (split["action"], split["actor"]) == ("downtime.split", "olga")
    assert split["after"]["first"]["end"] == t0 + 900 and split["after"]["second"]["start"] == t0 + 900
    assert (second["action"], second["actor"], second["source_ip"]) == ("downtime.update", "system", None)
    assert second["after"]["note"] == "second half" and second["after"]["reason"] is None
    # a decision that is refused writes nothing
    with pytest.raises(dq.DowntimeError):
        dq.assign_downtime_reason(store, "M1", t0 + 600, "NOPE")
    assert audit.list_entries(store.engine)[0] == 3


# --- reading it: GET /api/audit/, /export/audit.csv -------------------------------------------------------------------

def test_the_api_filters_and_pages_newest_first(app, admin):
    engine = app.log_table.engine
    base = datetime(2020, 1, 1, tzinfo=timezone.utc)
    with Session(engine) as session, session.begin():
        for i in range(7):
            session.execute(audit.audit_table.insert().values(
                time=base + timedelta(hours=i), actor="filter-user" if i % 2 else "other-user",
                action="settings.product.update" if i < 5 else "machine.update", target=f"product F{i}",
                before={"i": i}, after={"i": i + 1}, source_ip="10.0.0.1"))
    status, body = admin.get("/api/audit/?actor=filter-user&page_size=2")
    assert status == 200, body
    assert body["count"] == 3 and [e["target"] for e in body["results"]] == ["product F5", "product F3"]
    assert body["next"] and "actor=filter-user" in body["next"] and body["previous"] is None
    status, page2 = admin.get("/api/audit/?actor=filter-user&page_size=2&page=2")
    assert [e["target"] for e in page2["results"]] == ["product F1"]
    status, body = admin.get("/api/audit/?action=settings.product&target=product+F&end=2020-01-01T03:00:00Z")
    assert [e["target"] for e in body["results"]] == ["product F2", "product F1", "product F0"]
    status, body = admin.get("/api/audit/?action=machine&start=2020-01-01T05:00:00Z&end=2020-01-02T00:00:00Z")
    assert [e["target"] for e in body["results"]] == ["product F6", "product F5"]
    assert body["results"][0]["time"] == "2020-01-01T06:00:00Z" and body["results"][0]["before"] == {"i": 6}
    for query, field in (("frm=1", "frm"), ("start=yesterday", "start"), ("page=0", "page"),
                         ("start=2020-01-02&end=2020-01-01", "end")):
        status, body = admin.get(f"/api/audit/?{query}")
        assert status == 400 and field in body["fields"], (query, body)


def test_the_csv_export_round_trips_through_pandas(app, admin):
    engine = app.log_table.engine
    audit.record(engine, '=HYPERLINK("http://evil")', "settings.product.update", "product CSV-1",
                 {"name": "Cola", "password": "csv-secret"}, {"name": "Cola; light\n2", "password": "x"},
                 source_ip="10.9.9.9")
    status, body = admin.get("/api/audit/?page_size=500")
    api_rows = body["results"]
    status, csv_text, headers = admin.call("GET", "/export/audit.csv?tz=UTC")
    assert status == 200 and headers["Content-Type"].startswith("text/csv"), csv_text
    assert "attachment" in headers["Content-Disposition"] and "csv-secret" not in csv_text
    frame = pd.read_csv(io.StringIO(csv_text), dtype=str, keep_default_na=False)
    assert list(frame.columns) == ["time", "actor", "action", "target", "source_ip", "changes", "before", "after",
                                   "id"]
    assert [int(i) for i in frame["id"]] == [e["id"] for e in api_rows]  # the same entries, newest first
    row = frame[frame["target"] == "product CSV-1"].iloc[0]
    assert row["actor"] == '\'=HYPERLINK("http://evil")'  # a formula is shown, never run
    assert json.loads(row["before"]) == {"name": "Cola", "password": "***"}
    assert json.loads(row["after"])["name"] == "Cola; light\n2"
    assert 'name: "Cola" -> "Cola; light\\n2"' in row["changes"]
    api_row = next(e for e in api_rows if e["target"] == "product CSV-1")
    assert pd.Timestamp(row["time"]) == pd.Timestamp(api_row["time"])
    # the filters of the API, and its errors
    status, csv_text, _ = admin.call("GET", "/export/audit.csv?target=CSV-1&delimiter=;")
    frame = pd.read_csv(io.StringIO(csv_text), sep=";", dtype=str)
    assert list(frame["target"]) == ["product CSV-1"]
    status, body, _ = admin.call("GET", "/export/audit.csv?who=me")
    assert status == 400 and "who" in body["fields"]


# --- the page ---------------------------------------------------------------------------------------------------------

def test_the_admin_page_shows_entries_and_keeps_filters_in_the_url(app, admin):
    from tests.support.browser import EC, By, WebDriverWait, make_browser

    audit.record(app.log_table.engine, "page-user", "settings.product.update", "product PAGE-1",
                 {"ideal_cycle_time_s": 1.5, "password": "page-secret"}, {"ideal_cycle_time_s": 2.5})
    browser = make_browser(1400, 1000)
    try:
        if hasattr(app, "token"):
            from tests.support.auth import browser_login

            browser_login(browser, f"http://127.0.0.1:{app.port}", app.user("admin"))
        browser.get(f"http://127.0.0.1:{app.port}/settings/audit/?actor=page-user")
        WebDriverWait(browser, 30).until(EC.text_to_be_present_in_element((By.ID, "audit-count"), "1 entry"))
        if hasattr(app, "token"):  # the navigation links it for admins
            assert "Audit log" in browser.find_element(By.ID, "shell-navbar").text
        table = browser.find_element(By.ID, "audit-table").text
        assert "product PAGE-1" in table and "ideal_cycle_time_s" in table and "1.5" in table and "2.5" in table
        assert "page-secret" not in browser.page_source
        target = browser.find_element(By.ID, "audit-target")
        target.send_keys("nothing-like-this")
        browser.find_element(By.ID, "audit-apply").click()
        WebDriverWait(browser, 30).until(lambda b: "target=nothing-like-this" in b.current_url)
        WebDriverWait(browser, 30).until(EC.text_to_be_present_in_element((By.ID, "audit-count"), "0 entries"))
        assert "actor=page-user" in browser.current_url
        csv_link = browser.find_element(By.ID, "audit-csv").get_attribute("href")
        assert "actor=page-user" in csv_link and "target=nothing-like-this" in csv_link
    finally:
        browser.quit()
