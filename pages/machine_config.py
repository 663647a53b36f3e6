"""/machine-config/: connect a PLC in a few minutes. A wizard in six steps, each checked before the next, beside
the list of machines with their live state.

1 protocol (cards) · 2 settings with help per protocol · 3 test the connection (each step's diagnostics and what
to try) · 4 discover tags (Logix tag list and OPC-UA browse as a tree with a filter and multi-select; S7 data block
layout editor with CSV import; Modbus register map editor with a range scan) · 5 map tags to canonical roles
(suggested from their names), scaling, deadband, interval, with a live preview · 6 save: one transaction, and the
collectors pick the machine up at once.

Validation is core.machine_config (the API's and the import's too); PLC work goes through collectors.service
(the page never talks to a PLC); reads and writes go through db.config_store and core.machine_admin. A password
is never put on the page: an edited machine's password field stays empty and '***' keeps the stored one.
"""
from __future__ import annotations

import base64
import time

import dash
import dash_bootstrap_components as dbc
from dash import ALL, Input, Output, State, callback, ctx, dcc, html, no_update
from flask import current_app

from collectors import service
from core import machine_admin
from core.machine_config import (
    PROTOCOL_LABELS,
    SECRET,
    ValidationError,
    suggest_roles,
    validate_machine,
    validate_tags,
)
from db import config_store as cs
from db.models import PROTOCOLS, TAG_ROLES

dash.register_page(__name__, path="/machine-config/", name="Machines", title="OEE · Machines")

STEPS = ("Protocol", "Settings", "Test", "Discover", "Map", "Save")
DEFAULT_PORTS = {"ETHERNET_IP": 44818, "S7": 102, "OPCUA": 4840, "MODBUS": 502}
CARD_TEXT = {
    "ETHERNET_IP": "ControlLogix and CompactLogix over EtherNet/IP: reads tags by name, lists the controller's tags.",
    "S7": "S7-300/400/1200/1500 over S7comm (ISO-on-TCP, port 102): data blocks, merkers, inputs and outputs.",
    "OPCUA": "Any OPC-UA server: browse its address space, anonymous or user name and password, with security.",
    "MODBUS": "Modbus TCP devices and gateways: holding and input registers, coils, discrete inputs.",
}
STATE_COLORS = {"running": "success", "idle": "warning", "blocked": "warning", "faulted": "danger",
                "failing": "danger", "config_error": "danger", "planned_stop": "info", "changeover": "info",
                "disabled": "secondary", "offline": "dark", "connecting": "light", "not_polled": "light"}
S7_EXAMPLE = "# name,offset,type[,description] as in the DB editor\nGoodCount,4,DInt\nRunning,20.0,Bool\n"
MODBUS_EXAMPLE = "# name,address,data_type[,description]\nGoodCount,HR2,UINT32\nRunning,C0,BOOL\n"


def _runtime():
    return current_app.extensions["oee"]


def _engine():
    return _runtime().store.engine


# --- layout ----------------------------------------------------------------------------------------------------


def field(label: str, control, help_text: str = "", fid: str | None = None, width: int = 6) -> dbc.Col:
    parts = [dbc.Label(label, html_for=fid or getattr(control, "id", None)), control]
    if fid:
        parts.append(dbc.FormFeedback(id=f"{fid}-fb", type="invalid"))
    if help_text:
        parts.append(dbc.FormText(help_text))
    return dbc.Col(html.Div(parts, className="mb-3"), md=width)


def _input(fid: str, kind: str = "text", **kw) -> dbc.Input:
    return dbc.Input(id=fid, type=kind, debounce=False, **kw)


def protocol_cards() -> dbc.Row:
    return dbc.Row([
        dbc.Col(dbc.Card(dbc.CardBody([
            html.H5(PROTOCOL_LABELS[p], className="card-title"),
            html.P(CARD_TEXT[p], className="small text-muted"),
            dbc.Button("Choose", id={"type": "mc-protocol", "protocol": p}, className=f"mc-protocol-{p}",
                       color="primary", size="sm"),
        ]), className="h-100"), md=3, className="mb-2")
        for p in PROTOCOLS
    ])


def settings_form() -> html.Div:
    common = dbc.Row([
        field("Machine id", _input("mc-machine-id", placeholder="LINE-017"),
              "Stable id used in reports and URLs: letters, digits, - _ .", "mc-machine-id"),
        field("Name", _input("mc-name", placeholder="Filler 17"), "What people call it.", "mc-name"),
        field("Line", dbc.Select(id="mc-line", options=[]), "Where it stands (Settings → Hierarchy).", "mc-line"),
        field("Poll interval (ms)", _input("mc-poll", "number", value=1000),
              "How often the collector reads it: 100 ms to 1 hour.", "mc-poll"),
        field("Description", _input("mc-description"), "", "mc-description", width=12),
    ])
    address = html.Div(dbc.Row([
        field("IP address or host", _input("mc-host", placeholder="192.168.1.17"),
              "The PLC's address as seen from this server.", "mc-host"),
        field("Port", _input("mc-port", "number"), "Usually the protocol's default.", "mc-port"),
    ]), id="mc-address-group")
    logix = html.Div(dbc.Row([
        field("Slot", _input("mc-logix-slot", "number", value=0),
              "Slot of the controller in its chassis; 0 is the leftmost. CompactLogix: 0.", "mc-logix-slot", 4),
        field("Route path (optional)", _input("mc-logix-route", placeholder="1,0"),
              "Port,link pairs through bridges, e.g. 1,2,2,10.0.0.9,1,0. Wins over the slot.", "mc-logix-route", 4),
        field("PLC family", dbc.Select(id="mc-logix-family", value="ControlLogix",
                                       options=[{"label": f, "value": f} for f in ("ControlLogix", "CompactLogix")]),
              "", "mc-logix-family", 4),
    ]), id="mc-group-ETHERNET_IP", style={"display": "none"})
    s7 = html.Div(dbc.Row([
        field("CPU type", dbc.Select(id="mc-s7-cpu", value="S7-1200", options=[
            {"label": c, "value": c} for c in ("S7-300", "S7-400", "S7-1200", "S7-1500")]),
              "Gives the usual slot. S7-1200/1500: allow PUT/GET, DBs without optimized access.", "mc-s7-cpu", 4),
        field("Rack", _input("mc-s7-rack", "number", value=0), "0 for a single rack.", "mc-s7-rack", 4),
        field("Slot", _input("mc-s7-slot", "number", placeholder="1"),
              "S7-1200/1500: 1, S7-300: 2, S7-400: see HW Config.", "mc-s7-slot", 4),
    ]), id="mc-group-S7", style={"display": "none"})
    opcua = html.Div(dbc.Row([
        field("Endpoint URL", _input("mc-opc-endpoint", placeholder="opc.tcp://192.168.1.20:4840/"),
              "As the server announces it, path included.", "mc-opc-endpoint", 12),
        field("Security policy", dbc.Select(id="mc-opc-policy", value="None", options=[
            {"label": p, "value": p} for p in ("None", "Basic256Sha256", "Aes128_Sha256_RsaOaep",
                                               "Aes256_Sha256_RsaPss")]),
              "None needs no certificate.", "mc-opc-policy", 4),
        field("Security mode", dbc.Select(id="mc-opc-mode", value="", options=[
            {"label": "(policy's default)", "value": ""}, {"label": "None", "value": "None"},
            {"label": "Sign", "value": "Sign"}, {"label": "SignAndEncrypt", "value": "SignAndEncrypt"}]),
              "", "mc-opc-mode", 4),
        field("Sign in", dbc.RadioItems(id="mc-opc-auth", value="anonymous", inline=True, options=[
            {"label": "Anonymous", "value": "anonymous"}, {"label": "User name", "value": "user"}]),
              "", None, 4),
        field("User name", _input("mc-opc-user"), "", "mc-opc-user", 6),
        field("Password", _input("mc-opc-password", "password", autoComplete="new-password"),
              "Never shown again; leave empty to keep the stored one.", "mc-opc-password", 6),
        field("Client certificate (path on the server)", _input("mc-opc-cert"),
              "Needed with a security policy; the server must trust it.", "mc-opc-cert", 6),
        field("Private key (path on the server)", _input("mc-opc-key"), "", "mc-opc-key", 6),
    ]), id="mc-group-OPCUA", style={"display": "none"})
    modbus = html.Div(dbc.Row([
        field("Unit id", _input("mc-mb-unit", "number", value=1),
              "Behind a gateway: the serial device's id.", "mc-mb-unit", 3),
        field("Byte order", dbc.Select(id="mc-mb-byte", value="big", options=[
            {"label": "big (AB)", "value": "big"}, {"label": "little (BA)", "value": "little"}]),
              "Inside each register.", "mc-mb-byte", 3),
        field("Word order", dbc.Select(id="mc-mb-word", value="big", options=[
            {"label": "big (high word first)", "value": "big"}, {"label": "little", "value": "little"}]),
              "Of 32/64-bit values.", "mc-mb-word", 3),
        field("Addresses", dbc.Select(id="mc-mb-base", value="0", options=[
            {"label": "0-based (HR0 = register 0)", "value": "0"},
            {"label": "1-based (HR1 = register 0)", "value": "1"}]), "As the device manual counts.", "mc-mb-base", 3),
    ]), id="mc-group-MODBUS", style={"display": "none"})
    return html.Div([common, address, logix, s7, opcua, modbus, html.Div(id="mc-settings-errors"),
                     _nav("mc-settings")])


def _nav(prefix: str, next_label: str = "Next") -> html.Div:
    return html.Div([dbc.Button("Back", id=f"{prefix}-back", color="secondary", outline=True, className="me-2"),
                     dbc.Button(next_label, id=f"{prefix}-next", color="primary")], className="mt-2")


def discover_panel() -> html.Div:
    s7 = html.Div([
        html.H6("Data block layout"),
        html.P("Classic S7 has no symbols: give the DB's layout (copy it from the DB editor, or import a CSV file).",
               className="small text-muted"),
        dbc.Row([
            field("DB number", _input("mc-s7-db", "number", value=1), "", None, 3),
            dbc.Col(dcc.Upload(dbc.Button("Import CSV file", color="secondary", outline=True), id="mc-s7-upload",
                               accept=".csv,.txt"), md=3, className="pt-4"),
        ]),
        dbc.Textarea(id="mc-s7-csv", value=S7_EXAMPLE, rows=8, className="font-monospace mb-2"),
        dbc.Button("Apply layout", id="mc-s7-apply", color="primary", size="sm"),
    ], id="mc-discover-S7", style={"display": "none"})
    modbus = html.Div([
        html.H6("Scan a range"),
        dbc.Row([
            field("Table", dbc.Select(id="mc-scan-table", value="HR", options=[
                {"label": t, "value": t} for t in ("HR", "IR", "C", "DI")]), "", None, 3),
            field("Start", _input("mc-scan-start", "number", value=0), "", None, 3),
            field("Count", _input("mc-scan-count", "number", value=100), "", None, 3),
        ]),
        html.Div(id="mc-scan-result", className="small mb-2"),
        dbc.Button("Add scanned to map", id="mc-scan-add", color="secondary", outline=True, size="sm",
                   className="mb-3"),
        html.H6("Register map"),
        dbc.Row([dbc.Col(dcc.Upload(dbc.Button("Import CSV file", color="secondary", outline=True),
                                    id="mc-mb-upload", accept=".csv,.txt"), md=3)], className="mb-2"),
        dbc.Textarea(id="mc-mb-map", value=MODBUS_EXAMPLE, rows=8, className="font-monospace mb-2"),
        dbc.Button("Apply map", id="mc-mb-apply", color="primary", size="sm"),
    ], id="mc-discover-MODBUS", style={"display": "none"})
    return html.Div([
        dbc.Button("Discover", id="mc-discover-run", color="primary", className="mb-2 me-2"),
        html.Span(id="mc-discover-status", className="small text-muted"),
        s7, modbus,
        html.Hr(),
        dbc.Row([
            dbc.Col(_input("mc-filter", placeholder="Filter by name, address or type"), md=6),
            dbc.Col([dbc.Button("Select all shown", id="mc-pick-shown", size="sm", color="secondary",
                                outline=True, className="me-1"),
                     dbc.Button("Select suggested", id="mc-pick-suggested", size="sm", color="secondary",
                                outline=True, className="me-1"),
                     dbc.Button("Clear", id="mc-pick-clear", size="sm", color="secondary", outline=True)], md=6),
        ], className="mb-2"),
        html.Div(id="mc-pick-count", className="small text-muted mb-1"),
        html.Div(dbc.Checklist(id="mc-pick", options=[], value=[]),
                 style={"maxHeight": "420px", "overflowY": "auto"}, className="border rounded p-2"),
        html.Div(id="mc-discover-errors"),
        _nav("mc-discover"),
    ])


def layout(machine=None, **_query):
    wizard = dbc.Card([
        dbc.CardHeader([html.Span("New machine", id="mc-wizard-title", className="fw-bold me-3"),
                        html.Span(id="mc-steps")]),
        dbc.CardBody([
            html.Div(id="mc-alert"),
            html.Div([html.P("Which kind of PLC?"), protocol_cards()], id="mc-panel-1"),
            html.Div(settings_form(), id="mc-panel-2", style={"display": "none"}),
            html.Div([
                dbc.Button("Test connection", id="mc-test-run", color="primary", className="mb-2"),
                dcc.Loading(html.Div(id="mc-test-result")),
                _nav("mc-test"),
            ], id="mc-panel-3", style={"display": "none"}),
            html.Div(discover_panel(), id="mc-panel-4", style={"display": "none"}),
            html.Div([
                html.P("Give each tag a role the OEE engine understands (suggested from the names), or none for a "
                       "process value. Value = raw × scale + offset; a deadband stores a value only when it moves "
                       "more than that.", className="small text-muted"),
                dbc.Switch(id="mc-preview-on", label="Live preview", value=True, className="mb-2"),
                html.Div(id="mc-preview-status", className="small text-muted mb-1"),
                html.Div(id="mc-map-table"),
                html.Div(id="mc-map-errors"),
                _nav("mc-map"),
            ], id="mc-panel-5", style={"display": "none"}),
            html.Div([
                html.Div(id="mc-summary"),
                html.Div([dbc.Button("Back", id="mc-save-back", color="secondary", outline=True, className="me-2"),
                          dbc.Button("Save", id="mc-save", color="success")], className="mt-2"),
                html.Div(id="mc-save-result", className="mt-3"),
                html.Div(id="mc-live", className="mt-2"),
            ], id="mc-panel-6", style={"display": "none"}),
        ]),
    ])
    return html.Div([
        dcc.Store(id="mc-step", data=1),
        dcc.Store(id="mc-draft", data={"pk": None, "protocol": None}),
        dcc.Store(id="mc-discovered", data=[]),
        dcc.Store(id="mc-saved", data=None),
        dcc.Store(id="mc-list-version", data=0),
        dcc.Store(id="mc-delete-target", data=None),
        dcc.Store(id="mc-edit-request", data=machine),
        dcc.Interval(id="mc-tick", interval=1500),
        dcc.Interval(id="mc-preview-tick", interval=1500, disabled=True),
        html.H2("Machines"),
        dbc.Row([
            dbc.Col([
                dbc.Button("New machine", id="mc-new", color="primary", className="mb-2"),
                html.Div(id="mc-list"),
            ], lg=5),
            dbc.Col(wizard, lg=7),
        ]),
        dbc.Modal([
            dbc.ModalHeader(dbc.ModalTitle("Delete machine")),
            dbc.ModalBody(id="mc-delete-text"),
            dbc.ModalFooter([dbc.Button("Cancel", id="mc-delete-cancel", color="secondary"),
                             dbc.Button("Delete machine and history", id="mc-delete-confirm", color="danger")]),
        ], id="mc-delete-modal", is_open=False),
    ])


# --- the machine list -----------------------------------------------------------------------------------------------


@callback(Output("mc-list", "children"), Input("mc-list-version", "data"))
def render_list(_version):
    total, machines = cs.list_machines(_engine(), limit=500)
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
        parts.append(f"{t['name']} {_show(v['value'])}")
        if len(parts) == 3:
            break
    return " · ".join(parts)


def _show(value) -> str:
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else f"{value:.6g}"
    if isinstance(value, list):
        return "[" + ", ".join(_show(v) for v in value[:4]) + (", …]" if len(value) > 4 else "]")
    return str(value)


@callback(Output({"type": "mc-row-state", "pk": ALL}, "children"),
          Output({"type": "mc-row-live", "pk": ALL}, "children"),
          Input("mc-tick", "n_intervals"), State({"type": "mc-row-state", "pk": ALL}, "id"))
def refresh_rows(_n, ids):
    states, lives = [], []
    rt = _runtime()
    for ident in ids:
        try:
            m = cs.get_machine(_engine(), ident["pk"])
        except cs.NotFound:
            states.append("deleted")
            lives.append("")
            continue
        status = service.machine_status(rt, m)
        badge = dbc.Badge(status["state"].replace("_", " "), color=STATE_COLORS.get(status["state"], "secondary"),
                          className="mc-state")
        title = (status["last_error"] or {}).get("message") or ""
        states.append(html.Span(badge, title=title))
        tags = cs.machine_tags(_engine(), m["id"])
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
        impact = cs.deletion_impact(_engine(), pk)
    except cs.NotFound:
        return False, "", None
    text = [
        html.P([html.Strong(f"{impact['machine_id']} ({impact['name']})"), " will be deleted with its connection and "
                f"its {impact['tags']} tags."]),
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
        removed = machine_admin.delete_machine(_runtime(), pk)
    except cs.NotFound:
        return False, version + 1, no_update
    return False, version + 1, dbc.Alert(f"Deleted {removed['machine_id']} with {removed['tags']} tags and "
                                         f"{removed['samples']:,} samples.", color="warning", dismissable=True,
                                         id="mc-deleted")


@callback(Output("mc-list-version", "data", allow_duplicate=True),
          Input({"type": "mc-toggle", "pk": ALL}, "n_clicks"), State("mc-list-version", "data"),
          prevent_initial_call=True)
def toggle(clicks, version):
    if not ctx.triggered_id or not ctx.triggered[0]["value"]:
        return no_update
    pk = ctx.triggered_id["pk"]
    m = cs.get_machine(_engine(), pk)
    machine_admin.set_enabled(_runtime(), pk, not m["enabled"])
    return version + 1


# --- navigation -------------------------------------------------------------------------------------------------


@callback([Output(f"mc-panel-{i}", "style") for i in range(1, 7)], Output("mc-steps", "children"),
          Output("mc-preview-tick", "disabled"), Input("mc-step", "data"), Input("mc-preview-on", "value"))
def show_step(step, preview_on):
    styles = [{} if i == step else {"display": "none"} for i in range(1, 7)]
    crumbs = [dbc.Badge(f"{i} {name}", color="primary" if i == step else ("success" if i < step else "light"),
                        text_color=None if i <= step else "dark", className="me-1", id=f"mc-crumb-{i}")
              for i, name in enumerate(STEPS, start=1)]
    return *styles, crumbs, not (step == 5 and preview_on)


@callback(Output("mc-step", "data", allow_duplicate=True),
          Input("mc-settings-back", "n_clicks"), Input("mc-test-back", "n_clicks"),
          Input("mc-discover-back", "n_clicks"), Input("mc-map-back", "n_clicks"), Input("mc-save-back", "n_clicks"),
          State("mc-step", "data"), prevent_initial_call=True)
def go_back(*args):
    step = args[-1]
    return max(1, step - 1) if ctx.triggered[0]["value"] else no_update


@callback(Output("mc-step", "data", allow_duplicate=True), Input("mc-test-next", "n_clicks"),
          State("mc-draft", "data"), prevent_initial_call=True)
def after_test(n, draft):
    if not n:
        return no_update
    return 4 if draft.get("tested") else no_update


def _lines():
    return [{"label": "(no line)", "value": ""}] + [{"label": o["path"], "value": str(o["id"])}
                                                    for o in cs.line_options(_engine())]


@callback(Output("mc-step", "data", allow_duplicate=True), Output("mc-draft", "data", allow_duplicate=True),
          Output("mc-wizard-title", "children"), Output("mc-line", "options"),
          Output("mc-discovered", "data", allow_duplicate=True), Output("mc-pick", "value", allow_duplicate=True),
          Output("mc-save-result", "children", allow_duplicate=True), Output("mc-test-result", "children"),
          Output("mc-saved", "data", allow_duplicate=True),
          Input("mc-new", "n_clicks"), Input({"type": "mc-protocol", "protocol": ALL}, "n_clicks"),
          State("mc-draft", "data"), prevent_initial_call=True)
def choose_protocol(_new, _cards, draft):
    """New machine: back to the cards. A card: that protocol, on to its settings."""
    if ctx.triggered_id == "mc-new":
        return 1, {"pk": None, "protocol": None}, "New machine", _lines(), [], [], None, None, None
    if not ctx.triggered[0]["value"]:
        return (no_update,) * 9
    protocol = ctx.triggered_id["protocol"]
    keep = draft if draft.get("pk") and draft.get("protocol") == protocol else {"pk": None}
    return (2, {**keep, "protocol": protocol, "tested": False}, f"New {PROTOCOL_LABELS[protocol]} machine"
            if not keep.get("pk") else no_update, _lines(), [], [], None, None, None)


@callback([Output(f"mc-group-{p}", "style") for p in PROTOCOLS], Output("mc-address-group", "style"),
          [Output(f"mc-discover-{p}", "style") for p in ("S7", "MODBUS")], Output("mc-port", "placeholder"),
          Output("mc-discover-run", "children"),
          Input("mc-draft", "data"))
def protocol_fields(draft):
    protocol = (draft or {}).get("protocol")
    shown = [{} if p == protocol else {"display": "none"} for p in PROTOCOLS]
    label = {"MODBUS": "Scan", "S7": "List data blocks"}.get(protocol, "Discover tags")
    return (*shown, {"display": "none"} if protocol == "OPCUA" else {},
            *[{} if p == protocol else {"display": "none"} for p in ("S7", "MODBUS")],
            str(DEFAULT_PORTS.get(protocol, "")), label)


# --- step 2: settings -------------------------------------------------------------------------------------------

SETTING_INPUTS = ["mc-machine-id", "mc-name", "mc-description", "mc-line", "mc-poll", "mc-host", "mc-port",
                  "mc-logix-slot", "mc-logix-route", "mc-logix-family", "mc-s7-cpu", "mc-s7-rack", "mc-s7-slot",
                  "mc-opc-endpoint", "mc-opc-policy", "mc-opc-mode", "mc-opc-auth", "mc-opc-user",
                  "mc-opc-password", "mc-opc-cert", "mc-opc-key", "mc-mb-unit", "mc-mb-byte", "mc-mb-word",
                  "mc-mb-base"]
FEEDBACK_INPUTS = [i for i in SETTING_INPUTS if i != "mc-opc-auth"]
FIELD_TO_INPUT = {
    "machine_id": "mc-machine-id", "name": "mc-name", "description": "mc-description", "line": "mc-line",
    "poll_interval_ms": "mc-poll", "ip_address": "mc-host", "port": "mc-port",
    "ETHERNET_IP:slot": "mc-logix-slot", "ETHERNET_IP:route": "mc-logix-route",
    "ETHERNET_IP:plc_family": "mc-logix-family", "S7:cpu_type": "mc-s7-cpu", "S7:rack": "mc-s7-rack",
    "S7:slot": "mc-s7-slot", "OPCUA:endpoint": "mc-opc-endpoint", "OPCUA:security_policy": "mc-opc-policy",
    "OPCUA:security_mode": "mc-opc-mode", "OPCUA:username": "mc-opc-user", "OPCUA:password": "mc-opc-password",
    "OPCUA:certificate": "mc-opc-cert", "OPCUA:private_key": "mc-opc-key", "MODBUS:unit_id": "mc-mb-unit",
    "MODBUS:byte_order": "mc-mb-byte", "MODBUS:word_order": "mc-mb-word", "MODBUS:zero_based": "mc-mb-base",
}


def _blank(v):
    return None if v in ("", None) else v


def form_machine(protocol: str, v: dict, pk: int | None) -> dict:
    """The settings form as a machine body for core.machine_config.validate_machine."""
    if protocol == "ETHERNET_IP":
        config = {"slot": v["mc-logix-slot"], "route": _blank(v["mc-logix-route"]),
                  "plc_family": v["mc-logix-family"]}
    elif protocol == "S7":
        config = {"cpu_type": v["mc-s7-cpu"], "rack": v["mc-s7-rack"], "slot": v["mc-s7-slot"]}
    elif protocol == "OPCUA":
        user = v["mc-opc-auth"] == "user"
        password = _blank(v["mc-opc-password"])
        if user and password is None and pk is not None:
            password = SECRET  # keep the stored one
        config = {"endpoint": _blank(v["mc-opc-endpoint"]), "security_policy": v["mc-opc-policy"],
                  "security_mode": _blank(v["mc-opc-mode"]), "username": _blank(v["mc-opc-user"]) if user else None,
                  "password": password if user else None, "certificate": _blank(v["mc-opc-cert"]),
                  "private_key": _blank(v["mc-opc-key"])}
    else:
        config = {"unit_id": v["mc-mb-unit"], "byte_order": v["mc-mb-byte"], "word_order": v["mc-mb-word"],
                  "zero_based": v["mc-mb-base"] != "1"}
    body = {"name": v["mc-name"], "machine_id": v["mc-machine-id"], "description": v["mc-description"],
            "protocol": protocol, "protocol_config": {k: x for k, x in config.items() if x is not None},
            "poll_interval_ms": v["mc-poll"], "line": int(v["mc-line"]) if v["mc-line"] else None}
    if protocol != "OPCUA":
        body["ip_address"] = _blank(v["mc-host"])
        body["port"] = v["mc-port"]
    return body


def _stored_config(pk):
    return cs.get_machine(_engine(), pk)["protocol_config"] if pk else None


def check_settings(draft: dict, values: dict) -> tuple[dict | None, dict]:
    """(clean machine, {}) or (None, field errors). The same validation as the API, plus: is the id free."""
    protocol, pk = draft["protocol"], draft.get("pk")
    try:
        clean = validate_machine(form_machine(protocol, values, pk), stored_config=_stored_config(pk))
    except ValidationError as exc:
        return None, exc.fields
    try:
        other = cs.find_machine(_engine(), clean["machine_id"])
        if other != pk and not str(clean["machine_id"]).isdigit():
            return None, {"machine_id": f"{clean['machine_id']!r} is already used by another machine"}
    except cs.NotFound:
        pass
    return clean, {}


def _feedback(protocol: str, fields: dict):
    inputs = {}
    for key, message in fields.items():
        name = key.split(".", 1)[1] if key.startswith("protocol_config.") else key
        target = FIELD_TO_INPUT.get(f"{protocol}:{name}") or FIELD_TO_INPUT.get(name)
        if target and target not in inputs:
            inputs[target] = message
    invalid = [i in inputs for i in FEEDBACK_INPUTS]
    texts = [inputs.get(i, "") for i in FEEDBACK_INPUTS]
    unplaced = {k: v for k, v in fields.items()
                if (FIELD_TO_INPUT.get(f"{protocol}:{k.split('.', 1)[-1]}") or FIELD_TO_INPUT.get(k)) is None}
    box = dbc.Alert([html.Div(f"{k}: {v}") for k, v in unplaced.items()], color="danger",
                    id="mc-settings-unplaced") if unplaced else None
    return invalid, texts, box


@callback(Output("mc-step", "data", allow_duplicate=True), Output("mc-draft", "data", allow_duplicate=True),
          [Output(i, "invalid") for i in FEEDBACK_INPUTS], [Output(f"{i}-fb", "children") for i in FEEDBACK_INPUTS],
          Output("mc-settings-errors", "children"),
          Input("mc-settings-next", "n_clicks"), State("mc-draft", "data"), [State(i, "value") for i in SETTING_INPUTS],
          prevent_initial_call=True)
def settings_next(n, draft, *values):
    if not n or not draft.get("protocol"):
        return (no_update,) * (3 + 2 * len(FEEDBACK_INPUTS))
    v = dict(zip(SETTING_INPUTS, values, strict=True))
    clean, fields = check_settings(draft, v)
    invalid, texts, box = _feedback(draft["protocol"], fields)
    if clean is None:
        return no_update, no_update, *invalid, *texts, box
    return 3, {**draft, "tested": False}, *invalid, *texts, None


# --- step 3: test ------------------------------------------------------------------------------------------------


def _connection(draft: dict, values: dict) -> dict | None:
    clean, _ = check_settings(draft, values)
    return clean


@callback(Output("mc-test-result", "children", allow_duplicate=True), Output("mc-draft", "data", allow_duplicate=True),
          Input("mc-test-run", "n_clicks"), State("mc-draft", "data"), [State(i, "value") for i in SETTING_INPUTS],
          prevent_initial_call=True)
def run_test(n, draft, *values):
    if not n:
        return no_update, no_update
    clean = _connection(draft, dict(zip(SETTING_INPUTS, values, strict=True)))
    if clean is None:
        return dbc.Alert("The settings are not valid any more: go back one step.", color="danger"), no_update
    result = service.test_connection(clean["protocol"], clean["ip_address"], clean["port"], clean["protocol_config"])
    rows = [html.Tr([html.Td("✔" if s["ok"] else "✘", className="text-success" if s["ok"] else "text-danger"),
                     html.Td(s["name"]), html.Td(f"{s['duration_ms']:.0f} ms"),
                     html.Td([s["detail"]] + ([html.Div(["What to try: ", s["suggestion"]], className="text-danger")]
                                               if s.get("suggestion") else []))], className="mc-test-step")
            for s in result["steps"]]
    if result["ok"]:
        head = dbc.Alert("Connected: every step passed.", color="success", id="mc-test-ok")
    else:
        head = dbc.Alert([html.Strong(result.get("error_text") or result["error"]), f": {result['message']}",
                          html.Div(result.get("suggestion") or "", className="mt-1")], color="danger",
                         id="mc-test-failed")
    identity = result.get("identity") or {}
    ident = html.Small(", ".join(f"{k}: {v}" for k, v in identity.items() if v not in (None, "", [], {})
                                 and k not in ("namespaces", "programs")), className="text-muted")
    return [head, dbc.Table(html.Tbody(rows), size="sm", id="mc-test-steps"), ident], {**draft,
                                                                                      "tested": bool(result["ok"])}


# --- step 4: discover --------------------------------------------------------------------------------------------


def _rows_from(tags: list[dict], source: str) -> list[dict]:
    rows = []
    for r in service.flatten(tags):
        rows.append({"address": r["address"], "data_type": r["data_type"], "name": r["name"] or r["address"],
                     "description": r.get("description") or "", "value": r.get("value"), "depth": r["depth"],
                     "selectable": not r["container"] and bool(r["data_type"]) and r["data_type"] != "DB",
                     "source": source})
    return rows


def _label(r: dict):
    value = "" if r.get("value") is None else f" = {_show(r['value'])}"
    return html.Span([html.Span(r["name"], className="fw-semibold"), f"  {r['address']} · {r['data_type']}{value}",
                      html.Small(f"  {r['description']}", className="text-muted") if r["description"] else ""],
                     style={"paddingLeft": f"{r['depth'] * 1.2}rem"})


def _options(rows: list[dict], text: str, selected: list[str]) -> list[dict]:
    text = (text or "").strip().lower()
    out = []
    for r in rows:
        shown = not text or text in f"{r['name']} {r['address']} {r['data_type']} {r['description']}".lower()
        if shown or r["address"] in selected:
            out.append({"label": _label(r), "value": r["address"], "disabled": not r["selectable"]})
    return out


def _decode_upload(contents: str | None) -> str | None:
    if not contents:
        return None
    try:
        return base64.b64decode(contents.split(",", 1)[1]).decode("utf-8-sig", errors="replace")
    except (IndexError, ValueError):
        return None


@callback(Output("mc-s7-csv", "value"), Input("mc-s7-upload", "contents"), prevent_initial_call=True)
def s7_upload(contents):
    return _decode_upload(contents) or no_update


@callback(Output("mc-mb-map", "value", allow_duplicate=True), Input("mc-mb-upload", "contents"),
          prevent_initial_call=True)
def mb_upload(contents):
    return _decode_upload(contents) or no_update


@callback(Output("mc-discovered", "data", allow_duplicate=True), Output("mc-discover-status", "children"),
          Output("mc-discover-errors", "children", allow_duplicate=True), Output("mc-scan-result", "children"),
          Output("mc-s7-db", "value"),
          Input("mc-discover-run", "n_clicks"), State("mc-draft", "data"), State("mc-discovered", "data"),
          State("mc-scan-table", "value"), State("mc-scan-start", "value"), State("mc-scan-count", "value"),
          [State(i, "value") for i in SETTING_INPUTS], prevent_initial_call=True)
def run_discover(n, draft, rows, table, start, count, *values):
    if not n:
        return (no_update,) * 5
    clean = _connection(draft, dict(zip(SETTING_INPUTS, values, strict=True)))
    if clean is None:
        return no_update, "", dbc.Alert("The settings are not valid any more: go back.", color="danger"), \
            no_update, no_update
    protocol = clean["protocol"]
    options = {"table": table, "start": start, "count": count} if protocol == "MODBUS" else {}
    result = service.discover(protocol, clean["ip_address"], clean["port"], clean["protocol_config"], **options)
    if not result["ok"]:
        return no_update, "", dbc.Alert([html.Strong(result["error_text"]), f": {result['message']}",
                                         html.Div(result.get("suggestion", ""))], color="danger",
                                        id="mc-discover-failed"), no_update, no_update
    took = f"{result['count']} found in {result['duration_ms']:.0f} ms"
    if protocol == "MODBUS":
        found = service.flatten(result["tags"])
        cells = [html.Span(f"{t['address']}={t['value']}", className="me-2 mc-scanned") for t in found[:400]]
        return no_update, took, None, [html.Div(f"{len(found)} addresses answered:"), html.Div(cells)], no_update
    if protocol == "S7":
        dbs = result["tags"]
        text = ", ".join(f"{t['address']} ({t['description']})" for t in dbs) or "no data blocks listed"
        first = int(dbs[0]["address"][2:]) if dbs else no_update
        return no_update, f"{took}: {text}", None, no_update, first
    return _rows_from(result["tags"], "discovered"), took, None, no_update, no_update


@callback(Output("mc-discovered", "data", allow_duplicate=True),
          Output("mc-discover-errors", "children", allow_duplicate=True),
          Input("mc-s7-apply", "n_clicks"), Input("mc-mb-apply", "n_clicks"),
          State("mc-draft", "data"), State("mc-s7-csv", "value"), State("mc-s7-db", "value"),
          State("mc-mb-map", "value"), [State(i, "value") for i in SETTING_INPUTS], prevent_initial_call=True)
def apply_layout(_s7, _mb, draft, s7_csv, db, mb_csv, *values):
    if not ctx.triggered[0]["value"]:
        return no_update, no_update
    if ctx.triggered_id == "mc-s7-apply":
        result = service.parse_s7_layout(s7_csv, db or 1)
    else:
        v = dict(zip(SETTING_INPUTS, values, strict=True))
        config = form_machine("MODBUS", v, draft.get("pk"))["protocol_config"]
        result = service.parse_register_map(mb_csv, config)
    if not result["ok"]:
        return no_update, dbc.Alert(result["message"], color="danger", id="mc-layout-error")
    return _rows_from(result["tags"], "layout"), None


@callback(Output("mc-mb-map", "value", allow_duplicate=True), Input("mc-scan-add", "n_clicks"),
          State("mc-mb-map", "value"), State("mc-scan-result", "children"), prevent_initial_call=True)
def add_scanned(n, text, scanned):
    if not n or not scanned:
        return no_update
    found = []

    def walk(node):
        if isinstance(node, dict):
            props = node.get("props", {})
            if "mc-scanned" in (props.get("className") or ""):
                found.append(str(props.get("children")).split("=", 1)[0])
            for child in (props.get("children") if isinstance(props.get("children"), list) else
                          [props.get("children")]):
                walk(child)
        elif isinstance(node, list):
            for child in node:
                walk(child)

    walk(scanned)
    have = {line.split(",")[1].strip().upper() for line in (text or "").splitlines()
            if line.count(",") >= 2 and not line.startswith("#")}
    extra = [f"{a},{a},{'BOOL' if a.startswith(('C', 'DI')) else 'UINT16'}" for a in found if a.upper() not in have]
    return (text or "").rstrip("\n") + "\n" + "\n".join(extra) + "\n"


@callback(Output("mc-pick", "options"), Output("mc-pick", "value", allow_duplicate=True),
          Output("mc-pick-count", "children"),
          Input("mc-discovered", "data"), Input("mc-filter", "value"), Input("mc-pick-shown", "n_clicks"),
          Input("mc-pick-suggested", "n_clicks"), Input("mc-pick-clear", "n_clicks"), Input("mc-pick", "value"),
          prevent_initial_call=True)
def pick(rows, text, _shown, _suggested, _clear, selected):
    rows = rows or []
    selected = list(selected or [])
    trigger = ctx.triggered_id
    selectable = [r for r in rows if r["selectable"]]
    if trigger == "mc-pick-clear":
        selected = []
    elif trigger == "mc-pick-shown":
        shown = {o["value"] for o in _options(rows, text, []) if not o["disabled"]}
        selected = selected + [r["address"] for r in selectable if r["address"] in shown and r["address"]
                               not in selected]
    elif trigger == "mc-pick-suggested":
        best = suggest_roles([r["name"] for r in selectable])
        seen: set[str] = set()
        for r in selectable:  # one tag per role: the first of equal names (controller Running, not a program's)
            if r["name"] in best and r["name"] not in seen:
                seen.add(r["name"])
                if r["address"] not in selected:
                    selected.append(r["address"])
    elif trigger == "mc-discovered":
        known = {r["address"] for r in rows}
        selected = [a for a in selected if a in known]
    return _options(rows, text, selected), selected, f"{len(selected)} of {len(selectable)} selected"


@callback(Output("mc-step", "data", allow_duplicate=True), Output("mc-map-table", "children"),
          Output("mc-discover-errors", "children", allow_duplicate=True),
          Input("mc-discover-next", "n_clicks"), State("mc-pick", "value"), State("mc-discovered", "data"),
          State("mc-draft", "data"), prevent_initial_call=True)
def discover_next(n, selected, rows, draft):
    if not n:
        return no_update, no_update, no_update
    by_address = {r["address"]: r for r in rows or []}
    chosen = [by_address[a] for a in selected or [] if a in by_address]
    kept = {t["address"]: t for t in draft.get("tags") or [] if t["address"] in (selected or [])}  # edits keep theirs
    if not chosen and not kept:
        return no_update, no_update, dbc.Alert("Select at least one tag to collect.", color="danger",
                                               id="mc-pick-none")
    tags = list(kept.values())
    used = {t["name"] for t in tags}
    for r in chosen:
        if r["address"] not in kept:
            name = _tag_name(r["name"])
            name = name if name not in used else r["address"]  # Program:Conveyor.Running beside Running
            used.add(name)
            tags.append({"name": name, "address": r["address"], "data_type": r["data_type"],
                         "role": None, "scale": 1.0, "offset": 0.0, "deadband": 0.0, "sampling_interval_ms": None})
    suggested = suggest_roles([t["name"] for t in tags])
    taken = {t["role"] for t in tags if t.get("role")}
    for t in tags:
        role = suggested.get(t["name"])
        if not t.get("role") and role and role not in taken:
            t["role"] = role
            taken.add(role)
    return 5, map_table(tags), None


def _tag_name(name: str) -> str:
    return name.rsplit(".", 1)[-1] if name.startswith("LINE-") or ";s=" in name else name


# --- step 5: map ------------------------------------------------------------------------------------------------

MAP_FIELDS = ("name", "data_type", "role", "scale", "offset", "deadband", "sampling_interval_ms")


def map_table(tags: list[dict]) -> dbc.Table:
    roles = [{"label": "(process value)", "value": ""}] + [{"label": r, "value": r} for r in TAG_ROLES]
    rows = []
    for i, t in enumerate(tags):
        rows.append(html.Tr([
            html.Td([dbc.Input(id={"type": "mc-map-name", "index": i}, value=t["name"], size="sm"),
                     html.Small(t["address"], className="text-muted", id={"type": "mc-map-address", "index": i})]),
            html.Td(dbc.Input(id={"type": "mc-map-data_type", "index": i}, value=t["data_type"], size="sm",
                              style={"width": "7rem"})),
            html.Td(dbc.Select(id={"type": "mc-map-role", "index": i}, options=roles, value=t.get("role") or "",
                               size="sm", className=f"mc-role-{i}")),
            html.Td(dbc.Input(id={"type": "mc-map-scale", "index": i}, type="number", value=t.get("scale", 1.0),
                              size="sm", style={"width": "5rem"})),
            html.Td(dbc.Input(id={"type": "mc-map-offset", "index": i}, type="number", value=t.get("offset", 0.0),
                              size="sm", style={"width": "5rem"})),
            html.Td(dbc.Input(id={"type": "mc-map-deadband", "index": i}, type="number",
                              value=t.get("deadband", 0.0), size="sm", style={"width": "5rem"})),
            html.Td(dbc.Input(id={"type": "mc-map-sampling_interval_ms", "index": i}, type="number",
                              value=t.get("sampling_interval_ms"), placeholder="poll", size="sm",
                              style={"width": "6rem"})),
            html.Td(html.Span("…", id={"type": "mc-map-value", "index": i}, className="mc-preview")),
        ]))
    head = html.Thead(html.Tr([html.Th(h) for h in ("Tag", "Type", "Role", "Scale", "Offset", "Deadband",
                                                    "Interval ms", "Preview")]))
    return dbc.Table([head, html.Tbody(rows)], size="sm", responsive=True, id="mc-map")


def _map_states():
    return ([State({"type": "mc-map-address", "index": ALL}, "children")]
            + [State({"type": f"mc-map-{f}", "index": ALL}, "value") for f in MAP_FIELDS])


def collect_tags(addresses, *columns) -> list[dict]:
    tags = []
    for i, address in enumerate(addresses or []):
        row = {"address": address}
        for f, col in zip(MAP_FIELDS, columns, strict=True):
            row[f] = col[i]
        row["role"] = row["role"] or None
        for f in ("scale", "offset", "deadband"):
            row[f] = {"scale": 1.0}.get(f, 0.0) if row[f] in (None, "") else row[f]
        row["sampling_interval_ms"] = row["sampling_interval_ms"] or None
        tags.append(row)
    return tags


@callback(Output({"type": "mc-map-value", "index": ALL}, "children"), Output("mc-preview-status", "children"),
          Input("mc-preview-tick", "n_intervals"), State("mc-draft", "data"),
          [State(i, "value") for i in SETTING_INPUTS], *_map_states(), prevent_initial_call=True)
def preview(_n, draft, *rest):
    values = dict(zip(SETTING_INPUTS, rest[:len(SETTING_INPUTS)], strict=True))
    tags = collect_tags(*rest[len(SETTING_INPUTS):])
    clean = _connection(draft, values)
    if clean is None or not tags:
        return ["…"] * len(tags), ""
    named = [{**t, "name": f"#{i}"} for i, t in enumerate(tags)]
    result = service.preview_read(clean["protocol"], clean["ip_address"], clean["port"], clean["protocol_config"],
                                  named)
    if not result["ok"]:
        return ["—"] * len(tags), dbc.Alert(f"{result['error_text']}: {result['message']}", color="warning",
                                            className="py-1")
    out = []
    for i in range(len(tags)):
        v = result["values"].get(f"#{i}", {})
        if v.get("quality") == "good":
            out.append(html.Span(_show(v["value"]), className="text-success"))
        else:
            out.append(html.Span(v.get("reason") or v.get("quality") or "—", className="text-danger small"))
    return out, f"Read at {time.strftime('%H:%M:%S')} in {result['duration_ms']:.0f} ms"


@callback(Output("mc-step", "data", allow_duplicate=True), Output("mc-map-errors", "children"),
          Output("mc-draft", "data", allow_duplicate=True), Output("mc-summary", "children"),
          Input("mc-map-next", "n_clicks"), State("mc-draft", "data"),
          [State(i, "value") for i in SETTING_INPUTS], *_map_states(), prevent_initial_call=True)
def map_next(n, draft, *rest):
    if not n:
        return no_update, no_update, no_update, no_update
    values = dict(zip(SETTING_INPUTS, rest[:len(SETTING_INPUTS)], strict=True))
    tags = collect_tags(*rest[len(SETTING_INPUTS):])
    clean = _connection(draft, values)
    if clean is None:
        return no_update, dbc.Alert("The settings are not valid any more: go back.", color="danger"), \
            no_update, no_update
    try:
        checked = validate_tags(clean["protocol"], clean["protocol_config"], tags)
    except ValidationError as exc:
        return no_update, dbc.Alert([html.Div(f"{k}: {v}") for k, v in exc.fields.items()], color="danger",
                                    id="mc-map-invalid"), no_update, no_update
    roles = [t["role"] for t in checked if t["role"]]
    missing = [r for r in ("counter.good", "counter.total") if r not in roles]
    hint = [] if roles and not (len(missing) == 2) else [dbc.Alert(
        "No counter is mapped: OEE needs counter.total or counter.good (and a state role) to be computed.",
        color="warning")]
    where = clean["protocol_config"].get("endpoint") or f"{clean['ip_address']}:{clean['port']}"
    summary = [html.H5(f"{clean['machine_id']} · {clean['name']}"),
               html.P(f"{PROTOCOL_LABELS[clean['protocol']]} at {where}, read every {clean['poll_interval_ms']} ms; "
                      f"{len(checked)} tags, roles: {', '.join(roles) or 'none'}."), *hint]
    return 6, None, {**draft, "tags": checked}, summary


# --- step 6: save -------------------------------------------------------------------------------------------------


@callback(Output("mc-save-result", "children", allow_duplicate=True), Output("mc-saved", "data"),
          Output("mc-list-version", "data", allow_duplicate=True), Output("mc-draft", "data", allow_duplicate=True),
          Input("mc-save", "n_clicks"), State("mc-draft", "data"), State("mc-list-version", "data"),
          [State(i, "value") for i in SETTING_INPUTS], prevent_initial_call=True)
def save(n, draft, version, *values):
    if not n:
        return no_update, no_update, no_update, no_update
    v = dict(zip(SETTING_INPUTS, values, strict=True))
    pk = draft.get("pk")
    body = {**form_machine(draft["protocol"], v, pk), "tags": draft.get("tags") or []}
    try:
        clean = validate_machine(body, stored_config=_stored_config(pk))
        machine = machine_admin.save_machine(_runtime(), clean, pk)
    except ValidationError as exc:
        return dbc.Alert([html.Div(f"{k}: {m}") for k, m in exc.fields.items()], color="danger",
                         id="mc-save-invalid"), no_update, no_update, no_update
    except cs.NotFound:
        return dbc.Alert("The machine was deleted meanwhile.", color="danger"), no_update, no_update, no_update
    text = (f"Saved {machine['machine_id']} with {machine['tag_count']} tags; the collectors poll it now, no "
            "restart needed.")
    return (dbc.Alert(text, color="success", id="mc-saved-ok"), machine["id"], version + 1,
            {**draft, "pk": machine["id"]})


@callback(Output("mc-live", "children"), Input("mc-tick", "n_intervals"), State("mc-saved", "data"))
def live(_n, pk):
    if not pk:
        return None
    try:
        m = cs.get_machine(_engine(), pk)
    except cs.NotFound:
        return None
    rt = _runtime()
    tags = cs.machine_tags(_engine(), pk)
    values = service.live_values(rt, [t["id"] for t in tags])
    status = service.machine_status(rt, m)
    rows = []
    for t in tags:
        v = values.get(t["id"])
        shown = "waiting for the first read" if v is None else (_show(v["value"]) if v["quality"] == "good" else
                                                                f"{v['quality']}: {v['reason']}")
        rows.append(html.Tr([html.Td(t["name"]), html.Td(t["role"] or ""), html.Td(shown, className="mc-live-value"),
                             html.Td(v["quality"] if v else "", className=f"mc-live-q-{(v or {}).get('quality')}")],
                            id=f"mc-live-{t['name']}"))
    return dbc.Card([dbc.CardHeader(["Live values from the collector · state ",
                                     dbc.Badge(status["state"].replace("_", " "), id="mc-live-state",
                                               color=STATE_COLORS.get(status["state"], "secondary"))]),
                     dbc.Table(html.Tbody(rows), size="sm", className="mb-0", id="mc-live-table")])


# --- edit an existing machine ---------------------------------------------------------------------------------


@callback(Output("mc-step", "data", allow_duplicate=True), Output("mc-draft", "data", allow_duplicate=True),
          Output("mc-wizard-title", "children", allow_duplicate=True),
          Output("mc-line", "options", allow_duplicate=True),
          [Output(i, "value", allow_duplicate=True) for i in SETTING_INPUTS],
          Output("mc-discovered", "data", allow_duplicate=True), Output("mc-pick", "value", allow_duplicate=True),
          Output("mc-saved", "data", allow_duplicate=True),
          Input({"type": "mc-edit", "pk": ALL}, "n_clicks"), Input("mc-edit-request", "data"),
          prevent_initial_call="initial_duplicate")
def edit(_clicks, requested):
    if ctx.triggered_id in (None, "mc-edit-request"):  # the page opened with ?machine=LINE-017
        if not requested:
            return (no_update,) * (4 + len(SETTING_INPUTS) + 3)
        try:
            pk = cs.find_machine(_engine(), requested)
        except cs.NotFound:
            return (no_update,) * (4 + len(SETTING_INPUTS) + 3)
    else:
        if not ctx.triggered_id or not ctx.triggered[0]["value"]:
            return (no_update,) * (4 + len(SETTING_INPUTS) + 3)
        pk = ctx.triggered_id["pk"]
    m = cs.get_machine(_engine(), pk)
    tags = [{k: t[k] for k in ("name", "address", "data_type", "role", "scale", "offset", "deadband",
                               "sampling_interval_ms")} for t in cs.machine_tags(_engine(), pk)]
    c = m["protocol_config"] or {}
    v = {i: no_update for i in SETTING_INPUTS}
    v.update({"mc-machine-id": m["machine_id"], "mc-name": m["name"], "mc-description": m["description"],
              "mc-line": str(m["line"]) if m["line"] else "", "mc-poll": m["poll_interval_ms"],
              "mc-host": m["ip_address"], "mc-port": m["port"]})
    p = m["protocol"]
    if p == "ETHERNET_IP":
        v.update({"mc-logix-slot": c.get("slot", 0), "mc-logix-route": c.get("route") or "",
                  "mc-logix-family": c.get("plc_family", "ControlLogix")})
    elif p == "S7":
        v.update({"mc-s7-cpu": c.get("cpu_type", "S7-1200"), "mc-s7-rack": c.get("rack", 0),
                  "mc-s7-slot": c.get("slot")})
    elif p == "OPCUA":
        v.update({"mc-opc-endpoint": c.get("endpoint") or f"opc.tcp://{m['ip_address']}:{m['port']}/",
                  "mc-opc-policy": c.get("security_policy", "None"), "mc-opc-mode": c.get("security_mode") or "",
                  "mc-opc-auth": "user" if c.get("username") else "anonymous", "mc-opc-user": c.get("username") or "",
                  "mc-opc-password": "",  # never put on the page; empty keeps the stored one
                  "mc-opc-cert": c.get("certificate") or "", "mc-opc-key": c.get("private_key") or ""})
    elif p == "MODBUS":
        v.update({"mc-mb-unit": c.get("unit_id", 1), "mc-mb-byte": c.get("byte_order", "big"),
                  "mc-mb-word": c.get("word_order", "big"), "mc-mb-base": "0" if c.get("zero_based", True) else "1"})
    draft = {"pk": pk, "protocol": p, "tested": False, "tags": tags}
    rows = [{"address": t["address"], "data_type": t["data_type"], "name": t["name"], "description": "configured",
             "value": None, "depth": 0, "selectable": True, "source": "configured"} for t in tags]
    return (2, draft, f"Edit {m['machine_id']}", _lines(), *[v[i] for i in SETTING_INPUTS], rows,
            [t["address"] for t in tags], None)
