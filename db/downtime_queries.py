"""Downtime events behind /downtime/, the reports and /export/downtime.csv. They are not stored as such: they are
derived from the machine state intervals with oee.events_from_states (a fault code maps to the ReasonCode whose
code is that fault code; its text is the machine's fault table's, else that reason's name), with each machine's
micro-stop threshold. What the operators decide is stored in downtime_events, keyed by (machine_id, start): a
reason (which oee_report reads as an override of that time), a note, and splits (an event split at t becomes two
rows, the second with split_from_id). Times are epoch seconds (UTC) in and out.
"""
from __future__ import annotations

import math
import time
from collections import defaultdict
from datetime import datetime, timezone

from sqlalchemy import select, text
from sqlalchemy.orm import Session

import oee
from db import audit
from db import backend as backends
from db.machine_settings import effective_settings
from db.models import DowntimeEvent, Machine, ReasonCode
from db.oee_queries import MAX_ROWS, _reasons, _resolve
from db.ui_queries import fault_label, state_rows
from oee.events import Reason
from oee.vocabulary import LABELS, PLANNED_CATEGORIES, STOP_CATEGORIES

UTC = timezone.utc
MATCH_TOLERANCE_S = 0.002  # stored times round-trip through floats and datetimes: match keys within 2 ms


class DowntimeError(ValueError):
    """An operator's edit that cannot be applied; .field names what to fix."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


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


def _event_dict(m, ev, fault_name: str | None, start: float, end: float, now: float) -> dict:
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
        "fault_name": fault_name,
        "fault_label": fault_label(ev.fault_code, fault_name),
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
    in_range_s, state, fault_code, fault_name (the machine's fault table's text, else the reason's name),
    fault_label ('42 Jam at infeed'), loss_category, category_label, planned, minor (under the machine's micro-stop
    threshold), source (state | fault_code | operator), reason_code, reason_name, note, split_from, open}.
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
        rows = state_rows(session, name, ids, start, end, max_rows)
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
        settings = effective_settings(session, ids)
        for m in machines:
            mine_settings = settings[m.id]
            events = oee.events_from_states(
                m.id, [oee.StateInterval(*r) for r in rows[m.id]], fault_reasons=mine_settings.reasons_for(by_fault),
                micro_stop_threshold_s=mine_settings.threshold(oee.DEFAULT_CONFIG.micro_stop_threshold_s))
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
                reason_of_fault = by_fault.get(ev.fault_code) if ev.fault_code is not None else None
                d = _event_dict(m, ev, mine_settings.fault_text(ev.fault_code)
                                or (reason_of_fault.name if reason_of_fault else None), start, end, now)
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
            label = ev["fault_label"]
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
