"""/settings/calendars/: shift calendars (shifts, days, breaks) in a time zone."""
from __future__ import annotations

import re

import dash
from dash import dcc, html

from components.settings_crud import CrudSection, Field, settings_nav
from config.fields import ValidationError
from config.plant_items import validate_calendar

dash.register_page(__name__, path="/settings/calendars/", name="Shift calendars", title="OEE · Shift calendars",
                   nav=False)
VERSION = "sc-version"
SHIFT_HELP = ("One shift per line: name, start-end, days (Monday = 0 ... Sunday = 6), then any breaks as "
              "'name HH:MM+minutes'. E.g. 'Early, 06:00-14:00, 01234, Lunch 10:00+30'. A shift ending before it "
              "starts crosses midnight.")
_BREAK = re.compile(r"(?:(?P<name>.*?)\s+)?(?P<start>\d{1,2}:\d{2})\s*\+\s*(?P<minutes>\d+)\s*(?:min)?\Z")


def shifts_from_text(text: str) -> list[dict]:
    shifts = []
    for n, line in enumerate((text or "").splitlines(), start=1):
        if not line.strip() or line.strip().startswith("#"):
            continue
        parts = [p.strip() for p in line.split(",")]
        if len(parts) < 2 or "-" not in parts[1]:
            raise ValidationError({"shifts": f"line {n}: expected 'name, HH:MM-HH:MM, days, breaks...', e.g. "
                                             "'Early, 06:00-14:00, 01234, Lunch 10:00+30'"})
        start, end = (p.strip() for p in parts[1].split("-", 1))
        start, end = (t.zfill(5) for t in (start, end))
        days = parts[2] if len(parts) > 2 and parts[2] else "0123456"
        breaks = []
        for b in parts[3:]:
            m = _BREAK.match(b)
            if not m:
                raise ValidationError({"shifts": f"line {n}: break {b!r}: expected 'name HH:MM+minutes', e.g. "
                                                 "'Lunch 10:00+30'"})
            breaks.append({"name": m.group("name") or "Break", "start": m.group("start").zfill(5),
                           "duration_s": int(m.group("minutes")) * 60})
        shifts.append({"name": parts[0], "start": start, "end": end, "weekdays": days, "breaks": breaks})
    return shifts


def shifts_to_text(shifts: list[dict]) -> str:
    lines = []
    for s in shifts:
        breaks = [f"{b['name']} {b['start']}+{b['duration_s'] // 60}" for b in s["breaks"]]
        lines.append(", ".join([s["name"], f"{s['start']}-{s['end']}", s["weekdays"], *breaks]))
    return "\n".join(lines)


def _body(values: dict) -> dict:
    return {"name": values["name"], "timezone": values["timezone"] or "UTC",
            "shifts": shifts_from_text(values["shifts"])}


def _summary(cal: dict):
    return html.Span([html.Div(line) for line in shifts_to_text(cal["shifts"]).splitlines()] or "no shifts")


CALENDARS = CrudSection(
    "sc-calendar", "calendars", "Shift calendars", [
        Field("name", "Name", help="e.g. Three shifts"),
        Field("timezone", "Time zone", default="UTC", help="IANA name; shifts are local times there"),
        Field("shifts", "Shifts", kind="textarea", help=SHIFT_HELP, width=12,
              default="Early, 06:00-14:00, 01234, Lunch 10:00+30\nLate, 14:00-22:00, 01234, Dinner 18:00+30"),
    ], [("Name", lambda c: c["name"]), ("Time zone", lambda c: c["timezone"]), ("Shifts", _summary)],
    validate_calendar, VERSION, to_form=lambda c: {**c, "shifts": shifts_to_text(c["shifts"])}, to_body=_body)


def layout(**_query):
    return html.Div([dcc.Store(id=VERSION, data=0), html.H2("Settings · Shift calendars"),
                     settings_nav("/settings/calendars/"), CALENDARS.layout()])
