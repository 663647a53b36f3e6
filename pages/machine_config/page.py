"""/machine-config/: connect a PLC in a few minutes. A wizard in six steps, each checked before the next, beside
the list of machines with their live state.

1 protocol (cards) · 2 settings with help per protocol · 3 test the connection (each step's diagnostics and what
to try) · 4 discover tags (Logix tag list and OPC-UA browse as a tree with a filter and multi-select; S7 data block
layout editor with CSV import; Modbus register map editor with a range scan) · 5 map tags to canonical roles
(suggested from their names), scaling, deadband, interval, with a live preview · 6 save: one transaction, and the
collectors pick the machine up at once. Each step is a module of this package (see __init__.py).

Validation is config.validation (the API's and the import's too); PLC work goes through collectors.service
(the page never talks to a PLC); reads and writes go through config.store and config.admin. A password
is never put on the page: an edited machine's password field stays empty and '***' keeps the stored one.
"""
from __future__ import annotations

import dash
import dash_bootstrap_components as dbc
from dash import Input, Output, State, callback, ctx, dcc, html, no_update

from pages.machine_config import machine_list  # noqa: F401  (its callbacks)
from pages.machine_config.connection_step import test_panel
from pages.machine_config.discover_step import discover_panel
from pages.machine_config.forms import STEPS
from pages.machine_config.map_step import map_panel
from pages.machine_config.protocol_step import protocol_cards
from pages.machine_config.save_step import save_panel
from pages.machine_config.settings_step import settings_form

dash.register_page(__name__, path="/machine-config/", name="Machines", title="OEE · Machines")


def layout(machine=None, **_query):
    wizard = dbc.Card([
        dbc.CardHeader([html.Span("New machine", id="mc-wizard-title", className="fw-bold me-3"),
                        html.Span(id="mc-steps")]),
        dbc.CardBody([
            html.Div(id="mc-alert"),
            html.Div([html.P("Which kind of PLC?"), protocol_cards()], id="mc-panel-1"),
            html.Div(settings_form(), id="mc-panel-2", style={"display": "none"}),
            html.Div(test_panel(), id="mc-panel-3", style={"display": "none"}),
            html.Div(discover_panel(), id="mc-panel-4", style={"display": "none"}),
            html.Div(map_panel(), id="mc-panel-5", style={"display": "none"}),
            html.Div(save_panel(), id="mc-panel-6", style={"display": "none"}),
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
        # The wizard first and wide (its map step is a table of eight columns); the list beside it only on wide
        # screens, under it otherwise.
        dbc.Row([
            dbc.Col([
                dbc.Button("New machine", id="mc-new", color="primary", className="mb-2"),
                html.Div(id="mc-list"),
            ], xxl=4, className="order-2 order-xxl-1"),
            dbc.Col(wizard, xxl=8, className="order-1 order-xxl-2 mb-3"),
        ]),
        dbc.Modal([
            dbc.ModalHeader(dbc.ModalTitle("Delete machine")),
            dbc.ModalBody(id="mc-delete-text"),
            dbc.ModalFooter([dbc.Button("Cancel", id="mc-delete-cancel", color="secondary"),
                             dbc.Button("Delete machine and history", id="mc-delete-confirm", color="danger")]),
        ], id="mc-delete-modal", is_open=False),
    ])


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
