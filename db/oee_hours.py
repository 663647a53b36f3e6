"""Exact OEE summaries: each machine's oee.Totals per hour (table oee_hours), so that a report over a long range
adds up hours instead of reading every raw row.

Why it is exact: oee.analyze() splits a range into buckets whose Totals add up to the range's (time per atom,
stops counted where they start, counts placed whole at their midpoint, notes where their time falls), and an
hour's Totals do not depend on the range around it once the hour is settled. So a report over [a, b) is the sum
of its whole summarized hours plus the engine's answer for the rest (the head, the tail, what is not settled),
read raw with the existing path. It equals the raw computation with one-minute count rows to 1e-9 (tests:
tests/oee_summary). Today's raw path reads count rows of long ranges summed into 5-, 15- or 60-minute rows
(db.oee_queries.count_grain_s), which places a summed row's parts at its middle: the two answers differ only in
what that moves (the startup-reject / process-defect split, and for parts that take the machine's
cycle.ideal_time tag the tag value they are given); the summaries are the finer of the two. Measured on the
simulated plant (3 machines, 2 days): every field and A, P, Q, OEE equal to 1e-9 except startup_reject_count and
startup_reject_time_s (76 and 107 s at hourly rows against 148 and 202 s at minute rows over 48 h).

What an hour depends on, and how a change reaches the summaries:
- Everything that is not local in time (the calendar with its planned downtime, the products' ideal cycle times,
  the machine's own ideal, the reason codes and fault table, oee.Config, in-service periods, the ideal tag, the
  time zone) is in the machine's fingerprint: a read whose fingerprint differs ignores the summaries, and the
  refresher recomputes them.
- The operators' reasons on downtime events: the horizon keeps the list it was computed with; a read compares it
  with today's and uses hours only before the first difference.
- Late rows (state, count or cycle.ideal_time rows older than now - MARGIN_S): the writer calls note_late_rows()
  after its commit, which moves the horizon back (one UPDATE per machine, only for such batches).
- Only settled time is summarized: before now - MARGIN_S, and when the machine's last row is a stop shorter than
  the micro-stop threshold so far, before the start of its event (contiguous rows of one state: its micro-stop
  class is judged on its whole length; one already as long as the threshold can never be a minor stop); when it
  is a closed row, before its end (the gap after it still grows). The summaries run to the settled minute: the
  last hour is a partial row that the next refresh extends. The horizon also keeps the longest count row seen, so
  that the raw rest's count rows are read from its start minus that, not from the machine's first row (its state
  rows from the last row starting at or before it: only that one can reach into it).
- Day rows (oee_days): the sum of each whole plant day's hours, written when the day's last hour is, dropped with
  its hours; a report reads whole days from them (30 rows a machine for a month instead of 720).

db.oee_hours_refresh.refresh() brings every machine's summaries up to date, a day per machine per step;
db.oee_queries reads them (oee_report). This module holds what both need: the table's format, the fingerprint,
the validity rules and the writer's late-row hook.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import time
from dataclasses import fields

from sqlalchemy import select, text
from sqlalchemy.orm import Session

import oee
from db import backend as backends
from db.models import DowntimeEvent, ReasonCode
from oee.events import RUNNING
from oee.totals import Totals

log = logging.getLogger(__name__)


FIELDS = tuple(f.name for f in fields(Totals) if f.name != "notes")
INT_FIELDS = ("stop_count", "minor_stop_count", "failure_count")  # ints in the engine's Totals
# Rows reach the database this late in normal running: a count row carries its minute's start and is written
# every 5 s until the minute ends (collectors/poller.py), so it is at most ~65 s old at its last commit (the writer
# commits every 0.5 s); a state row is written when the state begins. 120 s leaves the writer ~55 s of lag. What
# comes later (a spool replay, a writer far behind, the closing row of a state longer than this) goes through the
# writer's hook, note_late_rows(), which moves the machine's horizon back: correct whatever the margin, a shorter
# one only makes the hook cut back more often. A report reads the margin raw per machine (its tail): 600 s cost
# ~11 minutes of raw rows for each of a plant's machines in every report ending now.
MARGIN_S = 120.0
STEP_S = 86400.0  # a refresh computes at most this much of a machine at a time
HISTORY_S = 400 * 86400.0  # the backfill goes back at most this far
ROWS_PER_MACHINE_DAY = 2500  # about: minute count rows plus state changes, to keep a step under MAX_ROWS


# --- fingerprint ----------------------------------------------------------------------------------------------


def _canon(x):
    """A structure whose repr is the same in every process (sets sorted, floats as repr)."""
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return (type(x).__name__, tuple((f.name, _canon(getattr(x, f.name))) for f in fields(x)))
    if isinstance(x, (set, frozenset)):
        return ("set", tuple(sorted((_canon(v) for v in x), key=repr)))
    if isinstance(x, dict):
        return ("dict", tuple(sorted(((_canon(k), _canon(v)) for k, v in x.items()), key=repr)))
    if isinstance(x, (list, tuple)):
        return tuple(_canon(v) for v in x)
    if isinstance(x, float):
        return repr(x)
    return x


def fingerprint(tz: str, mc, ideal: dict, periods, tag_id, memo: dict | None = None) -> str:
    """Everything not local in time that a machine's analysis depends on (the operators' reasons are compared
    event by event instead: see valid_until). memo: {id(object): text} for objects machines share (calendars,
    the products' table), kept by the caller while those objects live."""
    memo = {} if memo is None else memo
    parts = []
    for x in (tz, mc.calendar, mc.config, mc.fault_reasons, mc.default_ideal_s, ideal, periods, tag_id):
        key = id(x)
        if key not in memo:
            memo[key] = repr(_canon(x))
        parts.append(memo[key])
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def reasoned_events(session: Session, backend: str, ids: list[int]) -> dict[int, list[tuple]]:
    """The downtime events with an operator's reason, by machine: [(start, end | None, reason)], sorted; reason
    is [code, loss category, name] (a reason's edit is a change of every event that has it)."""
    out: dict[int, list[tuple]] = {}
    if not ids:
        return out
    by_id = {r.id: [r.code, r.loss_category, r.name] for r in session.scalars(select(ReasonCode))}
    for mid, s, e, rid in session.execute(select(DowntimeEvent.machine_id, DowntimeEvent.start, DowntimeEvent.end,
                                                 DowntimeEvent.reason_id).where(
            backends.ids_in(DowntimeEvent.machine_id, ids), DowntimeEvent.reason_id.is_not(None))):
        if rid in by_id:  # as db.oee_queries reads them
            out.setdefault(mid, []).append((backends.epoch_of(s), backends.epoch_of(e), by_id[rid]))
    for v in out.values():
        v.sort(key=lambda x: (x[0], math.inf if x[1] is None else x[1], x[2]))
    return out


def overlapping(events: list[tuple], lo: float, hi: float) -> list[list]:
    return [[s, e, r] for s, e, r in events if s < hi and (e is None or e > lo)]


def valid_until(stored: list[list], current: list[tuple], lo: float, hi: float) -> float:
    """hi, or the first time the operators' reasons over [lo, hi) differ from those the summaries saw."""
    now = overlapping(current, lo, hi)
    if now == stored:
        return hi
    old = {json.dumps(x) for x in stored}
    new = {json.dumps(x) for x in now}
    return max(lo, min(json.loads(x)[0] for x in old ^ new))


# --- reading ----------------------------------------------------------------------------------------------------


def hour_edges(a: float, b: float, tz: str) -> list[float]:
    """The plant's hour edges within [a, b]."""
    edges = [x.start for x in oee.hour_buckets(hour_floor(a, tz), b, tz) if x.start >= a]
    return edges + [b] if hour_floor(b, tz) == b else edges


def day_edges(a: float, b: float, tz: str) -> list[float]:
    """The plant's midnights within [a, b] (the edges of the day rows, oee_days)."""
    days = oee.day_buckets(a - 2 * 86400.0, b + 1.0, tz)
    return [d.start for d in days[1:] if a <= d.start <= b]


def _notes_agg(backend: str, column: str) -> str:
    if backend == backends.SQLITE:
        return f"group_concat(DISTINCT NULLIF({column}, ''))"
    return f"string_agg(DISTINCT NULLIF({column}, ''), ' ')"


def summary_sql(backend: str, windows: list[tuple], by_machine: bool, edges: list[float] | None,
                days: list[tuple] = (), sets: bool = False):
    """SELECT the sums of the hours inside the windows [(machine pk, lo, hi)] and of the day rows inside `days`
    (same form), grouped by machine and/or by the interval of `edges` (PostgreSQL: width_bucket; SQLite: by row
    start, bucketed in Python). Each window's rows are summed per group and notes where they are read (on
    PostgreSQL a LATERAL index scan per window), then the few sums per group with the distinct notes: summing
    the whole rows at once sorted 26,000 rows of 590 bytes (500 machines x 30 days), spilling to disk.
    sets (PostgreSQL, by_machine and edges): the machine sums and the interval sums (over all machines) in one read,
    GROUPING SETS; each row starts with 0 for a machine's sums (k0 the machine, k1 NULL), 1 for an interval's."""
    sums = ", ".join(f'sum(x."{f}") AS "{f}"' for f in FIELDS)
    outer = ", ".join(f'sum(g."{f}")' for f in FIELDS)

    def values(ws):
        return ", ".join(f"({m}, {int(lo)}, {int(hi)})" for m, lo, hi in ws) or "(0, 0, 0)"

    keys = []
    if by_machine:
        keys.append("x.machine_id")
    if edges is not None:
        if backend == backends.SQLITE:
            keys.append("x.start")
        else:
            keys.append(f"width_bucket(x.start, ARRAY[{','.join(str(int(e)) for e in edges)}]::bigint[])")
    keys = keys or ["1"]
    names = [f"k{i}" for i in range(len(keys))]
    inner_keys = ", ".join(f"{k} AS {n}" for k, n in zip(keys, names))
    group = ", ".join(names)

    def inside(table: str, w: str) -> str:  # the table's rows inside each window (by its primary key), summed
        cond = f'x.machine_id = {w}.m AND x.start >= {w}.lo AND x.start < {w}.hi AND x."end" <= {w}.hi'
        select = f"SELECT {inner_keys}, {sums}, x.notes AS notes"
        if backend == backends.SQLITE:
            return f"{select} FROM {w} JOIN {table} x ON {cond} GROUP BY {group}, x.notes"
        # LATERAL, OFFSET 0: an index scan per window; a plain join read all of a 30-day table (a seq scan of
        # 360,000 hours for a day's report: 100 ms)
        return (f"SELECT z.* FROM {w} CROSS JOIN LATERAL ({select} FROM {table} x WHERE {cond} "
                f"GROUP BY {group}, x.notes OFFSET 0) z")

    rows = inside("oee_hours", "v")
    if days:
        rows += " UNION ALL " + inside("oee_days", "d")
    with_days = f", d(m, lo, hi) AS (VALUES {values(days)})" if days else ""
    if sets:
        if backend == backends.SQLITE or names != ["k0", "k1"]:
            raise ValueError("grouping sets need PostgreSQL, machines and edges")
        return (f"WITH v(m, lo, hi) AS (VALUES {values(windows)}){with_days} "
                f"SELECT GROUPING(k0), k0, k1, {outer}, {_notes_agg(backend, 'g.notes')} FROM ({rows}) g "
                "GROUP BY GROUPING SETS ((k0), (k1))")
    return (f"WITH v(m, lo, hi) AS (VALUES {values(windows)}){with_days} "
            f"SELECT {group}, {outer}, {_notes_agg(backend, 'g.notes')} FROM ({rows}) g GROUP BY {group}")


def write_days(conn, backend: str, tz: str, begins: dict[int, float], until: float, end: float) -> int:
    """The day rows (oee_days) of the plant days that the machines' hours now cover whole: days ending in
    (until, end] that start at or after the machine's from_s (begins: {machine pk: from_s}), each the sum of its
    hours. Returns rows written."""
    if not begins:
        return 0
    cols = ", ".join(f'"{f}"' for f in FIELDS)
    sums = ", ".join(f'sum("{f}")' for f in FIELDS)
    edges = day_edges(hour_floor(until, tz) - 86400.0 * 2, end, tz)
    written = 0
    for ds, de in zip(edges, edges[1:]):
        if not until < de <= end:
            continue
        ids = sorted(m for m, b in begins.items() if b <= ds)
        if not ids:
            continue
        written += conn.execute(text(
            f'INSERT INTO oee_days (machine_id, start, "end", {cols}, notes) '
            f"SELECT machine_id, {int(ds)}, {int(de)}, {sums}, coalesce({_notes_agg(backend, 'notes')}, '') "
            f"FROM oee_hours WHERE machine_id IN ({','.join(map(str, ids))}) AND start >= {int(ds)} "
            f'AND "end" <= {int(de)} GROUP BY machine_id')).rowcount
    return written


def totals_of(values, notes) -> Totals:
    out = [float(v) for v in values]
    for name in INT_FIELDS:
        i = FIELDS.index(name)
        out[i] = int(out[i])
    return Totals(*out, notes=frozenset((notes or "").replace(",", " ").split()))


def longest(conn, backend: str, machine_pks: list[int], lo: float | None = None, hi: float | None = None) -> dict:
    """{machine pk: (longest closed state row, longest count row)} in seconds among rows starting in [lo, hi)
    (all rows without bounds); None where a machine has none."""
    out = {m: [None, None] for m in machine_pks}
    if not machine_pks:
        return out
    length = 'max("end" - start)' if backend == backends.SQLITE else 'extract(epoch from max("end" - start))'
    where = "" if lo is None else " AND start >= :lo AND start < :hi"
    params = {"lo": backends.db_time(backend, lo), "hi": backends.db_time(backend, hi)}
    for k, table in enumerate(("machine_states", "production_counts")):
        for mid, x in conn.execute(text(f"SELECT machine_id, {length} FROM {table} WHERE machine_id IN "
                                        f"({','.join(map(str, machine_pks))}){where} GROUP BY machine_id"), params):
            out[mid][k] = None if x is None else float(x)
    return out


# --- settled hours ---------------------------------------------------------------------------------------------


def hour_floor(t: float, tz: str) -> float:
    """The start of the plant's hour holding t."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    return datetime.fromtimestamp(t, ZoneInfo(tz)).replace(minute=0, second=0, microsecond=0).timestamp()


def run_start(conn, backend: str, machine_pk: int, before: float | None = None) -> float | None:
    """Where the machine's event holding its last row (before `before`, when given) starts: contiguous rows of
    one state and fault code are one event (oee.events.scan_events), and a row that ends where no row follows
    may still be joined. None without rows."""
    where = "" if before is None else "AND start < :b"
    params = {"m": machine_pk, "b": backends.db_time(backend, before) if before is not None else None}
    offset, chunk = 0, 200
    run_start = nxt_start = None
    state = fault = None
    while True:
        rows = conn.execute(text(f'SELECT start, "end", state, fault_code FROM machine_states WHERE machine_id = :m '
                                 f"{where} ORDER BY start DESC LIMIT {chunk} OFFSET {offset}"), params).all()
        for s, e, st, f in rows:
            s, e = backends.epoch_of(s), backends.epoch_of(e)
            f = None if st == RUNNING else f
            if run_start is None:
                run_start, nxt_start, state, fault = s, s, st, f
                continue
            end = nxt_start if e is None or e > nxt_start else e
            if end <= s:  # no time of its own: the engine skips it
                continue
            if end == run_start and st == state and f == fault:
                run_start = nxt_start = s
                continue
            return run_start
        if len(rows) < chunk:
            return run_start
        offset += chunk


# --- late rows ----------------------------------------------------------------------------------------------


def note_late_rows(store, batch, now: float | None = None, earliest_sample: float | None = None) -> int:
    """_note_late_rows(), never raising into the writer: a failure is logged (the summaries of that machine stay
    as they were until its fingerprint or reasons change: say so loudly). earliest_sample: the batch's earliest
    sample time when the caller knows it (the writer does: Batch.span())."""
    try:
        return _note_late_rows(store, batch, now, earliest_sample)
    except Exception:  # the writer's thread must go on; its commit stands
        log.exception("oee_hours: late rows not noted; hourly OEE summaries may be stale until the next reset")
        return 0


def _note_late_rows(store, batch, now: float | None = None, earliest_sample: float | None = None) -> int:
    """After the writer's commit: state, count and cycle.ideal_time rows older than now - MARGIN_S may fall in
    summarized hours, so each machine's horizon moves back to where they start to matter (one UPDATE per
    machine). Normal batches (rows within the margin) cost a scan of their times. Returns machines touched."""
    cutoff = (time.time() if now is None else now) - MARGIN_S
    counts = [(r[0], r[1]) for r in batch.counts if r[1] < cutoff]
    states = [(r[0], r[1], r[3], r[4]) for r in batch.states if r[1] < cutoff]
    if batch.samples and earliest_sample is None:
        earliest_sample = batch.span()[0]
    samples = [(r[1], r[0]) for r in batch.samples if r[0] < cutoff] if batch.samples and \
        earliest_sample < cutoff else []
    if not (counts or states or samples):
        return 0
    name = store.backend_name
    earliest: dict[int, float] = {}
    longest_rows: dict[int, list[float]] = {}  # the reads of the raw rest rely on the longest rows being known
    for r in batch.counts:
        if r[1] < cutoff:
            x = longest_rows.setdefault(r[0], [0.0, 0.0])
            x[1] = max(x[1], r[2] - r[1])
    for r in batch.states:
        if r[1] < cutoff and r[2] is not None:
            x = longest_rows.setdefault(r[0], [0.0, 0.0])
            x[0] = max(x[0], r[2] - r[1])
    for mid, s in counts:
        earliest[mid] = min(s, earliest.get(mid, s))
    with store.engine.begin() as conn:
        for mid, s, st, f in states:
            # A row can cut or join the event before it (same state, contiguous): that event's start.
            prev = conn.execute(text('SELECT start, "end", state, fault_code FROM machine_states '
                                     "WHERE machine_id = :m AND start < :s ORDER BY start DESC LIMIT 1"),
                                {"m": mid, "s": backends.db_time(name, s)}).first()
            t = s
            if prev is not None:
                p_end = backends.epoch_of(prev[1])
                if p_end is None or p_end >= s:
                    t = run_start(conn, name, mid, s) or s
            earliest[mid] = min(t, earliest.get(mid, t))
        if samples:
            tag_ids = sorted({tid for tid, _t in samples})
            owners = dict(conn.execute(text(
                "SELECT t.id, coalesce(t.machine_id, c.machine_id) FROM tags t JOIN connections c "
                f"ON t.connection_id = c.id WHERE t.role = 'cycle.ideal_time' AND t.id IN "
                f"({','.join(map(str, tag_ids))})")).all())
            for tid, t in samples:
                mid = owners.get(tid)
                if mid is not None:
                    earliest[mid] = min(t, earliest.get(mid, t))
        # To the start of the plant's hour: the horizon is an hour edge or the end of a row (see the refresher).
        tz = conn.execute(text("SELECT timezone FROM sites ORDER BY id LIMIT 1")).scalar() or "UTC"
        for mid, t in earliest.items():
            ms, mc = longest_rows.get(mid, (0.0, 0.0))
            conn.execute(text("UPDATE oee_hour_horizons SET until_s = CASE WHEN until_s > :t THEN :t ELSE until_s END, "
                              "generation = generation + 1, "
                              "max_state_s = CASE WHEN max_state_s < :ms THEN :ms ELSE max_state_s END, "
                              "max_count_s = CASE WHEN max_count_s < :mc THEN :mc ELSE max_count_s END "
                              "WHERE machine_id = :m"),
                         {"m": mid, "t": int(hour_floor(t, tz)), "ms": ms, "mc": mc})
    return len(earliest)
