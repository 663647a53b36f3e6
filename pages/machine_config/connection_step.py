"""Step 3 of the machine wizard: test the connection, step by step, with each step's diagnostics and what to try
(collectors.service: the page never talks to a PLC itself)."""
from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import Input, Output, State, callback, dcc, html, no_update

from collectors import service
from pages.machine_config.forms import nav_buttons
from pages.machine_config.settings_step import SETTING_INPUTS, connection_of


def test_panel() -> list:
    return [
        html.Div(id="mc-endpoint-warning"),
        dbc.Button("Test connection", id="mc-test-run", color="primary", className="mb-2"),
        dcc.Loading(html.Div(id="mc-test-result")),
        nav_buttons("mc-test"),
    ]


@callback(Output("mc-test-result", "children", allow_duplicate=True), Output("mc-draft", "data", allow_duplicate=True),
          Input("mc-test-run", "n_clicks"), State("mc-draft", "data"), [State(i, "value") for i in SETTING_INPUTS],
          prevent_initial_call=True)
def run_test(n, draft, *values):
    if not n:
        return no_update, no_update
    clean = connection_of(draft, dict(zip(SETTING_INPUTS, values, strict=True)))
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


@callback(Output("mc-step", "data", allow_duplicate=True), Input("mc-test-next", "n_clicks"),
          State("mc-draft", "data"), prevent_initial_call=True)
def after_test(n, draft):
    if not n:
        return no_update
    return 4 if draft.get("tested") else no_update
