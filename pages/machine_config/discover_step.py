"""Step 4 of the machine wizard: find the tags. A ControlLogix tag list or an OPC-UA browse as a tree with a filter
and multi-select; for S7 (no symbols) a data block layout editor with CSV import; for Modbus a register map editor
with a range scan."""
from __future__ import annotations

import base64

import dash_bootstrap_components as dbc
from dash import Input, Output, State, callback, ctx, dcc, html, no_update

from collectors import service
from components.format import plural
from config.validation import suggest_roles
from pages.machine_config.forms import field, nav_buttons, show_value, text_input
from pages.machine_config.map_step import map_table
from pages.machine_config.settings_step import SETTING_INPUTS, connection_of, form_machine

S7_EXAMPLE = "# name,offset,type[,description] as in the DB editor\nGoodCount,4,DInt\nRunning,20.0,Bool\n"
MODBUS_EXAMPLE = "# name,address,data_type[,description]\nGoodCount,HR2,UINT32\nRunning,C0,BOOL\n"


def discover_panel() -> html.Div:
    s7 = html.Div([
        html.H6("Data block layout"),
        html.P("Classic S7 has no symbols: give the DB's layout (copy it from the DB editor, or import a CSV file).",
               className="small text-muted"),
        dbc.Row([
            field("DB number", text_input("mc-s7-db", "number", value=1), "", None, 3),
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
            field("Start", text_input("mc-scan-start", "number", value=0), "", None, 3),
            field("Count", text_input("mc-scan-count", "number", value=100), "", None, 3),
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
            dbc.Col(text_input("mc-filter", placeholder="Filter by name, address or type"), md=6),
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
        nav_buttons("mc-discover"),
    ])


def _rows_from(tags: list[dict], source: str) -> list[dict]:
    rows = []
    for r in service.flatten(tags):
        # the key a row is picked by: its address, and for a scan's readings its data type too (HR10 as UINT16, as
        # FLOAT32_ABCD, ... are different picks)
        key = f"{r['address']} {r['data_type']}" if source == "scan" else r["address"]
        rows.append({"key": key, "address": r["address"], "data_type": r["data_type"],
                     "name": r["name"] or r["address"],
                     "description": r.get("description") or "", "value": r.get("value"), "depth": r["depth"],
                     "selectable": not r["container"] and bool(r["data_type"]) and r["data_type"] != "DB",
                     "source": source})
    return rows


def _label(r: dict):
    value = "" if r.get("value") is None else f" = {show_value(r['value'])}"
    return html.Span([html.Span(r["name"], className="fw-semibold"), f"  {r['address']} · {r['data_type']}{value}",
                      html.Small(f"  {r['description']}", className="text-muted") if r["description"] else ""],
                     style={"paddingLeft": f"{r['depth'] * 1.2}rem"})


def _key(r: dict) -> str:
    return r.get("key") or r["address"]


def _options(rows: list[dict], text: str, selected: list[str]) -> list[dict]:
    text = (text or "").strip().lower()
    out = []
    for r in rows:
        shown = not text or text in f"{r['name']} {r['address']} {r['data_type']} {r['description']}".lower()
        if shown or _key(r) in selected:
            out.append({"label": _label(r), "value": _key(r), "disabled": not r["selectable"]})
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
    clean = connection_of(draft, dict(zip(SETTING_INPUTS, values, strict=True)))
    if clean is None:
        return no_update, "", dbc.Alert("The settings are not valid any more: go back.", color="danger"), \
            no_update, no_update
    protocol = clean["protocol"]
    options = {"table": table, "start": start, "count": count, "pairs": True} if protocol == "MODBUS" else {}
    result = service.discover(protocol, clean["ip_address"], clean["port"], clean["protocol_config"], **options)
    if not result["ok"]:
        return no_update, "", dbc.Alert([html.Strong(result["error_text"]), f": {result['message']}",
                                         html.Div(result.get("suggestion", ""))], color="danger",
                                        id="mc-discover-failed"), no_update, no_update
    took = f"in {result['duration_ms']:.0f} ms"
    if protocol == "MODBUS":
        # The registers as they are, and each pair of them as the 32-bit readings the driver offers: pick them below.
        found = [t for t in service.flatten(result["tags"]) if t["data_type"] in ("UINT16", "BOOL")]
        took = f"{plural(len(found), 'address', 'addresses')} answered {took}"
        cells = [html.Span(f"{t['address']}={t['value']}", className="me-2 mc-scanned") for t in found[:400]]
        pairs = len(result["tags"]) - len(found)
        note = (f" Below: each one to pick, and each pair of neighbours as UINT32, INT32 and FLOAT32 in both word "
                f"orders ({plural(pairs, 'reading')}); filter by FLOAT32 or a value.") if pairs else ""
        return (_rows_from(result["tags"], "scan"), took, None,
                [html.Div(f"{len(found)} addresses answered.{note}"), html.Div(cells)], no_update)
    if protocol == "S7":
        dbs = result["tags"]
        text = ", ".join(f"{t['address']} ({t['description']})" for t in dbs) or "no data blocks listed"
        first = int(dbs[0]["address"][2:]) if dbs else no_update
        return no_update, f"{plural(len(dbs), 'data block')} found {took}: {text}", None, no_update, first
    # Tags, not the folders (programs, objects) that hold them: the count agrees with "0 of N selected".
    rows = _rows_from(result["tags"], "discovered")
    tags = sum(1 for r in rows if r["selectable"])
    folders = len(rows) - tags
    took = f"{plural(tags, 'tag')} found" + (f" in {plural(folders, 'folder')}" if folders else "") + f" {took}"
    return rows, took, None, no_update, no_update


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
        selected = selected + [_key(r) for r in selectable if _key(r) in shown and _key(r) not in selected]
    elif trigger == "mc-pick-suggested":
        best = suggest_roles([r["name"] for r in selectable])
        seen: set[str] = set()
        for r in selectable:  # one tag per role: the first of equal names (controller Running, not a program's)
            if r["name"] in best and r["name"] not in seen:
                seen.add(r["name"])
                if _key(r) not in selected:
                    selected.append(_key(r))
    elif trigger == "mc-discovered":
        known = {_key(r) for r in rows}
        selected = [a for a in selected if a in known]
    return _options(rows, text, selected), selected, f"{len(selected)} of {len(selectable)} selected"


@callback(Output("mc-step", "data", allow_duplicate=True), Output("mc-map-table", "children"),
          Output("mc-discover-errors", "children", allow_duplicate=True),
          Input("mc-discover-next", "n_clicks"), State("mc-pick", "value"), State("mc-discovered", "data"),
          State("mc-draft", "data"), prevent_initial_call=True)
def discover_next(n, selected, rows, draft):
    if not n:
        return no_update, no_update, no_update
    by_key = {_key(r): r for r in rows or []}
    chosen = [by_key[k] for k in selected or [] if k in by_key]
    kept = {t["address"]: t for t in draft.get("tags") or [] if t["address"] in (selected or [])}  # edits keep theirs
    if not chosen and not kept:
        return no_update, no_update, dbc.Alert("Select at least one tag to collect.", color="danger",
                                               id="mc-pick-none")
    tags = list(kept.values())
    used = {t["name"] for t in tags}
    for r in chosen:
        if r["address"] not in kept or r.get("source") == "scan":
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
