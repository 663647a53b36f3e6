"""A machine's settings in effect: its own where it has one, else inherited. The one place that says how:

- calendar: the machine's, else its line's, else none (every hour is planned).
- micro-stop threshold: the machine's, else its site's (through its line; a machine on no line: the plant's first
  site, whose time zone the pages use too), else the caller's default (oee.Config, 120 s).
- fault table: the machine's own (code -> text and kind). Where a code is in it, its text is what pages show and
  its kind decides the state (collectors.machine_model); a plant-wide reason code of the same number still gives
  the loss category of a code of kind fault, but not of a planned_stop or changeover one.

Every reader of these settings (OEE reports, downtime, shifts, the API's GET) goes through effective_settings(), so
they cannot disagree.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.backend import ids_in
from db.models import Area, Line, Machine, MachineFaultCode, ShiftCalendar, Site

NO_CALENDAR_TEXT = "no calendar: every hour is planned"


@dataclass(frozen=True)
class EffectiveSettings:
    calendar_id: int | None
    calendar_name: str | None
    calendar_from: str | None  # "machine", "line", or None (no calendar)
    micro_stop_threshold_s: float | None  # None: the caller's default
    micro_stop_from: str  # "machine", "site" or "default"
    fault_codes: dict[int, tuple[str, str]] = field(default_factory=dict)  # code -> (text, kind)

    def threshold(self, default: float) -> float:
        return default if self.micro_stop_threshold_s is None else self.micro_stop_threshold_s

    def calendar_text(self) -> str:
        if self.calendar_id is None:
            return NO_CALENDAR_TEXT
        return self.calendar_name + (" (the line's)" if self.calendar_from == "line" else "")

    def fault_text(self, code: int | None) -> str | None:
        entry = self.fault_codes.get(code) if code is not None else None
        return entry[0] if entry else None

    def reasons_for(self, by_fault: dict) -> dict:
        """The plant's reasons by fault code, less those this machine's table makes a planned stop or a
        changeover (the table wins)."""
        mine = {c for c, (_, kind) in self.fault_codes.items() if kind != "fault"}
        return {c: r for c, r in by_fault.items() if c not in mine} if mine else by_fault


def effective_settings(session: Session, machine_ids: list[int] | None = None) -> dict[int, EffectiveSettings]:
    """EffectiveSettings of every machine (db id), or of these."""
    q = select(Machine.id, Machine.calendar_id, Machine.micro_stop_threshold_s, Line.calendar_id,
               Area.site_id).outerjoin(Line, Machine.line_id == Line.id).outerjoin(Area, Line.area_id == Area.id)
    if machine_ids is not None:
        q = q.where(ids_in(Machine.id, machine_ids))
    rows = session.execute(q).all()
    calendars = dict(session.execute(select(ShiftCalendar.id, ShiftCalendar.name)).all())
    sites = session.execute(select(Site.id, Site.micro_stop_threshold_s).order_by(Site.id)).all()
    site_threshold = dict(sites)
    first_site = sites[0][0] if sites else None
    faults: dict[int, dict[int, tuple[str, str]]] = {}
    fq = select(MachineFaultCode)
    if machine_ids is not None:
        fq = fq.where(ids_in(MachineFaultCode.machine_id, machine_ids))
    for f in session.scalars(fq):
        faults.setdefault(f.machine_id, {})[f.code] = (f.text, f.kind)
    out = {}
    for mid, own_cal, own_micro, line_cal, site_id in rows:
        if own_cal is not None:
            cal, cal_from = own_cal, "machine"
        elif line_cal is not None:
            cal, cal_from = line_cal, "line"
        else:
            cal, cal_from = None, None
        site_id = site_id if site_id is not None else first_site
        if own_micro is not None:
            micro, micro_from = own_micro, "machine"
        elif site_threshold.get(site_id) is not None:
            micro, micro_from = site_threshold[site_id], "site"
        else:
            micro, micro_from = None, "default"
        out[mid] = EffectiveSettings(cal, calendars.get(cal), cal_from, micro, micro_from, faults.get(mid, {}))
    return out
