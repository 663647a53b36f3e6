"""Grafana: the views return the app's numbers for data written through the writer (PostgreSQL, TimescaleDB), the
read-only role reads them and writes nothing, and every query of the shipped dashboard runs as that role."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time as time_module
import uuid
from datetime import datetime, time, timezone
from pathlib import Path

import psycopg
import pytest
import yaml
from sqlalchemy import inspect
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from app import create_app
from db.grafana import VIEWS
from db.models import (
    Area,
    DowntimeEvent,
    Line,
    Machine,
    Product,
    ReasonCode,
    Shift,
    ShiftCalendar,
    Site,
)
from db.oee_summary import LOSS_COLUMNS, LOSS_KEYS, refresh_exclusively
from db.store import open_store
from processes.runtime import Runtime
from processes.settings import Settings
from tests.export.conftest import T0, H, iso

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "grafana"
TZ = "America/Chicago"


def start_plant(url: str, tmp_path: Path):
    """A runtime that collects (writer, scheduler) and two machines' history submitted through its writer."""
    runtime = Runtime(Settings(database_url=url, data_dir=tmp_path, demo=False)).start()
    with Session(runtime.store.engine) as s, s.begin():
        site = Site(name="Plant", timezone=TZ)
        line = Line(area=Area(site=site, name="Packaging"), name="Line A")
        cal = ShiftCalendar(name="3x8", timezone=TZ, shifts=[
            Shift(name="Day", start_time=time(6), end_time=time(14)),
            Shift(name="Swing", start_time=time(14), end_time=time(22)),
            Shift(name="Night", start_time=time(22), end_time=time(6))])
        s.add_all([site, line, cal, Product(code="P", name="Bottle", ideal_cycle_time_s=1.2),
                   ReasonCode(code="101", name="Capper jam", planned=False, loss_category="equipment_failure"),
                   ReasonCode(code="CHG", name="Format change", planned=False, loss_category="setup_adjustment")])
        s.flush()
        m1 = Machine(machine_id="M1", name="Filler", line=line, calendar_id=cal.id)
        m2 = Machine(machine_id="M2", name="Capper", line=line, calendar_id=cal.id, ideal_cycle_time_s=2.0)
        s.add_all([m1, m2])
        s.flush()
        ids = {"M1": m1.id, "M2": m2.id}
        chg = s.query(ReasonCode).filter_by(code="CHG").one()
        s.add(DowntimeEvent(machine_id=m2.id, start=datetime.fromtimestamp(T0 + 4 * H, timezone.utc),
                            end=datetime.fromtimestamp(T0 + 5 * H, timezone.utc), reason_id=chg.id))
    w = runtime.writer
    assert w.submit_states([
        (ids["M1"], T0, T0 + 7 * H, "running", None, "P"),
        (ids["M1"], T0 + 7 * H, T0 + 7.5 * H, "faulted", 101, "P"),
        (ids["M1"], T0 + 7.5 * H, None, "running", None, "P"),
        (ids["M2"], T0, T0 + 4 * H, "running", None, None),
        (ids["M2"], T0 + 4 * H, T0 + 8 * H, "idle", None, None)])
    assert w.submit_counts([(ids["M1"], T0 + i * 600, T0 + (i + 1) * 600, "P", 476, 464, 12) for i in range(48)]
                           + [(ids["M2"], T0 + i * 600, T0 + (i + 1) * 600, None, 250, 250, 0) for i in range(24)])
    assert w.flush(20)
    while refresh_exclusively(runtime.store, T0, T0 + 8 * H) is None:  # the start-up backfill may hold the lock
        pass
    return runtime


@pytest.fixture(params=["postgresql", "timescaledb"])
def grafana_plant(request, tmp_path):
    url = request.getfixturevalue("pg_url" if request.param == "postgresql" else "timescale_url")
    runtime = start_plant(url, tmp_path)
    yield url, runtime
    runtime.stop()


def rows(url: str, query: str, params=None) -> list[dict]:
    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(query, params)
        names = [d.name for d in cur.description]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def test_views_hold_the_apps_numbers(grafana_plant):
    url, runtime = grafana_plant
    client = create_app(runtime).server.test_client()
    assert [r["machine"] for r in rows(url, "SELECT * FROM grafana_machines ORDER BY machine")] == ["M1", "M2"]
    for machine in ("M1", "M2"):
        api = client.get("/api/oee/", query_string={"machine": machine, "start": iso(T0), "end": iso(T0 + 8 * H),
                                                    "bucket": "hour"}).get_json()["buckets"]
        hourly = rows(url, "SELECT * FROM grafana_oee_hourly WHERE machine = %s AND time >= %s AND time < %s "
                           "ORDER BY time", (machine, datetime.fromtimestamp(T0, timezone.utc),
                                             datetime.fromtimestamp(T0 + 8 * H, timezone.utc)))
        assert len(hourly) == len(api) == 8
        for view, part in zip(hourly, api, strict=True):
            assert view["time"].timestamp() == part["start"] and view["hour"] == part["label"]
            for key in ("availability", "performance", "quality", "oee", "planned_time_s", "good_count"):
                assert view[key] == pytest.approx(part[key], rel=1e-12), key
            for column, key in zip(LOSS_COLUMNS, LOSS_KEYS, strict=True):
                assert view[column] == pytest.approx(part["losses"][key], rel=1e-12, abs=1e-9), column
            assert view["line"] == "Line A" and view["site"] == "Plant"
    # shifts: the Day shift began at 06:00 CDT (T0 - 3 h), before the data: its row covers the whole shift
    shift_rows = rows(url, "SELECT * FROM grafana_oee_shift WHERE machine = 'M1' AND time < %s ORDER BY time",
                      (datetime.fromtimestamp(T0 + 8 * H, timezone.utc),))  # (the start-up backfill adds last week's)
    api = client.get("/api/oee/", query_string={"machine": "M1", "start": iso(T0 - 3 * H), "end": iso(T0 + 8 * H),
                                                "bucket": "shift"}).get_json()["buckets"]
    assert [r["shift"] for r in shift_rows] == [b["label"] for b in api] == ["2026-09-21 Day", "2026-09-21 Swing"]
    assert [r["oee"] for r in shift_rows] == pytest.approx([b["oee"] for b in api], rel=1e-12)


def test_states_and_downtime_views(grafana_plant):
    url, _ = grafana_plant
    states = rows(url, "SELECT * FROM grafana_machine_states ORDER BY machine, time")
    assert [(r["machine"], r["state"], r["ongoing"]) for r in states] == [
        ("M1", "running", False), ("M1", "faulted", False), ("M1", "running", True),
        ("M2", "running", False), ("M2", "idle", False)]
    assert states[1]["duration_s"] == 1800 and states[1]["fault_code"] == 101
    down = rows(url, "SELECT * FROM grafana_downtime_events ORDER BY machine, time")
    assert [(r["machine"], r["state"], r["loss_category"], r["source"], r["reason_name"], r["planned"])
            for r in down] == [
        ("M1", "faulted", "equipment_failure", "fault_code", "Capper jam", False),
        ("M2", "idle", "setup_adjustment", "operator", "Format change", False)]
    assert down[1]["duration_s"] == 4 * H and down[1]["line"] == "Line A"


def make_role(url: str) -> tuple[str, str]:
    name, password = f"grafana_t_{uuid.uuid4().hex[:8]}", "s3cret-" + uuid.uuid4().hex[:8]
    result = subprocess.run([sys.executable, "app.py", "grafana-role", "--password", password, "--name", name,
                             "--database-url", url], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert f"role {name}" in result.stdout and "read-only" in result.stdout and password not in result.stdout
    return name, password


def drop_role(url: str, name: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP OWNED BY "{name}"')
        conn.execute(f'DROP ROLE "{name}"')


def as_role(url: str, name: str, password: str) -> str:
    return make_url(url).set(username=name, password=password).render_as_string(hide_password=False)


def test_the_read_only_role_reads_the_views_and_writes_nothing(grafana_plant):
    url, _ = grafana_plant
    name, password = make_role(url)
    try:
        make_role_again = subprocess.run([sys.executable, "app.py", "grafana-role", "--password", password + "x",
                                          "--name", name, "--database-url", url], cwd=ROOT, capture_output=True,
                                         text=True, timeout=120)
        assert make_role_again.returncode == 0, make_role_again.stderr  # again: a new password, same grants
        grafana = as_role(url, name, password + "x")
        for view in VIEWS:
            assert rows(grafana, f"SELECT count(*) AS n FROM {view}")[0]["n"] > 0, view
        refused = [
            "SELECT * FROM machines", "SELECT * FROM samples", "SELECT * FROM oee_summary",
            "INSERT INTO oee_summary (machine_id) VALUES (1)", "DELETE FROM machine_states",
            "UPDATE grafana_machines SET machine = 'x'", "INSERT INTO grafana_machine_states (machine) VALUES ('x')",
            "CREATE TABLE mine (x int)", "CREATE VIEW mine AS SELECT 1",
        ]
        for statement in refused:
            with pytest.raises(psycopg.Error) as err:
                rows(grafana, statement)
            assert isinstance(err.value, (psycopg.errors.InsufficientPrivilege, psycopg.errors.ReadOnlySqlTransaction,
                                          psycopg.errors.ObjectNotInPrerequisiteState)), (statement, err.value)
        with psycopg.connect(grafana, autocommit=True) as conn:  # even with read-only turned off: no privilege
            conn.execute("SET default_transaction_read_only = off")
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("INSERT INTO machines (machine_id, name) VALUES ('X', 'x')")
    finally:
        drop_role(url, name)


def expand(sql: str, start: float, end: float, machines: list[str]) -> str:
    """Grafana's PostgreSQL macros and the $machine variable, as Grafana expands them."""
    lo = f"'{datetime.fromtimestamp(start, timezone.utc).isoformat()}'"
    hi = f"'{datetime.fromtimestamp(end, timezone.utc).isoformat()}'"
    sql = re.sub(r"\$__timeFilter\(([^)]+)\)", rf"\1 BETWEEN {lo} AND {hi}", sql)
    sql = sql.replace("$__timeFrom()", lo).replace("$__timeTo()", hi)
    return sql.replace("$machine", ",".join(f"'{m}'" for m in machines))


def dashboard() -> dict:
    return json.loads((GRAFANA / "dashboards" / "oee.json").read_text())


def test_every_dashboard_query_runs_as_the_read_only_role(grafana_plant):
    url, _ = grafana_plant
    name, password = make_role(url)
    try:
        grafana = as_role(url, name, password)
        board = dashboard()
        variable = board["templating"]["list"][0]
        machines = [r["machine"] for r in rows(grafana, variable["query"])]
        assert machines == ["M1", "M2"]
        answered = {}
        for panel in board["panels"]:
            for target in panel["targets"]:
                answered[panel["title"]] = rows(grafana, expand(target["rawSql"], T0 - 3 * H, T0 + 8 * H, machines))
        assert all(answered.values()), {k: len(v) for k, v in answered.items()}
        assert len(answered["OEE by hour"]) == 16
        assert answered["OEE of the selection (sum then divide)"][0]["oee"] > 0
        assert {r["loss_category"] for r in answered["Downtime by loss category (minutes)"]} == {
            "equipment_failure", "setup_adjustment"}
    finally:
        drop_role(url, name)


def test_provisioning_files_point_at_the_dashboards_data_source():
    source = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "oee.yaml").read_text())
    ds = source["datasources"][0]
    assert ds["type"] == "postgres" and ds["uid"] == "oee-postgres"
    assert ds["user"] == "${OEE_GRAFANA_USER}" and ds["secureJsonData"]["password"] == "${OEE_GRAFANA_PASSWORD}"
    assert ds["url"] == "${OEE_GRAFANA_DB_HOST}" and ds["jsonData"]["database"] == "${OEE_GRAFANA_DB_NAME}"
    providers = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "oee.yaml").read_text())["providers"]
    assert providers[0]["type"] == "file" and providers[0]["options"]["path"]
    board = dashboard()
    uids = {t["datasource"]["uid"] for p in board["panels"] for t in p["targets"]}
    assert uids == {ds["uid"]} and board["templating"]["list"][0]["datasource"]["uid"] == ds["uid"]
    views = {v for p in board["panels"] for t in p["targets"] for v in re.findall(r"grafana_\w+", t["rawSql"])}
    assert views <= set(VIEWS)
    assert len({p["id"] for p in board["panels"]}) == len(board["panels"])


def test_sqlite_has_the_table_but_no_views_and_no_role(sqlite_url):
    store = open_store(sqlite_url)
    try:
        names = inspect(store.engine)
        assert "oee_summary" in names.get_table_names()
        assert not [v for v in names.get_view_names() if v.startswith("grafana_")]
    finally:
        store.close()
    result = subprocess.run([sys.executable, "app.py", "grafana-role", "--password", "long enough",
                             "--database-url", sqlite_url], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().startswith("error: Grafana reads PostgreSQL or TimescaleDB; this database is SQLite")


def test_a_user_who_may_not_create_roles_gets_the_sql_to_hand_on(pg_url, tmp_path):
    open_store(pg_url).close()  # migrated
    weak, password = f"weak_{uuid.uuid4().hex[:8]}", "weak-" + uuid.uuid4().hex[:8]
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {weak} LOGIN PASSWORD '{password}'")
        conn.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {weak}")
    try:
        result = subprocess.run([sys.executable, "app.py", "grafana-role", "--password", "long enough",
                                 "--database-url", as_role(pg_url, weak, password)], cwd=ROOT, capture_output=True,
                                text=True, timeout=60)
        assert result.returncode == 2
        message = result.stderr.strip()
        assert message.startswith("error: the app's database user may not create roles")
        assert "CREATE ROLE oee_grafana LOGIN PASSWORD '...'" in message
        assert "GRANT SELECT ON grafana_machines" in message
        assert "long enough" not in message and password not in message
    finally:
        drop_role(pg_url, weak)


@pytest.mark.parametrize("args, expected", [
    (["--password", "short", "--database-url", "postgresql://127.0.0.1/x"], "at least 8 characters"),
    (["--password", "long enough"], "--database-url [OEE_DATABASE_URL]"),
    (["--database-url", "postgresql://127.0.0.1/x"], "--password [OEE_GRAFANA_PASSWORD]"),
])
def test_bad_grafana_role_arguments(args, expected, pg_url):
    if "postgresql://127.0.0.1/x" in args:
        args = [pg_url if a == "postgresql://127.0.0.1/x" else a for a in args]
    env = {k: v for k, v in os.environ.items() if not k.startswith("OEE_")}
    result = subprocess.run([sys.executable, "app.py", "grafana-role", *args], cwd=ROOT, capture_output=True,
                            text=True, timeout=60, env=env)
    assert result.returncode == 2 and expected in result.stderr, result.stderr


def test_oee_summary_backfill_command_fills_past_weeks(pg_url, tmp_path):
    # The rows that lie wholly within the data (T0 .. T0 + 8 h): the fixture's refresh wrote them; the command
    # must write the same ones again after they are gone, months back, a week at a time.
    query = ('SELECT s.kind, s.start, s."end", s.oee, s.good_count FROM oee_summary s '
             "JOIN machines m ON m.id = s.machine_id WHERE m.machine_id = 'M1' AND s.start >= %s AND s.\"end\" <= %s "
             "ORDER BY s.kind, s.start")
    window = (datetime.fromtimestamp(T0 - 3 * H, timezone.utc), datetime.fromtimestamp(T0 + 8 * H, timezone.utc))
    runtime = start_plant(pg_url, tmp_path)
    try:
        # Eight whole hours and the whole Day shift (the Swing shift's row stops where the refresh did).
        before = [r for r in rows(pg_url, query, window)
                  if r["kind"] == "hour" or (r["end"] - r["start"]).total_seconds() == 8 * H]
        assert [(r["kind"], r["start"]) for r in before] == [
            ("hour", datetime.fromtimestamp(T0 + i * H, timezone.utc)) for i in range(8)] + [("shift", window[0])]
    finally:
        runtime.stop()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("DELETE FROM oee_summary")
    days = (time_module.time() - T0) / 86400  # from T0 (the command starts a moment later: the same hour)
    result = subprocess.run([sys.executable, "app.py", "oee-summary", "--days", f"{days:.6f}",
                             "--database-url", pg_url], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "oee_summary:" in result.stdout and result.stdout.count(" rows") >= days // 7
    assert [r for r in rows(pg_url, query, window) if r["kind"] == "hour" or r["start"] == window[0]] == before


def test_oee_summary_command_refuses_sqlite_by_name(tmp_path):
    result = subprocess.run([sys.executable, "app.py", "oee-summary", "--database-url",
                             f"sqlite:///{tmp_path / 'x.sqlite3'}"], cwd=ROOT, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2 and "--database-url [OEE_DATABASE_URL]" in result.stderr
