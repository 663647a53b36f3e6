"""/line/<line_id>: a line's OEE (its machines summed, then divided), losses, states, downtime and machines."""
from __future__ import annotations

import dash
import dash_bootstrap_components as dbc
from dash import dcc, html

from components import context, timerange
from components.scope_dashboard import ScopeDashboardAIO
from db import ui_queries

dash.register_page(__name__, path_template="/line/<line_id>", name="Line", title="OEE · Line", nav=False)


def layout(line_id: str | None = None, **query):
    query = timerange.normalize(query)
    lines = ui_queries.plant_lines(context.store())
    line = next((ln for ln in lines if str(ln["id"]) == str(line_id)), None) or next(
        (ln for ln in lines if ln["name"] == line_id), None)
    if line is None:
        return html.Div([
            html.H2("Line not found", className="page-title"),
            dbc.Alert([f"There is no line {line_id!r}. ",
                       dcc.Link("Pick one on the plant overview", href=dash.get_relative_path("/")), "."],
                      color="warning", id="line-missing"),
        ])
    if not line["machines"]:
        return html.Div([html.H2(line["name"], className="page-title"),
                         dbc.Alert(["This line has no machines yet. Add them in the ",
                                    dcc.Link("configuration wizard", href=dash.get_relative_path("/machine-config/")),
                                    "."], color="info", id="line-empty")])
    title = [html.Span(line["name"], id="line-title-name"),
             html.Small(f"  {line['area']}", className="text-muted ms-2")]
    return ScopeDashboardAIO("line", "line", str(line["id"]), query, title=title)
