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


def _int(v):
    return int(v) if v not in (None, "") and str(v).isdigit() else v or None


SITES = CrudSection(
    "sh-site", "sites", "Sites", [
        Field("name", "Name", help="e.g. Riverside plant"),
        Field("timezone", "Time zone", default="UTC", help="IANA name: Europe/Berlin, America/Chicago, UTC"),
    ], [("Name", lambda s: s["name"]), ("Time zone", lambda s: s["timezone"])], validate_site, VERSION)
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
    ], [("Line", lambda ln: ln["path"])], validate_line, VERSION,
    to_form=lambda ln: {**ln, "area": str(ln["area"])}, to_body=lambda v: {**v, "area": _int(v["area"])})


def layout(**_query):
    return html.Div([
        dcc.Store(id=VERSION, data=0),
        html.H2("Settings · Hierarchy"),
        settings_nav("/settings/hierarchy/"),
        html.P("Sites hold areas, areas hold lines; machines are placed on lines (in the machine wizard). Deleting a "
               "site or area deletes what it holds; machines stay, without a line.", className="text-muted"),
        SITES.layout(), AREAS.layout(), LINES.layout(),
    ])
