"""oee_summary: OEE per machine by hour and by shift, computed by the OEE engine and kept in a table for Grafana.

Grafana reads SQL, and OEE is not a SQL sum (calendars, breaks, reasons, the micro-stop rule), so the app writes
the engine's numbers for each machine, hour and shift (the same as GET /api/oee/?machine=...&bucket=hour|shift)
and the grafana_oee_hourly / grafana_oee_shift views (migration 0002) read them. The current hour and shift are
rows that grow: a refresh replaces the rows of its range.

Kept on PostgreSQL and TimescaleDB, by processes that collect: the last two hours every minute, the last 7 days
every 30 minutes (late data, an operator's reason given afterwards) and once at start. With several collector
processes one refreshes at a time (an advisory lock); the others skip that round.
"""
from __future__ import annotations

import logging
import time
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select, text
from sqlalchemy.orm import Session

import oee
from db import backend as backends
from db.export_queries import plant_timezone
from db.machine_settings import effective_settings
from db.models import Machine
from db.oee_queries import ScopeError, _calendars, machine_range_reports
from oee import TooManyBuckets
from oee.totals import Totals

log = logging.getLogger(__name__)

LOSS_KEYS = [s.key for s in Totals().waterfall() if s.kind == "loss"]
LOSS_COLUMNS = ["loss_" + k.replace(".", "_") + "_s" for k in LOSS_KEYS]
NUMBERS = ["availability", "performance", "quality", "oee", "planned_time_s", "run_time_s", "net_run_time_s",
           "fully_productive_time_s", "total_count", "good_count", "reject_count", "stop_count", "failure_count"]
COLUMNS = ["machine_id", "kind", "start", "end", "label", *NUMBERS, *LOSS_COLUMNS, "flags", "computed_at"]
LOCK_KEY = 0x6F65655F73756D  # 'oee_sum': one refresh at a time across processes
RECENT_S = 2 * 3600
BACKFILL_S = 7 * 86400
MAX_BUCKETS = 24 * 8 + 24  # 7 days of hours, with room for DST


def _hour_start(t: float, tz: str) -> float:
    return datetime.fromtimestamp(t, ZoneInfo(tz)).replace(minute=0, second=0, microsecond=0).timestamp()


def _row(machine_pk: int, kind: str, bucket: "oee.Bucket", report: dict, backend: str, now: float) -> dict:
    row = {"machine_id": machine_pk, "kind": kind, "start": backends.db_time(backend, bucket.start),
           "end": backends.db_time(backend, bucket.end), "label": bucket.label[:100],
           "flags": " ".join(report.get("flags") or ()), "computed_at": backends.db_time(backend, now)}
    row.update({k: report.get(k) for k in NUMBERS})
    row.update({c: (report.get("losses") or {}).get(k) for c, k in zip(LOSS_COLUMNS, LOSS_KEYS, strict=True)})
    return row


def refresh(store, since: float, until: float | None = None) -> int:
    """Recompute the hour and shift rows of every enabled machine that overlap [since, until) (at most 7 days:
    longer ranges are refused by the bucket limit and the machine is skipped, with a warning). Returns rows
    written. A whole hour or shift is recomputed: the range is widened to the edges of the first one.

    Each row is its own range's report (one range, one number): an hour or a shift reads here exactly as
    GET /api/oee/?machine=...&start=<its start>&end=<its end> does, and the current shift as /metrics does, not as a
    bucket of a week-long report (whose count rows are summed more coarsely). The ranges of a machine are read
    together (machine_range_reports)."""
    now = time.time()
    until = min(until if until is not None else now, now)
    name = store.backend_name
    tz = plant_timezone(store)
    with Session(store.engine) as session:
        calendars = _calendars(session)
        settings = effective_settings(session)  # a machine's own calendar, else its line's
        machines = [(pk, machine_id, settings[pk].calendar_id) for pk, machine_id in session.execute(
            select(Machine.id, Machine.machine_id).where(Machine.enabled.is_(True)).order_by(Machine.id)).all()]
    hour_start = _hour_start(since, tz)
    written = 0
    for pk, machine_id, calendar_id in machines:
        try:
            jobs = [("hour", b) for b in oee.hour_buckets(hour_start, until, tz, limit=MAX_BUCKETS)] \
                if until > hour_start else []
            cal = calendars.get(calendar_id)
            if cal is not None:
                first = [s.start for s in oee.expand(cal, since - 86400, until).shifts if s.end > since]
                if first and min(first) < until:
                    schedule = oee.expand(cal, min(first), until)
                    jobs += [("shift", b) for b in oee.shift_buckets(schedule, limit=MAX_BUCKETS)]
            reports = machine_range_reports(store, [(machine_id, b.start, b.end) for _kind, b in jobs])
            rows = [_row(pk, kind, b, reports[(machine_id, b.start, b.end)], name, now) for kind, b in jobs
                    if (machine_id, b.start, b.end) in reports]
        except (ScopeError, TooManyBuckets, ValueError) as exc:
            log.warning("oee_summary: machine %s skipped: %s", machine_id, exc)
            continue
        with store.engine.begin() as conn:
            for kind in ("hour", "shift"):
                starts = [r["start"] for r in rows if r["kind"] == kind]
                if starts:
                    conn.execute(text("DELETE FROM oee_summary WHERE machine_id = :m AND kind = :k "
                                      "AND start >= :lo AND start < :hi"),
                                 {"m": pk, "k": kind, "lo": min(starts), "hi": backends.db_time(name, until)})
            if rows:
                cols = ", ".join(f'"{c}"' for c in COLUMNS)
                conn.execute(text(f"INSERT INTO oee_summary ({cols}) VALUES ({', '.join(':' + c for c in COLUMNS)})"),
                             rows)
        written += len(rows)
    return written


def backfill(store, since: float, until: float | None = None, progress=None) -> int:
    """refresh() over any range, a week at a time (the scheduled jobs keep only the last 7 days): for a database
    that held history before Grafana was set up, or after a change to calendars or reasons far back. Returns rows
    written; progress(chunk_start, chunk_end, rows) is called after each week."""
    until = min(until if until is not None else time.time(), time.time())
    written = 0
    start = since
    while start < until:
        end = min(start + BACKFILL_S, until)
        rows = refresh(store, start, end)
        written += rows
        if progress:
            progress(start, end, rows)
        start = end
    return written


def refresh_exclusively(store, since: float, until: float | None = None) -> int | None:
    """refresh() unless another process holds the lock (then None). PostgreSQL only."""
    with store.engine.connect() as conn:
        if not conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": LOCK_KEY}).scalar():
            return None
        try:
            return refresh(store, since, until)
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": LOCK_KEY})
            conn.commit()


def schedule(scheduler, store) -> bool:
    """Add the refresh jobs to the runtime's scheduler (PostgreSQL and TimescaleDB; False elsewhere)."""
    if store.backend_name == backends.SQLITE:
        return False

    def run(span_s: float) -> None:
        try:
            refresh_exclusively(store, time.time() - span_s)
        except Exception as exc:  # the database is away: the next round tries again; the writer says it loudly
            log.debug("oee_summary refresh failed: %s", exc)

    scheduler.add_job(run, "interval", args=[RECENT_S], seconds=60, id="oee_summary_recent",
                      replace_existing=True)
    scheduler.add_job(run, "interval", args=[BACKFILL_S], minutes=30, id="oee_summary_backfill",
                      replace_existing=True, next_run_time=datetime.now().astimezone())
    return True
