"""Read and write queries behind the dashboards, each shaped so that a REST endpoint can return it as it is.

Pages never run SQL and never compute OEE themselves: the OEE numbers come from db.oee_queries.oee_report (the
function behind GET /api/oee/), and everything else a page shows comes from here. Times are epoch seconds (UTC)
in and out; the plant's time zone is applied by the pages.

Downtime events are not stored as such: they are derived from the machine state intervals with
oee.events_from_states (a fault code maps to the ReasonCode whose code is that fault code). What the operators
decide is stored in downtime_events, keyed by (machine_id, start): a reason (which oee_report reads as an
override of that time), a note, and splits (an event split at t becomes two rows, the second with split_from_id).
"""
from __future__ import annotations

import math
import time
from collections import defaultdict
from datetime import datetime, timezone

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

import oee
from db import audit
from db import backend as backends
from db.models import (
    Area,
    Connection,
    DowntimeEvent,
    Line,
    Machine,
    MachineState,
    Product,
    ReasonCode,
    Site,
    Tag,
)
from db.oee_queries import MAX_ROWS, ScopeError, TooMuchData, _calendars, _reasons, _resolve
from oee.events import Reason
from oee.vocabulary import LABELS, PLANNED_CATEGORIES, STOP_CATEGORIES, UNKNOWN

UTC = timezone.utc
MATCH_TOLERANCE_S = 0.002  # stored times round-trip through floats and datetimes: match keys within 2 ms
NUMERIC_TYPES = ("REAL", "LREAL", "FLOAT", "FLOAT32", "FLOAT64", "DOUBLE", "INT", "DINT", "SINT", "LINT", "UINT",
                 "UDINT", "USINT", "WORD", "DWORD", "INT16", "INT32", "INT64", "UINT16", "UINT32", "UINT64",
                 "BYTE", "NUMBER")


class DowntimeError(ValueError):
    """An operator's edit that cannot be applied; .field names what to fix."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


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
                "calendar_id": m.calendar_id,
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
        return [{"id": m.id, "machine_id": m.machine_id, "name": m.name, "line_id": m.line_id,
                 "calendar_id": m.calendar_id, "ideal_cycle_time_s": m.ideal_cycle_time_s} for m in machines]


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
        if scope and key:
            ids = [m.calendar_id for m in _resolve(session, scope, str(key)) if m.calendar_id in calendars]
        else:
            ids = [cid for (cid,) in session.execute(select(Machine.calendar_id).where(
                Machine.calendar_id.is_not(None)).group_by(Machine.calendar_id)
                .order_by(func.count().desc(), Machine.calendar_id)).all() if cid in calendars]
    if not ids:
        return None
    return _shift_of(calendars[ids[0]], at)


def machine_shifts(store, at: float | None = None) -> dict[int, dict | None]:
    """For every machine (db id): its calendar's current (or last) shift, as shift_at; None without a calendar."""
    at = time.time() if at is None else at
    with Session(store.engine) as session:
        calendars = _calendars(session)
        machines = session.execute(select(Machine.id, Machine.calendar_id)).all()
    by_calendar = {cid: _shift_of(cal, at) for cid, cal in calendars.items()}
    return {mid: by_calendar.get(cid) for mid, cid in machines}


def shifts_on(store, day: str, line: str | None = None) -> list[dict]:
    """The shifts that start on a local date (YYYY-MM-DD) in the calendar of a line (or the plant's main one)."""
    from datetime import date, timedelta

    from oee.timeutil import zone

    d = date.fromisoformat(day)
    with Session(store.engine) as session:
        calendars = _calendars(session)
        if line:
            ids = [m.calendar_id for m in _resolve(session, "line", str(line)) if m.calendar_id in calendars]
        else:
            ids = [cid for (cid,) in session.execute(select(Machine.calendar_id).where(
                Machine.calendar_id.is_not(None)).group_by(Machine.calendar_id)
                .order_by(func.count().desc())).all() if cid in calendars]
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
    """When the first state interval of the scope's machines begins: nothing before it was ever recorded."""
    with Session(store.engine) as session:
        q = select(func.min(MachineState.start))
        if scope and key:
            ids = [m.id for m in _resolve(session, scope, str(key))]
            if not ids:
                return None
            q = q.where(MachineState.machine_id.in_(ids))
        value = session.scalar(q)
    return value.timestamp() if value is not None else None


# --- state intervals ------------------------------------------------------------------------------------------


def _state_rows(session: Session, backend: str, ids: list[int], start: float, end: float,
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
        rows = _state_rows(session, store.backend_name, [m.id for m in machines], start, end)
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
        out.append({"machine_id": m.machine_id, "name": m.name, "intervals": intervals})
    return {"start": start, "end": end, "machines": out, "count": count}


def machine_status(store, machine_ids: list[int] | None = None) -> dict[int, dict]:
    """The latest stored state of every machine (db id), or of these: {state, since, fault_code, product_code,
    last_seen}. What a page shows when this process does not collect (the web role), or before the first cycle."""
    with Session(store.engine) as session:
        latest = select(MachineState.machine_id, func.max(MachineState.start).label("s"))
        if machine_ids is not None:
            latest = latest.where(MachineState.machine_id.in_(machine_ids))
        latest = latest.group_by(MachineState.machine_id).subquery()
        rows = session.execute(select(MachineState).join(
            latest, (MachineState.machine_id == latest.c.machine_id) & (MachineState.start == latest.c.s))).scalars()
        out = {}
        for r in rows:
            out[r.machine_id] = {"state": r.state if r.end is None else "unknown",
                                 "since": r.start.timestamp() if r.end is None else r.end.timestamp(),
                                 "fault_code": r.fault_code, "product_code": r.product_code,
                                 "last_seen": (r.end or r.start).timestamp()}
        return out


# --- reasons and downtime events -------------------------------------------------------------------------------


def reason_codes(store, *, stops_only: bool = True) -> list[dict]:
    """Reason codes an operator can pick: {id, code, name, planned, loss_category, label}. stops_only leaves out
    reasons whose category cannot apply to a stop (reduced speed, defects)."""
    with Session(store.engine) as session:
        out = []
        for r in session.scalars(select(ReasonCode).order_by(ReasonCode.planned, ReasonCode.name)):
            if stops_only and r.loss_category not in STOP_CATEGORIES + PLANNED_CATEGORIES:
                continue
            out.append({"id": r.id, "code": r.code, "name": r.name, "planned": r.planned,
                        "loss_category": r.loss_category,
                        "category_label": LABELS.get(r.loss_category, r.loss_category)})
        return out


def _extend_back(session: Session, backend: str, mid: int, rows: list) -> list:
    """Prepend the earlier intervals of a stop that began before the loaded range, so that the first event's
    start (its key) is the stop's real start and not the range's."""
    while rows and rows[0][2] != "running":
        first = rows[0]
        earlier = session.execute(text(
            'SELECT start, "end", state, fault_code, product_code FROM machine_states '
            "WHERE machine_id = :m AND start < :s ORDER BY start DESC LIMIT 50"),
            {"m": mid, "s": backends.db_time(backend, first[0])}).all()
        if not earlier:
            break
        added = 0
        for s, e, st, fault, product in earlier:
            s, e = backends.epoch_of(s), backends.epoch_of(e)
            head = rows[0]
            if st != head[2] or (fault if st != "running" else None) != (head[3] if head[2] != "running" else None) \
                    or e is None or abs(e - head[0]) > MATCH_TOLERANCE_S:
                return rows
            rows.insert(0, (s, e, st, fault, product))
            added += 1
        if added < 50:
            break
    return rows


def _event_dict(m, ev, fault_reason: Reason | None, start: float, end: float, now: float) -> dict:
    e_end = ev.end if ev.end is not None else now
    in_range = max(0.0, min(e_end, end) - max(ev.start, start))
    return {
        "key": f"{m.machine_id}@{ev.start:.3f}",
        "machine_id": m.machine_id,
        "machine_name": m.name,
        "line": m.line.name if m.line else None,
        "start": ev.start,
        "end": ev.end,
        "duration_s": e_end - ev.start,
        "in_range_s": in_range,
        "state": ev.state,
        "fault_code": ev.fault_code,
        "fault_name": fault_reason.name if fault_reason else None,
        "loss_category": ev.loss_category,
        "category_label": LABELS.get(ev.loss_category, ev.loss_category),
        "planned": ev.planned,
        "minor": ev.minor,
        "source": ev.source,
        "reason_code": ev.reason.code if ev.reason else None,
        "reason_name": ev.reason.name if ev.reason else None,
        "note": ev.note or "",
        "split_from": ev.split_from,
        "open": ev.end is None,
    }


def _cut(events: list, at: float) -> list:
    out = []
    for ev in events:
        end = math.inf if ev.end is None else ev.end
        if ev.start + MATCH_TOLERANCE_S < at < end - MATCH_TOLERANCE_S:
            a, b = oee.split_event(ev, at)
            out += [a, b]
        else:
            out.append(ev)
    return out


def downtime_events(store, start: float, end: float, *, scope: str | None = None, key: str | None = None,
                    category: str | None = None, reason: str | None = None, include_minor: bool = True,
                    include_planned: bool = True, min_duration_s: float = 0.0, reconcile: bool = True,
                    max_rows: int | None = MAX_ROWS) -> list[dict]:
    """Downtime events that overlap [start, end) for a scope (default: every machine), newest first.

    Each: {key, machine_id, machine_name, line, start, end (None while ongoing), duration_s (the whole event),
    in_range_s, state, fault_code, fault_name, loss_category, category_label, planned, minor, source
    (state | fault_code | operator), reason_code, reason_name, note, split_from, open}.
    Filters: category (a loss category, or 'unassigned' for events without an operator's reason), reason (a
    reason code), include_minor, include_planned, min_duration_s. reconcile: store the end of events that an
    operator gave a reason while they were still going on and that have ended since. max_rows: the most state
    rows read (TooMuchData past it; None for an export that asks one machine at a time).
    """
    now = time.time()
    end = min(end, now)
    if end <= start:
        return []
    name = store.backend_name
    with Session(store.engine) as session:
        machines = _resolve(session, scope, str(key)) if scope and key else list(
            session.scalars(select(Machine).order_by(Machine.machine_id)))
        ids = [m.id for m in machines]
        _, by_fault = _reasons(session)
        reasons = {r.id: r for r in session.scalars(select(ReasonCode))}
        rows = _state_rows(session, name, ids, start, end, max_rows)
        for mid in ids:
            rows[mid] = _extend_back(session, name, mid, rows[mid])
        decided: dict[int, list] = defaultdict(list)
        if ids:
            lo = min((r[0][0] for r in rows.values() if r), default=start)
            for ev in session.scalars(select(DowntimeEvent).where(
                    DowntimeEvent.machine_id.in_(ids), DowntimeEvent.start < backends.db_time(name, end),
                    DowntimeEvent.start >= backends.db_time(name, lo - 1))):
                decided[ev.machine_id].append(ev)
        out = []
        to_close: list[tuple[int, float]] = []
        for m in machines:
            events = oee.events_from_states(m.id, [oee.StateInterval(*r) for r in rows[m.id]],
                                            fault_reasons=by_fault)
            mine = sorted(decided.get(m.id, []), key=lambda r: r.start)
            for row in mine:
                events = _cut(events, row.start.timestamp())
                if row.end is not None:
                    events = _cut(events, row.end.timestamp())
            for ev in events:
                row = next((r for r in mine if abs(r.start.timestamp() - ev.start) <= MATCH_TOLERANCE_S), None)
                if row is not None:
                    if row.reason_id in reasons:
                        rc = reasons[row.reason_id]
                        try:
                            ev = oee.assign_reason(ev, Reason(rc.code, rc.loss_category, rc.name), row.note or "")
                        except ValueError:
                            pass
                    elif row.note:
                        from dataclasses import replace

                        ev = replace(ev, note=row.note)
                    if row.split_from_id is not None:
                        parent = next((r for r in mine if r.id == row.split_from_id), None)
                        if parent is not None:
                            from dataclasses import replace

                            ev = replace(ev, split_from=parent.start.timestamp())
                    if reconcile and row.end is None and ev.end is not None and row.reason_id is not None:
                        to_close.append((row.id, ev.end))
                d = _event_dict(m, ev, by_fault.get(ev.fault_code) if ev.fault_code is not None else None,
                                start, end, now)
                if d["in_range_s"] <= 0:
                    continue
                if not include_minor and d["minor"]:
                    continue
                if not include_planned and d["planned"]:
                    continue
                if d["duration_s"] < min_duration_s:
                    continue
                if category == "unassigned" and d["source"] == "operator":
                    continue
                if category and category != "unassigned" and d["loss_category"] != category:
                    continue
                if reason and d["reason_code"] != reason:
                    continue
                out.append(d)
    if to_close:
        with Session(store.engine) as session, session.begin():
            for row_id, ev_end in to_close:
                row = session.get(DowntimeEvent, row_id)
                if row is not None and row.end is None:
                    row.end = datetime.fromtimestamp(ev_end, UTC)
    out.sort(key=lambda d: d["start"], reverse=True)
    return out


def downtime_pareto(events: list[dict]) -> list[dict]:
    """Stop time by cause, largest first: [{cause, label, seconds, count, planned, share, cumulative}]. The
    cause is the operator's reason, else the fault's reason, else the loss category; minor stops (a speed loss
    under the micro-stop rule) are one cause of their own. Seconds are the part of each event inside the range."""
    groups: dict[str, dict] = {}
    for ev in events:
        if ev["minor"]:
            cause, label = "minor_stops", "Minor stops"
        elif ev["reason_code"] and ev["source"] == "operator":
            cause, label = f"reason:{ev['reason_code']}", ev["reason_name"] or ev["reason_code"]
        elif ev["fault_code"] is not None:
            cause = f"fault:{ev['fault_code']}"
            label = f"{ev['fault_name']} ({ev['fault_code']})" if ev["fault_name"] else f"Fault {ev['fault_code']}"
        else:
            cause, label = f"category:{ev['loss_category']}", ev["category_label"]
        g = groups.setdefault(cause, {"cause": cause, "label": label, "seconds": 0.0, "count": 0,
                                      "planned": ev["planned"]})
        g["seconds"] += ev["in_range_s"]
        g["count"] += 1
    out = sorted(groups.values(), key=lambda g: -g["seconds"])
    total = sum(g["seconds"] for g in out) or 1.0
    cum = 0.0
    for g in out:
        cum += g["seconds"]
        g["share"] = g["seconds"] / total
        g["cumulative"] = cum / total
    return out


def _find_event(store, machine_id: str, start: float) -> tuple[Machine, dict]:
    with Session(store.engine) as session:
        m = session.scalar(select(Machine).where(Machine.machine_id == machine_id))
        if m is None:
            raise DowntimeError("machine", f"machine {machine_id!r} does not exist")
    events = downtime_events(store, start - 1, start + 1, scope="machine", key=machine_id, reconcile=False)
    ev = next((e for e in events if abs(e["start"] - start) <= MATCH_TOLERANCE_S), None)
    if ev is None:
        raise DowntimeError("start", f"no downtime event of {machine_id} starts at {start}")
    return m, ev


def assign_downtime_reason(store, machine_id: str, start: float, reason_code: str | None,
                           note: str | None = None) -> dict:
    """An operator's reason (and note) for the event of a machine that starts at `start`. reason_code None
    clears the reason. Returns the event as downtime_events() shows it. Raises DowntimeError."""
    m, ev = _find_event(store, machine_id, start)
    with Session(store.engine) as session, session.begin():
        reason = None
        if reason_code:
            reason = session.scalar(select(ReasonCode).where(ReasonCode.code == reason_code))
            if reason is None:
                raise DowntimeError("reason", f"reason code {reason_code!r} does not exist")
            if reason.loss_category not in STOP_CATEGORIES + PLANNED_CATEGORIES:
                raise DowntimeError("reason", f"reason {reason_code!r} ({reason.loss_category}) cannot apply to a "
                                              "stop; pick a reason for equipment failure, setup, idling or a "
                                              "planned stop")
        row = _row_at(session, store.backend_name, m.id, ev["start"])
        before = _decision(session, row, ev)
        if row is None:
            row = DowntimeEvent(machine_id=m.id, start=datetime.fromtimestamp(ev["start"], UTC))
            session.add(row)
        row.end = datetime.fromtimestamp(ev["end"], UTC) if ev["end"] is not None else None
        row.reason_id = reason.id if reason else None
        row.planned = bool(reason.planned) if reason else ev["planned"]
        row.loss_category = reason.loss_category if reason else None
        row.fault_code = ev["fault_code"]
        if note is not None:
            row.note = note.strip()
        elif row.note is None:
            row.note = ""
        session.flush()
        audit.record(session, None, "downtime.update", _downtime_target(machine_id, ev["start"]), before,
                     _decision(session, row, ev))
    return _find_event(store, machine_id, ev["start"])[1]


def _downtime_target(machine_id: str, start: float) -> str:
    return f"downtime {machine_id} {datetime.fromtimestamp(start, UTC).isoformat(timespec='seconds')}"


def _decision(session: Session, row: DowntimeEvent | None, ev: dict) -> dict:
    """What an operator decides about a stop, as the audit log keeps it."""
    if row is None:  # no decision stored yet: what the stop showed
        return {"reason": ev.get("reason_code") if ev.get("source") == "operator" else None,
                "note": ev.get("note") or "", "planned": bool(ev.get("planned")), "loss_category": None,
                "start": ev["start"], "end": ev["end"]}
    reason = session.get(ReasonCode, row.reason_id) if row.reason_id else None
    return {"reason": reason.code if reason else None, "note": row.note or "", "planned": bool(row.planned),
            "loss_category": row.loss_category, "start": row.start.timestamp() if row.start else None,
            "end": row.end.timestamp() if row.end else None}


def split_downtime(store, machine_id: str, start: float, at: float) -> tuple[dict, dict]:
    """Split the event that starts at `start` at time `at` (inside it): two rows, the second with split_from_id;
    an operator's reason on the first half carries over to the second. Returns both halves. Raises
    DowntimeError."""
    m, ev = _find_event(store, machine_id, start)
    end = ev["end"] if ev["end"] is not None else time.time()
    if not ev["start"] + 1.0 <= at <= end - 1.0:
        raise DowntimeError("at", "the split time must be inside the event, at least a second from either end")
    with Session(store.engine) as session, session.begin():
        first = _row_at(session, store.backend_name, m.id, ev["start"])
        if first is None:
            first = DowntimeEvent(machine_id=m.id, start=datetime.fromtimestamp(ev["start"], UTC), note="",
                                  planned=ev["planned"], fault_code=ev["fault_code"])
            session.add(first)
        first.end = datetime.fromtimestamp(at, UTC)
        session.flush()
        second = DowntimeEvent(machine_id=m.id, start=datetime.fromtimestamp(at, UTC),
                               end=datetime.fromtimestamp(ev["end"], UTC) if ev["end"] is not None else None,
                               reason_id=first.reason_id, planned=first.planned, loss_category=first.loss_category,
                               fault_code=ev["fault_code"], note="", split_from_id=first.id)
        session.add(second)
        session.flush()
        audit.record(session, None, "downtime.split", _downtime_target(machine_id, ev["start"]),
                     {"start": ev["start"], "end": ev["end"]},
                     {"at": at, "first": _decision(session, first, ev), "second": _decision(session, second, ev)})
    return _find_event(store, machine_id, ev["start"])[1], _find_event(store, machine_id, at)[1]


def _row_at(session: Session, backend: str, mid: int, start: float) -> DowntimeEvent | None:
    return session.scalar(select(DowntimeEvent).where(
        DowntimeEvent.machine_id == mid,
        DowntimeEvent.start >= backends.db_time(backend, start - MATCH_TOLERANCE_S),
        DowntimeEvent.start <= backends.db_time(backend, start + MATCH_TOLERANCE_S)))


# --- counts against plan ----------------------------------------------------------------------------------------


def count_progress(store, scope: str, key: str, start: float, end: float, *, steps: int = 120) -> dict:
    """Planned against actual count over [start, end), cumulative, in `steps` even steps.

    ideal: what 100 % speed in every second of planned production time makes (the calendar's production time;
    all time without a calendar), with the ideal cycle time of the product being made then (the product's,
    else the machine's); actual total and good count from the stored count increments, each placed at its
    midpoint. {"times": [...step ends], "ideal": [...], "total": [...], "good": [...], "missing_ideal": bool}.
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
        products = {p.code: p.ideal_cycle_time_s for p in session.scalars(select(Product))}
        ids = [m.id for m in machines]
        states = _state_rows(session, name, ids, start, stop)
        marks = ",".join(str(i) for i in ids) or "NULL"
        counts = session.execute(text(
            f'SELECT machine_id, start, "end", total, good FROM production_counts WHERE machine_id IN ({marks}) '
            'AND start < :hi AND "end" >= :lo LIMIT :cap'),
            {"lo": backends.db_time(name, start), "hi": backends.db_time(name, stop), "cap": MAX_ROWS + 1}).all()
        if len(counts) > MAX_ROWS:
            raise TooMuchData("count rows")
    for _mid, s, e, t, g in counts:
        s, e = backends.epoch_of(s), backends.epoch_of(e)
        mid_t = (s + e) / 2
        if start <= mid_t < stop:
            i = min(int((mid_t - start) / width), steps - 1)
            total[i] += t or 0
            good[i] += g or 0
    for m in machines:
        sched = oee.expand(calendars.get(m.calendar_id), start, stop)
        windows = sched.production_windows()
        rows = states[m.id]
        for i in range(n_used):
            a, b = edges[i], min(edges[i + 1], stop)
            planned = sum(max(0.0, min(b, we) - max(a, ws)) for ws, we in windows)
            if planned <= 0:
                continue
            product = _product_at(rows, (a + b) / 2)
            ict = products.get(product) if product else None
            ict = ict or m.ideal_cycle_time_s
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
    "DowntimeError", "ScopeError", "UNKNOWN", "assign_downtime_reason", "count_progress", "cycle_time_tags",
    "data_start", "downtime_events", "first_states",
    "downtime_pareto", "latest_samples", "machine_db_ids", "machine_shifts",
    "machine_status", "plant_lines", "plant_machines", "reason_codes", "scope_machines", "scope_name", "series",
    "shift_at", "shifts_on", "site_info", "split_downtime", "state_timeline", "tag_catalog",
]


def first_states(store) -> dict[int, float]:
    """When each machine's (db id) first state interval begins: its data start."""
    with Session(store.engine) as session:
        return {mid: s.timestamp() for mid, s in session.execute(
            select(MachineState.machine_id, func.min(MachineState.start)).group_by(MachineState.machine_id)).all()
            if s is not None}
