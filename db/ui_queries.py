"""Read and write queries behind the dashboards, each shaped so that a REST endpoint can return it as it is.

Pages never run SQL and never compute OEE themselves: the OEE numbers come from db.oee_queries.oee_report (the
function behind GET /api/oee/), and everything else a page shows comes from here. Times are epoch seconds (UTC)
in and out; the plant's time zone is applied by the pages.

Downtime events and the operators' reasons for them are in db/downtime_queries.py.
"""
from __future__ import annotations

import math
import time
from datetime import datetime, timezone

from sqlalchemy import func, select, text, tuple_
from sqlalchemy.orm import Session

import oee
from db import backend as backends
from db import machine_lifetime as lifetime
from db.machine_settings import effective_settings
from db.models import (
    Area,
    Connection,
    Line,
    Machine,
    MachineState,
    Product,
    Site,
    Tag,
)
from db.oee_queries import (MAX_ROWS, ScopeError, TooMuchData, _calendars, _ideal_tags, _reasons, _resolve,
                             ideal_series)
from oee.vocabulary import UNKNOWN

UTC = timezone.utc
NUMERIC_TYPES = ("REAL", "LREAL", "FLOAT", "FLOAT32", "FLOAT64", "DOUBLE", "INT", "DINT", "SINT", "LINT", "UINT",
                 "UDINT", "USINT", "WORD", "DWORD", "INT16", "INT32", "INT64", "UINT16", "UINT32", "UINT64",
                 "BYTE", "NUMBER")


# --- the plant ----------------------------------------------------------------------------------------------------


def site_info(store) -> dict:
    """The (first) site: {id, name, timezone}; a database without a site answers UTC and no name."""
    with Session(store.engine) as session:
        site = session.scalar(select(Site).order_by(Site.id))
        if site is None:
            return {"id": None, "name": None, "timezone": "UTC"}
        return {"id": site.id, "name": site.name, "timezone": site.timezone or "UTC"}


def plant_machines(store) -> list[dict]:
    """Every machine with its line, area, site, calendar and connection, in plant order (area, line, machine)."""
    with Session(store.engine) as session:
        rows = session.execute(
            select(Machine, Line, Area, Site)
            .outerjoin(Line, Machine.line_id == Line.id)
            .outerjoin(Area, Line.area_id == Area.id)
            .outerjoin(Site, Area.site_id == Site.id)
            .order_by(Site.name, Area.name, Line.name, Machine.machine_id)
        ).all()
        conns: dict[int, Connection] = {}
        for c in session.scalars(select(Connection).order_by(Connection.id)):
            if c.machine_id is not None:
                conns.setdefault(c.machine_id, c)
        settings = effective_settings(session)
        return [
            {
                "id": m.id,
                "machine_id": m.machine_id,
                "name": m.name,
                "enabled": m.enabled,
                "line_id": ln.id if ln else None,
                "line": ln.name if ln else None,
                "area_id": a.id if a else None,
                "area": a.name if a else None,
                "site": s.name if s else None,
                "calendar_id": settings[m.id].calendar_id,  # in effect: its own, else its line's
                "ideal_cycle_time_s": m.ideal_cycle_time_s,
                "connection": conns[m.id].name if m.id in conns else None,
                "connection_id": conns[m.id].id if m.id in conns else None,
                "protocol": conns[m.id].protocol if m.id in conns else None,
            }
            for m, ln, a, s in rows
        ]


def plant_lines(store) -> list[dict]:
    """Every line with its area and how many machines it has, in plant order."""
    with Session(store.engine) as session:
        counts = dict(session.execute(select(Machine.line_id, func.count()).group_by(Machine.line_id)).all())
        rows = session.execute(select(Line, Area).join(Area, Line.area_id == Area.id)
                               .order_by(Area.name, Line.name)).all()
        return [{"id": ln.id, "name": ln.name, "area_id": a.id, "area": a.name, "machines": counts.get(ln.id, 0)}
                for ln, a in rows]


def scope_machines(store, scope: str, key: str) -> list[dict]:
    """The machines of a machine, line, area or site (same resolution as oee_report). Raises ScopeError."""
    with Session(store.engine) as session:
        machines = _resolve(session, scope, str(key))
        settings = effective_settings(session, [m.id for m in machines])
        return [{"id": m.id, "machine_id": m.machine_id, "name": m.name, "line_id": m.line_id,
                 "calendar_id": settings[m.id].calendar_id, "ideal_cycle_time_s": m.ideal_cycle_time_s}
                for m in machines]


def scope_name(store, scope: str, key: str) -> str:
    """A readable name: the machine's 'LINE-001 PET Line 1', a line's name, ..."""
    with Session(store.engine) as session:
        if scope == "machine":
            m = session.scalar(select(Machine).where(Machine.machine_id == key))
            if m is None:
                raise ScopeError("machine", f"machine {key!r} does not exist")
            return f"{m.machine_id} · {m.name}"
        model = {"line": Line, "area": Area, "site": Site}[scope]
        row = session.scalar(select(model).where(model.name == key))
        if row is None and str(key).isdigit():
            row = session.get(model, int(key))
        if row is None:
            raise ScopeError(scope, f"{scope} {key!r} does not exist")
        return row.name


# --- shifts and the start of the data -------------------------------------------------------------------------


def _shift_of(calendar, at: float) -> dict | None:
    sched = oee.expand(calendar, at - 2 * 86400, at + 86400)
    current = [s for s in sched.shifts if s.start <= at < s.end]
    if current:
        s = current[0]
        return {"name": s.name, "start": s.start, "end": s.end, "date": s.date.isoformat(), "current": True}
    past = [s for s in sched.shifts if s.end <= at]
    if past:
        s = max(past, key=lambda x: x.end)
        return {"name": s.name, "start": s.start, "end": s.end, "date": s.date.isoformat(), "current": False}
    return None


def shift_at(store, scope: str | None, key: str | None, at: float | None = None) -> dict | None:
    """The shift running at `at` (default now) for the scope's calendar (the first machine's that has one), or
    else the last one that ended: {name, start, end, date, current}. None when no machine has a calendar."""
    at = time.time() if at is None else at
    with Session(store.engine) as session:
        calendars = _calendars(session)
        ids = _scope_calendars(session, calendars, scope, key)
    if not ids:
        return None
    return _shift_of(calendars[ids[0]], at)


def _scope_calendars(session: Session, calendars: dict, scope: str | None, key: str | None) -> list[int]:
    """The calendars in effect for the scope's machines in their order (for the plant: most used first)."""
    if scope and key:
        machines = _resolve(session, scope, str(key))
        settings = effective_settings(session, [m.id for m in machines])
        return [settings[m.id].calendar_id for m in machines if settings[m.id].calendar_id in calendars]
    used: dict[int, int] = {}
    for e in effective_settings(session).values():
        if e.calendar_id in calendars:
            used[e.calendar_id] = used.get(e.calendar_id, 0) + 1
    return sorted(used, key=lambda cid: (-used[cid], cid))


def machine_shifts(store, at: float | None = None) -> dict[int, dict | None]:
    """For every machine (db id): its calendar's current (or last) shift, as shift_at; None without a calendar."""
    at = time.time() if at is None else at
    with Session(store.engine) as session:
        calendars = _calendars(session)
        machines = [(mid, e.calendar_id) for mid, e in effective_settings(session).items()]
    by_calendar = {cid: _shift_of(cal, at) for cid, cal in calendars.items()}
    return {mid: by_calendar.get(cid) for mid, cid in machines}


def shifts_on(store, day: str, line: str | None = None) -> list[dict]:
    """The shifts that start on a local date (YYYY-MM-DD) in the calendar of a line (or the plant's main one)."""
    from datetime import date, timedelta

    from oee.timeutil import zone

    d = date.fromisoformat(day)
    with Session(store.engine) as session:
        calendars = _calendars(session)
        ids = _scope_calendars(session, calendars, "line" if line else None, line)
    if not ids:
        return []
    cal = calendars[ids[0]]
    tz = zone(cal.timezone)
    a = datetime.combine(d, datetime.min.time(), tzinfo=tz).timestamp()
    b = datetime.combine(d + timedelta(days=1), datetime.min.time(), tzinfo=tz).timestamp()
    sched = oee.expand(cal, a, b + 86400)
    return [{"name": s.name, "start": s.start, "end": s.end, "date": s.date.isoformat()}
            for s in sched.shifts if s.date == d]


def data_start(store, scope: str | None = None, key: str | None = None) -> float | None:
    """When the scope's data can begin: the earliest of its machines' coming into service (db/machine_lifetime.py)
    and their first state interval. Nothing before it is any machine's planned time."""
    with Session(store.engine) as session:
        # Each machine's first row through the primary key (machine_id, start), then the earliest of those: a
        # min(start) over the whole table read every state row (35-170 ms at 1M rows, a month of 100 machines) for
        # every plant-wide range a page resolves.
        first = select(func.min(MachineState.start)).where(MachineState.machine_id == Machine.id) \
            .correlate(Machine).scalar_subquery()
        q = select(func.min(first)).select_from(Machine)
        ids = None
        if scope and key:
            ids = [m.id for m in _resolve(session, scope, str(key))]
            if not ids:
                return None
            q = q.where(Machine.id.in_(ids))
        value = session.scalar(q)
        first = value.timestamp() if value is not None else None
        added = lifetime.first_in_service(session, ids)
    known = [t for t in (first, added) if t is not None]
    return min(known) if known else None


# --- state intervals ------------------------------------------------------------------------------------------


def state_rows(session: Session, backend: str, ids: list[int], start: float, end: float,
               limit: int | None = MAX_ROWS) -> dict[int, list]:
    """State rows of the machines over the range; raises TooMuchData past `limit` rows (None: no limit)."""
    out: dict[int, list] = {i: [] for i in ids}
    if not ids:
        return out
    marks = ",".join(str(int(i)) for i in ids)  # our own integer keys
    rows = session.execute(text(
        f'SELECT machine_id, start, "end", state, fault_code, product_code FROM machine_states '
        f'WHERE machine_id IN ({marks}) AND start < :hi AND ("end" IS NULL OR "end" > :lo) '
        f"ORDER BY machine_id, start" + (" LIMIT :cap" if limit is not None else "")),
        {"lo": backends.db_time(backend, start), "hi": backends.db_time(backend, end),
         **({"cap": limit + 1} if limit is not None else {})})
    for n, (mid, s, e, st, fault, product) in enumerate(rows, 1):
        if limit is not None and n > limit:
            raise TooMuchData("state changes")
        out[mid].append((backends.epoch_of(s), backends.epoch_of(e), st, fault, product))
    return out


def state_timeline(store, scope: str, key: str, start: float, end: float) -> dict:
    """State intervals of the scope's machines over [start, end), clipped to it; an open interval lasts until
    min(end, now). {"machines": [{machine_id, name, intervals: [[start, end, state, fault_code, product]]}],
    "count": n}."""
    end = min(end, time.time())
    with Session(store.engine) as session:
        machines = _resolve(session, scope, str(key))
        rows = state_rows(session, store.backend_name, [m.id for m in machines], start, end)
        names = fault_names_of(session, [m.id for m in machines])
    out, count = [], 0
    for m in machines:
        intervals = []
        mine = rows[m.id]
        for i, (s, e, st, fault, product) in enumerate(mine):
            if e is None or (i + 1 < len(mine) and e > mine[i + 1][0]):
                e = mine[i + 1][0] if i + 1 < len(mine) else end
            s, e = max(s, start), min(e, end)
            if e > s:
                intervals.append([s, e, st, fault if st != "running" else None, product])
        count += len(intervals)
        out.append({"machine_id": m.machine_id, "name": m.name, "intervals": intervals,
                    "fault_names": names.get(m.id, {})})
    return {"start": start, "end": end, "machines": out, "count": count}


def fault_names_of(session: Session, machine_ids: list[int]) -> dict[int, dict[int, str]]:
    """Per machine (db id): fault code -> text, from its own fault table, else the reason of that code."""
    _, by_fault = _reasons(session)
    plant = {code: r.name for code, r in by_fault.items() if r.name}
    return {mid: {**plant, **{c: text for c, (text, _) in e.fault_codes.items()}}
            for mid, e in effective_settings(session, machine_ids).items()}


def product_names(store) -> dict[str, str]:
    """Product code -> name, for pages that show the product a machine makes (names first, codes after)."""
    with Session(store.engine) as session:
        return {p.code: p.name for p in session.scalars(select(Product)) if p.name}


def fault_names(store, machine_ids: list[int] | None = None) -> dict[int, dict[int, str]]:
    """What each machine's fault codes mean, for pages that show a code: {machine db id: {code: text}}."""
    with Session(store.engine) as session:
        if machine_ids is None:
            machine_ids = list(session.scalars(select(Machine.id)))
        return fault_names_of(session, machine_ids)


def fault_label(code: int | None, text: str | None) -> str | None:
    """How a fault code is shown: '42 Jam at infeed', or 'Fault 42' when nobody said what 42 means."""
    if code is None:
        return None
    return f"{code} {text}" if text else f"Fault {code}"


def machine_status(store, machine_ids: list[int] | None = None) -> dict[int, dict]:
    """The latest stored state of every machine (db id), or of these: {state, since, fault_code, product_code,
    last_seen}. What a page shows when this process does not collect (the web role), or before the first cycle."""
    with Session(store.engine) as session:
        # Each machine's newest row found through the primary key (machine_id, start): one index seek a machine.
        # A max(start) grouped by machine read every state row instead (50 ms at 1M rows, a month of 100 machines,
        # for pages that ask every few seconds); a join on the correlated max was planned as a scan on SQLite.
        newest = select(func.max(MachineState.start)).where(MachineState.machine_id == Machine.id) \
            .correlate(Machine).scalar_subquery()
        latest = select(Machine.id, newest)
        if machine_ids is not None:
            latest = latest.where(Machine.id.in_(machine_ids))
        rows = session.execute(select(MachineState).where(
            tuple_(MachineState.machine_id, MachineState.start).in_(latest))).scalars()
        out = {}
        for r in rows:
            out[r.machine_id] = {"state": r.state if r.end is None else "unknown",
                                 "since": r.start.timestamp() if r.end is None else r.end.timestamp(),
                                 "fault_code": r.fault_code, "product_code": r.product_code,
                                 "last_seen": (r.end or r.start).timestamp()}
        return out


# --- counts against plan ----------------------------------------------------------------------------------------


def count_progress(store, scope: str, key: str, start: float, end: float, *, steps: int = 120) -> dict:
    """Planned against actual count over [start, end), cumulative, in `steps` even steps.

    ideal: what 100 % speed in every second of planned production time makes (the calendar's production time;
    all time without a calendar), with the ideal cycle time there as OEE takes it (the product's, else the PLC's
    cycle.ideal_time tag then, else the machine's); actual total and good count from the stored count
    increments, each placed at its midpoint.
    {"times": [...step ends], "ideal": [...], "total": [...], "good": [...], "missing_ideal": bool}.
    """
    now = time.time()
    stop = min(end, now)
    if stop <= start:
        return {"times": [], "ideal": [], "total": [], "good": [], "missing_ideal": False}
    steps = max(1, steps)
    width = (end - start) / steps
    edges = [start + i * width for i in range(steps + 1)]
    n_used = max(1, min(steps, math.ceil((stop - start) / width)))
    ideal = [0.0] * steps
    total = [0.0] * steps
    good = [0.0] * steps
    missing = False
    name = store.backend_name
    with Session(store.engine) as session:
        machines = _resolve(session, scope, str(key))
        calendars = _calendars(session)
        settings = effective_settings(session, [m.id for m in machines])
        products = {p.code: p.ideal_cycle_time_s for p in session.scalars(select(Product))}
        ids = [m.id for m in machines]
        states = state_rows(session, name, ids, start, stop)
        tags = _ideal_tags(session, ids)
        series = {mid: ideal_series(session, name, tid, start, stop) for mid, tid in tags.items()}
        marks = ",".join(str(i) for i in ids) or "NULL"
        counts = session.execute(text(
            f'SELECT machine_id, start, "end", total, good FROM production_counts WHERE machine_id IN ({marks}) '
            'AND start < :hi AND "end" >= :lo LIMIT :cap'),
            {"lo": backends.db_time(name, start), "hi": backends.db_time(name, stop), "cap": MAX_ROWS + 1}).all()
        if len(counts) > MAX_ROWS:
            raise TooMuchData("count rows")
    # Each count row spread over the steps it spans, by time: a row of a minute placed whole at its midpoint filled
    # every other 30 s step and left the next empty, so "actual" climbed in stairs every ~30 s.
    for _mid, s, e, t, g in counts:
        s, e = backends.epoch_of(s), backends.epoch_of(e)
        if e - s <= 1e-9:
            if start <= s < stop:
                i = min(int((s - start) / width), steps - 1)
                total[i] += t or 0
                good[i] += g or 0
            continue
        a, b = max(s, start), min(e, stop)
        i = max(0, int((a - start) / width))
        while a < b and i < steps:
            edge = min(b, start + (i + 1) * width)
            share = (edge - a) / (e - s)
            total[i] += (t or 0) * share
            good[i] += (g or 0) * share
            a, i = edge, i + 1
    for m in machines:
        sched = oee.expand(calendars.get(settings[m.id].calendar_id), start, stop)
        windows = sched.production_windows()
        rows = states[m.id]
        for i in range(n_used):
            a, b = edges[i], min(edges[i + 1], stop)
            planned = sum(max(0.0, min(b, we) - max(a, ws)) for ws, we in windows)
            if planned <= 0:
                continue
            product = _product_at(rows, (a + b) / 2)
            ict = products.get(product) if product else None
            ict = ict or _value_at(series.get(m.id), (a + b) / 2) or m.ideal_cycle_time_s
            if not ict:
                missing = True
                continue
            ideal[i] += planned / ict
    out = {"times": [], "ideal": [], "total": [], "good": [], "missing_ideal": missing}
    ci = ct = cg = 0.0
    for i in range(n_used):
        ci, ct, cg = ci + ideal[i], ct + total[i], cg + good[i]
        out["times"].append(min(edges[i + 1], stop))
        out["ideal"].append(ci)
        out["total"].append(ct)
        out["good"].append(cg)
    return out


def _value_at(series: list | None, t: float) -> float | None:
    """The tag's value at t from (time, value) pairs in time order (the last at or before t)."""
    value = None
    for at, v in series or ():
        if at > t:
            break
        value = v
    return value


def _product_at(rows: list, t: float) -> str | None:
    product = None
    for s, _e, _st, _f, p in rows:
        if s > t:
            break
        if p is not None:
            product = p
    if product is None:
        product = next((p for *_x, p in rows if p is not None), None)
    return product


# --- tags -----------------------------------------------------------------------------------------------------


def tag_catalog(store, machine_id: str | None = None) -> list[dict]:
    """Tags with their machine and connection: {id, name, address, data_type, role, machine_id, machine_name,
    connection, protocol, enabled, numeric}."""
    # Columns, not ORM objects: the PLC monitor asks for every tag of the plant (5,400 at 50 machines).
    q = (select(Tag.id, Tag.name, Tag.address, Tag.data_type, Tag.role, Tag.enabled, Connection.name,
                Connection.protocol, Connection.enabled, Machine.machine_id, Machine.name)
         .join(Connection, Tag.connection_id == Connection.id)
         .outerjoin(Machine, Machine.id == func.coalesce(Tag.machine_id, Connection.machine_id))
         .order_by(Machine.machine_id, Connection.name, Tag.id))
    if machine_id:
        q = q.where(Machine.machine_id == machine_id)
    with store.engine.connect() as conn:
        rows = conn.execute(q).all()
    return [{"id": tid, "name": name, "address": address, "data_type": data_type, "role": role,
             "machine_id": mid, "machine_name": mname, "connection": cname, "protocol": protocol,
             "enabled": bool(enabled and cenabled),
             "numeric": (data_type or "").upper() in NUMERIC_TYPES and "[" not in (data_type or "")}
            for tid, name, address, data_type, role, enabled, cname, protocol, cenabled, mid, mname in rows]


def latest_samples(store, tag_ids: list[int] | None = None, since_s: float = 600.0) -> dict[int, tuple]:
    """The newest stored sample of each tag within the last since_s seconds: {tag_id: (time, value, quality,
    reason)}; value is the number, or the text for strings and arrays. For pages when this process does not
    collect (the web role); the collector's snapshot is fresher when there is one."""
    name = store.backend_name
    lo = backends.db_time(name, time.time() - since_s)
    where = "time >= :lo"
    if tag_ids is not None:
        if not tag_ids:
            return {}
        where += f" AND tag_id IN ({','.join(str(int(t)) for t in tag_ids)})"
    with store.engine.connect() as conn:
        rows = conn.execute(text(
            f"SELECT s.tag_id, s.time, s.value, s.value_text, s.quality, s.reason FROM samples s JOIN "
            f"(SELECT tag_id, max(time) AS t FROM samples WHERE {where} GROUP BY tag_id) last "
            "ON s.tag_id = last.tag_id AND s.time = last.t"), {"lo": lo}).all()
    return {tid: (backends.epoch_of(t), v if vt is None else vt, q, r) for tid, t, v, vt, q, r in rows}


def series(store, tag_ids: list[int], start: float, end: float, *, max_points: int = 2000) -> dict[int, dict]:
    """Values of a few tags over [start, end): raw samples when the range is short enough, else the 1-minute
    or 1-hour rollups (average with min and max). {tag_id: {"resolution", "t": [...], "v": [...], "min": [...],
    "max": [...]}}."""
    from db.queries import tag_series

    span = max(end - start, 1.0)
    resolution = "raw" if span <= 2 * 3600 else ("1m" if span / 60 <= max_points * 2 else "1h")
    out = {}
    for tid in tag_ids:
        rows = tag_series(store, tid, start, end, resolution)
        if resolution == "raw":
            rows = [r for r in rows if r["value"] is not None]
            if len(rows) > max_points:
                step = len(rows) / max_points
                rows = [rows[int(i * step)] for i in range(max_points)]
            out[tid] = {"resolution": "raw", "t": [r["time"] for r in rows], "v": [r["value"] for r in rows],
                        "min": None, "max": None}
        else:
            out[tid] = {"resolution": resolution, "t": [r["bucket"] for r in rows], "v": [r["avg"] for r in rows],
                        "min": [r["min"] for r in rows], "max": [r["max"] for r in rows]}
    return out


def cycle_time_tags(store, machine_id: str) -> dict:
    """The ids of a machine's cycle.time and cycle.ideal_time tags: {"actual": id|None, "ideal": id|None}."""
    with Session(store.engine) as session:
        m = session.scalar(select(Machine).where(Machine.machine_id == machine_id))
        if m is None:
            raise ScopeError("machine", f"machine {machine_id!r} does not exist")
        rows = session.execute(select(Tag.role, Tag.id).where(Tag.machine_id == m.id,
                                                               Tag.role.in_(("cycle.time", "cycle.ideal_time")))
                               .order_by(Tag.id)).all()
    out = {"actual": None, "ideal": None}
    for role, tid in rows:
        slot = "actual" if role == "cycle.time" else "ideal"
        out[slot] = out[slot] or tid
    return out


def machine_db_ids(store) -> dict[str, int]:
    with Session(store.engine) as session:
        return dict(session.execute(select(Machine.machine_id, Machine.id)).all())


__all__ = [
    "ScopeError", "UNKNOWN", "count_progress", "cycle_time_tags", "data_start", "fault_label", "fault_names",
    "fault_names_of", "latest_samples", "machine_db_ids", "machine_shifts", "machine_status", "plant_lines",
    "plant_machines", "scope_machines", "scope_name", "series", "shift_at", "shifts_on", "site_info", "state_rows",
    "state_timeline", "tag_catalog",
]
