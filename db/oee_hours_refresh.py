"""Keeps the hourly OEE summaries (db/oee_hours.py) up to date: resets a machine whose fingerprint changed,
cuts back one whose operators' reasons changed or that got late rows, then computes its settled hours a day at a
time with the OEE engine over one-minute count rows (machines at the same point together, as many as one
report's rows allow). Run by the processes that refresh oee_summary, and once at start for the backfill."""
from __future__ import annotations

import json
import logging
import math
import sqlite3
import time
from contextlib import contextmanager

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from db import backend as backends
from db.models import Machine
from db.oee_hours import (FIELDS, HISTORY_S, MARGIN_S, ROWS_PER_MACHINE_DAY, STEP_S, hour_floor, longest,
                          overlapping, reasoned_events, run_start, totals_of, valid_until, write_days)
from db.oee_queries import MAX_ROWS, _analyze, _summary_context
from oee.events import RUNNING

log = logging.getLogger(__name__)


def refresh(store, now: float | None = None, *, step_s: float = STEP_S, max_steps: int | None = None,
            history_s: float = HISTORY_S) -> dict:
    """Bring every machine's summaries up to its settled hours: reset those whose fingerprint changed, cut back
    those whose operators' reasons changed, then compute missing hours a step (a day) at a time, machines that
    are at the same point together. Returns {'hours': written, 'steps': n, 'seconds': t}."""
    t0 = time.perf_counter()
    now = time.time() if now is None else now
    name = store.backend_name
    plan: dict[int, list] = {}  # pk -> [machine, from, until, target, fingerprint, generation]
    with Session(store.engine) as session:
        machines = list(session.scalars(select(Machine).order_by(Machine.id)))
        if not machines:
            return {"hours": 0, "steps": 0, "seconds": 0.0}
        (mconf, _by_id, _ideal, tz), prints, _periods = _summary_context(session, machines, None, None)
        ids = [m.id for m in machines]
        horizons = {mid: (f, u, fp, json.loads(o), g) for mid, f, u, fp, o, g in session.execute(text(
            "SELECT machine_id, from_s, until_s, fingerprint, overrides, generation FROM oee_hour_horizons"))}
        events = reasoned_events(session, name, ids)
    with store.engine.begin() as conn:
        for m in machines:
            limit = now - MARGIN_S
            tail = conn.execute(text('SELECT state, "end" FROM machine_states WHERE machine_id = :m '
                                     "ORDER BY start DESC LIMIT 1"), {"m": m.id}).first()
            if tail is not None and tail[0] == RUNNING:
                # Running time is running however long it lasts: its hours are settled; after a closed last row
                # comes a gap that is still growing.
                if tail[1] is not None:
                    limit = min(limit, backends.epoch_of(tail[1]))
            elif tail is not None:
                # A stop: its minor-stop class waits for its whole length, unless it is already as long as the
                # threshold (it can only grow: never a minor stop then; a plant's night stop would otherwise
                # leave hours raw). A closed one is followed by a growing gap, as above.
                began = run_start(conn, name, m.id)
                ended = None if tail[1] is None else backends.epoch_of(tail[1])
                if min(limit, ended if ended is not None else limit) - began \
                        >= mconf[m.machine_id].config.micro_stop_threshold_s:
                    limit = min(limit, ended) if ended is not None else limit
                else:
                    limit = min(limit, began)
            target = math.floor(limit / 60.0) * 60.0  # the last hour is kept as a partial row that grows
            h = horizons.get(m.id)
            if h is None or h[2] != prints[m.machine_id]:
                first = conn.execute(text("SELECT min(start) FROM machine_states WHERE machine_id = :m"),
                                     {"m": m.id}).scalar()
                first = backends.epoch_of(first)
                begin = hour_floor(max(first if first is not None else target, now - history_s), tz)
                conn.execute(text("DELETE FROM oee_hours WHERE machine_id = :m"), {"m": m.id})
                conn.execute(text("DELETE FROM oee_days WHERE machine_id = :m"), {"m": m.id})
                ms, mc = longest(conn, name, [m.id])[m.id]  # all its rows; each step adds its own
                if h is None:
                    conn.execute(text("INSERT INTO oee_hour_horizons (machine_id, from_s, until_s, fingerprint, "
                                      "overrides, computed_at, generation, max_state_s, max_count_s) "
                                      "VALUES (:m, :f, :f, :fp, '[]', :t, 0, :ms, :mc)"),
                                 {"m": m.id, "f": int(begin), "fp": prints[m.machine_id],
                                  "t": backends.db_time(name, now), "ms": ms or 0.0, "mc": mc or 0.0})
                    gen = 0
                else:
                    gen = h[4]
                    conn.execute(text("UPDATE oee_hour_horizons SET from_s = :f, until_s = :f, fingerprint = :fp, "
                                      "overrides = '[]', max_state_s = :ms, max_count_s = :mc WHERE machine_id = :m"),
                                 {"m": m.id, "f": int(begin), "fp": prints[m.machine_id], "ms": ms or 0.0,
                                  "mc": mc or 0.0})
                plan[m.id] = [m, begin, begin, target, prints[m.machine_id], gen]
                continue
            begin, until, gen = float(h[0]), float(h[1]), h[4]
            # until is an hour edge or the end of the partial row the last refresh wrote (the late-row hook moves
            # it to an hour edge); a change of the operators' reasons cuts back to the hour it touches.
            changed = valid_until(h[3], events.get(m.id, []), begin, until) if until > begin else until
            valid = until if changed >= until else max(begin, hour_floor(changed, tz))
            if valid < until:
                conn.execute(text("DELETE FROM oee_hours WHERE machine_id = :m AND start >= :u"),
                             {"m": m.id, "u": int(valid)})
                conn.execute(text('DELETE FROM oee_days WHERE machine_id = :m AND "end" > :u'),
                             {"m": m.id, "u": int(valid)})
                conn.execute(text("UPDATE oee_hour_horizons SET until_s = :u, overrides = :o WHERE machine_id = :m"),
                             {"m": m.id, "u": int(valid),
                              "o": json.dumps(overlapping(events.get(m.id, []), begin, valid))})
            plan[m.id] = [m, begin, valid, target, prints[m.machine_id], gen]
    hours = steps = 0
    per_step = max(1, int(MAX_ROWS * 0.8 / (ROWS_PER_MACHINE_DAY * step_s / 86400.0)))
    while max_steps is None or steps < max_steps:
        due: dict[tuple, list] = {}
        for p in plan.values():
            m, begin, until, target = p[:4]
            if until < target:
                end = min(target, hour_floor(until + step_s, tz) if until + step_s < target else target)
                if end > until:
                    due.setdefault((until, end), []).append(p)
        if not due:
            break
        (until, end), group = next(iter(sorted(due.items(), key=lambda kv: kv[0])))
        for i in range(0, len(group), per_step):
            chunk = group[i:i + per_step]
            hours += _compute(store, chunk, until, end, tz, now)
            steps += 1
    return {"hours": hours, "steps": steps, "seconds": time.perf_counter() - t0}


def _compute(store, chunk: list[list], until: float, end: float, tz: str, now: float) -> int:
    """Compute and store the hours [until, end) of the machines in chunk (same until), then move their horizons
    unless a late row moved one meanwhile (its generation changed: that machine's hours are dropped)."""
    name = store.backend_name
    machines = [p[0] for p in chunk]
    with Session(store.engine) as session:  # the operators' reasons as they are before the rows are read
        events = reasoned_events(session, name, [m.id for m in machines])
    configs, result, _tz = _analyze(store, lambda _s: machines, until, end, bucket="hour", max_buckets=10**6,
                                    tz=tz, grain=60)
    written = 0
    moved_from: dict[int, float] = {}  # machines whose hours were written: their horizon's from_s
    with store.engine.begin() as conn:
        lengths = longest(conn, name, [m.id for m in machines], until, end)
        for p, mc, analysis in zip(chunk, configs, result, strict=True):
            m, begin = p[0], p[1]
            ms, mcount = lengths[m.id]
            moved = conn.execute(text(
                "UPDATE oee_hour_horizons SET until_s = :e, overrides = :o, computed_at = :t, "
                "max_state_s = CASE WHEN max_state_s < :ms THEN :ms ELSE max_state_s END, "
                "max_count_s = CASE WHEN max_count_s < :mc THEN :mc ELSE max_count_s END "
                "WHERE machine_id = :m AND until_s = :u AND generation = :g AND fingerprint = :fp"),
                {"e": int(end), "u": int(until), "g": p[5], "fp": p[4], "m": m.id, "t": backends.db_time(name, now),
                 "o": json.dumps(overlapping(events.get(m.id, []), begin, end)), "ms": ms or 0.0,
                 "mc": mcount or 0.0}).rowcount
            if not moved:
                p[3] = p[2]  # the horizon moved under us: the next refresh starts again from it
                continue
            conn.execute(text("DELETE FROM oee_hours WHERE machine_id = :m AND start >= :u"),
                         {"m": m.id, "u": int(until)})
            conn.execute(text('DELETE FROM oee_days WHERE machine_id = :m AND "end" > :u'),
                         {"m": m.id, "u": int(until)})
            pieces = [(bk.start, bk.end, t) for bk, t in analysis.buckets]
            h0 = hour_floor(until, tz)
            if h0 < until and pieces:  # the partial row of this hour and the new piece of it become one row
                cols = ", ".join(f'"{f}"' for f in FIELDS)
                prev = conn.execute(text(f"SELECT {cols}, notes FROM oee_hours WHERE machine_id = :m AND start = :h "
                                         'AND "end" = :u'), {"m": m.id, "h": int(h0), "u": int(until)}).first()
                if prev is None:  # cannot happen (until is an hour edge or such a row's end): redo the hour
                    conn.execute(text("UPDATE oee_hour_horizons SET until_s = :h, generation = generation + 1 "
                                      "WHERE machine_id = :m"), {"m": m.id, "h": int(h0)})
                    p[3] = p[2]
                    continue
                conn.execute(text("DELETE FROM oee_hours WHERE machine_id = :m AND start = :h"),
                             {"m": m.id, "h": int(h0)})
                s0, e0, t0 = pieces[0]
                pieces[0] = (h0, e0, totals_of(prev[:-1], prev[-1]) + t0)
            rows = [{"m": m.id, "s": int(s), "e": int(e), "notes": " ".join(sorted(t.notes)),
                     **{f: getattr(t, f) for f in FIELDS}} for s, e, t in pieces]
            if rows:
                cols = ", ".join(f'"{f}"' for f in FIELDS)
                conn.execute(text(f'INSERT INTO oee_hours (machine_id, start, "end", {cols}, notes) VALUES '
                                  f"(:m, :s, :e, {', '.join(':' + f for f in FIELDS)}, :notes)"), rows)
            written += len(rows)
            p[2] = end
            moved_from[m.id] = begin
        write_days(conn, name, tz, moved_from, until, end)
    return written


LOCK_KEY = 0x6F65655F686F7572  # 'oee_hour': PostgreSQL advisory lock of the one refresher


@contextmanager
def one_refresher(store):
    """Yields True in the one process that refreshes now, False in the others: every collecting process schedules
    the refresh (two collector processes on one database each did all of it, the same hours twice, and the loser
    of each insert failed on the primary key). PostgreSQL: an advisory lock; SQLite: an exclusive transaction on a
    small database file beside it (SQLite's own file locking, on every platform). Either is let go when its
    process dies."""
    if store.backend_name == backends.SQLITE:
        held = sqlite3.connect(f"{store.engine.url.database}.oee-hours.lock", timeout=0, isolation_level=None)
        try:
            try:
                held.execute("BEGIN EXCLUSIVE")
            except sqlite3.OperationalError:  # database is locked: another process refreshes
                yield False
                return
            yield True
        finally:
            held.close()  # ends the transaction: the lock goes
        return
    with store.engine.connect() as conn:
        got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": LOCK_KEY}).scalar()
        conn.commit()
        try:
            yield bool(got)
        finally:
            if got:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": LOCK_KEY})
                conn.commit()


def schedule(scheduler, store) -> None:
    """Add the refresh to the runtime's scheduler (every backend): half a minute after start, when the collectors
    have connected (the backfill: one run may take minutes; the scheduler never runs it twice at once), and then
    every minute; in one process at a time (one_refresher)."""
    from datetime import datetime, timedelta

    def run() -> None:
        try:
            with one_refresher(store) as alone:
                if not alone:
                    return
                stats = refresh(store)
            if stats["hours"]:
                log.info("oee_hours: %s machine-hours summarized in %.1f s", stats["hours"], stats["seconds"])
        except Exception as exc:  # the database is away: the next round tries again; the writer says it loudly
            log.warning("oee_hours refresh failed: %s", exc)

    scheduler.add_job(run, "interval", seconds=60, id="oee_hours", replace_existing=True,
                      next_run_time=datetime.now().astimezone() + timedelta(seconds=30))
