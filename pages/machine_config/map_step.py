"""Step 5 of the machine wizard: give each tag a role the OEE engine understands (suggested from its name), its
scaling, deadband and interval, with a live preview of what the PLC answers."""
from __future__ import annotations

import time

import dash_bootstrap_components as dbc
from dash import ALL, Input, Output, State, callback, html, no_update

from collectors import service
from config.fields import ValidationError
from config.validation import PROTOCOL_LABELS, validate_tags
from db.models import TAG_ROLES
from pages.machine_config.forms import nav_buttons, show_value
from pages.machine_config.settings_step import SETTING_INPUTS, connection_of


def map_panel() -> list:
    return [
        html.P("Give each tag a role the OEE engine understands (suggested from the names), or none for a "
               "process value. Value = raw × scale + offset; a deadband stores a value only when it moves "
               "more than that.", className="small text-muted"),
        dbc.Switch(id="mc-preview-on", label="Live preview", value=True, className="mb-2"),
        html.Div(id="mc-preview-status", className="small text-muted mb-1"),
        html.Div(id="mc-map-table"),
        html.Div(id="mc-map-errors"),
        nav_buttons("mc-map"),
    ]


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
    clean = connection_of(draft, values)
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
            out.append(html.Span(show_value(v["value"]), className="text-success"))
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
    clean = connection_of(draft, values)
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
