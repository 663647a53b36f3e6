"""The inputs that answered 500 (or were stored as they came) now answer 400 naming the field, on SQLite and on
PostgreSQL: NUL bytes (psycopg.DataError on PostgreSQL; SQLite stored them), lone surrogates (UnicodeEncodeError),
JSON and YAML nested 100,000 deep (RecursionError), times in the years 1 and 9999 and 1e308 (OverflowError).

One row per probe: the request, the status, the field the answer names."""
from __future__ import annotations

import json
import time

import pytest
from sqlalchemy.orm import Session

from app import create_app
from db.models import Area, Line, Machine, MachineState, Site
from processes.runtime import Runtime
from processes.settings import Settings
from tests.security.conftest import ORIGIN
from tests.support.auth import make_token

DEEP = "[" * 100_000 + "]" * 100_000
YEAR_1 = {"machine": "LINE-001", "start": "0001-01-01T00:00:00Z", "end": "0001-01-02T00:00:00Z"}
YEAR_9999 = {"machine": "LINE-001", "start": "9999-12-30T00:00:00Z", "end": "9999-12-31T23:00:00Z"}
HUGE = {"machine": "LINE-001", "start": "1e308", "end": "1.5e308"}
MACHINE = {"machine_id": "PROBE-1", "protocol": "MODBUS", "ip_address": "127.0.0.1", "port": 1, "enabled": False}
NUL, LONE = "\x00", "\ud800"

# (who, method, path, query or None, JSON body / form / raw, status, field)
PROBES = [
    (None, "GET", "/api/oee/", {"machine": "LINE-001" + NUL}, None, 400, "machine"),
    (None, "GET", "/api/oee/", YEAR_1, None, 400, "end"),
    (None, "GET", "/api/oee/", YEAR_9999, None, 400, "end"),
    (None, "GET", "/api/oee/", HUGE, None, 400, "start"),
    (None, "GET", "/api/oee/", {"site": "Plant" + NUL}, None, 400, "site"),
    (None, "GET", "/export/oee.csv", YEAR_1, None, 400, "end"),
    (None, "GET", "/export/oee.csv", YEAR_9999, None, 400, "end"),
    (None, "GET", "/export/oee.csv", HUGE, None, 400, "start"),
    (None, "GET", "/export/shift-report.csv", HUGE, None, 400, "start"),
    (None, "GET", "/export/downtime.csv", {**HUGE}, None, 400, "start"),
    (None, "GET", "/export/downtime.csv", {"reason": "jam" + NUL}, None, 400, "reason"),
    (None, "GET", "/export/tags.csv", {"machine": "LINE-001" + NUL}, None, 400, "machine"),
    (None, "GET", "/export/tags.csv", {**YEAR_9999}, None, 400, "end"),
    ("admin", "GET", "/api/audit/", {"actor": "admin" + NUL}, None, 400, "actor"),
    ("admin", "GET", "/api/audit/", {"start": "1e308"}, None, 400, "start"),
    ("admin", "GET", "/export/audit.csv", {"target": NUL}, None, 400, "target"),
    ("engineer", "GET", "/api/plc/machines/LINE-001%00/", None, None, 400, "path"),
    (None, "POST", "/login", None, {"form": {"username": "admin" + NUL, "password": "x" * 12}}, 400, "username"),
    ("engineer", "POST", "/api/config/sites/", None, {"name": "Plant" + NUL}, 400, "body.name"),
    ("engineer", "POST", "/api/config/sites/", None, {"name": LONE}, 400, "body.name"),
    ("engineer", "POST", "/api/config/reasons/", None,
     {"code": "J1", "name": "jam" + NUL, "loss_category": "equipment_failure"}, 400, "body.name"),
    ("engineer", "POST", "/api/config/products/", None, {"code": "P" + LONE, "ideal_cycle_time_s": 1}, 400,
     "body.code"),
    ("engineer", "POST", "/api/plc/machines/", None, {**MACHINE, "name": LONE}, 400, "body.name"),
    ("engineer", "POST", "/api/plc/machines/", None, {**MACHINE, "name": "M", "description": NUL}, 400,
     "body.description"),
    ("engineer", "POST", "/api/plc/machines/", None, {"raw": DEEP}, 400, "body"),
    (None, "POST", "/_dash-update-component", None, {"raw": DEEP}, 400, "body"),
    (None, "POST", "/_dash-update-component", None, {"output": "ov-tiles.children", "outputs": [
        {"id": "ov-tiles", "property": "children"}], "inputs": [{"id": "ov-x", "property": "value",
                                                                    "value": NUL}]}, 400, "body.inputs[0].value"),
    ("engineer", "POST", "/api/config/import", {"dry_run": "true"},
     {"yaml": 'version: 1\nsites:\n  - name: "Plant\\0"\n'}, 400, "sites[0].name"),
    ("engineer", "POST", "/api/config/import", {"dry_run": "true"}, {"yaml": DEEP}, 400, ""),
]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def plant(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp(f"probes-{request.param}")
    if request.param == "sqlite":
        url = f"sqlite:///{folder / 'oee.sqlite3'}"
    else:
        from tests.conftest import PG_ADMIN_URL, _drop

        import psycopg

        name = f"oee_probes_{int(time.time() * 1000) % 10**9}"
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        url = f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}"
        request.addfinalizer(lambda: _drop(PG_ADMIN_URL, name))
    runtime = Runtime(Settings(database_url=url, data_dir=folder, demo=False, role="web", live_bus="off")).start()
    request.addfinalizer(runtime.stop)
    with Session(runtime.store.engine) as s, s.begin():
        line = Line(area=Area(site=Site(name="Plant", timezone="UTC"), name="Bottling"), name="Line 1")
        machine = Machine(machine_id="LINE-001", name="Filler", line=line)
        s.add(machine)
        s.flush()
        s.add(MachineState(machine_id=machine.id, start=time.time() - 7200, end=None, state="running"))
    app = create_app(runtime)
    tokens = {role: make_token(runtime.store.engine, role) for role in ("engineer", "admin")}
    return app.server, tokens


@pytest.mark.parametrize("who, method, path, query, body, status, field", PROBES,
                         ids=[f"{p[1]} {p[2]} {p[6] or 'document'}" for p in PROBES])
def test_a_probe_answers_400_naming_the_field(plant, who, method, path, query, body, status, field):
    server, tokens = plant
    client = server.test_client()
    headers = {"Origin": ORIGIN}
    if who:
        headers["Authorization"] = f"Bearer {tokens[who]}"
    kwargs = {"query_string": query, "headers": headers}
    if body is not None and "form" in body:
        kwargs["data"] = body["form"]
    elif body is not None and "raw" in body:
        kwargs.update(data=body["raw"], content_type="application/json")
    elif body is not None and "yaml" in body:
        kwargs.update(data=body["yaml"].encode(), content_type="application/yaml")
    elif body is not None:
        kwargs.update(data=json.dumps(body), content_type="application/json")  # \ud800 stays a lone surrogate
    resp = client.open(path, method=method, **kwargs)
    text = resp.get_data(as_text=True)
    assert resp.status_code == status, text[:500]
    if resp.is_json:
        answer = resp.get_json()
        assert field in answer["fields"], answer
        assert answer["message"]
    else:  # the login form answers a browser in HTML
        assert field in text or "User name" in text or "username" in text, text[:500]
