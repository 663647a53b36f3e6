"""/settings/: the plant's settings at a glance, and the whole configuration as a YAML file (export for version
control or another plant; import, checked first with every error named by its place in the file)."""
from __future__ import annotations

import base64

import dash
import dash_bootstrap_components as dbc
import yaml
from dash import Input, Output, State, callback, dcc, html, no_update
from flask import current_app

from components.settings_crud import settings_nav
from config import store as cs
from config.fields import ValidationError

dash.register_page(__name__, path="/settings/", name="Settings", title="OEE · Settings")


def _runtime():
    return current_app.extensions["oee"]


def layout(**_query):
    engine = _runtime().store.engine
    counts = {k: cs.list_items(engine, k, limit=1)[0] for k in cs.KINDS}
    machines = cs.list_machines(engine, limit=1)[0]
    cards = [(machines, "machines", "/machine-config/")] + [
        (counts[k], label, href) for k, label, href in (
            ("sites", "sites", "/settings/hierarchy/"), ("lines", "lines", "/settings/hierarchy/"),
            ("products", "products", "/settings/products/"), ("calendars", "shift calendars", "/settings/calendars/"),
            ("reasons", "reason codes", "/settings/reasons/"))]
    return html.Div([
        html.H2("Settings"),
        settings_nav("/settings/"),
        dbc.Row([dbc.Col(dbc.Card(dbc.CardBody([html.H3(str(n)), dcc.Link(label, href=href)])), md=2)
                 for n, label, href in cards], className="mb-4", id="st-counts"),
        dbc.Card([
            dbc.CardHeader(html.Span("Configuration file (YAML)", className="fw-bold")),
            dbc.CardBody([
                html.P("Everything above as one YAML file: for version control, or to move a configuration to another "
                       "plant. Passwords are not written to it ('***'); an import keeps the stored password of a "
                       "machine that exists, and asks for it otherwise.", className="text-muted"),
                dbc.Button("Download configuration", id="st-export", color="primary", className="mb-3"),
                dcc.Download(id="st-download"),
                html.H6("Import"),
                dcc.Upload(dbc.Button("Choose a YAML file", color="secondary", outline=True), id="st-upload",
                           accept=".yaml,.yml,.json", className="upload-zone"),
                dbc.Label("YAML to check or import", html_for="st-yaml", className="mb-0 small"),
                dbc.Textarea(id="st-yaml", rows=10, className="font-monospace my-2",
                             placeholder="or paste the YAML here"),
                dbc.Button("Check", id="st-check", color="secondary", className="me-2"),
                dbc.Button("Import", id="st-import", color="warning"),
                html.Div(id="st-result", className="mt-3"),
            ]),
        ]),
    ])


@callback(Output("st-download", "data"), Input("st-export", "n_clicks"), prevent_initial_call=True)
def export(n):
    if not n:
        return no_update
    doc = cs.export_document(_runtime().store.engine)
    text = "# OEE configuration\n" + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)
    return {"content": text, "filename": "oee-config.yaml", "type": "application/yaml"}


@callback(Output("st-yaml", "value"), Input("st-upload", "contents"), prevent_initial_call=True)
def upload(contents):
    if not contents:
        return no_update
    try:
        return base64.b64decode(contents.split(",", 1)[1]).decode("utf-8-sig", errors="replace")
    except (IndexError, ValueError):
        return no_update


@callback(Output("st-result", "children"), Input("st-check", "n_clicks"), Input("st-import", "n_clicks"),
          State("st-yaml", "value"), prevent_initial_call=True)
def run_import(_check, _apply, text):
    from collectors import service
    from config.admin import import_text

    apply = dash.ctx.triggered_id == "st-import"
    rt = _runtime()
    try:
        result = import_text(text or "", rt.store.engine, backend=rt.store.backend_name, dry_run=not apply,
                             credentials=rt.credentials)
    except ValidationError as exc:
        return dbc.Alert([html.Strong("Not imported; nothing was changed. Fix these places in the file:"),
                          html.Ul([html.Li(f"{k}: {v}") for k, v in exc.fields.items()])], color="danger",
                         id="st-invalid")
    doc = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in result["document"].items())
    if not apply:
        return dbc.Alert(f"The file is valid: {doc}. Import applies it.", color="info", id="st-valid")
    service.reload_collectors(rt)
    changes = ", ".join(f"{k.replace('_', ' ')} {v['created']} new, {v['updated']} updated"
                        for k, v in result["summary"].items() if v["created"] or v["updated"])
    return dbc.Alert(f"Imported: {changes or 'nothing to change'}.", color="success", id="st-imported")
