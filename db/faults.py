"""Faults and the event history: what the pages, GET /api/faults/, GET /api/events/ and /export/events.csv read.

Faults are written by the collecting process (collectors.machine_model emits them, the writer stores them); here
they are read, with the text of each code from the machine's fault table, and acknowledged (who and when,
audited in the same transaction).

Events are one time line of three kinds, newest first: `state` (a machine's state interval began: the
machine_states rows), `fault` (a fault began) and `alert` (a rule's alert began). Paging is limit/offset, both
bounded, so that no request reads more than MAX_EVENT_WINDOW rows of any kind.
"""
from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import and_, select, update
from sqlalchemy.orm import Session

from db import audit
from db.models import Alert, AlertRule, Fault, Machine, MachineFaultCode, MachineState

EVENT_KINDS = ("state", "fault", "alert")
MAX_LIMIT = 1000
MAX_EVENT_WINDOW = 10_000  # offset + limit: deeper pages take a narrower range instead


class NotFound(LookupError):
    pass


def iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    value = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def _dt(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, timezone.utc)


def _texts(session: Session, machine_ids) -> dict[tuple[int, int], str]:
    rows = session.execute(select(MachineFaultCode.machine_id, MachineFaultCode.code, MachineFaultCode.text)
                           .where(MachineFaultCode.machine_id.in_(list(machine_ids))))
    return {(m, c): t for m, c, t in rows}


def _fault_row(f: Fault, machine: tuple[str, str], texts: dict, now: float) -> dict:
    start = f.start.timestamp()
    end = f.end.timestamp() if f.end is not None else None
    code = f.code
    return {"id": f.id, "machine_id": machine[0], "machine_name": machine[1], "code": code,
            "text": texts.get((f.machine_id, code)) or (f"fault {code}" if code is not None else "fault (no code)"),
            "start": iso(f.start), "end": iso(f.end), "duration_s": round((end if end is not None else now) - start, 3),
            "active": end is None, "acknowledged_by": f.acknowledged_by, "acknowledged_at": iso(f.acknowledged_at)}


def list_faults(engine, machines: list[tuple[int, str, str]], *, active: bool | None = None,
                start: float | None = None, end: float | None = None, offset: int = 0,
                limit: int = 50) -> tuple[int, list[dict]]:
    """(total, one page newest first) of the faults of these machines ((pk, machine_id, name) as
    db.export_queries.scope_machines gives them). active: only ongoing (True) or ended (False) ones; start/end:
    faults that overlap the range."""
    import time

    from sqlalchemy import func

    names = {pk: (mid, name) for pk, mid, name in machines}
    if not names:
        return 0, []
    conds = [Fault.machine_id.in_(list(names))]
    if active is True:
        conds.append(Fault.end.is_(None))
    elif active is False:
        conds.append(Fault.end.is_not(None))
    if end is not None:
        conds.append(Fault.start < _dt(end))
    if start is not None:
        conds.append((Fault.end.is_(None)) | (Fault.end > _dt(start)))
    with Session(engine) as session:
        total = session.scalar(select(func.count()).select_from(Fault).where(and_(*conds))) or 0
        rows = session.scalars(select(Fault).where(and_(*conds)).order_by(Fault.start.desc(), Fault.id.desc())
                               .offset(offset).limit(limit)).all()
        texts = _texts(session, {f.machine_id for f in rows})
        now = time.time()
        return total, [_fault_row(f, names[f.machine_id], texts, now) for f in rows]


def get_fault(engine, fault_id: int) -> dict:
    import time

    with Session(engine) as session:
        f = session.get(Fault, fault_id)
        if f is None:
            raise NotFound(f"no fault with id {fault_id}")
        m = session.get(Machine, f.machine_id)
        names = (m.machine_id, m.name) if m else (str(f.machine_id), "")
        return _fault_row(f, names, _texts(session, [f.machine_id]), time.time())


def acknowledge_fault(engine, fault_id: int, actor: str | None = None) -> dict:
    """Record who acknowledged the fault and when (the first acknowledgement stands; a second one changes
    nothing and is not audited again)."""
    with Session(engine) as session, session.begin():
        f = session.get(Fault, fault_id)
        if f is None:
            raise NotFound(f"no fault with id {fault_id}")
        if f.acknowledged_at is None:
            who = (actor if actor is not None else audit.current_actor())[:200]
            now = datetime.now(timezone.utc)
            session.execute(update(Fault).where(Fault.id == fault_id, Fault.acknowledged_at.is_(None))
                            .values(acknowledged_by=who, acknowledged_at=now))
            m = session.get(Machine, f.machine_id)
            audit.record(session, actor, "fault.acknowledge",
                         f"fault {fault_id} of machine {m.machine_id if m else f.machine_id}",
                         {"acknowledged_by": None}, {"acknowledged_by": who, "code": f.code, "start": f.start})
    return get_fault(engine, fault_id)


# --- the event history -----------------------------------------------------------------------------------------


def list_events(engine, machines: list[tuple[int, str, str]] | None, *, kinds=EVENT_KINDS,
                start: float | None = None, end: float | None = None, offset: int = 0,
                limit: int = 100) -> list[dict]:
    """Events newest first (machines None: the whole plant, alerts of rules without a machine included). Each
    kind is read up to offset + limit rows, then merged: bounded by MAX_EVENT_WINDOW."""
    window = min(offset + limit, MAX_EVENT_WINDOW)
    pks = None if machines is None else [pk for pk, _mid, _name in machines]
    lo, hi = _dt(start), _dt(end)
    out: list[tuple[float, int, dict]] = []
    with Session(engine) as session:
        names = {pk: (mid, name) for pk, mid, name in session.execute(
            select(Machine.id, Machine.machine_id, Machine.name))}

        def ref(pk):
            mid, name = names.get(pk, (None, None))
            return {"machine_id": mid, "machine_name": name}

        def bounded(stmt, col, machine_col):
            if pks is not None:
                stmt = stmt.where(machine_col.in_(pks))
            if lo is not None:
                stmt = stmt.where(col >= lo)
            if hi is not None:
                stmt = stmt.where(col < hi)
            return stmt.order_by(col.desc()).limit(window)

        if "state" in kinds:
            for s in session.scalars(bounded(select(MachineState), MachineState.start, MachineState.machine_id)):
                out.append((s.start.timestamp(), 0, {
                    "kind": "state", "time": iso(s.start), **ref(s.machine_id), "state": s.state,
                    "fault_code": s.fault_code, "product_code": s.product_code, "end": iso(s.end), "id": None,
                    "text": s.state}))
        if "fault" in kinds:
            rows = session.scalars(bounded(select(Fault), Fault.start, Fault.machine_id)).all()
            texts = _texts(session, {f.machine_id for f in rows})
            for f in rows:
                text = texts.get((f.machine_id, f.code)) or (f"fault {f.code}" if f.code is not None else "fault")
                out.append((f.start.timestamp(), 1, {
                    "kind": "fault", "time": iso(f.start), **ref(f.machine_id), "state": "active" if f.end is None
                    else "ended", "fault_code": f.code, "product_code": None, "end": iso(f.end), "id": f.id,
                    "text": text}))
        if "alert" in kinds:
            stmt = select(Alert, AlertRule.name).join(AlertRule, Alert.rule_id == AlertRule.id)
            if pks is not None:
                stmt = stmt.where(Alert.machine_id.in_(pks))
            if lo is not None:
                stmt = stmt.where(Alert.started_at >= lo)
            if hi is not None:
                stmt = stmt.where(Alert.started_at < hi)
            for a, rule_name in session.execute(stmt.order_by(Alert.started_at.desc()).limit(window)):
                out.append((a.started_at.timestamp(), 2, {
                    "kind": "alert", "time": iso(a.started_at), **ref(a.machine_id), "state": a.state,
                    "fault_code": None, "product_code": None, "end": iso(a.resolved_at), "id": a.id,
                    "text": f"{rule_name}: {a.message}" if a.message else rule_name}))
    out.sort(key=lambda e: (e[0], e[1]), reverse=True)
    return [e for _t, _k, e in out[offset:offset + limit]]
