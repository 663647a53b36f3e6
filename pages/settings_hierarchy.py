"""/settings/hierarchy/: sites, areas and lines (ISA-95), where machines stand."""
from __future__ import annotations

import dash
from dash import dcc, html
from flask import current_app

from components.settings_crud import CrudSection, Field, settings_nav
from config import store as cs
from config.plant_items import validate_area, validate_line, validate_site

dash.register_page(__name__, path="/settings/hierarchy/", name="Hierarchy", title="OEE · Hierarchy", nav=False)
VERSION = "sh-version"


def _engine():
    return current_app.extensions["oee"].store.engine


def _sites():
    return [{"label": s["name"], "value": str(s["id"])} for s in cs.list_items(_engine(), "sites", limit=500)[1]]


def _areas():
    return [{"label": f"{a['site_name']} / {a['name']}", "value": str(a["id"])}
            for a in cs.list_items(_engine(), "areas", limit=500)[1]]


def _calendars():
    return [{"label": "(none: every hour is planned)", "value": ""}] + [
        {"label": c["name"], "value": c["name"]} for c in cs.list_items(_engine(), "calendars", limit=500)[1]]


def _int(v):
    return int(v) if v not in (None, "") and str(v).isdigit() else v or None


def _number(v):
    try:
        return float(v) if v not in (None, "") else None
    except (TypeError, ValueError):
        return v


SITES = CrudSection(
    "sh-site", "sites", "Sites", [
        Field("name", "Name", help="e.g. Riverside plant"),
        Field("timezone", "Time zone", default="UTC", help="IANA name: Europe/Berlin, America/Chicago, UTC"),
        Field("micro_stop_threshold_s", "Micro-stop threshold (s)", kind="number",
              help="Its machines' default: stops shorter are minor stops (0: none); empty: 120 s"),
    ], [("Name", lambda s: s["name"]), ("Time zone", lambda s: s["timezone"]),
        ("Micro-stop threshold", lambda s: "120 s (default)" if s["micro_stop_threshold_s"] is None
         else f"{s['micro_stop_threshold_s']:g} s")], validate_site, VERSION,
    to_body=lambda v: {**v, "micro_stop_threshold_s": _number(v["micro_stop_threshold_s"])})
AREAS = CrudSection(
    "sh-area", "areas", "Areas", [
        Field("name", "Name", help="e.g. Packaging"),
        Field("site", "Site", kind="select", options=_sites),
    ], [("Site", lambda a: a["site_name"]), ("Name", lambda a: a["name"])], validate_area, VERSION,
    to_form=lambda a: {**a, "site": str(a["site"])}, to_body=lambda v: {**v, "site": _int(v["site"])})
LINES = CrudSection(
    "sh-line", "lines", "Lines", [
        Field("name", "Name", help="e.g. Bottling 1"),
        Field("area", "Area", kind="select", options=_areas),
        Field("calendar", "Shift calendar", kind="select", options=_calendars, default="",
              help="Of its machines that have none of their own"),
    ], [("Line", lambda ln: ln["path"]), ("Shift calendar", lambda ln: ln["calendar"] or "none")], validate_line,
    VERSION, to_form=lambda ln: {**ln, "area": str(ln["area"]), "calendar": ln["calendar"] or ""},
    to_body=lambda v: {**v, "area": _int(v["area"]), "calendar": v["calendar"] or None})


def layout(**_query):
    return html.Div([
        dcc.Store(id=VERSION, data=0),
        html.H2("Settings · Hierarchy"),
        settings_nav("/settings/hierarchy/"),
        html.P("Sites hold areas, areas hold lines; machines are placed on lines (in the machine wizard). Deleting a "
               "site or area deletes what it holds; machines stay, without a line. A machine without a calendar or "
               "a micro-stop threshold of its own takes its line's calendar and its site's threshold.",
               className="text-muted"),
        SITES.layout(), AREAS.layout(), LINES.layout(),
    ])
