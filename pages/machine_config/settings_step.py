"""Step 2 of the machine wizard: the machine's name, line and poll interval, its PLC's address and the protocol's
settings, each field checked by the API's own validation (config.validation) with the error beside it. Opening a
machine of the list for editing fills this form (a password never: empty keeps the stored one)."""
from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import ALL, Input, Output, State, callback, ctx, html, no_update

from config import store as cs
from config.fields import ValidationError
from config.validation import SECRET, validate_machine
from pages.machine_config.forms import (
    engine,
    fault_codes_text,
    field,
    line_options,
    nav_buttons,
    preset_of,
    state_codes_text,
    text_input,
    UNSET,
)

SETTING_INPUTS = ["mc-machine-id", "mc-name", "mc-description", "mc-line", "mc-poll", "mc-calendar", "mc-ideal",
                  "mc-micro", "mc-host", "mc-port",
                  "mc-logix-slot", "mc-logix-route", "mc-logix-family", "mc-s7-cpu", "mc-s7-rack", "mc-s7-slot",
                  "mc-opc-endpoint", "mc-opc-policy", "mc-opc-mode", "mc-opc-auth", "mc-opc-user",
                  "mc-opc-password", "mc-opc-cert", "mc-opc-key", "mc-mb-unit", "mc-mb-byte", "mc-mb-word",
                  "mc-mb-base", "mc-spb-group", "mc-spb-edge", "mc-spb-device", "mc-mq-filter", "mc-broker-user",
                  "mc-broker-password", "mc-broker-tls", "mc-broker-ca"]
FEEDBACK_INPUTS = [i for i in SETTING_INPUTS if i != "mc-opc-auth"]
FIELD_TO_INPUT = {
    "machine_id": "mc-machine-id", "name": "mc-name", "description": "mc-description", "line": "mc-line",
    "poll_interval_ms": "mc-poll", "ip_address": "mc-host", "port": "mc-port", "calendar": "mc-calendar",
    "ideal_cycle_time_s": "mc-ideal", "micro_stop_threshold_s": "mc-micro",
    "ETHERNET_IP:slot": "mc-logix-slot", "ETHERNET_IP:route": "mc-logix-route",
    "ETHERNET_IP:plc_family": "mc-logix-family", "S7:cpu_type": "mc-s7-cpu", "S7:rack": "mc-s7-rack",
    "S7:slot": "mc-s7-slot", "OPCUA:endpoint": "mc-opc-endpoint", "OPCUA:security_policy": "mc-opc-policy",
    "OPCUA:security_mode": "mc-opc-mode", "OPCUA:username": "mc-opc-user", "OPCUA:password": "mc-opc-password",
    "OPCUA:certificate": "mc-opc-cert", "OPCUA:private_key": "mc-opc-key", "MODBUS:unit_id": "mc-mb-unit",
    "MODBUS:byte_order": "mc-mb-byte", "MODBUS:word_order": "mc-mb-word", "MODBUS:zero_based": "mc-mb-base",
    "SPARKPLUG_B:group_id": "mc-spb-group", "SPARKPLUG_B:edge_node_id": "mc-spb-edge",
    "SPARKPLUG_B:device_id": "mc-spb-device", "MQTT:topic_filter": "mc-mq-filter",
    **{f"{p}:{k}": i for p in ("SPARKPLUG_B", "MQTT") for k, i in (
        ("username", "mc-broker-user"), ("password", "mc-broker-password"), ("tls", "mc-broker-tls"),
        ("tls_ca_file", "mc-broker-ca"))},
}
BROKER_PROTOCOLS = ("SPARKPLUG_B", "MQTT")


def settings_form() -> html.Div:
    common = dbc.Row([
        field("Machine id", text_input("mc-machine-id", placeholder="LINE-017"),
              "Stable id used in reports and URLs: letters, digits, - _ .", "mc-machine-id"),
        field("Name", text_input("mc-name", placeholder="Filler 17"), "What people call it.", "mc-name"),
        field("Line", dbc.Select(id="mc-line", options=[], value=UNSET), "Where it stands (Settings → Hierarchy).", "mc-line"),
        field("Poll interval (ms)", text_input("mc-poll", "number", value=1000),
              "How often the collector reads it: 100 ms to 1 hour.", "mc-poll"),
        field("Description", text_input("mc-description"), "", "mc-description", width=12),
        field("Shift calendar", dbc.Select(id="mc-calendar", options=[], value=UNSET),
              "When it is planned to run (Settings → Shift calendars); unset: its line's.", "mc-calendar", 4),
        field("Ideal cycle time (s)", text_input("mc-ideal", "number", placeholder="the product's"),
              "Seconds per part at full speed, for products without their own.", "mc-ideal", 4),
        field("Micro-stop threshold (s)", text_input("mc-micro", "number", placeholder="the site's, else 120"),
              "Stops shorter than this are minor stops (a speed loss); 0: none.", "mc-micro", 4),
    ])
    address = html.Div(dbc.Row([
        field("IP address or host", text_input("mc-host", placeholder="192.168.1.17"),
              "The PLC's address as seen from this server.", "mc-host"),
        field("Port", text_input("mc-port", "number"), "Usually the protocol's default.", "mc-port"),
    ]), id="mc-address-group")
    logix = html.Div(dbc.Row([
        field("Slot", text_input("mc-logix-slot", "number", value=0),
              "Slot of the controller in its chassis; 0 is the leftmost. CompactLogix: 0.", "mc-logix-slot", 4),
        field("Route path (optional)", text_input("mc-logix-route", placeholder="1,0"),
              "Port,link pairs through bridges, e.g. 1,2,2,10.0.0.9,1,0. Wins over the slot.", "mc-logix-route", 4),
        field("PLC family", dbc.Select(id="mc-logix-family", value="ControlLogix",
                                       options=[{"label": f, "value": f} for f in ("ControlLogix", "CompactLogix")]),
              "", "mc-logix-family", 4),
    ]), id="mc-group-ETHERNET_IP", style={"display": "none"})
    s7 = html.Div(dbc.Row([
        field("CPU type", dbc.Select(id="mc-s7-cpu", value="S7-1200", options=[
            {"label": c, "value": c} for c in ("S7-300", "S7-400", "S7-1200", "S7-1500")]),
              "Gives the usual slot. S7-1200/1500: allow PUT/GET, DBs without optimized access.", "mc-s7-cpu", 4),
        field("Rack", text_input("mc-s7-rack", "number", value=0), "0 for a single rack.", "mc-s7-rack", 4),
        field("Slot", text_input("mc-s7-slot", "number", placeholder="1"),
              "S7-1200/1500: 1, S7-300: 2, S7-400: see HW Config.", "mc-s7-slot", 4),
    ]), id="mc-group-S7", style={"display": "none"})
    opcua = html.Div(dbc.Row([
        field("Endpoint URL", text_input("mc-opc-endpoint", placeholder="opc.tcp://192.168.1.20:4840/"),
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
        field("User name", text_input("mc-opc-user"), "", "mc-opc-user", 6),
        field("Password", text_input("mc-opc-password", "password", autoComplete="new-password"),
              "Never shown again; leave empty to keep the stored one.", "mc-opc-password", 6),
        field("Client certificate (path on the server)", text_input("mc-opc-cert"),
              "Needed with a security policy; the server must trust it.", "mc-opc-cert", 6),
        field("Private key (path on the server)", text_input("mc-opc-key"), "", "mc-opc-key", 6),
    ]), id="mc-group-OPCUA", style={"display": "none"})
    modbus = html.Div(dbc.Row([
        field("Unit id", text_input("mc-mb-unit", "number", value=1),
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
    sparkplug = html.Div(dbc.Row([
        field("Group id", text_input("mc-spb-group", placeholder="Plant7"),
              "The edge node's Sparkplug group (spBv1.0/<group>/...).", "mc-spb-group", 4),
        field("Edge node id", text_input("mc-spb-edge", placeholder="press-gw"), "As the edge node publishes it.",
              "mc-spb-edge", 4),
        field("Device id (optional)", text_input("mc-spb-device"),
              "A device of the edge node: its DBIRTH metrics; empty: the node's own.", "mc-spb-device", 4),
    ]), id="mc-group-SPARKPLUG_B", style={"display": "none"})
    mqtt = html.Div(dbc.Row([
        field("Topic filter for discovery", text_input("mc-mq-filter", placeholder="#"),
              "Where the wizard listens for topics, e.g. plant/line4/#.", "mc-mq-filter", 12),
    ]), id="mc-group-MQTT", style={"display": "none"})
    broker = html.Div(dbc.Row([
        field("User name (optional)", text_input("mc-broker-user"), "The broker's user for this app.",
              "mc-broker-user", 3),
        field("Password", text_input("mc-broker-password", "password", autoComplete="new-password"),
              "Never shown again; leave empty to keep the stored one.", "mc-broker-password", 3),
        field("TLS", dbc.Select(id="mc-broker-tls", value="off", options=[
            {"label": "off (mqtt://, 1883)", "value": "off"}, {"label": "on (mqtts://, 8883)", "value": "on"}]),
              "The broker's certificate is checked.", "mc-broker-tls", 3),
        field("CA certificate file (optional)", text_input("mc-broker-ca"),
              "Its file name in the certificate folder; empty: the system's CAs.", "mc-broker-ca", 3),
    ]), id="mc-group-broker", style={"display": "none"})
    return html.Div([common, address, logix, s7, opcua, modbus, sparkplug, mqtt, broker,
                     html.Div(id="mc-settings-errors"), nav_buttons("mc-settings")])


def _blank(v):
    return None if v in ("", None, UNSET) else v


def form_machine(protocol: str, v: dict, pk: int | None) -> dict:
    """The settings form as a machine body for config.validation.validate_machine."""
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
    elif protocol == "MODBUS":
        config = {"unit_id": v["mc-mb-unit"], "byte_order": v["mc-mb-byte"], "word_order": v["mc-mb-word"],
                  "zero_based": v["mc-mb-base"] != "1"}
    else:
        user = _blank(v["mc-broker-user"])
        password = _blank(v["mc-broker-password"])
        if user and password is None and pk is not None and (stored_config(pk) or {}).get("password"):
            password = SECRET  # keep the stored one
        config = {"username": user, "password": password if user else None,
                  "tls": v["mc-broker-tls"] == "on", "tls_ca_file": _blank(v["mc-broker-ca"])}
        if protocol == "SPARKPLUG_B":
            config.update(group_id=_blank(v["mc-spb-group"]), edge_node_id=_blank(v["mc-spb-edge"]),
                          device_id=_blank(v["mc-spb-device"]))
        else:
            config["topic_filter"] = _blank(v["mc-mq-filter"])
    body = {"name": v["mc-name"], "machine_id": v["mc-machine-id"], "description": v["mc-description"],
            "protocol": protocol, "protocol_config": {k: x for k, x in config.items() if x is not None},
            "poll_interval_ms": v["mc-poll"], "line": int(v["mc-line"]) if _blank(v["mc-line"]) else None,
            "calendar": _blank(v["mc-calendar"]), "ideal_cycle_time_s": _blank(v["mc-ideal"]),
            "micro_stop_threshold_s": _blank(v["mc-micro"])}
    if protocol != "OPCUA":
        body["ip_address"] = _blank(v["mc-host"])
        body["port"] = v["mc-port"]
    return body


def stored_config(pk):
    return cs.get_machine(engine(), pk)["protocol_config"] if pk else None


def check_settings(draft: dict, values: dict) -> tuple[dict | None, dict]:
    """(clean machine, {}) or (None, field errors). The same validation as the API, plus: is the id free."""
    protocol, pk = draft["protocol"], draft.get("pk")
    try:
        clean = validate_machine(form_machine(protocol, values, pk), stored_config=stored_config(pk))
    except ValidationError as exc:
        return None, exc.fields
    try:
        other = cs.find_machine(engine(), clean["machine_id"])
        if other != pk and not str(clean["machine_id"]).isdigit():
            return None, {"machine_id": f"{clean['machine_id']!r} is already used by another machine"}
    except cs.NotFound:
        pass
    return clean, {}


def connection_of(draft: dict, values: dict) -> dict | None:
    clean, _ = check_settings(draft, values)
    return clean


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


@callback(Output("mc-endpoint-warning", "children"), Input("mc-step", "data"), State("mc-draft", "data"),
          [State(i, "value") for i in SETTING_INPUTS])
def endpoint_warning(step, draft, *values):
    """On the test step: a warning when another machine already polls this PLC (host:port and unit or slot)."""
    if step != 3 or not (draft or {}).get("protocol"):
        return None
    clean, _ = check_settings(draft, dict(zip(SETTING_INPUTS, values, strict=True)))
    if clean is None:
        return None
    others = cs.machines_polling(engine(), clean["protocol"], clean.get("ip_address"), clean.get("port"),
                                 clean.get("protocol_config"), except_pk=draft.get("pk"))
    if not others:
        return None
    return dbc.Alert([html.Strong("This PLC is already polled"), f" by {', '.join(others)} (the same address, port "
                      "and unit or slot). Saving makes a second connection to it; each poll adds to its load."],
                     color="warning", id="mc-endpoint-dup")


EDIT_OUTPUTS = 4 + len(SETTING_INPUTS) + 6


@callback(Output("mc-step", "data", allow_duplicate=True), Output("mc-draft", "data", allow_duplicate=True),
          Output("mc-wizard-title", "children", allow_duplicate=True),
          Output("mc-line", "options", allow_duplicate=True),
          [Output(i, "value", allow_duplicate=True) for i in SETTING_INPUTS],
          Output("mc-discovered", "data", allow_duplicate=True), Output("mc-pick", "value", allow_duplicate=True),
          Output("mc-saved", "data", allow_duplicate=True), Output("mc-state-preset", "value", allow_duplicate=True),
          Output("mc-state-codes", "value", allow_duplicate=True),
          Output("mc-fault-codes", "value", allow_duplicate=True),
          Input({"type": "mc-edit", "pk": ALL}, "n_clicks"), Input("mc-edit-request", "data"),
          prevent_initial_call="initial_duplicate")
def edit(_clicks, requested):
    if ctx.triggered_id in (None, "mc-edit-request"):  # the page opened with ?machine=LINE-017
        if not requested:
            return (no_update,) * EDIT_OUTPUTS
        try:
            pk = cs.find_machine(engine(), requested)
        except cs.NotFound:
            return (no_update,) * EDIT_OUTPUTS
    else:
        if not ctx.triggered_id or not ctx.triggered[0]["value"]:
            return (no_update,) * EDIT_OUTPUTS
        pk = ctx.triggered_id["pk"]
    m = cs.get_machine(engine(), pk)
    tags = [{k: t[k] for k in ("name", "address", "data_type", "role", "scale", "offset", "deadband",
                               "sampling_interval_ms")} for t in cs.machine_tags(engine(), pk)]
    c = m["protocol_config"] or {}
    v = {i: no_update for i in SETTING_INPUTS}
    v.update({"mc-machine-id": m["machine_id"], "mc-name": m["name"], "mc-description": m["description"],
              "mc-line": str(m["line"]) if m["line"] else UNSET, "mc-poll": m["poll_interval_ms"],
              "mc-calendar": m["calendar"] or UNSET, "mc-ideal": m["ideal_cycle_time_s"],
              "mc-micro": m["micro_stop_threshold_s"], "mc-host": m["ip_address"], "mc-port": m["port"]})
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
    elif p in BROKER_PROTOCOLS:
        v.update({"mc-broker-user": c.get("username") or "", "mc-broker-password": "",  # never on the page
                  "mc-broker-tls": "on" if c.get("tls") or c.get("tls_ca_file") else "off",
                  "mc-broker-ca": c.get("tls_ca_file") or "", "mc-spb-group": c.get("group_id") or "",
                  "mc-spb-edge": c.get("edge_node_id") or "", "mc-spb-device": c.get("device_id") or "",
                  "mc-mq-filter": c.get("topic_filter") or ""})
    draft = {"pk": pk, "protocol": p, "tested": False, "tags": tags}
    rows = [{"address": t["address"], "data_type": t["data_type"], "name": t["name"], "description": "configured",
             "value": None, "depth": 0, "selectable": True, "source": "configured"} for t in tags]
    return (2, draft, f"Edit {m['machine_id']}", line_options(), *[v[i] for i in SETTING_INPUTS], rows,
            [t["address"] for t in tags], None, preset_of(m["state_code_map"]),
            state_codes_text(m["state_code_map"]), fault_codes_text(m["fault_codes"]))


@callback(Output("mc-calendar", "options"), Input("mc-line", "value"), Input("mc-step", "data"))
def calendar_options(line, _step):
    """The calendars there are, and what "unset" means for this machine: its line's calendar, or none."""
    inherited = None
    if line and str(line).isdigit():
        try:
            inherited = cs.get_item(engine(), "lines", int(line))["calendar"]
        except cs.NotFound:
            pass
    unset = f"(the line's: {inherited})" if inherited else "(none: every hour is planned)"
    return [{"label": unset, "value": UNSET}] + [{"label": c["name"], "value": c["name"]}
                                              for c in cs.list_items(engine(), "calendars", limit=500)[1]]


@callback(Output("mc-calendar", "value", allow_duplicate=True), Output("mc-ideal", "value", allow_duplicate=True),
          Output("mc-micro", "value", allow_duplicate=True), Output("mc-state-preset", "value", allow_duplicate=True),
          Output("mc-fault-codes", "value", allow_duplicate=True), Input("mc-new", "n_clicks"),
          prevent_initial_call=True)
def new_machine_settings(n):
    """A new machine starts with its settings unset (inherited), not with those of the machine edited before."""
    return (UNSET, None, None, "demo", "") if n else (no_update,) * 5
