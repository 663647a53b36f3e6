"""Step 1 of the machine wizard: the kind of PLC (a card per protocol), and which fields and discovery tools the
later steps show for it. "New machine" starts here."""
from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import ALL, Input, Output, State, callback, ctx, html, no_update

from collectors.base import PROTOCOL_DEFAULT_PORTS
from config.validation import PROTOCOL_LABELS
from db.models import PROTOCOLS
from pages.machine_config.forms import line_options

BROKER_PROTOCOLS = ("SPARKPLUG_B", "MQTT")  # the address is an MQTT broker's; they share its sign-in and TLS
CARD_TEXT = {
    "ETHERNET_IP": "ControlLogix and CompactLogix over EtherNet/IP: reads tags by name, lists the controller's tags.",
    "S7": "S7-300/400/1200/1500 over S7comm (ISO-on-TCP, port 102): data blocks, merkers, inputs and outputs.",
    "OPCUA": "Any OPC-UA server: browse its address space, anonymous or user name and password, with security.",
    "MODBUS": "Modbus TCP devices and gateways: holding and input registers, coils, discrete inputs.",
    "SPARKPLUG_B": "An edge node publishing Sparkplug B through an MQTT broker: its BIRTH metrics, values as "
                   "they are published.",
    "MQTT": "JSON (or plain values) on MQTT topics, e.g. a Unified Namespace: a topic, or a field of its JSON.",
}


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


@callback(Output("mc-step", "data", allow_duplicate=True), Output("mc-draft", "data", allow_duplicate=True),
          Output("mc-wizard-title", "children"), Output("mc-line", "options"),
          Output("mc-discovered", "data", allow_duplicate=True), Output("mc-pick", "value", allow_duplicate=True),
          Output("mc-save-result", "children", allow_duplicate=True), Output("mc-test-result", "children"),
          Output("mc-saved", "data", allow_duplicate=True), Output("mc-port", "value", allow_duplicate=True),
          Input("mc-new", "n_clicks"), Input({"type": "mc-protocol", "protocol": ALL}, "n_clicks"),
          State("mc-draft", "data"), prevent_initial_call=True)
def choose_protocol(_new, _cards, draft):
    """New machine: back to the cards. A card: that protocol, on to its settings (a new machine's port filled in
    with the protocol's default; an edited machine keeps its own)."""
    if ctx.triggered_id == "mc-new":
        return 1, {"pk": None, "protocol": None}, "New machine", line_options(), [], [], None, None, None, None
    if not ctx.triggered[0]["value"]:
        return (no_update,) * 10
    protocol = ctx.triggered_id["protocol"]
    keep = draft if draft.get("pk") and draft.get("protocol") == protocol else {"pk": None}
    port = no_update if keep.get("pk") else PROTOCOL_DEFAULT_PORTS.get(protocol)
    return (2, {**keep, "protocol": protocol, "tested": False}, f"New {PROTOCOL_LABELS[protocol]} machine"
            if not keep.get("pk") else no_update, line_options(), [], [], None, None, None, port)


@callback([Output(f"mc-group-{p}", "style") for p in PROTOCOLS], Output("mc-address-group", "style"),
          [Output(f"mc-discover-{p}", "style") for p in ("S7", "MODBUS")], Output("mc-port", "placeholder"),
          Output("mc-discover-run", "children"), Output("mc-group-broker", "style"),
          Input("mc-draft", "data"))
def protocol_fields(draft):
    protocol = (draft or {}).get("protocol")
    shown = [{} if p == protocol else {"display": "none"} for p in PROTOCOLS]
    label = {"MODBUS": "Scan", "S7": "List data blocks", "SPARKPLUG_B": "List BIRTH metrics",
             "MQTT": "Listen for topics"}.get(protocol, "Discover tags")
    return (*shown, {"display": "none"} if protocol == "OPCUA" else {},
            *[{} if p == protocol else {"display": "none"} for p in ("S7", "MODBUS")],
            str(PROTOCOL_DEFAULT_PORTS.get(protocol, "")), label,
            {} if protocol in BROKER_PROTOCOLS else {"display": "none"})
