"""/machine/<machine_id>: one machine's OEE, losses, states, downtime, counts, cycle time and live values."""
from __future__ import annotations

import dash
import dash_bootstrap_components as dbc
from dash import dcc, html

from components import context, timerange
from components.scope_dashboard import ScopeDashboardAIO
from db import ui_queries

dash.register_page(__name__, path_template="/machine/<machine_id>", name="Machine", title="OEE · Machine",
                   nav=False)

PREFERRED_LIVE = ("speed", "current", "pressure", "vibration", "temp")


def live_tag_choices(machine_id: str) -> list[dict]:
    """Numeric tags worth plotting live: process values first (speed, current, pressure ...), then the rest."""
    tags = [t for t in ui_queries.tag_catalog(context.store(), machine_id) if t["numeric"] and t["enabled"]]
    tags = [t for t in tags if t["role"] in (None, "cycle.time")]

    def rank(t):
        name = t["name"].lower()
        hit = next((i for i, word in enumerate(PREFERRED_LIVE) if word in name), len(PREFERRED_LIVE))
        return (hit, t["id"])

    tags.sort(key=rank)
    for i, t in enumerate(tags):
        t["default"] = i < 4 and rank(t)[0] < len(PREFERRED_LIVE)
    return tags


def layout(machine_id: str | None = None, **query):
    query = timerange.normalize(query)
    machines = {m["machine_id"]: m for m in ui_queries.plant_machines(context.store())}
    if not machine_id or machine_id not in machines:
        return html.Div([
            html.H2("Machine not found", className="page-title"),
            dbc.Alert([f"There is no machine {machine_id!r}. ",
                       dcc.Link("Pick one on the plant overview", href=dash.get_relative_path("/")),
                       " or add it in the ",
                       dcc.Link("configuration wizard", href=dash.get_relative_path("/machine-config/")),
                       "."], color="warning", id="machine-missing"),
        ])
    m = machines[machine_id]
    where = " · ".join(x for x in (m["area"], m["line"]) if x)
    title = [html.Span(m["machine_id"], id="machine-title-id"), html.Span(f" {m['name']}", className="fw-normal"),
             html.Small(f"  {where}", className="text-muted ms-2")]
    return ScopeDashboardAIO("machine", "machine", machine_id, query, title=title,
                             live_tags=live_tag_choices(machine_id))
