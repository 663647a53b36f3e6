"""Step 5 of the machine wizard: give each tag a role the OEE engine understands (suggested from its name), its
scaling, deadband and interval, with a live preview of what the PLC answers; how the PLC tells its state (a preset
of common conventions, or its own code table) and what its fault codes mean. Beside the raw values the preview
shows the state and the parts the machine model derives from them (collectors.service.preview_machine: the
collectors' own MachineTracker), so the engineer sees "faulted" when the PLC faults, before saving."""
from __future__ import annotations

import time

import dash_bootstrap_components as dbc
from dash import ALL, Input, Output, State, callback, dcc, html, no_update

from collectors import service
from collectors.machine_model import STATE_PRESETS
from components.format import plural
from config.fields import FieldErrors, ValidationError
from config.validation import PROTOCOL_LABELS, validate_machine_settings, validate_tags
from db.models import TAG_ROLES
from pages.machine_config.forms import (
    STATE_COLORS,
    field,
    nav_buttons,
    parse_fault_codes,
    parse_state_codes,
    preset_options,
    show_value,
    state_codes_text,
    UNSET,
)
from pages.machine_config.settings_step import SETTING_INPUTS, connection_of


def map_panel() -> list:
    return [
        html.P("Give each tag a role the OEE engine understands (suggested from the names), or none for a "
               "process value. Value = raw × scale + offset; a deadband stores a value only when it moves "
               "more than that.", className="small text-muted"),
        dbc.Switch(id="mc-preview-on", label="Live preview", value=True, className="mb-2"),
        html.Div(id="mc-preview-status", className="small text-muted mb-1"),
        html.Div(id="mc-map-table"),
        html.Div(id="mc-derived", className="mb-3"),
        dcc.Store(id="mc-preview-memory", data=None),
        html.H6("Machine state and fault codes"),
        dbc.Row([
            field("How the PLC tells its state", dbc.Select(id="mc-state-preset", options=preset_options(),
                                                           value="demo"), "", None, 12),
            dbc.Col(html.Div(id="mc-state-hint", className="small text-muted mb-2"), md=12),
            field("State codes", dbc.Textarea(id="mc-state-codes", rows=6, className="font-monospace",
                                              value=state_codes_text(STATE_PRESETS["demo"].codes)),
                  "code, state per line (states: running, idle, blocked, faulted, planned_stop, changeover); a "
                  "code not listed is unknown", None, 6),
            field("Fault codes", dbc.Textarea(id="mc-fault-codes", rows=6, className="font-monospace", value="",
                                              placeholder="42, Jam at infeed, fault\n900, Cleaning, planned_stop"),
                  "code, text, kind per line; kind fault (default), planned_stop or changeover: the state the code "
                  "gives", None, 6),
        ]),
        html.Div(id="mc-map-errors"),
        nav_buttons("mc-map"),
    ]


@callback(Output("mc-state-codes", "value", allow_duplicate=True), Output("mc-state-hint", "children"),
          Input("mc-state-preset", "value"), State("mc-state-codes", "value"), prevent_initial_call="initial_duplicate")
def choose_preset(preset, codes):
    """A preset fills the code table in (or empties it: bits need none) and says which roles to map."""
    p = STATE_PRESETS.get(preset)
    if p is None:
        return no_update, "Your PLC's own codes: edit the table; a code it does not list reads as unknown."
    hint = f"Map the role{'s' if len(p.roles) > 1 else ''} {' and '.join(p.roles)} below."
    return state_codes_text(p.codes) if p.codes else "", hint


def _tables(codes_text, faults_text) -> tuple[dict | None, dict]:
    """The state code map and the fault kinds as they are typed so far (what does not validate yet is left out:
    the preview derives from the rest; map_next names the errors)."""
    clean = validate_machine_settings(FieldErrors(), {"state_code_map": _valid_codes(codes_text),
                                                      "fault_codes": parse_fault_codes(faults_text)})
    return clean["state_code_map"], {f["code"]: f["kind"] for f in clean["fault_codes"]}


def _valid_codes(text) -> dict | None:
    codes = parse_state_codes(text) or {}
    errors = FieldErrors()
    validate_machine_settings(errors, {"state_code_map": codes})
    return {k: v for k, v in codes.items() if f"state_code_map.{k}" not in errors.fields} or None


MAP_FIELDS = ("name", "data_type", "role", "scale", "offset", "deadband", "sampling_interval_ms")


def map_table(tags: list[dict]) -> dbc.Table:
    roles = [{"label": "(process value)", "value": UNSET}] + [{"label": r, "value": r} for r in TAG_ROLES]
    rows = []
    for i, t in enumerate(tags):
        rows.append(html.Tr([
            html.Td([dbc.Input(id={"type": "mc-map-name", "index": i}, value=t["name"], size="sm"),
                     html.Small(t["address"], className="text-muted", id={"type": "mc-map-address", "index": i})]),
            html.Td(dbc.Input(id={"type": "mc-map-data_type", "index": i}, value=t["data_type"], size="sm",
                              style={"width": "7rem"})),
            html.Td(dbc.Select(id={"type": "mc-map-role", "index": i}, options=roles, value=t.get("role") or UNSET,
                               size="sm", className=f"mc-role-{i}", style={"minWidth": "12rem"})),
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
        row["role"] = None if row["role"] in ("", None, UNSET) else row["role"]
        for f in ("scale", "offset", "deadband"):
            row[f] = {"scale": 1.0}.get(f, 0.0) if row[f] in (None, "") else row[f]
        row["sampling_interval_ms"] = row["sampling_interval_ms"] or None
        tags.append(row)
    return tags


@callback(Output({"type": "mc-map-value", "index": ALL}, "children"), Output("mc-preview-status", "children"),
          Output("mc-derived", "children"), Output("mc-preview-memory", "data"),
          Input("mc-preview-tick", "n_intervals"), State("mc-draft", "data"), State("mc-preview-memory", "data"),
          State("mc-state-codes", "value"), State("mc-fault-codes", "value"),
          [State(i, "value") for i in SETTING_INPUTS], *_map_states(), prevent_initial_call=True)
def preview(_n, draft, memory, codes_text, faults_text, *rest):
    values = dict(zip(SETTING_INPUTS, rest[:len(SETTING_INPUTS)], strict=True))
    tags = collect_tags(*rest[len(SETTING_INPUTS):])
    clean = connection_of(draft, values)
    if clean is None or not tags:
        return ["…"] * len(tags), "", None, None
    named = [{**t, "name": f"#{i}"} for i, t in enumerate(tags)]
    result = service.preview_read(clean["protocol"], clean["ip_address"], clean["port"], clean["protocol_config"],
                                  named)
    if not result["ok"]:
        return ["—"] * len(tags), dbc.Alert(f"{result['error_text']}: {result['message']}", color="warning",
                                            className="py-1"), None, None
    state_map, fault_kinds = _tables(codes_text, faults_text)
    fault_texts = {f["code"]: f["text"] for f in parse_fault_codes(faults_text) or [] if isinstance(f["code"], int)}
    key = [[t["address"], t["role"], t["scale"], t["offset"]] for t in tags]  # a new mapping counts from zero
    if not memory or memory.get("key") != key:
        memory = None
    derived = service.preview_machine(named, result["values"], state_map, fault_kinds, memory)
    out = []
    for i in range(len(tags)):
        v = result["values"].get(f"#{i}", {})
        if v.get("quality") == "good":
            out.append(html.Span(show_value(v["value"]), className="text-success"))
        else:
            out.append(html.Span(v.get("reason") or v.get("quality") or "—", className="text-danger small"))
    return (out, f"Read at {time.strftime('%H:%M:%S')} in {result['duration_ms']:.0f} ms",
            _derived(derived, fault_texts), {**derived["memory"], "key": key})


def _seconds(value, unset: str) -> str:
    return unset if value is None else f"{value:g} s"


def _derived(d: dict, fault_texts: dict) -> html.Div:
    state, fault, counted = d["state"], d["fault_code"], d["counted"]
    shown = (state or "no state role mapped").replace("_", " ")
    fault_part = []
    if fault is not None:
        fault_part = [" · fault ", html.Span(f"{fault} {fault_texts.get(fault, '')}".strip(), id="mc-derived-fault")]
    return html.Div([
        "The machine model reads: ",
        dbc.Badge(shown, id="mc-derived-state", color=STATE_COLORS.get(state or "", "secondary")), *fault_part,
        " · parts counted since the preview began: ",
        html.Span(f"{counted['total']:.0f}", id="mc-derived-total"),
        f" (good {counted['good']:.0f}, reject {counted['reject']:.0f})",
    ], className="small")


@callback(Output("mc-step", "data", allow_duplicate=True), Output("mc-map-errors", "children"),
          Output("mc-draft", "data", allow_duplicate=True), Output("mc-summary", "children"),
          Input("mc-map-next", "n_clicks"), State("mc-draft", "data"), State("mc-state-preset", "value"),
          State("mc-state-codes", "value"), State("mc-fault-codes", "value"),
          [State(i, "value") for i in SETTING_INPUTS], *_map_states(), prevent_initial_call=True)
def map_next(n, draft, preset, codes_text, faults_text, *rest):
    if not n:
        return no_update, no_update, no_update, no_update
    values = dict(zip(SETTING_INPUTS, rest[:len(SETTING_INPUTS)], strict=True))
    tags = collect_tags(*rest[len(SETTING_INPUTS):])
    clean = connection_of(draft, values)
    if clean is None:
        return no_update, dbc.Alert("The settings are not valid any more: go back.", color="danger"), \
            no_update, no_update
    errors = FieldErrors()
    codes = None if STATE_PRESETS.get(preset) and not STATE_PRESETS[preset].codes else parse_state_codes(codes_text)
    tables = validate_machine_settings(errors, {"state_code_map": codes, "fault_codes": parse_fault_codes(faults_text)})
    try:
        checked = validate_tags(clean["protocol"], clean["protocol_config"], tags)
    except ValidationError as exc:
        errors.fields.update(exc.fields)
    if errors.fields:
        return no_update, dbc.Alert([html.Div(f"{k}: {v}") for k, v in errors.fields.items()], color="danger",
                                    id="mc-map-invalid"), no_update, no_update
    roles = [t["role"] for t in checked if t["role"]]
    missing = [r for r in ("counter.good", "counter.total") if r not in roles]
    hint = [] if roles and not (len(missing) == 2) else [dbc.Alert(
        "No counter is mapped: OEE needs counter.total or counter.good (and a state role) to be computed.",
        color="warning")]
    where = clean["protocol_config"].get("endpoint") or f"{clean['ip_address']}:{clean['port']}"
    state_codes = tables["state_code_map"]
    convention = STATE_PRESETS[preset].label if preset in STATE_PRESETS else f"its own {len(state_codes or {})} codes"
    summary = [html.H5(f"{clean['machine_id']} · {clean['name']}"),
               html.P(f"{PROTOCOL_LABELS[clean['protocol']]} at {where}, read every {clean['poll_interval_ms']} ms; "
                      f"{plural(len(checked), 'tag')}, roles: {', '.join(roles) or 'none'}."),
               html.P(f"State: {convention}; {plural(len(tables['fault_codes']), 'fault code')} described. Calendar: "
                      f"{clean['calendar'] or 'the line’s (or none: every hour is planned)'}; ideal cycle time: "
                      f"{_seconds(clean['ideal_cycle_time_s'], 'the product’s')}; micro-stop threshold: "
                      f"{_seconds(clean['micro_stop_threshold_s'], 'the site’s, else 120 s')}.",
                      id="mc-summary-settings"),
               *hint]
    return 6, None, {**draft, "tags": checked, "state_code_map": tables["state_code_map"],
                     "fault_codes": tables["fault_codes"]}, summary
