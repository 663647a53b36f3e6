"""Step 6 of the machine wizard: save in one transaction (config.admin), after which the collectors poll the machine
at once, and its first values and state are shown as they arrive."""
from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import Input, Output, State, callback, html, no_update

from collectors import service
from components.format import plural
from config import admin as machine_admin
from config import store as cs
from config.fields import ValidationError
from config.validation import validate_machine
from pages.machine_config.forms import STATE_COLORS, engine, runtime, show_value
from pages.machine_config.settings_step import SETTING_INPUTS, form_machine, stored_config


def save_panel() -> list:
    return [
        html.Div(id="mc-summary"),
        html.Div([dbc.Button("Back", id="mc-save-back", color="secondary", outline=True, className="me-2"),
                  dbc.Button("Save", id="mc-save", color="success")], className="mt-2"),
        html.Div(id="mc-save-result", className="mt-3"),
        html.Div(id="mc-live", className="mt-2"),
    ]


@callback(Output("mc-save-result", "children", allow_duplicate=True), Output("mc-saved", "data"),
          Output("mc-list-version", "data", allow_duplicate=True), Output("mc-draft", "data", allow_duplicate=True),
          Input("mc-save", "n_clicks"), State("mc-draft", "data"), State("mc-list-version", "data"),
          [State(i, "value") for i in SETTING_INPUTS], prevent_initial_call=True)
def save(n, draft, version, *values):
    if not n:
        return no_update, no_update, no_update, no_update
    v = dict(zip(SETTING_INPUTS, values, strict=True))
    pk = draft.get("pk")
    body = {**form_machine(draft["protocol"], v, pk), "tags": draft.get("tags") or [],
            "state_code_map": draft.get("state_code_map"), "fault_codes": draft.get("fault_codes")}
    try:
        clean = validate_machine(body, stored_config=stored_config(pk))
        machine = machine_admin.save_machine(runtime(), clean, pk)
    except ValidationError as exc:
        return dbc.Alert([html.Div(f"{k}: {m}") for k, m in exc.fields.items()], color="danger",
                         id="mc-save-invalid"), no_update, no_update, no_update
    except cs.NotFound:
        return dbc.Alert("The machine was deleted meanwhile.", color="danger"), no_update, no_update, no_update
    text = (f"Saved {machine['machine_id']} with {plural(machine['tag_count'], 'tag')}; the collectors poll it now, no "
            "restart needed.")
    return (dbc.Alert(text, color="success", id="mc-saved-ok"), machine["id"], version + 1,
            {**draft, "pk": machine["id"]})


@callback(Output("mc-live", "children"), Input("mc-tick", "n_intervals"), State("mc-saved", "data"))
def live(_n, pk):
    if not pk:
        return None
    try:
        m = cs.get_machine(engine(), pk)
    except cs.NotFound:
        return None
    rt = runtime()
    tags = cs.machine_tags(engine(), pk)
    values = service.live_values(rt, [t["id"] for t in tags])
    status = service.machine_status(rt, m)
    rows = []
    for t in tags:
        v = values.get(t["id"])
        shown = "waiting for the first read" if v is None else (show_value(v["value"]) if v["quality"] == "good" else
                                                                f"{v['quality']}: {v['reason']}")
        rows.append(html.Tr([html.Td(t["name"]), html.Td(t["role"] or ""), html.Td(shown, className="mc-live-value"),
                             html.Td(v["quality"] if v else "", className=f"mc-live-q-{(v or {}).get('quality')}")],
                            id=f"mc-live-{t['name']}"))
    return dbc.Card([dbc.CardHeader(["Live values from the collector · state ",
                                     dbc.Badge(status["state"].replace("_", " "), id="mc-live-state",
                                               color=STATE_COLORS.get(status["state"], "secondary"))]),
                     dbc.Table(html.Tbody(rows), size="sm", className="mb-0", id="mc-live-table")])
