"""/settings/reasons/: reason codes for downtime, each with its loss category (Six Big Losses, or planned)."""
from __future__ import annotations

import dash
from dash import dcc, html

from components.settings_crud import CrudSection, Field, settings_nav
from config.plant_items import validate_reason
from db.models import LOSS_CATEGORIES, PLANNED_CATEGORIES

dash.register_page(__name__, path="/settings/reasons/", name="Reason codes", title="OEE · Reason codes", nav=False)
VERSION = "sr-version"
CATEGORIES = ([{"label": f"loss: {c.replace('_', ' ')}", "value": c} for c in LOSS_CATEGORIES]
              + [{"label": f"planned: {c.replace('_', ' ')}", "value": c} for c in PLANNED_CATEGORIES])

REASONS = CrudSection(
    "sr-reason", "reasons", "Reason codes", [
        Field("code", "Code", help="Short, e.g. JAM"),
        Field("name", "Name", help="e.g. Film jam at the wrapper"),
        Field("planned", "Planned stop", kind="switch", default=False, width=2,
              help="Planned time comes off before OEE"),
        Field("loss_category", "Category", kind="select", options=CATEGORIES, width=6,
              help="Unplanned: one of the Six Big Losses. Planned: maintenance, break, no production."),
    ], [("Code", lambda r: r["code"]), ("Name", lambda r: r["name"]),
        ("Planned", lambda r: "yes" if r["planned"] else "no"),
        ("Category", lambda r: r["loss_category"].replace("_", " "))], validate_reason, VERSION,
    to_body=lambda v: {**v, "planned": bool(v["planned"])})


def layout(**_query):
    return html.Div([dcc.Store(id=VERSION, data=0), html.H2("Settings · Reason codes"),
                     settings_nav("/settings/reasons/"), REASONS.layout()])
