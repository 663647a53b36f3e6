"""The machine list beside the wizard: every machine with its protocol, live state and first values, and its Edit,
Enable/Disable and Delete buttons (a delete says first what history goes with it)."""
from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import ALL, Input, Output, State, callback, ctx, html, no_update

from collectors import service
from components.format import plural
from config import admin as machine_admin
from config import store as cs
from config.validation import PROTOCOL_LABELS
from pages.machine_config.forms import STATE_COLORS, engine, runtime, show_value


@callback(Output("mc-list", "children"), Input("mc-list-version", "data"))
def render_list(_version):
    total, machines = cs.list_machines(engine(), limit=500)
    if not machines:
        return dbc.Alert("No machines yet: start with New machine.", color="info", id="mc-list-empty")
    rows = []
    for m in machines:
        pk = m["id"]
        where = f"{m['ip_address']}:{m['port']}" if m["ip_address"] else "no connection"
        rows.append(html.Tr([
            html.Td([html.Strong(m["machine_id"]), html.Br(), html.Small(m["name"], className="text-muted")]),
            html.Td([PROTOCOL_LABELS.get(m["protocol"], "—"), html.Br(), html.Small(where, className="text-muted")]),
            html.Td(html.Span(id={"type": "mc-row-state", "pk": pk})),
            html.Td(html.Small(id={"type": "mc-row-live", "pk": pk})),
            html.Td(dbc.ButtonGroup([
                dbc.Button("Edit", id={"type": "mc-edit", "pk": pk}, size="sm", color="secondary", outline=True),
                dbc.Button("Enable" if not m["enabled"] else "Disable", id={"type": "mc-toggle", "pk": pk},
                           size="sm", color="secondary", outline=True),
                dbc.Button("Delete", id={"type": "mc-delete", "pk": pk}, size="sm", color="danger", outline=True),
            ])),
        ], id=f"mc-row-{m['machine_id']}"))
    head = html.Thead(html.Tr([html.Th(h) for h in ("Machine", "Protocol", "State", "Live", "")]))
    return dbc.Table([head, html.Tbody(rows)], size="sm", hover=True, responsive=True, id="mc-table")


def _live_summary(tags: list[dict], live: dict) -> str:
    parts = []
    for t in sorted(tags, key=lambda t: (t["role"] is None, t["id"])):
        v = live.get(t["id"])
        if v is None or v["quality"] != "good":
            continue
        parts.append(f"{t['name']} {show_value(v['value'])}")
        if len(parts) == 3:
            break
    return " · ".join(parts)


@callback(Output({"type": "mc-row-state", "pk": ALL}, "children"),
          Output({"type": "mc-row-live", "pk": ALL}, "children"),
          Input("mc-tick", "n_intervals"), State({"type": "mc-row-state", "pk": ALL}, "id"))
def refresh_rows(_n, ids):
    states, lives = [], []
    rt = runtime()
    for ident in ids:
        try:
            m = cs.get_machine(engine(), ident["pk"])
        except cs.NotFound:
            states.append("deleted")
            lives.append("")
            continue
        status = service.machine_status(rt, m)
        badge = dbc.Badge(status["state"].replace("_", " "), color=STATE_COLORS.get(status["state"], "secondary"),
                          className="mc-state")
        title = (status["last_error"] or {}).get("message") or ""
        states.append(html.Span(badge, title=title))
        tags = cs.machine_tags(engine(), m["id"])
        lives.append(_live_summary(tags, service.live_values(rt, [t["id"] for t in tags])))
    return states, lives


@callback(Output("mc-delete-modal", "is_open"), Output("mc-delete-text", "children"),
          Output("mc-delete-target", "data"),
          Input({"type": "mc-delete", "pk": ALL}, "n_clicks"), prevent_initial_call=True)
def ask_delete(clicks):
    if not ctx.triggered_id or not any(clicks or []) or not ctx.triggered[0]["value"]:
        return no_update, no_update, no_update
    pk = ctx.triggered_id["pk"]
    try:
        impact = cs.deletion_impact(engine(), pk)
    except cs.NotFound:
        return False, "", None
    text = [
        html.P([html.Strong(f"{impact['machine_id']} ({impact['name']})"), " will be deleted with its connection and "
                f"its {plural(impact['tags'], 'tag')}."]),
        html.P([f"Its history goes with it, for good: {impact['samples']:,} samples, {impact['states']:,} state "
                f"intervals, {impact['counts']:,} production count rows and {impact['downtime_events']:,} downtime "
                "events. OEE reports will no longer show this machine."], id="mc-delete-impact"),
        html.P("To stop collecting but keep the history, disable the machine instead.", className="text-muted"),
    ]
    return True, text, pk


@callback(Output("mc-delete-modal", "is_open", allow_duplicate=True),
          Output("mc-list-version", "data", allow_duplicate=True),
          Output("mc-alert", "children", allow_duplicate=True),
          Input("mc-delete-confirm", "n_clicks"), Input("mc-delete-cancel", "n_clicks"),
          State("mc-delete-target", "data"), State("mc-list-version", "data"), prevent_initial_call=True)
def do_delete(_confirm, _cancel, pk, version):
    if ctx.triggered_id != "mc-delete-confirm" or pk is None:
        return False, no_update, no_update
    try:
        removed = machine_admin.delete_machine(runtime(), pk)
    except cs.NotFound:
        return False, version + 1, no_update
    return False, version + 1, dbc.Alert(f"Deleted {removed['machine_id']} with {plural(removed['tags'], 'tag')} and "
                                         f"{plural(removed['samples'], 'sample')}.", color="warning", dismissable=True,
                                         id="mc-deleted")


@callback(Output("mc-list-version", "data", allow_duplicate=True),
          Input({"type": "mc-toggle", "pk": ALL}, "n_clicks"), State("mc-list-version", "data"),
          prevent_initial_call=True)
def toggle(clicks, version):
    if not ctx.triggered_id or not ctx.triggered[0]["value"]:
        return no_update
    pk = ctx.triggered_id["pk"]
    m = cs.get_machine(engine(), pk)
    machine_admin.set_enabled(runtime(), pk, not m["enabled"])
    return version + 1
