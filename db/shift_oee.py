"""OEE per machine for the current shift: what /metrics reports, from the same oee_report() as GET /api/oee/.

The current shift of a machine comes from its shift calendar: the shift instance that holds `now`, else the last
one that ended (between shifts, the one just finished), looked for over the past day. A machine without a calendar
reports its current day (the plant's local midnight to now), labelled 'day'. Each value equals
GET /api/oee/?machine=<id>&start=<shift start>&end=<now>.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

import oee
from db.machine_settings import effective_settings
from db.models import Line, Machine, Site
from db.oee_queries import _calendars, oee_report

log = logging.getLogger(__name__)
LOOK_BACK_S = 86400.0


@dataclass(frozen=True)
class ShiftOee:
    machine: str
    line: str
    shift: str  # '<local date> <shift name>', or 'day'
    start: float
    end: float
    report: dict


def current_windows(store, now: float) -> list[tuple[str, str, str, float, float]]:
    """(machine_id, line, shift label, start, end) of each enabled machine's current shift; end is now, or the end
    of the shift just finished."""
    out = []
    with Session(store.engine) as session:
        calendars = _calendars(session)
        site = session.scalar(select(Site).order_by(Site.id))
        plant_tz = ZoneInfo(site.timezone if site and site.timezone else "UTC")
        settings = effective_settings(session)  # a machine's own calendar, else its line's
        rows = [(machine_id, settings[pk].calendar_id, line) for pk, machine_id, line in session.execute(
            select(Machine.id, Machine.machine_id, Line.name).outerjoin(Line, Machine.line_id == Line.id)
            .where(Machine.enabled.is_(True)).order_by(Machine.machine_id)).all()]
    midnight = datetime.fromtimestamp(now, plant_tz).replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
    for machine_id, calendar_id, line in rows:
        cal = calendars.get(calendar_id)
        window = None
        if cal is not None:
            shifts = [s for s in oee.expand(cal, now - LOOK_BACK_S, now + 1).shifts if s.start <= now]
            current = [s for s in shifts if s.end > now]
            pick = max(current or shifts, key=lambda s: s.start, default=None)
            if pick is not None:
                window = (f"{pick.date.isoformat()} {pick.name}", pick.start, min(pick.end, now))
        if window is None:
            window = ("day", midnight, now)
        out.append((machine_id, line or "", *window))
    return out


def current_shift_oee(store, now: float) -> list[ShiftOee]:
    out = []
    for machine_id, line, label, start, end in current_windows(store, now):
        if end <= start:
            continue
        report = oee_report(store, "machine", machine_id, start, end)
        out.append(ShiftOee(machine_id, line, label, start, end, report))
    return out
