"""/ : the plant at a glance. Machines by area and line, and the health of the data path."""
from __future__ import annotations

import dash
import dash_bootstrap_components as dbc
from dash import html
from flask import current_app
from sqlalchemy.exc import SQLAlchemyError

from db.queries import machine_tree

dash.register_page(__name__, path="/", name="Overview", title="OEE · Overview")


def _runtime():
    return current_app.extensions["oee"]


def _status_card(health: dict) -> dbc.Card:
    db = health["database"]
    writer = health.get("writer") or {}
    items = [
        html.Div([html.Strong("Database: "), f"{db['backend']} (schema {db['schema_version']})"], id="overview-backend"),
    ]
    if writer:
        items.append(html.Div([html.Strong("Writer: "),
                               f"{writer['written_rows']:,} rows written, {writer['queue_rows']:,} queued, "
                               f"{writer['spooled_rows']:,} spooled, {writer['dropped_rows']:,} dropped"]))
    return dbc.Card(dbc.CardBody(items), className="mb-3")


def layout(**_query):
    runtime = _runtime()
    body = [html.H2("Plant overview"), _status_card(runtime.health())]
    try:
        machines = machine_tree(runtime.store.engine)
    except SQLAlchemyError:
        # The collectors keep the data in the spool meanwhile; the page says so instead of failing.
        body.append(dbc.Alert("The database cannot be reached right now; data is kept and written when it is back.",
                              color="warning", id="overview-db-down"))
        return html.Div(body)
    if not machines:
        body.append(dbc.Alert("No machines configured yet.", color="info", id="overview-empty"))
    else:
        groups: dict[tuple, list] = {}
        for m in machines:
            groups.setdefault((m["area"] or "Unassigned", m["line"] or "—"), []).append(m)
        for (area, line), members in groups.items():
            body.append(html.H5(f"{area} / {line}", className="mt-3"))
            body.append(dbc.Row([
                dbc.Col(dbc.Card(dbc.CardBody([
                    html.H6(m["machine_id"], className="card-title"),
                    html.Div(m["name"]),
                    html.Small(f"{m['protocol'] or 'no connection'} · {m['tags']} tags", className="text-muted"),
                ]), id={"type": "overview-machine", "machine": m["machine_id"]}), md=3, className="mb-2")
                for m in members
            ]))
    return html.Div(body)
