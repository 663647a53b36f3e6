"""A machine's own settings change its numbers, on real SQLite and PostgreSQL: the micro-stop threshold (the
machine's, else its site's, else 120 s), the calendar (the machine's, else its line's, else every hour planned) and
the fault table (its text on downtime, its kind over a plant-wide reason of the same code). What is read here is
what GET /api/oee/ and the downtime page show (db.oee_queries.oee_report, db.downtime_queries.downtime_events)."""
from __future__ import annotations

import time
from datetime import datetime, timezone

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from db import backend as backends
from db import downtime_queries as dq
from db import ui_queries as q
from db.machine_settings import effective_settings
from db.models import Area, Line, Machine, MachineFaultCode, ReasonCode, Shift, ShiftCalendar, Site
from db.oee_queries import oee_report
from db.store import open_store

T0 = (int(time.time()) // 3600) * 3600 - 3 * 3600  # a whole hour, three hours ago
HOUR = datetime.fromtimestamp(T0, timezone.utc).time()


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    url = f"sqlite:///{tmp_path / 'oee.sqlite3'}" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    s = open_store(url)
    with Session(s.engine) as session, session.begin():
        site = Site(name="Test site", timezone="UTC")
        line = Line(name="Line A", area=Area(name="Area 1", site=site))
        half = ShiftCalendar(name="First half hour", timezone="UTC", shifts=[
            Shift(name="S", start_time=HOUR, end_time=HOUR.replace(minute=30), weekdays="0123456")])
        session.add_all([site, line, half, ReasonCode(code="101", name="Infeed jam", loss_category="equipment_failure",
                                                      planned=False)])
        session.flush()
        session.add_all([Machine(machine_id="M1", name="Filler", line_id=line.id, ideal_cycle_time_s=1.0),
                         Machine(machine_id="LOOSE", name="On no line", ideal_cycle_time_s=1.0)])
    ids = q.machine_db_ids(s)
    for mid in ids.values():
        states(s, mid, [(0, 600, "running", None), (600, 630, "idle", None), (630, 900, "running", None),
                        (900, 1000, "faulted", 101), (1000, 1500, "running", None),
                        (1500, 1600, "planned_stop", 900), (1600, 3600, "running", None)])
    yield s
    s.close()


def states(s, mid: int, rows: list) -> None:
    with s.engine.begin() as conn:
        for a, b, state, fault in rows:
            conn.execute(text('INSERT INTO machine_states (machine_id, start, "end", state, fault_code, product_code) '
                              "VALUES (:m, :s, :e, :st, :f, NULL)"),
                         {"m": mid, "s": backends.db_time(s.backend_name, T0 + a), "st": state, "f": fault,
                          "e": backends.db_time(s.backend_name, T0 + b)})


def set_rows(s, model, where, **values) -> None:
    with Session(s.engine) as session, session.begin():
        for row in session.scalars(select(model).where(where)):
            for k, v in values.items():
                setattr(row, k, v)


def minor(s, machine: str) -> dict:
    report = oee_report(s, "machine", machine, T0, T0 + 3600)
    events = dq.downtime_events(s, T0, T0 + 3600, scope="machine", key=machine)
    return {"performance_minor_s": report["losses"]["performance.idling_minor_stops"],
            "availability_idle_s": report["losses"]["availability.idling_minor_stops"],
            "minor_events": sorted(e["duration_s"] for e in events if e["minor"])}


def test_the_micro_stop_threshold_of_the_machine_else_its_site_else_120_s(store):
    # 120 s: the 30 s idle and the 100 s fault are minor stops, a performance loss
    assert minor(store, "M1") == {"performance_minor_s": 130, "availability_idle_s": 0, "minor_events": [30, 100]}
    set_rows(store, Site, Site.name == "Test site", micro_stop_threshold_s=60.0)
    assert minor(store, "M1") == {"performance_minor_s": 30, "availability_idle_s": 0, "minor_events": [30]}
    assert minor(store, "LOOSE")["minor_events"] == [30]  # on no line: the plant's (first) site
    set_rows(store, Machine, Machine.machine_id == "M1", micro_stop_threshold_s=20.0)
    assert minor(store, "M1") == {"performance_minor_s": 0, "availability_idle_s": 30, "minor_events": []}
    assert minor(store, "LOOSE")["minor_events"] == [30]  # one machine's setting is its own
    set_rows(store, Machine, Machine.machine_id == "M1", micro_stop_threshold_s=0.0)  # 0: no minor stops at all
    assert minor(store, "M1")["minor_events"] == []
    with Session(store.engine) as session:
        got = {m: (e.micro_stop_threshold_s, e.micro_stop_from) for m, e in effective_settings(session).items()}
    ids = q.machine_db_ids(store)
    assert got == {ids["M1"]: (0.0, "machine"), ids["LOOSE"]: (60.0, "site")}


def test_the_calendar_of_the_machine_else_its_line_else_every_hour(store):
    planned = lambda m: oee_report(store, "machine", m, T0, T0 + 3600)["planned_time_s"]  # noqa: E731
    assert planned("M1") == 3600 - 100  # no calendar: every hour planned (less the PLC's planned stop)
    with Session(store.engine) as session:
        cal = session.scalar(select(ShiftCalendar.id))
    set_rows(store, Line, Line.name == "Line A", calendar_id=cal)
    assert planned("M1") == 1800 - 100  # the line's calendar: the first half hour (less the planned stop)
    assert planned("LOOSE") == 3600 - 100  # not on the line
    assert q.shift_at(store, "machine", "M1", T0 + 60)["name"] == "S"
    with Session(store.engine) as session:
        e = effective_settings(session)[q.machine_db_ids(store)["M1"]]
    assert (e.calendar_name, e.calendar_from, e.calendar_text()) == ("First half hour", "line",
                                                                     "First half hour (the line's)")
    with Session(store.engine) as session, session.begin():
        other = ShiftCalendar(name="Second half hour", timezone="UTC", shifts=[
            Shift(name="T", start_time=HOUR.replace(minute=30), end_time=HOUR.replace(minute=59),
                  weekdays="0123456")])
        session.add(other)
        session.flush()
        session.execute(Machine.__table__.update().where(Machine.machine_id == "M1").values(calendar_id=other.id))
    assert planned("M1") == 29 * 60  # its own wins over the line's: 30 to 59 minutes past the hour


def test_the_fault_table_names_the_code_and_its_kind_wins_over_a_reason(store):
    ids = q.machine_db_ids(store)
    with Session(store.engine) as session, session.begin():
        session.add_all([MachineFaultCode(machine_id=ids["M1"], code=101, text="Jam at infeed", kind="fault"),
                         MachineFaultCode(machine_id=ids["M1"], code=900, text="Cleaning", kind="planned_stop"),
                         ReasonCode(code="900", name="Motor", loss_category="equipment_failure", planned=False)])
    events = {e["fault_code"]: e for e in dq.downtime_events(store, T0, T0 + 3600, scope="machine", key="M1")
              if e["fault_code"]}
    assert (events[101]["fault_label"], events[101]["loss_category"]) == ("101 Jam at infeed", "equipment_failure")
    assert (events[900]["fault_label"], events[900]["planned"]) == ("900 Cleaning", True)  # not the reason's
    other = {e["fault_code"]: e for e in dq.downtime_events(store, T0, T0 + 3600, scope="machine", key="LOOSE")
             if e["fault_code"]}
    assert other[101]["fault_label"] == "101 Infeed jam" and other[900]["loss_category"] == "equipment_failure"
    assert oee_report(store, "machine", "M1", T0, T0 + 3600)["planned_time_s"] == 3500
    pareto = dq.downtime_pareto(list(events.values()))
    assert "900 Cleaning" in [g["label"] for g in pareto]
    timeline = q.state_timeline(store, "machine", "M1", T0, T0 + 3600)
    assert timeline["machines"][0]["fault_names"][101] == "Jam at infeed"
