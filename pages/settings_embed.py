"""/settings/embed-links/ (engineers): a signed, expiring, read-only link to one machine's or line's dashboard, for
a Grafana panel (Text panel in HTML mode, or an iframe) or a kiosk. The link shows that page and nothing else."""
from __future__ import annotations

import dash
import dash_bootstrap_components as dbc
from dash import Input, Output, State, callback, dcc, html, no_update
from flask import current_app, request

from auth import embed as embeds
from auth import rules
from auth.users import UserError
from auth.web import require
from db import ui_queries

dash.register_page(__name__, path="/settings/embed-links/", name="Embed links", title="OEE · Embed links",
                   order=80)


def _store():
    return current_app.extensions["oee"].store


def layout(**_query):
    return html.Div([
        html.H2("Embed links"),
        html.P("A link that shows one machine's or line's dashboard without a login, read-only, until it expires: "
               "for a Grafana panel or a kiosk. It cannot open any other page. Links cannot be revoked one by one "
               "(changing OEE_SECRET_KEY voids them all): keep their lives short.", className="text-muted"),
        dbc.Row([
            dbc.Col([dbc.Label("Page", html_for="embed-page"),
                     dbc.Select(id="embed-page", value="machine",
                                options=[{"label": "Machine", "value": "machine"},
                                         {"label": "Line", "value": "line"},
                                         {"label": "Andon board (a line)", "value": "andon"}])], md=2),
            dbc.Col([dbc.Label("Machine or line", html_for="embed-key"), dbc.Select(id="embed-key")], md=4),
            dbc.Col([dbc.Label("Expires in days", html_for="embed-days"),
                     dbc.Input(id="embed-days", type="number", min=1, max=embeds.MAX_DAYS,
                               value=embeds.DEFAULT_DAYS)], md=2),
            dbc.Col(dbc.Button("Make link", id="embed-make", color="primary", className="mt-4"), md=2),
        ], className="g-2 mb-3"),
        dcc.Loading(html.Div(id="embed-result")),
    ])


@callback(Output("embed-key", "options"), Output("embed-key", "value"), Input("embed-page", "value"))
def keys(page):
    require(rules.ENGINEER)
    if page in ("line", "andon"):
        options = [{"label": ln["name"], "value": str(ln["id"])} for ln in ui_queries.plant_lines(_store())]
    else:
        options = [{"label": f"{m['machine_id']} {m['name']}", "value": m["machine_id"]}
                   for m in ui_queries.plant_machines(_store())]
    return options, (options[0]["value"] if options else None)


@callback(Output("embed-result", "children"), Input("embed-make", "n_clicks"), State("embed-page", "value"),
          State("embed-key", "value"), State("embed-days", "value"), prevent_initial_call=True)
def make(_n, page, key, days):
    require(rules.ENGINEER)
    from api.auth import make_embed_link

    try:
        page, key, days = embeds.check_request({"page": page, "key": key, "expires_in_days": days})
        made = make_embed_link(page, key, days)
    except UserError as exc:
        return dbc.Alert(str(exc), color="danger", id="embed-error")
    url = request.host_url.rstrip("/") + made["url"]
    if not url:
        return no_update
    return dbc.Alert([html.Div(f"Valid until {made['expires_at']}."),
                      html.Code(url, id="embed-url", className="user-select-all d-block my-2"),
                      html.Div("In an iframe:"),
                      html.Code(f'<iframe src="{url}" width="100%" height="800" frameborder="0"></iframe>',
                                className="user-select-all d-block")], color="success")
