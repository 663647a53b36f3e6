"""The hourly summaries (db.oee_hours) give the raw computation's numbers (one-minute count rows) to 1e-9, and
follow every change that the raw computation follows: reasons, calendars, ideal cycle times, thresholds, late
rows. The history is the simulated plant's (plant.model via bench.oee: micro-stops, failures, breaks, startup
rejects, several products)."""
from __future__ import annotations

import math
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

import oee
from bench.oee import history, load
from db import oee_hours
from db.oee_hours_refresh import refresh
from db.models import DowntimeEvent, Machine, PlannedDowntime, Product, ReasonCode, ShiftCalendar
from db.oee_queries import _analyze, _resolve, oee_report, oee_report_with_machines
from db.spool import Batch, Spool
from db.writer import Writer
from oee.totals import Totals

FIELDS = oee_hours.FIELDS
RATIOS = ("availability", "performance", "quality", "oee")
MACHINES, DAYS = 3, 2


@pytest.fixture(scope="module")
def plant():
    now = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
    start = now - timedelta(days=DAYS)
    layout, data = history(MACHINES, DAYS + 0.5, start)  # reaches past now: the last rows are not settled
    cut = time.time()
    data = {m: ([s for s in st if s[0] < cut], [c for c in cn if c[1] <= cut]) for m, (st, cn) in data.items()}
    for m, (st, _cn) in data.items():  # the last interval is open, as the collector leaves it
        st[-1] = (*st[-1][:1], None, *st[-1][2:])
    return layout, data, start.timestamp()


@pytest.fixture(params=["sqlite", "postgresql", "timescaledb"])
def store(request, plant, tmp_path):
    url = {"sqlite": lambda: f"sqlite:///{tmp_path}/s.sqlite3", "postgresql": lambda: request.getfixturevalue("pg_url"),
           "timescaledb": lambda: request.getfixturevalue("timescale_url")}[request.param]()
    layout, data, _t0 = plant
    store = load(url, layout, data)
    yield store
    store.close()


def raw(store, scope, key, a, b, bucket=None):
    """Today's engine over the raw rows at one-minute count rows: the reference."""
    configs, analyses, _tz = _analyze(store, lambda s: _resolve(s, scope, key), a, min(b, time.time()),
                                      bucket=bucket, grain=60)
    return oee.rollup_analyses(analyses), dict(zip([c.machine_id for c in configs], analyses))


def close(x, y):
    if x is None or y is None:
        return x is y
    return math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-9)


def assert_same_totals(got: Totals, want: Totals, where=""):
    for f in FIELDS:
        assert close(getattr(got, f), getattr(want, f)), (where, f, getattr(got, f), getattr(want, f))
    assert got.notes == want.notes, where
    g, w = got.result().as_dict(), want.result().as_dict()
    for r in RATIOS:
        assert close(g[r], w[r]), (where, r, g[r], w[r])


def assert_same(store, scope, key, a, b, bucket=None):
    want, want_machines = raw(store, scope, key, a, b, bucket)
    report, machines = oee_report_with_machines(store, scope, key, a, b, bucket=bucket)
    got = oee.rollup_analyses(machines.values())
    assert_same_totals(got.totals, want.totals, "whole")
    assert [bk for bk, _t in got.buckets] == [bk for bk, _t in want.buckets]
    for (bk, g), (_bk, w) in zip(got.buckets, want.buckets):
        assert_same_totals(g, w, bk.label)
    for m, analysis in machines.items():
        assert_same_totals(analysis.totals, want_machines[m].totals, m)
    plain = oee_report(store, scope, key, a, b, bucket=bucket)  # the roll-up read without per-machine buckets
    for r in RATIOS:
        assert close(plain[r], report[r])
    for pb, rb in zip(plain.get("buckets", []), report.get("buckets", [])):
        for r in RATIOS + ("total_count", "planned_time_s"):
            assert close(pb[r], rb[r]), (pb["label"], r)
    return report


def used(store, a, b) -> bool:
    """Whether every machine's summaries reach from a to the last hour before b that they can (settled)."""
    with store.engine.connect() as conn:
        spans = conn.execute(text("SELECT from_s, until_s FROM oee_hour_horizons")).all()
    return bool(spans) and all(f <= a + 3600 and u >= min(b, time.time()) - oee_hours.MARGIN_S - 2 * 3600
                               for f, u in spans)


def test_summaries_give_the_raw_numbers(store, plant):
    _layout, _data, t0 = plant
    stats = refresh(store)
    assert stats["hours"] > 0
    now = time.time()
    assert used(store, t0, now)
    # Ranges whose edges are inside hours (a stop across the start), the whole history up to now (the tail is not
    # settled), a day by hour, by day and by shift, one machine.
    for a, b, bucket in [(t0 + 1234.5, now, None), (t0, now, "hour"), (t0 + 3 * 3600 + 17, t0 + 30 * 3600 + 5, "day"),
                         (t0, now, "shift"), (t0 + 7200, t0 + 7200 + 86400, "hour")]:
        assert_same(store, "site", "Bench site", a, b, bucket)
    assert_same(store, "machine", "M002", t0 + 600, now - 3 * 3600, "hour")


def test_no_summary_for_an_unsettled_hour(store, plant):
    refresh(store)
    with store.engine.connect() as conn:
        horizons = conn.execute(text("SELECT machine_id, until_s FROM oee_hour_horizons")).all()
        last_start = dict(conn.execute(text("SELECT machine_id, max(start) FROM machine_states GROUP BY machine_id")).all())
        last_state = {mid: conn.execute(text("SELECT state FROM machine_states WHERE machine_id = :m ORDER BY start DESC "
                                             "LIMIT 1"), {"m": mid}).scalar() for mid in last_start}
        latest = dict(conn.execute(text('SELECT machine_id, max("end") FROM oee_hours GROUP BY machine_id')).all())
    from db import backend as backends
    for mid, until in horizons:
        assert until <= time.time() - oee_hours.MARGIN_S
        if last_state[mid] != "running":  # an open stop's time is not summarized (running time is running)...
            # ...unless it had lasted the micro-stop threshold by the settled time (never a minor stop then)
            assert until <= backends.epoch_of(last_start[mid]) or \
                time.time() - oee_hours.MARGIN_S - backends.epoch_of(last_start[mid]) >= 120
        assert latest[mid] <= until


def _give_reason(store, machine="M001", offset=5 * 3600):
    """An operator's reason on the first stop after t0 + offset."""
    with Session(store.engine) as s, s.begin():
        m = s.scalar(select(Machine).where(Machine.machine_id == machine))
        reason = ReasonCode(code=f"R{uuid.uuid4().hex[:6]}", name="Waiting for material", loss_category="planned_maintenance")
        s.add(reason)
        s.flush()
        row = s.execute(text("SELECT start, \"end\" FROM machine_states WHERE machine_id = :m AND state NOT IN ('running', 'planned_stop') "
                             "AND \"end\" IS NOT NULL ORDER BY start"), {"m": m.id}).all()
        from db import backend as backends
        t = [r for r in row if backends.epoch_of(r[0]) > backends.epoch_of(row[0][0]) + offset][0]
        s.add(DowntimeEvent(machine_id=m.id, start=t[0], end=t[1], reason_id=reason.id, planned=False))


def test_a_reason_given_later_changes_the_answer_to_the_raw_one(store, plant):
    _layout, _data, t0 = plant
    refresh(store)
    now = time.time()
    before = oee_report(store, "site", "Bench site", t0, now)
    _give_reason(store)
    after = assert_same(store, "site", "Bench site", t0, now, "hour")
    assert after["oee"] != before["oee"] or after["losses"] != before["losses"]
    refresh(store)  # recomputed from the reason on
    assert used(store, t0, now)
    assert_same(store, "site", "Bench site", t0, now, "hour")


@pytest.mark.parametrize("change", ["calendar", "ideal", "threshold"])
def test_settings_changes_reach_the_summaries(store, plant, change):
    _layout, _data, t0 = plant
    refresh(store)
    now = time.time()
    with Session(store.engine) as s, s.begin():
        if change == "calendar":
            cal = s.scalars(select(ShiftCalendar)).first()
            s.add(PlannedDowntime(calendar_id=cal.id, start=datetime.fromtimestamp(t0 + 8 * 3600, timezone.utc),
                                  end=datetime.fromtimestamp(t0 + 9.5 * 3600, timezone.utc)))
        elif change == "ideal":
            for p in s.scalars(select(Product)):
                p.ideal_cycle_time_s = (p.ideal_cycle_time_s or 1.0) * 1.25
        else:
            for m in s.scalars(select(Machine)):
                m.micro_stop_threshold_s = 30.0
    assert_same(store, "site", "Bench site", t0, now, "hour")
    refresh(store)
    assert used(store, t0, now)
    assert_same(store, "site", "Bench site", t0, now, "day")


def test_late_count_rows_through_the_writer(store, plant, tmp_path):
    _layout, _data, t0 = plant
    refresh(store)
    now = time.time()
    with Session(store.engine) as s:
        mid = s.scalar(select(Machine.id).where(Machine.machine_id == "M003"))
    writer = Writer(store, Spool(tmp_path / "spool"))
    writer.start()
    try:
        late = t0 + 6 * 3600 + 30  # parts the collector had buffered, written hours later
        assert writer.submit_counts([(mid, late, late + 60, None, 40, 35, 5)])
        assert writer.flush()
    finally:
        writer.stop()
    report = assert_same(store, "site", "Bench site", t0, now, "hour")
    refresh(store)
    assert used(store, t0, now)
    assert oee_report(store, "site", "Bench site", t0, now, bucket="hour")["total_count"] == report["total_count"]


def test_a_late_state_row_through_the_writer(store, plant, tmp_path):
    """A stop the collector had buffered, written hours later inside a running interval it cuts short."""
    _layout, _data, t0 = plant
    refresh(store)
    now = time.time()
    from db import backend as backends
    with Session(store.engine) as s:
        mid = s.scalar(select(Machine.id).where(Machine.machine_id == "M001"))
        run = [(backends.epoch_of(a), backends.epoch_of(b)) for a, b in s.execute(text(
            "SELECT start, \"end\" FROM machine_states WHERE machine_id = :m AND state = 'running' AND \"end\" IS NOT NULL "
            "ORDER BY start"), {"m": mid}).all() if backends.epoch_of(b) - backends.epoch_of(a) > 300]
    a, _b = next(r for r in run if r[0] > t0 + 10 * 3600)
    before = oee_report(store, "machine", "M001", t0, now)
    writer = Writer(store, Spool(tmp_path / "spool"))
    writer.start()
    try:
        assert writer.submit_states([(mid, a + 100, a + 160, "idle", None, None), (mid, a + 160, None, "running", None, None)])
        assert writer.flush()
    finally:
        writer.stop()
    after = assert_same(store, "site", "Bench site", t0, now, "hour")
    assert oee_report(store, "machine", "M001", t0, now)["losses"] != before["losses"]
    refresh(store)
    assert used(store, t0, now)
    assert_same(store, "site", "Bench site", t0, now, "day")
    assert after["oee"] == pytest.approx(oee_report(store, "site", "Bench site", t0, now)["oee"], rel=1e-9)


def test_rows_just_past_the_margin_through_the_writer(store, plant, tmp_path):
    """A count row and a short stop a little older than the settle margin (MARGIN_S) but younger than ten minutes,
    written through the real Writer after the summaries had moved past them: the hook cuts the summaries back and
    the report gives the raw answer, before and after the next refresh."""
    _layout, _data, t0 = plant
    from db import backend as backends
    began = math.floor(time.time()) - 3600
    with store.engine.begin() as conn:  # M002 runs since an hour ago: its summaries reach the settled minute
        # No breaks: the new rows must fall in planned production whatever the hour the test runs at (in the
        # plant's 10:00 lunch break the part would count as made outside planned time, the stop as break).
        conn.execute(text("DELETE FROM shift_breaks"))
        mid = conn.execute(text("SELECT id FROM machines WHERE machine_id = 'M002'")).scalar()
        for table in ("machine_states", "production_counts"):
            conn.execute(text(f"DELETE FROM {table} WHERE machine_id = :m AND start >= :s"),
                         {"m": mid, "s": backends.db_time(store.backend_name, began)})
    store.write_batch(Batch(uuid.uuid4().hex, states=[(mid, began, None, "running", None, None)]))
    refresh(store)
    with store.engine.connect() as conn:
        until = conn.execute(text("SELECT until_s FROM oee_hour_horizons WHERE machine_id = :m"), {"m": mid}).scalar()
    part, stop = until - 40, until - 100
    now = time.time()
    assert now - 600 < stop < part < now - oee_hours.MARGIN_S  # late for the hook, inside the old 10-minute margin
    before = oee_report(store, "machine", "M002", t0, now)
    writer = Writer(store, Spool(tmp_path / "spool"))
    writer.start()
    try:
        assert writer.submit_counts([(mid, part, part + 20, None, 40, 35, 5)])
        assert writer.submit_states([(mid, stop, stop + 30, "idle", None, None),
                                     (mid, stop + 30, None, "running", None, None)])
        assert writer.flush()
    finally:
        writer.stop()
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT until_s FROM oee_hour_horizons WHERE machine_id = :m"),
                            {"m": mid}).scalar() <= stop
    after = assert_same(store, "site", "Bench site", t0, now, "hour")
    mine = oee_report(store, "machine", "M002", t0, now)
    assert mine["total_count"] == before["total_count"] + 40 and mine["losses"] != before["losses"]
    assert mine["outside_planned_total_count"] == 0 and mine["planned_time_s"] == before["planned_time_s"]
    refresh(store)
    assert used(store, t0, now)
    again = assert_same(store, "site", "Bench site", t0, now, "day")
    assert again["oee"] == pytest.approx(after["oee"], rel=1e-9)


def test_the_partial_last_hour_grows_into_a_whole_one(store, plant):
    """The refresher summarizes up to the settled minute: the last hour is a partial row that the next refresh
    extends (the two pieces added up), so a report's raw tail stays short."""
    _layout, _data, t0 = plant
    # Half an hour into an hour 5-6 hours ago: "now - 5 h - 1234 s" came within the minute after an hour edge
    # (its settled minute was that edge) once in 60 runs, and did in CI.
    earlier = math.floor((time.time() - 5 * 3600) / 3600) * 3600 - 1800
    refresh(store, now=earlier)
    with store.engine.connect() as conn:
        partial = dict(conn.execute(text("SELECT machine_id, until_s FROM oee_hour_horizons")).all())
    assert any(u % 3600 for u in partial.values())  # inside an hour (the plant's zone has whole-hour offsets)
    now = time.time()
    assert_same(store, "site", "Bench site", t0, now, "hour")  # a partial row read as one
    refresh(store)
    with store.engine.connect() as conn:
        rows = conn.execute(text('SELECT machine_id, start, "end" FROM oee_hours ORDER BY machine_id, start')).all()
        until = dict(conn.execute(text("SELECT machine_id, until_s FROM oee_hour_horizons")).all())
    for mid, s, e in rows:
        assert s % 3600 == 0, (mid, s)  # one row an hour, from its start
        assert e % 3600 == 0 or e == until[mid]
    assert all(until[m] > partial[m] for m in until)
    assert_same(store, "site", "Bench site", t0, now, "day")
    assert_same(store, "site", "Bench site", t0 + 1800, now, "hour")


@pytest.mark.parametrize("when", ["before", "late"])
def test_a_long_count_row_reaching_into_the_head(store, plant, tmp_path, when):
    """A count row of hours (a counter read after the collector was away) whose middle falls in a report's raw
    head: the reads of the raw rest start early enough for it, whether the refresher saw it or it came late."""
    _layout, _data, t0 = plant
    with Session(store.engine) as s:
        mid = s.scalar(select(Machine.id).where(Machine.machine_id == "M002"))
    row = (mid, t0 + 3 * 3600 + 17, t0 + 10 * 3600 + 1217, None, 500, 450, 50)  # middle: t0 + 6 h 40 min
    if when == "before":
        store.write_batch(Batch(uuid.uuid4().hex, counts=[row]))
        refresh(store)
    else:
        refresh(store)
        writer = Writer(store, Spool(tmp_path / "spool"))
        writer.start()
        try:
            assert writer.submit_counts([row])
            assert writer.flush()
        finally:
            writer.stop()
    now = time.time()
    report = assert_same(store, "site", "Bench site", t0 + 6.5 * 3600, now, "hour")
    refresh(store)
    again = assert_same(store, "site", "Bench site", t0 + 6.5 * 3600, now, "day")
    assert again["total_count"] == report["total_count"]


def test_an_open_stop_is_not_summarized(store, plant):
    """A stop still going on, shorter than the micro-stop threshold at the settled time: its minor-stop class
    waits for its whole length, so the summaries end before it; an open running interval does not hold them
    back."""
    _layout, _data, t0 = plant
    from db import backend as backends
    with store.engine.connect() as conn:  # the machine running the longest: the stop comes after its last row
        mid, last = conn.execute(text("SELECT machine_id, max(start) AS s FROM machine_states GROUP BY machine_id "
                                      "ORDER BY s LIMIT 1")).first()
        # Another machine starts running now (the simulated plant may be in a stop at this time of day)
        other, other_last = conn.execute(text("SELECT machine_id, max(start) FROM machine_states WHERE machine_id "
                                              "<> :m GROUP BY machine_id ORDER BY machine_id LIMIT 1"),
                                         {"m": mid}).first()
    stop = max(math.floor(backends.epoch_of(last)) + 60, math.floor(time.time() - oee_hours.MARGIN_S) - 60)
    runs = max(math.floor(backends.epoch_of(other_last)) + 1, math.floor(time.time()) - 5)
    store.write_batch(Batch(uuid.uuid4().hex, states=[(mid, stop, None, "idle", None, None),
                                                      (other, runs, None, "running", None, None)]))
    refresh(store)
    with store.engine.connect() as conn:
        until = dict(conn.execute(text("SELECT machine_id, until_s FROM oee_hour_horizons")).all())
    assert until[mid] <= stop
    assert until[other] >= time.time() - oee_hours.MARGIN_S - 120  # running: up to the settled minute
    assert_same(store, "site", "Bench site", t0 + 1800, time.time(), "hour")


def test_a_long_open_stop_is_summarized(store, plant):
    """A stop still going on that has lasted the micro-stop threshold by the settled time can never be a minor
    stop: its hours are settled (a plant's night stop left the whole night raw, for every report ending now).
    Then a row ending it later changes nothing in the summaries."""
    _layout, _data, t0 = plant
    from db import backend as backends
    stop = math.floor(time.time()) - 3 * 3600
    with store.engine.begin() as conn:  # M001 faulted 3 hours ago (its later rows never came)
        mid = conn.execute(text("SELECT id FROM machines WHERE machine_id = 'M001'")).scalar()
        conn.execute(text("DELETE FROM machine_states WHERE machine_id = :m AND start >= :s"),
                     {"m": mid, "s": backends.db_time(store.backend_name, stop)})
        conn.execute(text("DELETE FROM production_counts WHERE machine_id = :m AND start >= :s"),
                     {"m": mid, "s": backends.db_time(store.backend_name, stop)})
    store.write_batch(Batch(uuid.uuid4().hex, states=[(mid, stop, None, "faulted", 7, None)]))
    refresh(store)
    with store.engine.connect() as conn:
        until = dict(conn.execute(text("SELECT machine_id, until_s FROM oee_hour_horizons")).all())
    assert until[mid] >= time.time() - oee_hours.MARGIN_S - 120  # up to the settled minute, not to the stop
    assert_same(store, "site", "Bench site", t0 + 1800, time.time(), "hour")
    store.write_batch(Batch(uuid.uuid4().hex, states=[(mid, math.floor(time.time()) - 30, None, "running", None,
                                                       None)]))
    assert_same(store, "site", "Bench site", t0 + 1800, time.time(), "day")


def test_whole_days_are_read_from_their_day_rows(store, plant):
    """Every whole plant day inside a machine's summarized hours has its row in oee_days, the sum of its hours,
    and a report over whole days adds those rows (30 a machine for a month instead of 720 hours)."""
    _layout, _data, t0 = plant
    refresh(store)
    with store.engine.connect() as conn:
        horizons = conn.execute(text("SELECT machine_id, from_s, until_s FROM oee_hour_horizons")).all()
        days = {(m, s): (e, r) for m, s, e, *r in conn.execute(text(
            f'SELECT machine_id, start, "end", {", ".join(FIELDS)} FROM oee_days'))}
        tz = conn.execute(text("SELECT timezone FROM sites")).scalar()
        for mid, f, u in horizons:
            edges = oee_hours.day_edges(f, u, tz)
            assert len(edges) >= 2  # the plant's history holds a whole day
            for ds, de in zip(edges, edges[1:]):
                e, row = days.pop((mid, ds))
                assert e == de
                sums = conn.execute(text(f"SELECT {', '.join(f'sum({x})' for x in FIELDS)} FROM oee_hours WHERE "
                                         'machine_id = :m AND start >= :s AND "end" <= :e'),
                                    {"m": mid, "s": ds, "e": de}).one()
                assert all(close(a, b) for a, b in zip(row, sums)), (mid, ds)
    assert not days  # none outside the summarized hours
    now = time.time()
    before = oee_report(store, "site", "Bench site", t0 + 1800, now)
    with store.engine.begin() as conn:  # a day row changed by hand: the report follows it (it reads the day row)
        conn.execute(text("UPDATE oee_days SET running_s = running_s + 1000, unknown_s = unknown_s - 1000"))
        n = conn.execute(text("SELECT count(*) FROM oee_days")).scalar()
    after = oee_report(store, "site", "Bench site", t0 + 1800, now)
    assert after["run_time_s"] == pytest.approx(before["run_time_s"] + 1000 * n, rel=1e-12)


def test_a_head_longer_than_half_an_hour_is_its_hour_minus_the_rest(store, plant):
    """A range starting 50 minutes before an hour edge: its head is read as the hour's row minus the raw 10
    minutes before the range (at most half an hour raw); the answer is the raw one to 1e-9, with buckets too, and
    for an hour with notes (not taken back: read whole)."""
    _layout, _data, t0 = plant
    refresh(store)
    now = time.time()
    for a, bucket in [(t0 + 4 * 3600 + 600, None), (t0 + 4 * 3600 + 600, "day"), (t0 + 7 * 3600 + 1801, "hour"),
                      (t0 + 9 * 3600 + 599.5, "shift")]:
        assert_same(store, "site", "Bench site", a, now, bucket)
    a = t0 + 4 * 3600 + 600
    before = oee_report(store, "site", "Bench site", a, now)
    with store.engine.begin() as conn:  # the head's hour changed by hand: the report follows (it reads the row)
        conn.execute(text("UPDATE oee_hours SET running_s = running_s + 100, unknown_s = unknown_s - 100 "
                          "WHERE start = :h"), {"h": int(t0 + 4 * 3600)})
    after = oee_report(store, "site", "Bench site", a, now)
    assert after["run_time_s"] == pytest.approx(before["run_time_s"] + 100 * MACHINES, rel=1e-12)
    with store.engine.begin() as conn:  # an hour with notes is read raw (notes cannot be taken back)
        conn.execute(text("UPDATE oee_hours SET notes = 'no_ideal_cycle_time' WHERE start = :h"),
                     {"h": int(t0 + 4 * 3600)})
    assert oee_report(store, "site", "Bench site", a, now)["run_time_s"] == pytest.approx(before["run_time_s"],
                                                                                          rel=1e-12)
