"""OEE over a range for a machine, line, area or site: the database side of oee.analyze().

Pages and the REST API both call `oee_report()`, so a number on a page always equals the API's. Everything is
recomputed from the stored state intervals, count increments, calendars, products and reasons, so an edit to any of
them applies to the past too. Per machine, three queries (states, counts, the machine's configuration) cover the
whole range; machines of a line or site are fetched together.

Conventions that live here (the math is oee/'s):
- A ReasonCode whose code is a PLC fault code ("101") is the reason for that fault code.
- An operator's reason on a downtime event (downtime_events.reason_id) overrides the classification of that time.
- Ideal cycle time, first found: the product's (products.ideal_cycle_time_s, by product code); else the value of
  the machine's cycle.ideal_time tag at the time the parts were made (its stored samples over the range, and the
  last one before it: a PLC that publishes its ideal rate needs no product set up); else the machine's own
  (machines.ideal_cycle_time_s). The tag is read only for machines with parts that no product covers.
- A machine's calendar, micro-stop threshold and fault table are the ones in effect (db.machine_settings: its
  own, else its line's calendar and its site's threshold); a caller's oee.Config wins over the threshold. No
  calendar for a machine: all time is planned production time (planned stops still come from the PLC's
  planned-stop state).
- Time a machine was not in service (before it was added, while it was disabled: db/machine_lifetime.py) is not
  planned time (no_production_scheduled): a machine's OEE counts from the later of the range's start and its
  adding, so a range from the shift's start and one from the adding give the same A, P, Q and OEE, and a line
  sums only the planned time of the machines it had.
"""
from __future__ import annotations

import contextvars
import dataclasses
import json
import math
import time
from bisect import bisect_right
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

import oee
from db import backend as backends
from db import deadline
from db import machine_lifetime as lifetime
from db import oee_hours
from db.machine_settings import EffectiveSettings, effective_settings
from db.models import (Area, Connection, DowntimeEvent, Line, Machine, PlannedDowntime, Product, ReasonCode, Shift,
                       ShiftBreak, ShiftCalendar, Site, Tag)
from oee.engine import CountIncrement
from oee.events import Reason, ReasonOverride, StateInterval
from oee.shifts import BreakDef, Calendar, ShiftDef
from oee.totals import Totals, rollup

SCOPES = ("machine", "line", "area", "site")
# Time a machine was not in service (not yet added, disabled) is planned downtime of this category: nothing could
# be scheduled on it, so it is neither its planned time nor its loss.
NOT_IN_SERVICE = "no_production_scheduled"
# The most rows one report reads (state intervals plus count rows, all its machines together). A state interval
# costs about 500 bytes on its way through the engine (measured: 199,000 of them grew the process by 98 MB), so a
# report stays near 60 MB however wide its range or scope. More is refused (400, in words).
MAX_ROWS = 120_000
DEADLINE_EVERY = 5_000  # rows between two looks at the request's deadline


class TooMuchData(ValueError):
    """A report would read more than MAX_ROWS rows: the message says how to ask for less."""

    def __init__(self, what: str):
        super().__init__(f"the range holds more than {MAX_ROWS:,} {what} for these machines, more than one report "
                         "reads; give a shorter range, a narrower scope (a line or a machine) or fewer machines")


class ScopeError(LookupError):
    """The machine, line, area or site asked for does not exist. .field names the parameter."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


@dataclass
class MachineConfig:
    id: int
    machine_id: str
    name: str
    line: str | None
    default_ideal_s: float | None
    calendar: Calendar | None
    config: oee.Config = oee.DEFAULT_CONFIG
    fault_reasons: dict | None = None  # the plant's reasons by fault code as this machine's fault table leaves them


def machine_config(config: oee.Config | None, settings: EffectiveSettings) -> oee.Config:
    """The engine's settings for a machine: the caller's when given; else the machine's micro-stop threshold in
    effect (its own, else its site's: db.machine_settings), else 120 s."""
    if config is not None:
        return config
    if settings.micro_stop_threshold_s is None:
        return oee.DEFAULT_CONFIG
    return dataclasses.replace(oee.DEFAULT_CONFIG, micro_stop_threshold_s=float(settings.micro_stop_threshold_s))


def _resolve(session: Session, scope: str, key: str) -> list[Machine]:
    """Machines in scope. key: machine_id for a machine; a name or numeric id for a line, area or site."""
    if scope == "machine":
        m = session.scalar(select(Machine).where(Machine.machine_id == key))
        if m is None:
            raise ScopeError("machine", f"machine {key!r} does not exist")
        return [m]
    model = {"line": Line, "area": Area, "site": Site}[scope]
    rows = session.scalars(select(model).where(model.name == key)).all()
    if not rows and key.isascii() and key.isdigit() and int(key) <= 2**31 - 1:  # '²' and 10**11 are no ids
        rows = [r for r in [session.get(model, int(key))] if r is not None]
    if not rows:
        raise ScopeError(scope, f"{scope} {key!r} does not exist")
    if len(rows) > 1:
        raise ScopeError(scope, f"{scope} name {key!r} is used {len(rows)} times; give its id instead "
                                f"({', '.join(str(r.id) for r in rows)})")
    target = rows[0]
    q = select(Machine).join(Line, Machine.line_id == Line.id)
    if scope == "line":
        q = q.where(Line.id == target.id)
    elif scope == "area":
        q = q.where(Line.area_id == target.id)
    else:
        q = q.join(Area, Line.area_id == Area.id).where(Area.site_id == target.id)
    return list(session.scalars(q.order_by(Machine.machine_id)))


def _calendars(session: Session) -> dict[int, Calendar]:
    out = {}
    planned = session.scalars(select(PlannedDowntime).where(PlannedDowntime.calendar_id.is_not(None))).all()
    breaks_of: dict[int, list[BreakDef]] = {}
    for b in session.scalars(select(ShiftBreak).order_by(ShiftBreak.id)):  # all at once, not one read per shift
        breaks_of.setdefault(b.shift_id, []).append(BreakDef(b.start_time, float(b.duration_s), b.name))
    shifts_of: dict[int, list[Shift]] = {}
    for s in session.scalars(select(Shift).order_by(Shift.id)):
        shifts_of.setdefault(s.calendar_id, []).append(s)
    for cal in session.scalars(select(ShiftCalendar)):
        shifts = [ShiftDef(s.name, s.start_time, s.end_time, s.weekdays, tuple(breaks_of.get(s.id, ())))
                  for s in shifts_of.get(cal.id, [])]
        downtime = tuple(oee.PlannedDowntime(p.start, p.end) for p in planned if p.calendar_id == cal.id)
        out[cal.id] = Calendar(cal.timezone, tuple(shifts), planned_downtime=downtime)
    return out


def _reasons(session: Session) -> tuple[dict[int, Reason], dict[int, Reason]]:
    """(by reason id, by fault code)."""
    by_id, by_fault = {}, {}
    for r in session.scalars(select(ReasonCode)):
        reason = Reason(r.code, r.loss_category, r.name)
        by_id[r.id] = reason
        if r.code.isdigit():
            by_fault[int(r.code)] = reason
    return by_id, by_fault


GRAINS = (60, 300, 900, 3600)


def count_grain_s(start: float, end: float) -> int:
    """How finely count increments are read: the stored one-minute rows for short ranges, summed in SQL into 5-,
    15- or 60-minute rows for longer ones (about 300 rows per machine at most). A summed row is placed whole at
    its middle, so rows of zeros are left out of it (they pulled its middle into the break they were read in),
    and it never crosses an edge of the machine's calendar: see calendar_grain_s."""
    span = end - start
    for grain in GRAINS:
        if span / grain <= 300:
            return grain
    return 3600


def calendar_grain_s(grain: int, edges) -> int:
    """The largest grain, at most `grain`, on whose multiples every calendar edge falls (shift starts and ends,
    breaks, planned downtime: epoch seconds), so that no summed count row holds parts from both sides of a
    break: a 10:10-10:40 break makes 5-minute rows of a week that would be hourly. Totals and hour, shift and
    day buckets stay exact; only the startup-reject window is placed at that resolution."""
    for g in sorted((x for x in GRAINS if x <= grain), reverse=True):
        if all(e % g == 0 for e in edges):
            return g
    return 60


def _calendar_edges(calendar, a: float, b: float) -> set[float]:
    if calendar is None:
        return set()
    sched = oee.expand(calendar, a, b)
    edges = {x for seg in sched.segments for x in (seg.start, seg.end)}
    edges |= {x for inst in sched.shifts for x in (inst.start, inst.end)}
    return {x for x in edges if a < x < b}


END = '"end"'  # the column's name, quoted (a keyword)


def _epoch(backend: str, column: str) -> str:
    """A time column as epoch seconds in SQL: PostgreSQL's exact value rounded to a double once, as
    datetime.timestamp() rounds it, without building a datetime per row in Python (a fifth of a plant's report)."""
    if backend == backends.SQLITE:
        return column
    return f"extract(epoch from {column})::float8"


def _count_rows(session: Session, backend: str, marks: str, start: float, end: float, grain: int | None = None,
                limit: int = MAX_ROWS, floor: float | None = None):
    """Count rows of the machines over the range at the grain; raises TooMuchData past `limit` rows. floor: no
    row that reaches the range starts before it (db.oee_hours knows the longest row), so the index scan stops
    there instead of at the machine's first row."""
    lo, hi = backends.db_time(backend, start), backends.db_time(backend, end)
    grain = grain or count_grain_s(start, end)
    cols = f'machine_id, {_epoch(backend, "start")}, {_epoch(backend, END)}, product_code, total, good'
    cap = {"lo": lo, "hi": hi, "cap": limit + 1, "floor": backends.db_time(backend, floor)}
    if grain == 60:
        bounded = " AND start >= :floor" if floor is not None else ""
        rows = session.execute(text(
            f"SELECT {cols} FROM production_counts WHERE machine_id IN ({marks}) AND start < :hi AND \"end\" >= :lo "
            f"{bounded} ORDER BY machine_id, start LIMIT :cap"), cap).all()
    else:
        bucket = backends.bucket_sql(backend, "start", grain)
        rows = session.execute(text(  # rows of zeros say nothing was made: left out, they moved the middle
            f'SELECT machine_id, {_epoch(backend, "min(start)")}, {_epoch(backend, f"max({END})")}, '
            f'product_code, sum(total), sum(good) FROM production_counts '
            f'WHERE machine_id IN ({marks}) AND start >= :lo AND "end" <= :hi AND (total <> 0 OR good <> 0) '
            f"GROUP BY machine_id, {bucket}, product_code LIMIT :cap"), cap).all()
        rows += session.execute(text(  # rows across either end of the range stay whole, as the engine expects
            f"SELECT {cols} FROM production_counts WHERE machine_id IN ({marks}) AND "
            f'((start < :lo AND "end" >= :lo) OR (start < :hi AND "end" > :hi))'), {"lo": lo, "hi": hi}).all()
    if len(rows) > limit:
        raise TooMuchData("count rows")
    deadline.check()
    return rows


IDEAL_TAG_ROLE = "cycle.ideal_time"


def _ideal_tags(session: Session, ids: list[int]) -> dict[int, int]:
    """The cycle.ideal_time tag of each machine (db id -> tag id; the first when there are several)."""
    owner = func.coalesce(Tag.machine_id, Connection.machine_id)
    rows = session.execute(select(owner, Tag.id).join(Connection, Tag.connection_id == Connection.id)
                           .where(Tag.role == IDEAL_TAG_ROLE, backends.ids_in(owner, ids))
                           .order_by(Tag.id)).all()
    out: dict[int, int] = {}
    for mid, tid in rows:
        out.setdefault(mid, tid)
    return out


def ideal_series(session: Session, backend: str, tag_id: int, lo: float, hi: float) -> list[tuple]:
    """The tag's values over [lo, hi) as (time, seconds | None): the last sample at or before lo, then each sample
    whose value differs from the one before (a tag stored at every poll is read as its changes, in SQL)."""
    a, b = backends.db_time(backend, lo), backends.db_time(backend, hi)
    before = session.execute(text(
        "SELECT time, value FROM samples WHERE tag_id = :t AND time <= :lo ORDER BY time DESC LIMIT 1"),
        {"t": tag_id, "lo": a}).all()
    changes = session.execute(text(
        "SELECT time, value FROM (SELECT time, value, LAG(value) OVER (ORDER BY time) AS prev, "
        "ROW_NUMBER() OVER (ORDER BY time) AS n FROM samples WHERE tag_id = :t AND time > :lo AND time < :hi) x "
        "WHERE n = 1 OR NOT (value = prev OR (value IS NULL AND prev IS NULL)) ORDER BY time"),
        {"t": tag_id, "lo": a, "hi": b}).all()
    out = [(backends.epoch_of(t), v) for t, v in before + changes]
    # A reading that is not a number of seconds (negative, not finite) is no ideal cycle time there.
    return [(t, v if isinstance(v, (int, float)) and math.isfinite(v) and v >= 0 else None) for t, v in out]


def oee_report(store, scope: str, key: str, start: float, end: float, *, bucket: str | None = None,
               max_buckets: int = 1000, config: oee.Config | None = None, tz: str | None = None) -> dict:
    """OEE of a machine, line, area or site over [start, end) (epoch seconds), with buckets when asked.

    Raises ScopeError (unknown scope), oee.TooManyBuckets, ValueError (bad range).
    """
    report, _ = _report(store, scope, key, start, end, bucket=bucket, max_buckets=max_buckets, config=config, tz=tz,
                        machine_buckets=False)
    return report


def oee_report_with_machines(store, scope: str, key: str, start: float, end: float, *, bucket: str | None = None,
                             max_buckets: int = 1000, config: oee.Config | None = None,
                             tz: str | None = None) -> tuple[dict, dict[str, "oee.Analysis"]]:
    """oee_report() and each machine's analysis (by machine_id), so that a page can roll up any group of them
    (a line within a site) with oee.rollup_analyses() instead of reading the same rows again."""
    return _report(store, scope, key, start, end, bucket=bucket, max_buckets=max_buckets, config=config, tz=tz,
                   machine_buckets=True)


SUMMARIES_FROM_S = 3600.0  # ranges that can hold a whole hour try the hourly summaries (db.oee_hours)


def _report(store, scope: str, key: str, start: float, end: float, *, bucket: str | None, max_buckets: int,
            config: oee.Config | None, tz: str | None, machine_buckets: bool) -> tuple[dict, dict]:
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {SCOPES}")
    start, end = _clip(start, end)
    resolve = lambda session: _resolve(session, scope, key)  # noqa: E731
    summarized = None
    if end - start >= SUMMARIES_FROM_S:
        summarized = _summarized(store, resolve, start, end, bucket=bucket, max_buckets=max_buckets,
                                        config=config, tz=tz, machine_buckets=machine_buckets)
    if summarized is None:
        configs, analyses, tz = _analyze(store, resolve, start, end, bucket=bucket, max_buckets=max_buckets,
                                         config=config, tz=tz)
        whole = oee.rollup_analyses(analyses) if analyses else None
    else:
        configs, analyses, tz, whole = summarized
    if not analyses:
        raise ScopeError(scope, f"{scope} {key!r} has no machines")
    per_machine = [_machine_row(mc, analysis) for mc, analysis in zip(configs, analyses)]
    out = whole.as_dict()
    out.update({"scope": scope, "key": key, "timezone": tz, "bucket": bucket, "machines": per_machine})
    return out, {mc.machine_id: a for mc, a in zip(configs, analyses)}


MACHINE_ROW_KEYS = ("availability", "performance", "quality", "oee", "planned_time_s", "run_time_s", "total_count",
                    "good_count", "flags", "warnings")


def _machine_row(mc: MachineConfig, analysis: "oee.Analysis") -> dict:
    """A machine's line in a report's "machines" list."""
    totals = analysis.totals.result().as_dict()  # the row's keys are all the result's (as_dict adds losses)
    return {"machine_id": mc.machine_id, "name": mc.name, "line": mc.line,
            **{k: totals[k] for k in MACHINE_ROW_KEYS if k in totals}}


def machine_reports(store, ranges: dict[str, tuple[float, float]], *,
                    config: oee.Config | None = None) -> dict[str, dict]:
    """oee_report(store, "machine", m, start, end) for each machine_id m: (start, end) of ranges, read together
    (one query per kind for all of them, however their ranges differ). Unknown ids are left out of the answer."""
    reports = machine_range_reports(store, [(m, a, b) for m, (a, b) in ranges.items()], config=config)
    return {m: r for (m, _a, _b), r in reports.items()}


def machine_range_reports(store, jobs: list[tuple[str, float, float]], *,
                          config: oee.Config | None = None) -> dict[tuple[str, float, float], dict]:
    """oee_report(store, "machine", m, a, b) for each (m, a, b) of jobs, a machine as often as asked (its hours and
    its shifts for Grafana's table), read together: each answer equals that call's, to the last bit, because each
    range gets exactly the rows its own call would read. Keyed by the job as given; unknown machines left out."""
    if not jobs:
        return {}
    clipped = [(m, *_clip(a, b)) for m, a, b in jobs]
    names = sorted({m for m, _a, _b in clipped})
    configs, analyses, tz = _analyze(
        store, lambda session: list(session.scalars(select(Machine).where(Machine.machine_id.in_(names)))),
        min(a for _m, a, _b in clipped), max(b for _m, _a, b in clipped), config=config,
        jobs=[(m, a, b) for m, a, b in clipped])
    known = {mc.machine_id for mc in configs}
    out = {}
    for job, mc, analysis in zip([j for j in jobs if j[0] in known], configs, analyses, strict=True):
        report = oee.rollup_analyses([analysis]).as_dict()
        report.update({"scope": "machine", "key": mc.machine_id, "timezone": tz, "bucket": None,
                       "machines": [_machine_row(mc, analysis)]})
        out[job] = report
    return out


def _clip(start: float, end: float) -> tuple[float, float]:
    if end <= start:
        raise ValueError("end must be after start")
    end = min(end, time.time())  # the future has no data yet: open intervals last until now
    return start, max(end, start)


def machine_context(session: Session, machines: list[Machine], config: oee.Config | None, tz: str | None):
    """What the engine needs besides the rows: ({machine_id: MachineConfig}, reasons by id, ideal cycle time by
    product code, the plant's time zone (tz when given))."""
    calendars = _calendars(session)
    by_id, by_fault = _reasons(session)
    ideal = {p.code: p.ideal_cycle_time_s for p in session.scalars(select(Product))}
    tz = tz or _plant_timezone(session)
    line_names = dict(session.execute(select(Line.id, Line.name)).all())  # not one lazy load per machine
    settings = effective_settings(session, [m.id for m in machines])
    mconf = {m.machine_id: MachineConfig(m.id, m.machine_id, m.name, line_names.get(m.line_id),
                                         m.ideal_cycle_time_s, calendars.get(settings[m.id].calendar_id),
                                         machine_config(config, settings[m.id]),
                                         settings[m.id].reasons_for(by_fault)) for m in machines}
    return mconf, by_id, ideal, tz


def make_buckets(configs: list[MachineConfig], bucket: str | None, start: float, end: float, tz: str,
                 max_buckets: int) -> list | None:
    """The report's buckets (shift buckets follow the first machine with a calendar)."""
    if not bucket:
        return None
    first_cal = next((c.calendar for c in configs if c.calendar), None)
    schedule = oee.expand(first_cal, start, end) if (bucket == "shift" and first_cal) else None
    if bucket == "shift" and schedule is None:
        raise ValueError("bucket: 'shift' needs a shift calendar; none is configured for these machines")
    return oee.make_buckets(bucket, start, end, tz=tz, schedule=schedule, limit=max_buckets)


def _analyze(store, machines_of, start: float, end: float, *, bucket: str | None = None, max_buckets: int = 1000,
             config: oee.Config | None = None, tz: str | None = None,
             jobs: list[tuple[str, float, float]] | None = None, grain: int | None = None, context=None,
             longest: dict[int, tuple] | None = None, periods: dict | None = None, prefetched: dict | None = None):
    """Read what the machines that machines_of(session) picks need over the range, in one query per kind, and
    analyse each. jobs ((machine_id, a, b), within [start, end], a machine as often as wanted) gives ranges of
    their own: each job gets exactly the rows its own read would (the union is read once and cut per job in
    Python). Returns (configs, analyses, time zone), one pair per job (per machine without jobs), in order; jobs
    of unknown machines are left out. longest ({machine pk: (longest closed state row, longest count row) in
    seconds, None: unknown}, db.oee_hours' horizons): each job's rows are read with a window of its own (one-minute
    count rows), not the union's. periods: db.machine_lifetime.periods() of the machines when the caller has it.
    prefetched: {statement: a callable giving [its rows]} of reads already under way (_start_reads), used where
    this call's own statement is the same text."""
    if jobs is not None and bucket:
        raise ValueError("buckets need one range for all machines")
    name = store.backend_name
    with Session(store.engine) as session:
        if longest is not None:
            _no_jit(session, name)
        machines = machines_of(session)
        # context: machine_context()'s answer when the caller has it already (db.oee_hours)
        mconf, by_id, ideal, tz = context or machine_context(session, machines, config, tz)
        if jobs is None:
            jobs = [(m.machine_id, start, end) for m in machines]
        jobs = [j for j in jobs if j[0] in mconf]
        pk = [mconf[m].id for m, _a, _b in jobs]  # job -> machine (db id)
        span = [(a, b) for _m, a, b in jobs]
        ids = sorted(set(pk))
        lookback = max(mc.config.startup_window_s for mc in mconf.values()) if mconf else 0.0
        n = len(jobs)
        states: list[list] = [[] for _ in range(n)]
        counts: list[list] = [[] for _ in range(n)]
        overrides: list[list] = [[] for _ in range(n)]
        series: list[list | None] = [None] * n
        downtime: list[list] = [[] for _ in range(n)]
        jobs_of: dict[int, list[int]] = {}
        for j, mid in enumerate(pk):
            jobs_of.setdefault(mid, []).append(j)

        stored = _as_stored(name)

        if ids:
            marks = ",".join(str(i) for i in ids)  # integers from our own rows: safe to inline
            lo, hi = backends.db_time(name, start - lookback), backends.db_time(name, end)
            bounds = [(stored(a - lookback), stored(b)) for a, b in span]
            read = 0
            state_cols = f'ms.machine_id, {_epoch(name, "ms.start")}, {_epoch(name, "ms." + END)}, ms.state, ' \
                         f"ms.fault_code, ms.product_code"
            counts_beside = None
            if longest is not None:  # each job's own window, from the machine's longest count row before it
                states_sql, counts_sql, wins = _window_sql(name, pk, span, lookback, longest)
                got = prefetched or {}
                counts_beside = got.get(counts_sql) or _read_beside(store, [counts_sql], here=session.connection())
            if longest is None:
                state_rows = session.execute(text(
                    f"SELECT {state_cols} FROM machine_states ms WHERE machine_id IN ({marks}) AND start < :hi AND "
                    f'("end" IS NULL OR "end" > :lo) ORDER BY machine_id, start LIMIT :cap'),
                    {"lo": lo, "hi": hi, "cap": MAX_ROWS + 1})
            else:
                # Each job's own window (heads and tails of 500 machines, which may differ), in one query: from
                # the machine's last row starting at or before the window's start (only that row can reach into
                # it: a row ends at the next one's start, and an open one lasts until then however long).
                state_rows = _dedupe(got[states_sql]()[0] if states_sql in got else
                                     _fetch_all(session.connection(), states_sql), len(ids) < n)
            for mid, s, e, st, fault, product in state_rows:
                read += 1
                if read > MAX_ROWS:
                    raise TooMuchData("state changes")
                if read % DEADLINE_EVERY == 0:
                    deadline.check()
                s, e = backends.epoch_of(s), backends.epoch_of(e)
                row = None
                for j in jobs_of[mid]:
                    j_lo, j_hi = bounds[j]
                    if s < j_hi and (e is None or e > j_lo):
                        row = row or StateInterval(s, e, st, fault, product)
                        states[j].append(row)
            # Count rows come whole (one-minute rows: cut per job like states) or summed into a grain that depends
            # on the range: jobs whose range needs coarser rows are read with their own range.
            reads: dict[tuple, list[int]] = {}
            if counts_beside is not None:
                rows = _dedupe(counts_beside()[0], len(ids) < n)
                if len(rows) > MAX_ROWS - read:
                    raise TooMuchData("count rows")
                read += len(rows)
                for mid, s, e, product, total, good in rows:
                    inc = CountIncrement(s, e, total, good, product)
                    for j in jobs_of[mid]:
                        if s < wins[j][2] and e >= wins[j][1]:
                            counts[j].append(inc)
            for j, (a, b) in enumerate(span if longest is None else ()):
                job_grain = grain or count_grain_s(a, b)
                if job_grain > 60:
                    job_grain = calendar_grain_s(job_grain, _calendar_edges(mconf[jobs[j][0]].calendar, a, b))
                reads.setdefault((60, start, end) if job_grain == 60 else (job_grain, a, b), []).append(j)
            for (job_grain, a, b), members in reads.items():
                cut = {j: (stored(span[j][0]), stored(span[j][1])) for j in members}
                by_machine: dict[int, list[int]] = {}
                for j in members:
                    by_machine.setdefault(pk[j], []).append(j)
                rows = _count_rows(session, name, ",".join(map(str, sorted(by_machine))), a, b, job_grain,
                                   MAX_ROWS - read)
                read += len(rows)
                for mid, s, e, product, total, good in rows:
                    s, e = backends.epoch_of(s), backends.epoch_of(e)
                    inc = CountIncrement(s, e, total, good, product)
                    for j in by_machine[mid]:
                        if job_grain == 60 and not (s < cut[j][1] and e >= cut[j][0]):
                            continue
                        counts[j].append(inc)
            for ev in session.scalars(select(DowntimeEvent).where(
                    backends.ids_in(DowntimeEvent.machine_id, ids), DowntimeEvent.reason_id.is_not(None),
                    DowntimeEvent.start < backends.db_time(name, end))):
                if ev.reason_id not in by_id:
                    continue
                ev_start = backends.epoch_of(ev.start)
                for j in jobs_of[ev.machine_id]:
                    m_end = span[j][1]
                    if ev_start < stored(m_end):
                        ev_end = backends.epoch_of(ev.end) if ev.end else m_end
                        overrides[j].append(ReasonOverride(ev_start, ev_end, by_id[ev.reason_id]))
            # Out of service (before the machine was added, while disabled): not planned time, not its loss.
            in_service = lifetime.periods(session, ids) if periods is None else periods
            for mid, spans in in_service.items():
                for j in jobs_of.get(mid, ()):  # periods may hold more machines (a caller's)
                    downtime[j] = [oee.PlannedDowntime(a, b, NOT_IN_SERVICE)
                                   for a, b in lifetime.out_of_service(spans, span[j][1])]
            # The cycle.ideal_time tag, for machines with parts that no product's ideal cycle time covers.
            needs = sorted({pk[j] for j in range(n) if any(not ideal.get(c.product_code) for c in counts[j])})
            tags = _ideal_tags(session, needs) if needs else {}
            for j in range(n):
                if pk[j] in tags:
                    series[j] = ideal_series(session, name, tags[pk[j]], span[j][0] - lookback, span[j][1])

    configs = [mconf[m] for m, _a, _b in jobs]
    buckets = make_buckets(configs, bucket, start, end, tz, max_buckets)

    deadline.check()
    analyses = [oee.analyze(*span[j], states=states[j], counts=counts[j], calendar=mc.calendar,
                            ideal_cycle_times=ideal, default_ideal_cycle_time_s=mc.default_ideal_s,
                            ideal_cycle_time_series=series[j],
                            fault_reasons=mc.fault_reasons, overrides=overrides[j], downtime=downtime[j],
                            config=mc.config, buckets=buckets)
                for j, mc in enumerate(configs)]
    return configs, analyses, tz


# --- reports from the hourly summaries (db/oee_hours.py) ------------------------------------------------


def _summary_context(session: Session, machines: list[Machine], config, tz):
    """machine_context(), each machine's fingerprint (by machine_id) and its in-service periods (by pk)."""
    mconf, by_id, ideal, tz = machine_context(session, machines, config, tz)
    ids = [m.id for m in machines]
    periods = lifetime.periods(session, ids)
    tags = _ideal_tags(session, ids)
    memo: dict = {}  # the objects it keys stay alive in mconf, ideal, periods and tags until the end
    prints = {m.machine_id: oee_hours.fingerprint(tz, mconf[m.machine_id], ideal, periods.get(m.id), tags.get(m.id),
                                                  memo)
              for m in machines}
    return (mconf, by_id, ideal, tz), prints, periods


@dataclass
class _Plan:
    """What a report reads, made from the machines' horizons (and their fingerprints): the summarized hours and days
    (summed in SQL) and the rest, read raw. Equal plans read the same rows."""
    flat: list  # (machine pk, lo, hi): hours
    flat_days: list  # (machine pk, lo, hi): day rows
    raw_jobs: list  # (machine_id, a, b): read raw
    heads: list  # (machine pk, index in raw_jobs): heads that may be read as their hour minus its part before
    whole_raw: list  # machine pks without a usable hour: their whole range as today
    edges: list  # the buckets' edges
    hour: tuple  # (start, end) of the hour that holds the range's start


def _plan(machines, horizons: dict, prints: dict | None, events: dict, start: float, end: float, tz: str,
          buckets) -> _Plan:
    """The report's plan. prints None: every horizon's fingerprint taken to hold (a guess, checked later)."""
    grid = oee_hours.hour_edges(start, end, tz)
    grid_set = set(grid)
    cuts = sorted({x for bk in buckets or () for x in (bk.start, bk.end) if start < x < end and x not in grid_set})

    # Each machine's summarized windows: whole hours within [from, until) and the range, split where a bucket edge
    # falls inside an hour (that hour is read raw).
    windows: dict[int, list[tuple[float, float]]] = {}
    for m in machines:
        h = horizons.get(m.id)
        if h is None or (prints is not None and h[2] != prints[m.machine_id]):
            continue
        lo_h, until = float(h[0]), float(h[1])
        hi_h = oee_hours.valid_until(h[3], events.get(m.id, []), lo_h, until)
        lo, hi = max(lo_h, start), min(hi_h, end)
        edges = grid
        if hi_h == until and start < until < end and until not in grid_set:  # the end of the hour's partial row
            edges = sorted([*grid, until])
        i, j = bisect_right(edges, lo - 1e-9), bisect_right(edges, hi) - 1  # first edge >= lo, last edge <= hi
        if i >= len(edges) or j < 0 or edges[i] >= edges[j]:
            continue
        pieces, a = [], edges[i]
        for c in cuts:
            if edges[i] < c < edges[j]:
                k = bisect_right(edges, c)
                if edges[k - 1] > a:
                    pieces.append((a, edges[k - 1]))
                a = edges[k]
        if edges[j] > a:
            pieces.append((a, edges[j]))
        if pieces:
            windows[m.id] = pieces

    # Whole plant days inside a window are read from their day rows (oee_days: the sums of their hours), unless a
    # bucket edge falls inside the day; the rest of the window from its hours.
    edges = sorted({x for bk in buckets or () for x in (bk.start, bk.end)})
    day_grid = oee_hours.day_edges(start, end, tz)
    whole_days = [(ds, de) for ds, de in zip(day_grid, day_grid[1:]) if not any(ds < x < de for x in edges)]
    split_memo: dict[tuple, tuple] = {}

    def split(lo: float, hi: float) -> tuple[list, list]:
        hours, days, t = [], [], lo
        for ds, de in whole_days:
            if lo <= ds and de <= hi:
                if ds > t:
                    hours.append((t, ds))
                if days and days[-1][1] == ds:
                    days[-1] = (days[-1][0], de)
                else:
                    days.append((ds, de))
                t = de
        if hi > t:
            hours.append((t, hi))
        return hours, days

    flat, flat_days = [], []
    for mid, ps in windows.items():
        for piece in ps:
            if piece not in split_memo:
                split_memo[piece] = split(*piece)
            hours, days = split_memo[piece]
            flat += [(mid, lo, hi) for lo, hi in hours]
            flat_days += [(mid, lo, hi) for lo, hi in days]

    # The rest of each machine's range, read raw (one-minute count rows, as the summaries were made).
    raw_jobs = []
    whole_raw = []
    heads: list[tuple] = []
    h0 = oee_hours.hour_floor(start, tz)
    h1 = next((x for x in grid if x > start), None)
    b_edges = sorted({*edges, start, end})
    for m in machines:
        ps = windows.get(m.id)
        if ps is None:
            whole_raw.append(m.id)
            continue
        t = start
        gaps = []
        for lo, hi in ps:
            if lo > t:
                gaps.append((t, lo))
            t = hi
        if t < end:
            gaps.append((t, end))
        for lo, hi in gaps:
            cut = [x for x in b_edges if lo < x < hi]
            if lo == start and hi == h1 and not cut and start - h0 < h1 - start and float(horizons[m.id][0]) <= h0:
                heads.append((m.id, len(raw_jobs)))  # maybe the hour minus its part before the range (below)
            for x, y in zip([lo, *cut], [*cut, hi]):
                raw_jobs.append((m.machine_id, x, y))
    return _Plan(flat, flat_days, raw_jobs, heads, whole_raw, edges, (h0, h1))


@dataclass
class _Reads:
    """A plan's reads under way: the summaries' sums (a callable giving their rows), the raw jobs as read (a head
    may have become its hour's part before the range), the hours those heads are taken from, and the raw rows'
    reads by their statement (for _analyze)."""
    sums: object
    together: bool  # the machines' sums and the buckets' in one read (GROUPING SETS)
    raw_jobs: list
    complement: dict  # index in raw_jobs -> the hour's values
    raw: dict


def _start_reads(store, session: Session, plan: _Plan, machines, horizons: dict, start: float, lookback: float,
                 machine_buckets: bool) -> _Reads:
    """Start the plan's reads: the summaries' sums and the raw rows beside this thread (PostgreSQL), the heads'
    hours here."""
    name = store.backend_name
    together = bool(plan.edges) and not machine_buckets and name != backends.SQLITE
    statements = [oee_hours.summary_sql(name, plan.flat, True, plan.edges if together else None, plan.flat_days,
                                        sets=together)]
    if plan.edges and not together:
        statements.append(oee_hours.summary_sql(name, plan.flat, machine_buckets, plan.edges, plan.flat_days))
    sums = _read_beside(store, statements)
    # A head longer than half its hour: the hour's row minus the raw part of it before the range, so that at most
    # half an hour is read raw (hours are additive at any edge the engine cuts at, as the summaries themselves).
    # Only for an hour without notes (notes are a union: they cannot be taken back).
    raw_jobs = list(plan.raw_jobs)
    complement: dict[int, list] = {}
    if plan.heads:
        h0, h1 = plan.hour
        cols = ", ".join(f'"{f}"' for f in oee_hours.FIELDS)
        hour_rows = {mid: vals for mid, *vals in session.execute(text(
            f'SELECT machine_id, {cols} FROM oee_hours WHERE machine_id IN '
            f"({','.join(str(mid) for mid, _k in plan.heads)}) AND start = {int(h0)} AND \"end\" = {int(h1)} "
            f"AND notes = ''"))}
        for mid, k in plan.heads:
            if mid in hour_rows:
                raw_jobs[k] = (raw_jobs[k][0], h0, start)
                complement[k] = hour_rows[mid]
    raw = {}
    if raw_jobs:
        pk_of = {m.machine_id: m.id for m in machines}
        longest = {pk_of[j[0]]: horizons[pk_of[j[0]]][4:6] for j in raw_jobs}
        for sql in _window_sql(name, [pk_of[m] for m, _a, _b in raw_jobs], [(a, b) for _m, a, b in raw_jobs],
                               lookback, longest)[:2]:
            raw[sql] = _read_beside(store, [sql])
    return _Reads(sums, together, raw_jobs, complement, raw)


def _plant_timezone(session: Session) -> str:
    """The first site's time zone (UTC without a site): the plant's, for reports that are not given one."""
    site_tz = session.scalar(select(Site.timezone).order_by(Site.id).limit(1))
    return "UTC" if site_tz is None else site_tz


def _summarized(store, machines_of, start: float, end: float, *, bucket: str | None = None, max_buckets: int = 1000,
             config: oee.Config | None = None, tz: str | None = None, machine_buckets: bool = True):
    """db.oee_queries._analyze()'s answer from the summaries where they hold, the rest read raw at one-minute count
    rows (as the summaries were made, so that an answer does not change when summaries go stale), or as before
    when that is more than a report reads. None when nothing was ever summarized here (then the caller reads raw,
    as before). Returns (configs, analyses, tz, whole):
    whole is the analyses rolled up (with the buckets); each machine's analysis carries buckets only with
    machine_buckets (their per-machine sums cost a larger read)."""
    name = store.backend_name
    lookback = (config or oee.DEFAULT_CONFIG).startup_window_s  # as _analyze's, unless a machine's differs
    with Session(store.engine) as session:
        machines = machines_of(session)
        if not machines:
            return None
        ids = [m.id for m in machines]
        horizons = {mid: (f, u, fp, json.loads(o), ms, mc) for mid, f, u, fp, o, ms, mc in session.execute(text(
            "SELECT machine_id, from_s, until_s, fingerprint, overrides, max_state_s, max_count_s "
            f"FROM oee_hour_horizons WHERE machine_id IN ({','.join(map(str, ids))})"))}
        if not horizons:  # never summarized (no refresher runs here): the caller reads raw, as before
            return None
        events = oee_hours.reasoned_events(session, name, ids)
        # The reads start before the machines' settings are read and fingerprinted (~20 ms of this thread at 500
        # machines), planned as if every fingerprint held, as it does unless a setting changed since the last
        # refresh; the plan is made again with the fingerprints, and the reads are used only if it is the same.
        guess = None
        if bucket != "shift":  # shift buckets follow the machines' calendars
            early_tz = tz or _plant_timezone(session)
            plan = _plan(machines, horizons, None, events, start, end, early_tz,
                         oee.make_buckets(bucket, start, end, tz=early_tz, limit=max_buckets) if bucket else None)
            guess = (plan, _start_reads(store, session, plan, machines, horizons, start, lookback, machine_buckets))
        context, prints, periods = _summary_context(session, machines, config, tz)
        mconf, _by_id, _ideal, tz = context
        configs = [mconf[m.machine_id] for m in machines]
        buckets = make_buckets(configs, bucket, start, end, tz, max_buckets)
        plan = _plan(machines, horizons, prints, events, start, end, tz, buckets)
        if guess is not None and guess[0] == plan:
            reads = guess[1]
        else:
            reads = _start_reads(store, session, plan, machines, horizons, start, lookback, machine_buckets)
    edges = plan.edges
    per_machine: dict[int, Totals] = {}
    slot_of = {}  # interval of edges (width_bucket's answer) -> bucket index
    for k, bk in enumerate(buckets or ()):
        slot_of[bisect_right(edges, bk.start)] = k
    bucket_sums: dict[tuple, list[Totals]] = {}  # (machine pk or None, bucket index) -> Totals

    def take_sums() -> None:
        first, *by_bucket_rows = reads.sums()
        if reads.together:
            for by_bucket, mid, slot, *vals, notes in first:
                if not by_bucket:
                    per_machine[mid] = oee_hours.totals_of(vals, notes)
                elif slot_of.get(slot) is not None:
                    bucket_sums.setdefault((None, slot_of[slot]), []).append(oee_hours.totals_of(vals, notes))
        else:
            for mid, *vals, notes in first:
                per_machine[mid] = oee_hours.totals_of(vals, notes)
        for row in by_bucket_rows[0] if by_bucket_rows else ():
            mid = row[0] if machine_buckets else None
            slot = row[1] if machine_buckets else row[0]
            vals, notes = row[-len(oee_hours.FIELDS) - 1:-1], row[-1]
            if name == backends.SQLITE:
                slot = bisect_right(edges, slot)
            k = slot_of.get(slot)
            if k is not None:
                bucket_sums.setdefault((mid, k), []).append(oee_hours.totals_of(vals, notes))

    raw_jobs, complement = reads.raw_jobs, reads.complement
    raw: dict[str, list[tuple[float, Totals]]] = {}
    by_pk = {m.id: m for m in machines}
    whole_raw = [by_pk[mid] for mid in plan.whole_raw]
    if raw_jobs:  # one read for all: each job (a machine's head, tail, or an hour cut by a bucket) its own window
        by_machine_id = {m.machine_id: m for m in machines}
        chosen = [by_machine_id[n] for n in sorted({j[0] for j in raw_jobs})]
        # The longest state and count row of each machine (every row before its horizon was seen by the
        # refresher or moved the horizon back): no count row reaching a window starts earlier than that before it.
        _cfgs, result, _tz = _analyze(store, lambda _s: chosen, min(j[1] for j in raw_jobs),
                                      max(j[2] for j in raw_jobs), config=config, tz=tz, jobs=raw_jobs, grain=60,
                                      context=context, longest={m.id: horizons[m.id][4:6] for m in chosen},
                                      periods=periods, prefetched=reads.raw)
        for k, (job, analysis) in enumerate(zip(raw_jobs, result, strict=True)):
            if k in complement:  # the head: its hour minus the part before the range
                part = analysis.totals
                vals = [float(v) - getattr(part, f) for f, v in zip(oee_hours.FIELDS, complement[k])]
                raw.setdefault(job[0], []).append((start, oee_hours.totals_of(vals, "")))
            else:
                raw.setdefault(job[0], []).append((job[1], analysis.totals))
    today = {}
    if whole_raw:  # at one-minute count rows like the summaries when they fit in a report's rows, else as today
        try:
            cfgs, result, _tz = _analyze(store, lambda _s: whole_raw, start, end, bucket=bucket,
                                         max_buckets=max_buckets, config=config, tz=tz, context=context, grain=60)
        except TooMuchData:
            cfgs, result, _tz = _analyze(store, lambda _s: whole_raw, start, end, bucket=bucket,
                                         max_buckets=max_buckets, config=config, tz=tz, context=context)
        today = {mc.machine_id: a for mc, a in zip(cfgs, result, strict=True)}

    # Together: each machine's range and buckets; the roll-up.
    take_sums()
    starts = [bk.start for bk in buckets or ()]

    def bucket_of(t: float) -> int | None:
        k = bisect_right(starts, t) - 1
        return k if k >= 0 and buckets[k].start <= t < buckets[k].end else None

    out = []
    raw_in_bucket: dict[tuple, list[Totals]] = {}
    for m in machines:
        if m.machine_id in today:
            a = today[m.machine_id]
            out.append(a if machine_buckets else oee.Analysis(a.start, a.end, a.totals))
            for k, (_bk, t) in enumerate(a.buckets):
                raw_in_bucket.setdefault((None, k), []).append(t)
            continue
        parts = raw.get(m.machine_id, [])
        whole = rollup([per_machine.get(m.id, Totals()), *[t for _s, t in parts]])
        for s, t in parts:
            k = bucket_of(s)
            if k is not None:
                raw_in_bucket.setdefault((m.id if machine_buckets else None, k), []).append(t)
                if machine_buckets:
                    raw_in_bucket.setdefault((None, k), []).append(t)
        if machine_buckets and buckets:
            per = tuple((bk, rollup([*bucket_sums.get((m.id, k), []), *raw_in_bucket.get((m.id, k), [])]))
                        for k, bk in enumerate(buckets))
            out.append(oee.Analysis(start, end, whole, per))
        else:
            out.append(oee.Analysis(start, end, whole))
    if buckets and not machine_buckets:
        whole = oee.Analysis(start, end, rollup(a.totals for a in out), tuple(
            (bk, rollup([*bucket_sums.get((None, k), []), *raw_in_bucket.get((None, k), [])]))
            for k, bk in enumerate(buckets)))
    else:
        whole = oee.rollup_analyses(out)
    return configs, out, tz, whole


def _fetch_all(conn, sql: str) -> list[tuple]:
    """The rows of a statement with nothing to bind, from the driver's own cursor: SQLAlchemy's row objects and
    psycopg's scan of the text for placeholders cost ~25 ms a report on the large statements below (inlined
    VALUES of 1,000 windows, 6,000 rows back; measured on 500 machines)."""
    cursor = conn.connection.cursor()
    try:
        cursor.execute(sql)
        return cursor.fetchall()
    finally:
        cursor.close()


# Reads that a report runs beside its own on PostgreSQL, each on a connection of its own: the server works on
# them while this thread reads the rest or runs the engine (a 2-day site report of 500 machines waited ~70 ms on
# three reads in a row). Not on SQLite: one file, and an in-memory database shares one connection between threads.
_BESIDE = ThreadPoolExecutor(max_workers=4, thread_name_prefix="oee-read")


def _read_beside(store, statements: list[str], here=None):
    """A callable giving the rows of each statement (in order), read on another connection and thread where the
    backend allows (in the request's context: its deadline holds there too), else when called, on `here` (the
    caller's connection) if given. A read nobody waits for (the report failed) ends by itself and gives its
    connection back."""
    name = store.backend_name

    def read(conn) -> list[list[tuple]]:
        _no_jit(conn, name)
        return [_fetch_all(conn, sql) for sql in statements]

    def on_its_own() -> list[list[tuple]]:
        with store.engine.connect() as conn:
            return read(conn)

    if name == backends.SQLITE:
        return (lambda: read(here)) if here is not None else on_its_own
    return _BESIDE.submit(contextvars.copy_context().run, on_its_own).result


def _no_jit(conn, backend: str) -> None:
    """PostgreSQL's JIT off for this transaction: the summaries' queries and the raw rest's estimate costs above
    jit_above_cost and spent 5-10 ms each compiling (measured on 500 machines x 30 days), more than it won."""
    if backend != backends.SQLITE:
        conn.execute(text("SET LOCAL jit = off"))


def _job_values(backend: str, rows: list[tuple]) -> str:
    """VALUES rows of (machine pk, times...) with the times as the backend compares them (-inf: before all)."""
    def t(x):
        if x == -math.inf:
            return "-1e308" if backend == backends.SQLITE else "'-infinity'::timestamptz"
        return repr(float(x)) if backend == backends.SQLITE else f"to_timestamp({float(x)!r})"
    return ", ".join(f"({int(m)}, {', '.join(t(x) for x in times)})" for m, *times in rows)


def _as_stored(backend: str):
    """epoch -> the epoch as the database compares it (PostgreSQL: microseconds), each value converted once: the
    jobs of 500 machines share most of their bounds (the range's start and end)."""
    seen: dict[float, float] = {}

    def stored(epoch: float) -> float:
        found = seen.get(epoch)
        if found is None:
            found = seen[epoch] = backends.epoch_of(backends.db_time(backend, epoch))
        return found
    return stored


def _window_sql(backend: str, pk: list[int], span: list[tuple], lookback: float, longest: dict) -> tuple:
    """(state rows' statement, count rows' statement, count windows) of jobs read each in a window of its own:
    machine pk[j] over span[j]. States from the machine's last row starting at or before the window's start less
    the lookback (only that row can reach into it: a row ends at the next one's start, and an open one lasts until
    then however long); counts from the machine's longest count row before it (longest: {pk: (longest state row,
    longest count row) in seconds, None: unknown}). Windows are (pk, lo, hi, floor) as the database compares them."""
    stored = _as_stored(backend)

    bounds = [(pk[j], stored(a - lookback), stored(b)) for j, (a, b) in enumerate(span)]
    lb = {m: x[1] for m, x in longest.items()}
    wins = [(pk[j], stored(a), stored(b), -math.inf if lb.get(pk[j]) is None else stored(a - lb[pk[j]] - 1))
            for j, (a, b) in enumerate(span)]
    state_cols = (f'ms.machine_id, {_epoch(backend, "ms.start")}, {_epoch(backend, "ms." + END)}, ms.state, '
                  "ms.fault_code, ms.product_code")
    if backend == backends.TIMESCALEDB:
        states = _states_by_chunks(backend, bounds)
    else:
        states = _per_window(
            backend, f"j(m, lo, hi) AS (VALUES {_job_values(backend, bounds)})", state_cols, "machine_states ms",
            'ms.machine_id = j.m AND ms.start < j.hi AND (ms."end" IS NULL OR ms."end" > j.lo) AND '
            "ms.start >= coalesce((SELECT max(y.start) FROM machine_states y WHERE y.machine_id = j.m "
            "AND y.start <= j.lo), j.lo)", MAX_ROWS + 1)
    counts = _per_window(
        backend, f"j(m, lo, hi, f) AS (VALUES {_job_values(backend, wins)})",
        f'pc.machine_id, {_epoch(backend, "pc.start")}, {_epoch(backend, "pc." + END)}, pc.product_code, '
        f"pc.total, pc.good", "production_counts pc",
        'pc.machine_id = j.m AND pc.start < j.hi AND pc."end" >= j.lo AND pc.start >= j.f'
        + (_time_ranges("pc.start", [(f, hi) for _m, _lo, hi, f in wins]) if backend == backends.TIMESCALEDB else ""),
        MAX_ROWS + 1)
    return states, counts, wins


RECENT_ROW_S = 86400.0  # TimescaleDB: a window's first state row is looked for this far back first


def _states_by_chunks(backend: str, bounds: list[tuple]) -> str:
    """_window_sql's state rows on TimescaleDB, the same rows as the other backends' statement, each part with its
    time spans written out (_time_ranges) so that the plan holds only the chunks they reach: per window, the last
    row starting at or before its start if it reaches into it (looked for in the last RECENT_ROW_S first; further
    back, over every chunk, only for a window without a row there: a machine idle for days), and the rows starting
    inside it."""
    rows = [(m, lo, hi, lo - RECENT_ROW_S) for m, lo, hi in bounds]
    recent = [(r, lo) for _m, lo, _hi, r in rows]
    inside = _time_ranges("ms.start", [(lo, hi) for _m, lo, hi, _r in rows])
    cols = (f'SELECT ms.machine_id AS c1, {_epoch(backend, "ms.start")} AS c2, {_epoch(backend, "ms." + END)} AS c3, '
            f'ms.state AS c4, ms.fault_code AS c5, ms.product_code AS c6, ms.start AS s, ms."end" AS e '
            "FROM machine_states ms WHERE ms.machine_id = j.m AND")
    first = (f"SELECT * FROM ({cols} ms.start <= j.lo AND ms.start >= j.r{_time_ranges('ms.start', recent, closed=True)} "
             "ORDER BY ms.start DESC LIMIT 1) a")
    older = (f"SELECT * FROM ({cols} ms.start <= j.lo AND NOT EXISTS (SELECT 1 FROM machine_states z WHERE "
             f"z.machine_id = j.m AND z.start <= j.lo AND z.start >= j.r{_time_ranges('z.start', recent, closed=True)}) "
             "ORDER BY ms.start DESC LIMIT 1) b")
    later = f"{cols} ms.start > j.lo AND ms.start < j.hi{inside}"
    return (f"WITH j(m, lo, hi, r) AS (VALUES {_job_values(backend, rows)}) "
            "SELECT x.c1, x.c2, x.c3, x.c4, x.c5, x.c6 FROM j CROSS JOIN LATERAL "
            f"(({first}) UNION ALL ({older}) UNION ALL ({later})) x WHERE x.s > j.lo OR x.e IS NULL OR x.e > j.lo "
            f"ORDER BY 1, 2 LIMIT {MAX_ROWS + 1}")


def _time_ranges(column: str, spans: list[tuple], closed: bool = False) -> str:
    """AND (column in one of these [lo, hi) spans, merged), with the times written into the statement: the windows'
    own bounds are parameters of the lateral join, which TimescaleDB can only check chunk by chunk at run time for
    every window (a 30-day hypertable: 31 chunks x 1,000 windows, 72 ms); written out, the plan holds only the
    chunks the spans reach (2: 27 ms). Implied by the windows' own conditions, so the rows are the same. closed:
    the spans include their end."""
    merged: list[list[float]] = []
    for lo, hi in sorted(spans):
        if merged and lo <= merged[-1][1] + 6 * 3600.0:  # near ones together: a short OR list
            merged[-1][1] = max(merged[-1][1], hi)
        else:
            merged.append([lo, hi])

    def t(x: float) -> str:
        return f"to_timestamp({float(x)!r})"

    below = "<=" if closed else "<"  # closed: [lo, hi]
    parts = [f"{column} {below} {t(hi)}" if lo == -math.inf else
             f"({column} >= {t(lo)} AND {column} {below} {t(hi)})" for lo, hi in merged]
    return f" AND ({' OR '.join(parts)})" if parts else ""


def _per_window(backend: str, windows: str, cols: str, table: str, condition: str, limit: int) -> str:
    """SELECT cols of the table's rows meeting the condition for each row j of the windows (a CTE), sorted by
    (machine, start). PostgreSQL joins LATERAL, so that each window is an index scan: a plain join of 1,000
    windows was planned as a hash join over a whole 30-day table (4.7 s instead of milliseconds)."""
    if backend == backends.SQLITE:
        return f"WITH {windows} SELECT {cols} FROM j JOIN {table} ON {condition} ORDER BY 1, 2 LIMIT {int(limit)}"
    return (f"WITH {windows} SELECT x.* FROM j CROSS JOIN LATERAL (SELECT {cols} FROM {table} WHERE {condition} "
            f"OFFSET 0) x ORDER BY 1, 2 LIMIT {int(limit)}")  # OFFSET 0: not pulled up into a plain join


def _dedupe(rows, may_repeat: bool) -> list:
    """Rows read by jobs' windows (times as epoch floats already: _epoch), each once (a machine's two windows may
    overlap)."""
    rows = list(rows)
    if not may_repeat:
        return rows
    out, last = [], None
    for r in rows:  # sorted by (machine, start), the tables' primary key: a repeat follows its first
        if r[0] != last or r[1] != out[-1][1]:
            out.append(r)
            last = r[0]
    return out
