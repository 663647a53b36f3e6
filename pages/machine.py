"""/machine/<machine_id>: one machine's OEE, losses, states, downtime, counts, cycle time and live values."""
from __future__ import annotations

from datetime import datetime

import dash
import dash_bootstrap_components as dbc
from dash import ALL, Input, Output, State, callback, ctx, dcc, html

from auth import rules
from components import context, format, timerange
from components.scope_dashboard import ScopeDashboardAIO
from db import faults as fault_store
from db import ui_queries
from db.export_queries import scope_machines

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
    return html.Div([
        ScopeDashboardAIO("machine", "machine", machine_id, query, title=title,
                          live_tags=live_tag_choices(machine_id)),
        html.Div([
            html.H5("Faults", className="mt-4"),
            html.Div(fault_list(machine_id), id="machine-faults-list"),
            # an embed link shows the list as it was; its callbacks are for signed-in users
            dcc.Interval(id="machine-faults-tick", interval=5000, disabled=_embedded()),
            dcc.Store(id="machine-faults-machine", data=machine_id),
            dcc.Store(id="machine-faults-acked", data=0),
        ], id="machine-faults"),
    ])


# --- faults: the latest of this machine, acknowledged here by an operator (or at POST /api/faults/<id>/ack) -------

FAULTS_SHOWN = 10


def _embedded() -> bool:
    from flask import g, has_request_context

    return has_request_context() and getattr(g, "embed", None) is not None


def _may_acknowledge() -> bool:
    from auth.web import may

    try:
        return not _embedded() and may(rules.OPERATOR)
    except RuntimeError:  # outside a request (a test building the layout): no buttons
        return False


def fault_list(machine_id: str):
    store = context.store()
    machines = scope_machines(store, "machine", machine_id)
    _total, rows = fault_store.list_faults(store.engine, machines, limit=FAULTS_SHOWN)
    if not rows:
        return html.P("No faults recorded.", className="text-muted", id="machine-faults-none")
    tz, can_ack = context.tz(), _may_acknowledge()

    def when(text):
        return format.local(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp(), tz, "%Y-%m-%d %H:%M:%S")

    body = []
    for f in rows:
        if f["acknowledged_at"]:
            ack = html.Span(f"{f['acknowledged_by']}, {when(f['acknowledged_at'])}", className="small")
        elif can_ack:
            ack = dbc.Button("Acknowledge", id={"type": "machine-fault-ack", "index": f["id"]}, size="sm",
                             color="warning", className="machine-fault-ack")
        else:
            ack = html.Span("—", className="text-muted")
        body.append(html.Tr([
            html.Td(f["code"] if f["code"] is not None else "—"), html.Td(f["text"]), html.Td(when(f["start"])),
            html.Td(format.duration(f["duration_s"])),
            html.Td(dbc.Badge("active", color="danger") if f["active"] else "ended"), html.Td(ack)],
            className="machine-fault-row", **{"data-fault": f["id"]}))
    head = html.Thead(html.Tr([html.Th(h) for h in ("Code", "Fault", "Start", "Duration", "", "Acknowledged")]))
    return dbc.Table([head, html.Tbody(body)], size="sm", striped=True, className="machine-faults-table")


@callback(Output("machine-faults-list", "children"), Input("machine-faults-tick", "n_intervals"),
          Input("machine-faults-acked", "data"), State("machine-faults-machine", "data"), prevent_initial_call=True)
def _refresh_faults(_n, _acked, machine_id):
    return fault_list(machine_id)


@callback(Output("machine-faults-acked", "data"), Input({"type": "machine-fault-ack", "index": ALL}, "n_clicks"),
          State("machine-faults-acked", "data"), prevent_initial_call=True)
def _acknowledge(clicks, acked):
    if not ctx.triggered_id or not any(clicks or []):
        return dash.no_update  # the list was drawn again: no click
    fault_store.acknowledge_fault(context.store().engine, int(ctx.triggered_id["index"]))
    return (acked or 0) + 1
