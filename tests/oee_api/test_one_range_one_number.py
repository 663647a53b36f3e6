"""One range, one number: the pages (the overview's tile, as the page computes it), GET /api/oee/, /metrics, the CSV
export and Grafana's table give the same A, P, Q and OEE for the same machine and range, on SQLite, PostgreSQL and
(where installed) TimescaleDB.

The plant is made to catch the ways they used to differ: a machine added mid-shift (the tile counted from its first
data, /metrics from the shift's start), breaks and stops that do not fall on the count rows' grains (Grafana's
rows were buckets of a week-long report whose count rows are summed by the hour), and a machine whose ideal cycle
time is too slow (performance above 100 %: marked, with its cause, wherever it is shown).
"""
from __future__ import annotations

import io
from datetime import datetime, timezone
from datetime import time as clock

import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text
from sqlalchemy.orm import Session

from app import create_app
from db import backend as backends
from db import oee_summary
from db.models import (
    Area,
    Line,
    Machine,
    MachineLifetime,
    Shift,
    ShiftBreak,
    ShiftCalendar,
    Site,
)
from db.spool import Batch
from exports.prometheus import make_registry, render
from processes.runtime import Runtime
from processes.settings import Settings

H, M = 3600.0, 60.0
D0 = 1_790_000_000.0 - (1_790_000_000.0 % 86400)  # a midnight (UTC), in the past
NOW = D0 + 12 * H + 10 * M  # 12:10: the Day shift (06:00-14:00, a break 10:10-10:40) is under way
SHIFT_START = D0 + 6 * H
ADDED = D0 + 9 * H + 20 * M  # M2 is added at 09:20 and reports from 09:20:45
FACTORS = ("availability", "performance", "quality", "oee")


def utc(t: float) -> datetime:
    return datetime.fromtimestamp(t, timezone.utc)


def _timeline(start: float, end: float, stops) -> list[tuple[float, float, str]]:
    """(start, end, state) from start to end: running, except the stops (start, end, state), and the break."""
    cuts = sorted(stops)
    out, t = [], start
    for a, b, state in cuts:
        if b <= t or a >= end:
            continue
        if a > t:
            out.append((t, a, "running"))
        out.append((max(a, t), min(b, end), state))
        t = min(b, end)
    if t < end:
        out.append((t, end, "running"))
    return out


def _stops(first: float, last: float, fault_at_min: float, fault_min: float) -> list:
    """A fault every hour at fault_at_min for fault_min minutes, and the breaks (10:10, 18:10) as planned stops."""
    out = []
    t = first - (first % H)
    while t < last:
        out.append((t + fault_at_min * M, t + (fault_at_min + fault_min) * M, "faulted"))
        t += H
    day = first - (first % 86400)
    while day < last:
        for at in (10 * H + 10 * M, 18 * H + 10 * M):
            out.append((day + at, day + at + 30 * M, "planned_stop"))
        day += 86400
    return out


def _counts(pk: int, timeline, per_min: float, reject_every: int) -> list[tuple]:
    """One-minute count rows as the collector writes them (rows of zeros where nothing was made)."""
    rows = []
    first = timeline[0][0] - timeline[0][0] % M
    t = first
    end = timeline[-1][1]
    while t < end:
        running = sum(max(0.0, min(b, t + M) - max(a, t)) for a, b, st in timeline if st == "running")
        total = round(per_min * running / M)
        reject = total // reject_every
        rows.append((pk, t, min(t + M - 0.5, end), None, total, total - reject, reject))
        t += M
    return rows


def _seed(store) -> None:
    with Session(store.engine) as s, s.begin():
        cal = ShiftCalendar(name="3x8", timezone="UTC", shifts=[
            Shift(name="Day", start_time=clock(6), end_time=clock(14),
                  breaks=[ShiftBreak(name="Lunch", start_time=clock(10, 10), duration_s=1800)]),
            Shift(name="Swing", start_time=clock(14), end_time=clock(22),
                  breaks=[ShiftBreak(name="Dinner", start_time=clock(18, 10), duration_s=1800)]),
            Shift(name="Night", start_time=clock(22), end_time=clock(6))])
        line = Line(area=Area(site=Site(name="Plant", timezone="UTC"), name="Packaging"), name="Line A")
        m1 = Machine(machine_id="M1", name="Filler", line=line, ideal_cycle_time_s=1.0)
        m2 = Machine(machine_id="M2", name="New capper", line=line, ideal_cycle_time_s=1.0)
        m3 = Machine(machine_id="M3", name="Labeller", line=line, ideal_cycle_time_s=1.0)  # too slow: P 120 %
        s.add_all([cal, line, m1, m2, m3])
        s.flush()
        for m in (m1, m2, m3):
            m.calendar_id = cal.id
        s.add_all([MachineLifetime(machine_id=m1.id, start=utc(D0 - 30 * 86400)),
                   MachineLifetime(machine_id=m2.id, start=utc(ADDED)),
                   MachineLifetime(machine_id=m3.id, start=utc(D0 - 30 * 86400))])
        pks = (m1.id, m2.id, m3.id)
    begin = D0 - 86400 + 7 * M
    t1 = _timeline(begin, NOW, _stops(begin, NOW, 47, 11))
    t2 = _timeline(ADDED + 45, NOW, _stops(ADDED + 45, NOW, 23, 7))
    t3 = _timeline(begin, NOW, _stops(begin, NOW, 5, 13))
    states, counts = [], []
    for pk, tl, rate, every in ((pks[0], t1, 54, 50), (pks[1], t2, 57, 40), (pks[2], t3, 72, 100)):
        states += [(pk, a, b, st, 101 if st == "faulted" else None, None) for a, b, st in tl]
        counts += _counts(pk, tl, rate, every)
    store.write_batch(Batch("seed", states=states, counts=counts))
    if store.backend_name == backends.TIMESCALEDB:
        backends.refresh_continuous_aggregates(store.engine, begin, NOW)


@pytest.fixture(params=["sqlite", "postgresql", "timescaledb"])
def plant(request, tmp_path):
    url = request.getfixturevalue({"sqlite": "sqlite_url", "postgresql": "pg_url",
                                   "timescaledb": "timescale_url"}[request.param])
    runtime = Runtime(Settings(database_url=url, data_dir=tmp_path, demo=False, role="web")).start()
    _seed(runtime.store)
    app = create_app(runtime)
    yield app, runtime
    runtime.stop()


def iso(t: float) -> str:
    return utc(t).isoformat().replace("+00:00", "Z")


def _tile(app, machine: str) -> tuple[tuple[float, float], dict]:
    """The overview's tile: its range and numbers, computed as the page's callback does."""
    from db import ui_queries
    from db.oee_queries import machine_reports
    from pages import overview

    with app.server.test_request_context("/"):
        store = app.server.extensions["oee"].store
        ranges = overview._shift_ranges(ui_queries.plant_machines(store), NOW)
        a, b, _label = ranges[machine]
        return (a, b), machine_reports(store, {machine: (a, b)})[machine]


def _metrics(runtime) -> dict:
    text_ = render(make_registry(runtime, clock=lambda: NOW)).decode()
    out: dict = {}
    for family in text_string_to_metric_families(text_):
        for sample in family.samples:
            if family.name.startswith("oee_machine_"):
                out.setdefault(sample.labels["machine"], {})[family.name[len("oee_machine_"):]] = sample.value
    return out


def _grafana(store, machine: str, start: float, end: float) -> dict:
    name = store.backend_name
    with store.engine.connect() as conn:
        row = conn.execute(text(
            "SELECT o.availability, o.performance, o.quality, o.oee, o.flags FROM oee_summary o "
            "JOIN machines m ON m.id = o.machine_id WHERE m.machine_id = :m AND o.kind = 'shift' "
            "AND o.start = :a AND o.\"end\" = :b"),
            {"m": machine, "a": backends.db_time(name, start), "b": backends.db_time(name, end)}).one()
        if name != backends.SQLITE:  # the view Grafana reads says the same
            view = conn.execute(text(
                "SELECT availability, performance, quality, oee FROM grafana_oee_shift WHERE machine = :m "
                "AND time = :a"), {"m": machine, "a": backends.db_time(name, start)}).one()
            assert tuple(view) == tuple(row[:4])
    return dict(zip((*FACTORS, "flags"), row))


def test_pages_api_metrics_csv_and_grafana_agree(plant):
    app, runtime = plant
    client, store = app.server.test_client(), runtime.store
    # Grafana's table as the collecting process keeps it: a week's backfill, then the recent refresh
    oee_summary.backfill(store, NOW - 2 * 86400, NOW)
    oee_summary.refresh(store, NOW - 2 * H, NOW)
    metrics = _metrics(runtime)
    for machine in ("M1", "M2", "M3"):
        (a, b), tile = _tile(app, machine)
        assert (a, b) == (SHIFT_START, NOW), "the tile counts the shift as /metrics does"
        api = client.get("/api/oee/", query_string={"machine": machine, "start": iso(a), "end": iso(b)}).get_json()
        csv = pd.read_csv(io.BytesIO(client.get("/export/oee.csv", query_string={
            "machine": machine, "start": iso(a), "end": iso(b)}).get_data()), keep_default_na=False)
        grafana = _grafana(store, machine, a, b)
        for factor in FACTORS:
            values = {"page": tile[factor], "api": api[factor], "metrics": metrics[machine][factor],
                      "csv": float(csv[factor][0]), "grafana": grafana[factor]}
            assert max(values.values()) - min(values.values()) <= 1e-6, (machine, factor, values)
        # the same for a whole shift that ended, asked of the API and read from Grafana's table
        done = client.get("/api/oee/", query_string={"machine": machine, "start": iso(D0 - 10 * H),
                                                     "end": iso(D0 - 2 * H)}).get_json()
        if machine != "M2":
            old = _grafana(store, machine, D0 - 10 * H, D0 - 2 * H)
            for factor in FACTORS:
                assert old[factor] == pytest.approx(done[factor], abs=1e-6), (machine, factor)
        # a factor above 100 % is marked with its cause everywhere it is shown
        above = "performance_above_100" in api["flags"]
        assert above == (machine == "M3")
        assert ("performance_above_100" in grafana["flags"]) == above
        assert ("performance_above_100" in csv["flags"][0]) == above
        assert ("ideal cycle time is too slow" in csv["warnings"][0]) == above
        assert bool(tile["warnings"]) == above
    m2 = client.get("/api/oee/", query_string={"machine": "M2", "start": iso(SHIFT_START), "end": iso(NOW)}).get_json()
    assert m2["losses"]["availability.unknown"] == pytest.approx(45)  # added, not yet reporting; nothing before
    assert m2["planned_time_s"] == pytest.approx(NOW - ADDED - 30 * M)
