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

import dataclasses
import json
import math
import time
from bisect import bisect_right
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
                           .where(Tag.role == IDEAL_TAG_ROLE, owner.in_(ids)).order_by(Tag.id)).all()
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
    totals = analysis.totals.as_dict()
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
    site = session.scalar(select(Site).order_by(Site.id))
    tz = tz or (site.timezone if site else "UTC")
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
             floors: tuple[float | None, float | None] = (None, None)):
    """Read what the machines that machines_of(session) picks need over the range, in one query per kind, and
    analyse each. jobs ((machine_id, a, b), within [start, end], a machine as often as wanted) gives ranges of
    their own: each job gets exactly the rows its own read would (the union is read once and cut per job in
    Python). Returns (configs, analyses, time zone), one pair per job (per machine without jobs), in order; jobs
    of unknown machines are left out."""
    if jobs is not None and bucket:
        raise ValueError("buckets need one range for all machines")
    name = store.backend_name
    with Session(store.engine) as session:
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

        def stored(epoch: float) -> float:  # a bound as the database compares it (PostgreSQL: microseconds)
            return backends.epoch_of(backends.db_time(name, epoch))

        if ids:
            marks = ",".join(str(i) for i in ids)  # integers from our own rows: safe to inline
            lo, hi = backends.db_time(name, start - lookback), backends.db_time(name, end)
            bounds = [(stored(a - lookback), stored(b)) for a, b in span]
            read = 0
            # floors: (states, counts) no row that reaches the range starts before (db.oee_hours); None: unknown
            state_floor = "" if floors[0] is None else " AND start >= :floor"
            for mid, s, e, st, fault, product in session.execute(text(
                    f'SELECT machine_id, {_epoch(name, "start")}, {_epoch(name, END)}, state, '
                    f'fault_code, product_code FROM machine_states '
                    f'WHERE machine_id IN ({marks}) AND start < :hi AND ("end" IS NULL OR "end" > :lo){state_floor} '
                    f"ORDER BY machine_id, start LIMIT :cap"),
                    {"lo": lo, "hi": hi, "cap": MAX_ROWS + 1, "floor": backends.db_time(name, floors[0])}):
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
            for j, (a, b) in enumerate(span):
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
                                   MAX_ROWS - read, floors[1] if job_grain == 60 else None)
                read += len(rows)
                for mid, s, e, product, total, good in rows:
                    s, e = backends.epoch_of(s), backends.epoch_of(e)
                    inc = CountIncrement(s, e, total, good, product)
                    for j in by_machine[mid]:
                        if job_grain == 60 and not (s < cut[j][1] and e >= cut[j][0]):
                            continue
                        counts[j].append(inc)
            for ev in session.scalars(select(DowntimeEvent).where(
                    DowntimeEvent.machine_id.in_(ids), DowntimeEvent.reason_id.is_not(None),
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
            in_service = lifetime.periods(session, ids)
            for mid, spans in in_service.items():
                for j in jobs_of[mid]:
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
    """machine_context() plus each machine's fingerprint (by machine_id)."""
    mconf, by_id, ideal, tz = machine_context(session, machines, config, tz)
    ids = [m.id for m in machines]
    periods = lifetime.periods(session, ids)
    tags = _ideal_tags(session, ids)
    memo: dict = {}  # the objects it keys stay alive in mconf, ideal, periods and tags until the end
    prints = {m.machine_id: oee_hours.fingerprint(tz, mconf[m.machine_id], ideal, periods.get(m.id), tags.get(m.id),
                                                  memo)
              for m in machines}
    return (mconf, by_id, ideal, tz), prints


def _summarized(store, machines_of, start: float, end: float, *, bucket: str | None = None, max_buckets: int = 1000,
             config: oee.Config | None = None, tz: str | None = None, machine_buckets: bool = True):
    """db.oee_queries._analyze()'s answer from the summaries where they hold, the rest read raw at one-minute count
    rows (as the summaries were made, so that an answer does not change when summaries go stale), or as before
    when that is more than a report reads. None when nothing was ever summarized here (then the caller reads raw,
    as before). Returns (configs, analyses, tz, whole):
    whole is the analyses rolled up (with the buckets); each machine's analysis carries buckets only with
    machine_buckets (their per-machine sums cost a larger read)."""
    name = store.backend_name
    with Session(store.engine) as session:
        machines = machines_of(session)
        if not machines:
            return None
        context, prints = _summary_context(session, machines, config, tz)
        mconf, _by_id, _ideal, tz = context
        ids = [m.id for m in machines]
        horizons = {mid: (f, u, fp, json.loads(o), ms, mc) for mid, f, u, fp, o, ms, mc in session.execute(text(
            "SELECT machine_id, from_s, until_s, fingerprint, overrides, max_state_s, max_count_s "
            f"FROM oee_hour_horizons WHERE machine_id IN ({','.join(map(str, ids))})"))}
        if not horizons:  # never summarized (no refresher runs here): the caller reads raw, as before
            return None
        events = oee_hours.reasoned_events(session, name, ids)
    configs = [mconf[m.machine_id] for m in machines]
    buckets = make_buckets(configs, bucket, start, end, tz, max_buckets)
    grid = oee_hours.hour_edges(start, end, tz)
    grid_set = set(grid)
    cuts = sorted({x for bk in buckets or () for x in (bk.start, bk.end) if start < x < end and x not in grid_set})

    # Each machine's summarized windows: whole hours within [from, until) and the range, split where a bucket edge
    # falls inside an hour (that hour is read raw).
    windows: dict[int, list[tuple[float, float]]] = {}
    for m in machines:
        h = horizons.get(m.id)
        if h is None or h[2] != prints[m.machine_id]:
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

    # The summarized hours, summed in SQL.
    flat = [(mid, lo, hi) for mid, ps in windows.items() for lo, hi in ps] or [(0, 0, 0)]  # (0, 0, 0): no hour
    per_machine: dict[int, Totals] = {}
    edges = sorted({x for bk in buckets or () for x in (bk.start, bk.end)})
    slot_of = {}  # interval of edges (width_bucket's answer) -> bucket index
    for k, bk in enumerate(buckets or ()):
        slot_of[bisect_right(edges, bk.start)] = k
    bucket_sums: dict[tuple, list[Totals]] = {}  # (machine pk or None, bucket index) -> Totals
    with store.engine.connect() as conn:
        for mid, *vals, notes in conn.execute(text(oee_hours.summary_sql(name, flat, True, None))):
            per_machine[mid] = oee_hours.totals_of(vals, notes)
        if buckets:
            for row in conn.execute(text(oee_hours.summary_sql(name, flat, machine_buckets, edges))):
                mid = row[0] if machine_buckets else None
                slot = row[1] if machine_buckets else row[0]
                vals, notes = row[-len(oee_hours.FIELDS) - 1:-1], row[-1]
                if name == backends.SQLITE:
                    slot = bisect_right(edges, slot)
                k = slot_of.get(slot)
                if k is not None:
                    bucket_sums.setdefault((mid, k), []).append(oee_hours.totals_of(vals, notes))

    # The rest of each machine's range, read raw (one-minute count rows, as the summaries were made).
    raw_jobs = []
    whole_raw = []  # machines without a usable hour: their whole range as today
    b_edges = sorted({x for bk in buckets or () for x in (bk.start, bk.end)} | {start, end})
    for m in machines:
        ps = windows.get(m.id)
        if ps is None:
            whole_raw.append(m)
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
            for x, y in zip([lo, *cut], [*cut, hi]):
                raw_jobs.append((m.machine_id, x, y))
    raw: dict[str, list[tuple[float, Totals]]] = {}
    by_machine_id = {m.machine_id: m for m in machines}
    for cluster in _clusters(raw_jobs):
        names = {j[0] for j in cluster}
        chosen = [by_machine_id[n] for n in sorted(names)]
        lo, hi = min(j[1] for j in cluster), max(j[2] for j in cluster)
        # The longest state and count row of these machines (every row before their horizon was seen by the
        # refresher or moved the horizon back): no row reaching [lo, hi) starts earlier than lo minus that.
        longest = [horizons[m.id][4:6] for m in chosen]
        lookback = max(mc.config.startup_window_s for mc in mconf.values())  # as _analyze reads
        floors = tuple(None if any(x[k] is None for x in longest) else lo - lookback - max(x[k] for x in longest) - 1
                       for k in (0, 1))
        cfgs, result, _tz = _analyze(store, lambda _s, chosen=chosen: chosen, lo, hi, config=config, tz=tz,
                                     jobs=cluster, grain=60, context=context, floors=floors)
        for job, analysis in zip(cluster, result, strict=True):
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


def _clusters(jobs: list[tuple]) -> list[list[tuple]]:
    """Jobs whose ranges overlap or touch, together: one raw read each (heads near the start, tails near the end)."""
    out: list[list[tuple]] = []
    hi = -math.inf
    for job in sorted(jobs, key=lambda j: (j[1], j[2])):
        if out and job[1] <= hi:
            out[-1].append(job)
            hi = max(hi, job[2])
        else:
            out.append([job])
            hi = job[2]
    return out


