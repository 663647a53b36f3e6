"""/operator/<machine or line>: the terminal at the line, for a tablet (touch-first: big buttons, big type).

The stop going on now that is not planned asks for its reason: a big button per reason code, the most used first
(db.floor_queries.reasons_by_use); a note goes with it. The reason is stored as the /downtime/ page stores one
(db.downtime_queries.assign_downtime_reason), so the machine page's loss breakdown and GET /api/oee/ move at once.
Rejects found by hand are counted in quality (db.floor_queries.add_manual_rejects, audited). The machine's faults
not yet acknowledged are acknowledged here (db.faults.acknowledge_fault, as on the machine page and at POST
/api/faults/<id>/ack). The running order and its progress are shown. Everything here is an operator's (auth/rules.py: the page and its "op-" callbacks);
for a line, the page first asks which machine.
"""
from __future__ import annotations

import time
from datetime import datetime

import dash
import dash_bootstrap_components as dbc
from dash import ALL, Input, Output, State, callback, ctx, dcc, html, no_update

from auth.web import require
from components import context, floor
from components.format import STATE_TEXT_COLORS, duration, local
from components.live import live_socket
from db import downtime_queries, floor_queries, ui_queries
from db import faults as fault_store

dash.register_page(__name__, path_template="/operator/<target>", name="Operator", title="OEE · Operator",
                   nav=False)

TICK_MS = 3000
FAULTS_SHOWN = 5


def _find(target: str | None):
    """('machine', machine) or ('line', line) for the path's machine id or line id (or name)."""
    s = context.store()
    machine = next((m for m in ui_queries.plant_machines(s) if m["machine_id"].lower() == str(target).lower()), None)
    if machine is not None:
        return "machine", machine
    lines = ui_queries.plant_lines(s)
    line = next((ln for ln in lines if str(ln["id"]) == str(target)), None) or next(
        (ln for ln in lines if ln["name"] == target), None)
    return ("line", line) if line is not None else (None, None)


def layout(target: str | None = None, **_query):
    kind, found = _find(target)
    if kind is None:
        return html.Div([html.H2("Operator terminal", className="page-title"),
                         dbc.Alert(f"There is no machine or line {target!r}.", color="warning",
                                   id="op-missing")], className="operator")
    if kind == "line":
        return html.Div([
            html.H2(f"{found['name']}: which machine?", className="page-title"),
            html.Div([dcc.Link(dbc.Button([html.Div(m["machine_id"], className="fw-bold"), html.Div(m["name"])],
                                          color="primary", size="lg", className="op-button"),
                               href=dash.get_relative_path(f"/operator/{m['machine_id']}"))
                      for m in ui_queries.plant_machines(context.store()) if m["line_id"] == found["id"]],
                     className="op-buttons", id="op-machines"),
        ], className="operator")
    m = found
    return html.Div([
        dcc.Store(id="op-machine", data=m["machine_id"]),
        dcc.Store(id="op-stop", data=None),
        dcc.Store(id="op-fault-rows", data=None),
        dcc.Store(id="op-saved", data=0),
        dcc.Interval(id="op-tick", interval=TICK_MS),
        live_socket("op-live", f"/ws/dashboard/machine/{m['machine_id']}/"),
        html.Div([html.H2([html.Span(m["machine_id"], id="op-title"), html.Small(f"  {m['name']}",
                                                                                className="text-muted")],
                          className="page-title mb-0"),
                  html.Div(id="op-state", className="op-state")],
                 className="d-flex flex-wrap align-items-center gap-3 mb-3"),
        dbc.Row([
            dbc.Col([
                dbc.Card(dbc.CardBody([html.H4("Stop", className="card-title"), html.Div(id="op-stop-facts"),
                                       html.Div(id="op-reasons", className="op-buttons mt-2"),
                                       dbc.Label("Note", html_for="op-note", className="mt-2 mb-0"),
                                       dbc.Textarea(id="op-note", placeholder="Note (what happened, what was done)",
                                                    rows=2, className="op-note mt-2"),
                                       html.Div(id="op-reason-message", className="mt-2")]),
                         className="mb-3"),
                dbc.Card(dbc.CardBody([html.H4("Faults", className="card-title"),
                                       html.Div(id="op-fault-now"), html.Div(id="op-faults"),
                                       html.Div(id="op-fault-message")]), className="mb-3"),
            ], lg=7),
            dbc.Col([
                dbc.Card(dbc.CardBody([html.H4("Order", className="card-title"), html.Div(id="op-order")]),
                         className="mb-3"),
                dbc.Card(dbc.CardBody([
                    html.H4("Rejects found", className="card-title"),
                    html.Div("Parts the machine counted good that are not: they count against quality.",
                             className="text-muted small mb-2"),
                    dbc.Label("Parts", html_for="op-reject-count", className="mb-1"),
                    dbc.InputGroup([dbc.Button("−", id="op-reject-less", color="secondary", className="op-step"),
                                    dbc.Input(id="op-reject-count", type="number", min=1, step=1, value=1,
                                              className="op-count", inputMode="numeric"),
                                    dbc.Button("+", id="op-reject-more", color="secondary", className="op-step")],
                                   size="lg"),
                    dbc.Label("Why (optional)", html_for="op-reject-note", className="mt-2 mb-0"),
                    dbc.Input(id="op-reject-note", placeholder="e.g. label skewed"),
                    dbc.Button("Count as rejects", id="op-reject-save", color="danger", size="lg",
                               className="mt-2 w-100 op-button"),
                    html.Div(id="op-reject-message", className="mt-2"),
                ]), className="mb-3"),
                dbc.Card(dbc.CardBody([html.H4("Last stops", className="card-title"), html.Div(id="op-history")]),
                         className="mb-3"),
            ], lg=5),
        ]),
    ], className="operator")


@callback(
    Output("op-state", "children"),
    Output("op-stop", "data"),
    Output("op-stop-facts", "children"),
    Output("op-fault-now", "children"),
    Output("op-fault-rows", "data"),
    Output("op-order", "children"),
    Output("op-history", "children"),
    Input("op-tick", "n_intervals"),
    Input("op-live-store", "data"),
    Input("op-saved", "data"),
    State("op-machine", "data"),
    State("op-stop", "data"),
    State("op-fault-rows", "data"),
)
def _refresh(_n, _live, _saved, machine_id, shown, shown_faults):
    s = context.store()
    tz = context.tz()
    now = time.time()
    m = next((x for x in ui_queries.plant_machines(s) if x["machine_id"] == machine_id), None)
    if m is None:
        return (no_update,) * 7
    status = context.machine_states([m["id"]]).get(m["id"])
    facts = floor.state_facts(m, status, floor.fault_texts([m["id"]]).get(m["id"], {}), now)
    state = html.Span([html.Span(facts["label"], className="state-pill op-pill", id="op-state-pill",
                                 style={"backgroundColor": facts["color"],
                                        "color": STATE_TEXT_COLORS.get(facts["state"], "#000")},
                                 **{"data-state": facts["state"]}),
                       html.Span(" " + floor.stop_text(facts), className="op-since")])
    stop = floor_queries.current_stop(s, machine_id, now)
    if stop is None:
        stop_facts = html.Div("No stop waits for a reason.", className="text-muted", id="op-no-stop")
        keep = None
    else:
        given = stop["reason_name"] if stop["source"] == "operator" else None
        stop_facts = html.Div([
            html.Div([html.Span(f"Since {local(stop['start'], tz, '%H:%M:%S')} · " if stop["open"] else
                                f"{local(stop['start'], tz, '%H:%M:%S')}–{local(stop['end'], tz, '%H:%M:%S')} · ",
                                className="text-muted"),
                      html.Strong(duration(stop["duration_s"]))], className="op-big"),
            html.Div(stop["fault_label"] or stop["category_label"], id="op-stop-cause"),
            html.Div(["Reason: ", html.Strong(given, id="op-stop-reason")] if given else
                     "Which reason? Tap it below.", className="mt-1"),
        ], id="op-stop-open", **{"data-start": repr(stop["start"])})
        keep = {"machine_id": machine_id, "start": stop["start"],
                "reason": stop["reason_code"] if stop["source"] == "operator" else None}
    faults = html.Div(facts["why"] or "No fault now.", id="op-fault-text",
                      className="fw-semibold text-danger" if facts["why"] else "text-muted")
    # The faults not yet acknowledged (and the ones going on): drawn again only when they change (op-fault-rows).
    _total, rows = fault_store.list_faults(s.engine, [(m["id"], m["machine_id"], m["name"])], limit=FAULTS_SHOWN)
    fault_rows = [{k: f[k] for k in ("id", "code", "text", "start", "active", "acknowledged_by")}
                  for f in rows if f["active"] or not f["acknowledged_by"]]
    order = floor.order_block(floor.order_progress([m["id"]], {m["id"]: status or {}})[m["id"]], "op", large=True)
    history = [html.Tr([html.Td(local(e["start"], tz, "%H:%M")), html.Td(duration(e["duration_s"])),
                        html.Td(e["reason_name"] if e["source"] == "operator" else (e["fault_label"] or "—"))])
               for e in floor_queries.last_stops(s, machine_id, 5, now)]
    table = dbc.Table(html.Tbody(history), size="sm", className="mb-0") if history else html.Div(
        "No stops in the last 12 h.", className="text-muted")
    # The reason buttons are drawn again only for another stop or reason (not under a finger at every tick).
    return (state, keep if keep != shown else no_update, stop_facts, faults,
            fault_rows if fault_rows != shown_faults else no_update, order, table)


@callback(Output("op-faults", "children"), Input("op-fault-rows", "data"))
def _faults(rows):
    if not rows:
        return None
    tz = context.tz()
    out = []
    for f in rows:
        start = datetime.fromisoformat(f["start"].replace("Z", "+00:00")).timestamp()
        done = html.Span(f"acknowledged by {f['acknowledged_by']}", className="small text-muted") \
            if f["acknowledged_by"] else dbc.Button("Acknowledge", id={"type": "op-fault-ack", "index": f["id"]},
                                                    color="warning", size="lg", className="op-button")
        out.append(html.Div([html.Div([html.Strong(f"{f['code'] if f['code'] is not None else '—'} {f['text']}"),
                                       html.Div(f"since {local(start, tz, '%H:%M:%S')}" + (
                                           " · going on" if f["active"] else " · ended"), className="small")]),
                             done], className="d-flex justify-content-between align-items-center gap-2 mb-2",
                            **{"data-fault": f["id"]}))
    return out


@callback(
    Output("op-fault-message", "children"),
    Output("op-saved", "data", allow_duplicate=True),
    Input({"type": "op-fault-ack", "index": ALL}, "n_clicks"),
    State("op-saved", "data"),
    prevent_initial_call=True,
)
def _acknowledge(clicks, saved):
    if not ctx.triggered_id or not any(clicks or []):
        return no_update, no_update
    require("operator")
    try:
        fault_store.acknowledge_fault(context.store().engine, int(ctx.triggered_id["index"]))
    except fault_store.NotFound as exc:
        return dbc.Alert(str(exc), color="danger", className="py-1"), no_update
    return "", (saved or 0) + 1


@callback(Output("op-reasons", "children"), Input("op-stop", "data"))
def _reasons(stop):
    if not stop:
        return None
    buttons = [dbc.Button([html.Div(r["name"], className="fw-bold"), html.Div(
        r["category_label"] + (" · planned" if r["planned"] else ""), className="small")],
        id={"type": "op-reason", "code": r["code"]}, color="success" if stop.get("reason") == r["code"] else
        "primary", outline=stop.get("reason") != r["code"], size="lg", className="op-button")
        for r in floor_queries.reasons_by_use(context.store())]
    return buttons or html.Div("No reason codes yet: an engineer adds them under Settings.", className="text-muted")


@callback(
    Output("op-reason-message", "children"),
    Output("op-saved", "data"),
    Input({"type": "op-reason", "code": ALL}, "n_clicks"),
    State("op-stop", "data"),
    State("op-note", "value"),
    State("op-saved", "data"),
    prevent_initial_call=True,
)
def _give_reason(clicks, stop, note, saved):
    if not ctx.triggered_id or not any(clicks or []) or not stop:
        return no_update, no_update
    require("operator")
    code = ctx.triggered_id["code"]
    try:
        ev = downtime_queries.assign_downtime_reason(context.store(), stop["machine_id"], stop["start"], code,
                                                     note if note else None)
    except downtime_queries.DowntimeError as exc:
        return dbc.Alert(str(exc), color="danger", className="py-1"), no_update
    return dbc.Alert(f"Saved: {ev['reason_name']}", color="success", className="py-1",
                     id="op-reason-saved"), (saved or 0) + 1


@callback(
    Output("op-reject-count", "value"),
    Input("op-reject-less", "n_clicks"),
    Input("op-reject-more", "n_clicks"),
    State("op-reject-count", "value"),
    prevent_initial_call=True,
)
def _step(_less, _more, value):
    value = value if isinstance(value, int) and value > 0 else 1
    return max(1, value + (1 if ctx.triggered_id == "op-reject-more" else -1))


@callback(
    Output("op-reject-message", "children"),
    Output("op-saved", "data", allow_duplicate=True),
    Input("op-reject-save", "n_clicks"),
    State("op-machine", "data"),
    State("op-reject-count", "value"),
    State("op-reject-note", "value"),
    State("op-saved", "data"),
    prevent_initial_call=True,
)
def _rejects(clicks, machine_id, count, note, saved):
    if not clicks:
        return no_update, no_update
    require("operator")
    try:
        done = floor_queries.add_manual_rejects(context.store(), machine_id, count, note or "")
    except downtime_queries.DowntimeError as exc:
        return dbc.Alert(f"{exc.field}: {exc}", color="danger", className="py-1"), no_update
    return dbc.Alert(f"{done['rejects']:,} rejects counted at {local(done['time'], context.tz(), '%H:%M:%S')}",
                     color="success", className="py-1", id="op-reject-saved"), (saved or 0) + 1
