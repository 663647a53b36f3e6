"""When a machine was in service: added, disabled, enabled again (table machine_lifetime, migration 0006).

Configuration changes record it (config/store.py: create, update, enable/disable, import; the demo's seeding), in
the same transaction as the change. The OEE queries read it: time outside every period of a machine is not its
planned production time (it cannot be its loss), so a machine added at 10:00 has no Unknown loss from 06:00, and
its line sums only the planned time of machines that were there.

A machine without any period (made before the record existed and not backfilled, or written by hand) is in
service always, as before.
"""
from __future__ import annotations

import time
from datetime import datetime, timezone

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.backend import ids_in
from db.models import MachineLifetime

# The gap before a machine's first period starts here (finite, so that the OEE engine takes it as planned
# downtime; nothing in a database is older).
EPOCH_START = 0.0


def _utc(t: float) -> datetime:
    return datetime.fromtimestamp(t, timezone.utc)


def _open_period(session: Session, machine_pk: int) -> MachineLifetime | None:
    return session.scalar(select(MachineLifetime).where(MachineLifetime.machine_id == machine_pk,
                                                        MachineLifetime.end.is_(None))
                          .order_by(MachineLifetime.start.desc()).limit(1))


def record_added(session: Session, machine_pk: int, enabled: bool = True, at: float | None = None) -> None:
    """A new machine: in service from now (a machine added disabled gets its first period when enabled)."""
    if enabled:
        session.add(MachineLifetime(machine_id=machine_pk, start=_utc(time.time() if at is None else at), end=None))


def record_enabled(session: Session, machine_pk: int, enabled: bool, at: float | None = None) -> None:
    """The machine's enabled flag is now `enabled`: open a period (enabled) or close the open one (disabled).
    Nothing changes when the record already says so. A machine that has no record yet was in service always:
    disabling it closes a period that starts at EPOCH_START, so its past stays planned time."""
    at = time.time() if at is None else at
    current = _open_period(session, machine_pk)
    if enabled:
        if current is None:
            session.add(MachineLifetime(machine_id=machine_pk, start=_utc(at), end=None))
        return
    if current is not None:
        current.end = _utc(max(at, current.start.timestamp()))
        return
    has_any = session.scalar(select(MachineLifetime.id).where(MachineLifetime.machine_id == machine_pk).limit(1))
    if has_any is None:
        session.add(MachineLifetime(machine_id=machine_pk, start=_utc(EPOCH_START), end=_utc(at)))


def periods(session: Session, machine_pks: list[int]) -> dict[int, list[tuple[float, float | None]]]:
    """In-service periods by machine (db id), in time order; machines without a record are left out."""
    out: dict[int, list[tuple[float, float | None]]] = {}
    if not machine_pks:
        return out
    rows = session.execute(select(MachineLifetime.machine_id, MachineLifetime.start, MachineLifetime.end)
                           .where(ids_in(MachineLifetime.machine_id, machine_pks))
                           .order_by(MachineLifetime.machine_id, MachineLifetime.start)).all()
    for mid, s, e in rows:
        out.setdefault(mid, []).append((s.timestamp(), None if e is None else e.timestamp()))
    return out


def out_of_service(spans: list[tuple[float, float | None]], until: float) -> list[tuple[float, float]]:
    """The gaps between in-service periods up to `until`: [(start, end)], from EPOCH_START on."""
    gaps = []
    t = EPOCH_START
    for s, e in sorted(spans):
        if s > t:
            gaps.append((t, min(s, until)))
        t = max(t, until if e is None else e)
        if t >= until:
            break
    if t < until:
        gaps.append((t, until))
    return [(a, b) for a, b in gaps if b > a]


def first_in_service(session: Session, machine_pks: list[int] | None = None) -> float | None:
    """When the first of these machines (all when None) came into service, per the record; None without one."""
    from sqlalchemy import func

    q = select(func.min(MachineLifetime.start))
    if machine_pks is not None:
        q = q.where(ids_in(MachineLifetime.machine_id, machine_pks))
    value = session.scalar(q)
    return value.timestamp() if value is not None else None
