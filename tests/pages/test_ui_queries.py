"""db.ui_queries on real SQLite and PostgreSQL: states, downtime events and what operators decide about them.

A reason given to a stop must move its time in oee_report's loss breakdown (the numbers behind GET /api/oee/),
a split must make two events, and a reason given while a stop is still going on must not spill over onto the
machine's later stops.
"""
from __future__ import annotations

import time

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from db import backend as backends
from db import downtime_queries as dq
from db import ui_queries as q
from db.models import Area, Line, Machine, Product, ReasonCode, Site
from db.oee_queries import machine_reports, oee_report, oee_report_with_machines
from db.store import open_store

T0 = (int(time.time()) // 3600) * 3600 - 3 * 3600  # a whole hour, three hours ago


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    url = f"sqlite:///{tmp_path / 'oee.sqlite3'}" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    s = open_store(url)
    with Session(s.engine) as session, session.begin():
        site = Site(name="Test site", timezone="UTC")
        line = Line(name="Line A", area=Area(name="Area 1", site=site))
        session.add_all([site, line])
        session.flush()
        session.add_all([
            Machine(machine_id="M1", name="Filler", line_id=line.id, ideal_cycle_time_s=2.0),
            Machine(machine_id="M2", name="Capper", line_id=line.id, ideal_cycle_time_s=1.0),
            Product(code="P1", name="Product 1", ideal_cycle_time_s=1.0),
            ReasonCode(code="101", name="Infeed jam", loss_category="equipment_failure", planned=False),
            ReasonCode(code="PM", name="Planned maintenance", loss_category="planned_maintenance", planned=True),
            ReasonCode(code="ADJ", name="Adjustment", loss_category="setup_adjustment", planned=False),
            ReasonCode(code="SPEED", name="Slow", loss_category="reduced_speed", planned=False),
        ])
    ids = q.machine_db_ids(s)
    states(s, ids["M1"], [(0, 600, "running", None), (600, 900, "faulted", 101), (900, 1500, "idle", None),
                          (1500, 2000, "running", None), (2000, 2030, "idle", None), (2030, 3600, "running", None)])
    states(s, ids["M2"], [(0, 3600, "running", None), (3600, None, "idle", None)])
    with s.engine.begin() as conn:
        for minute in range(60):
            conn.execute(text('INSERT INTO production_counts (machine_id, start, "end", product_code, total, good, '
                              "reject) VALUES (:m, :s, :e, 'P1', 30, 29, 1)"),
                         {"m": ids["M1"], "s": backends.db_time(s.backend_name, T0 + 60 * minute),
                          "e": backends.db_time(s.backend_name, T0 + 60 * minute + 59)})
    yield s
    s.close()


def states(s, mid: int, rows: list) -> None:
    with s.engine.begin() as conn:
        for a, b, state, fault in rows:
            conn.execute(text('INSERT INTO machine_states (machine_id, start, "end", state, fault_code, product_code) '
                              "VALUES (:m, :s, :e, :st, :f, 'P1')"),
                         {"m": mid, "s": backends.db_time(s.backend_name, T0 + a), "st": state, "f": fault,
                          "e": None if b is None else backends.db_time(s.backend_name, T0 + b)})


def losses(s, machine: str, end: float = T0 + 3600) -> dict:
    return oee_report(s, "machine", machine, T0, end)["losses"]


def event_at(s, machine: str, start: float) -> dict:
    events = dq.downtime_events(s, T0, T0 + 7200, scope="machine", key=machine)
    return next(e for e in events if abs(e["start"] - start) < 0.01)


def test_timeline_clips_to_the_range_and_counts_intervals(store):
    tl = q.state_timeline(store, "line", "Line A", T0 + 300, T0 + 1000)
    m1 = next(m for m in tl["machines"] if m["machine_id"] == "M1")
    assert [(s - T0, e - T0, st, f) for s, e, st, f, _p in m1["intervals"]] == [
        (300, 600, "running", None), (600, 900, "faulted", 101), (900, 1000, "idle", None)]
    assert tl["count"] == 4  # and M2's one running interval


def test_downtime_events_from_states_with_fault_reasons_and_filters(store):
    events = dq.downtime_events(store, T0, T0 + 3600, scope="machine", key="M1")
    assert [(e["start"] - T0, e["duration_s"], e["state"], e["loss_category"], e["minor"]) for e in events] == [
        (2000, 30, "idle", "idling_minor_stops", True),
        (900, 600, "idle", "idling_minor_stops", False),
        (600, 300, "faulted", "equipment_failure", False)]
    fault = events[-1]
    assert (fault["fault_code"], fault["fault_name"], fault["source"]) == (101, "Infeed jam", "fault_code")
    assert len(dq.downtime_events(store, T0, T0 + 3600, scope="machine", key="M1", include_minor=False)) == 2
    assert len(dq.downtime_events(store, T0, T0 + 3600, min_duration_s=400)) == 1  # M2 stops at the end
    part = dq.downtime_events(store, T0 + 1000, T0 + 1100, scope="machine", key="M1")
    assert [(e["start"] - T0, e["in_range_s"]) for e in part] == [(900, 100)]  # keyed by the stop's real start
    pareto = dq.downtime_pareto(dq.downtime_events(store, T0, T0 + 3600, scope="machine", key="M1"))
    assert [(g["label"], g["seconds"]) for g in pareto] == [
        ("Idling and minor stops", 600), ("101 Infeed jam", 300), ("Minor stops", 30)]
    assert pareto[-1]["cumulative"] == pytest.approx(1.0)


def test_a_reason_moves_the_time_in_the_apis_loss_breakdown(store):
    before = losses(store, "M1")
    assert before["availability.idling_minor_stops"] == pytest.approx(600)
    assert before["planned.planned_maintenance"] == 0
    ev = dq.assign_downtime_reason(store, "M1", T0 + 900, "PM", "  filter change  ")
    assert (ev["source"], ev["reason_code"], ev["note"], ev["planned"]) == ("operator", "PM", "filter change", True)
    after = losses(store, "M1")
    assert after["planned.planned_maintenance"] == pytest.approx(600)
    assert after["availability.idling_minor_stops"] == pytest.approx(0, abs=1e-6)
    assert event_at(store, "M1", T0 + 900)["note"] == "filter change"
    dq.assign_downtime_reason(store, "M1", T0 + 900, None, "no reason after all")  # clearing it
    assert losses(store, "M1")["availability.idling_minor_stops"] == pytest.approx(600)
    assert event_at(store, "M1", T0 + 900)["note"] == "no reason after all"


def test_split_makes_two_events_and_each_half_can_have_its_reason(store):
    first, second = dq.split_downtime(store, "M1", T0 + 600, T0 + 750)
    assert (first["start"], first["end"], second["start"], second["end"]) == pytest.approx(
        (T0 + 600, T0 + 750, T0 + 750, T0 + 900))
    assert second["split_from"] == pytest.approx(T0 + 600) and second["fault_code"] == 101
    dq.assign_downtime_reason(store, "M1", T0 + 750, "ADJ")
    after = losses(store, "M1")
    assert after["availability.equipment_failure"] == pytest.approx(150)
    assert after["availability.setup_adjustment"] == pytest.approx(150)
    with pytest.raises(dq.DowntimeError) as err:
        dq.split_downtime(store, "M1", T0 + 750, T0 + 950)
    assert err.value.field == "at"


def test_edits_that_cannot_apply_say_which_field(store):
    for args, field in (((store, "M9", T0 + 900, "PM"), "machine"), ((store, "M1", T0 + 901, "PM"), "start"),
                        ((store, "M1", T0 + 900, "NOPE"), "reason"), ((store, "M1", T0 + 900, "SPEED"), "reason")):
        with pytest.raises(dq.DowntimeError) as err:
            dq.assign_downtime_reason(*args)
        assert err.value.field == field


def test_a_reason_given_while_the_stop_goes_on_ends_with_the_stop(store):
    ids = q.machine_db_ids(store)
    dq.assign_downtime_reason(store, "M2", T0 + 3600, "PM")
    with store.engine.begin() as conn:  # the stop ends, the machine runs, then stops again
        conn.execute(text('UPDATE machine_states SET "end" = :e WHERE machine_id = :m AND "end" IS NULL'),
                     {"m": ids["M2"], "e": backends.db_time(store.backend_name, T0 + 3700)})
    states(store, ids["M2"], [(3700, 3800, "running", None), (3800, None, "idle", None)])
    events = dq.downtime_events(store, T0, T0 + 3900, scope="machine", key="M2")  # stores the end of the reason
    assert [(e["start"] - T0, e["reason_code"]) for e in events] == [(3800, None), (3600, "PM")]
    after = losses(store, "M2", T0 + 3900)
    assert after["planned.planned_maintenance"] == pytest.approx(100)
    assert after["availability.idling_minor_stops"] == pytest.approx(100)


def test_machine_reports_each_over_its_own_range_equal_oee_report(store):
    """The overview's tiles: one read for many machines, each over its own shift, must say what GET /api/oee/ says
    for that machine and range, including ranges that read one-minute count rows and ranges that read them summed
    (count_grain_s), and an operator's reason."""
    ids = q.machine_db_ids(store)
    with store.engine.begin() as conn:
        for minute in range(60):
            conn.execute(text('INSERT INTO production_counts (machine_id, start, "end", product_code, total, good, '
                              "reject) VALUES (:m, :s, :e, 'P1', :t, :g, 0)"),
                         {"m": ids["M2"], "s": backends.db_time(store.backend_name, T0 + 60 * minute),
                          "e": backends.db_time(store.backend_name, T0 + 60 * minute + 59),
                          "t": 40 + minute % 7, "g": 40 + minute % 7})
    dq.assign_downtime_reason(store, "M1", T0 + 900, "PM")
    cases = [
        {"M1": (T0 + 100.5, T0 + 1700), "M2": (T0 + 1200, T0 + 3500)},  # both one-minute rows, cut differently
        {"M1": (T0 + 130, T0 + 1000), "M2": (T0 - 10 * 3600, T0 + 3000)},  # one-minute rows and summed ones
        {"M1": (T0 + 950, T0 + 3600), "M9": (T0, T0 + 3600)},  # an unknown machine is left out
    ]
    for ranges in cases:
        got = machine_reports(store, ranges)
        assert set(got) == set(ranges) - {"M9"}
        for machine, report in got.items():
            assert report == oee_report(store, "machine", machine, *ranges[machine]), (machine, ranges[machine])
            assert report["total_count"] > 0


def test_planned_against_actual_count(store):
    p = q.count_progress(store, "machine", "M1", T0, T0 + 3600, steps=60)
    assert len(p["times"]) == 60 and not p["missing_ideal"]
    assert p["ideal"][-1] == pytest.approx(3600)  # no calendar: all time planned, product P1 at 1 s a part
    assert (p["total"][-1], p["good"][-1]) == (1800, 1740)
    assert p["total"] == sorted(p["total"])


def test_plant_lists_status_and_shifts(store):
    machines = q.plant_machines(store)
    assert [(m["machine_id"], m["line"], m["area"]) for m in machines] == [
        ("M1", "Line A", "Area 1"), ("M2", "Line A", "Area 1")]
    assert q.plant_lines(store)[0]["machines"] == 2
    status = q.machine_status(store)
    ids = q.machine_db_ids(store)
    assert status[ids["M2"]]["state"] == "idle" and status[ids["M2"]]["since"] == pytest.approx(T0 + 3600)
    assert status[ids["M1"]]["state"] == "unknown"  # its last interval ended: nothing reports now
    assert q.data_start(store, "line", "Line A") == pytest.approx(T0)
    assert q.shift_at(store, "machine", "M1") is None  # no calendar
    assert sorted(r["code"] for r in dq.reason_codes(store)) == ["101", "ADJ", "PM"]  # SPEED cannot apply to a stop


def test_callbacks_asking_for_the_same_site_report_together_share_one_read(store):
    """The overview's KPIs and its loss Pareto ask side by side for the same range (components/site_report.py):
    one reads, those asking while it runs take its answer; it equals a call of its own; a later call reads anew."""
    import threading

    from components import site_report

    site = q.site_info(store)["id"]
    start, end = float(T0), float(T0 + 3600)
    together = threading.Barrier(8)
    answers: list = []

    def ask():
        together.wait()
        answers.append(site_report.site_report(store, site, start, end))

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(answers) == 8 and len({id(a) for a in answers}) < 8  # asked at once: fewer reads than callers
    own_report, own_analyses = oee_report_with_machines(store, "site", str(site), start, end, bucket="hour")
    for report, analyses in answers:
        assert report == own_report and report["total_count"] > 0
        assert {m: a.as_dict() for m, a in analyses.items()} == {m: a.as_dict() for m, a in own_analyses.items()}
    again = site_report.site_report(store, site, start, end)
    assert all(again is not a for a in answers) and again[0] == own_report  # nothing kept after the read
