"""/account/tokens/: the signed-in user's API tokens: make one (its secret is shown here once), see them, revoke.

A token acts with its user's role, for scripts, Grafana's JSON data sources and WebSocket clients:
`Authorization: Bearer <token>` (auth/tokens.py says how they are kept).
"""
from __future__ import annotations

import dash
import dash_bootstrap_components as dbc
from dash import ALL, Input, Output, State, callback, ctx, dcc, html, no_update
from flask import current_app, g

from auth import rules, tokens
from auth.users import UserError
from auth.web import require

dash.register_page(__name__, path="/account/tokens/", name="API tokens", title="OEE · API tokens", nav=False)


def _engine():
    return current_app.extensions["oee"].store.engine


def layout(**_query):
    return html.Div([
        dcc.Store(id="tokens-version", data=0),
        html.H2("Your API tokens"),
        html.P(["For scripts and tools: send ", html.Code("Authorization: Bearer <token>"), ". A token can do what "
                "you can. Its secret is shown once, when you make it; keep it like a password. ",
                html.A("Change your password", href="/account/password")], className="text-muted"),
        dbc.Row([
            dbc.Col([dbc.Label("Token name", html_for="tokens-name", className="mb-0 small"),
                     dbc.Input(id="tokens-name", placeholder="Name, e.g. grafana or line 1 script", maxLength=100)], md=5),
            dbc.Col([dbc.Label("Expires in days", html_for="tokens-days", className="mb-0 small"),
                     dbc.Input(id="tokens-days", type="number", min=1, max=tokens.MAX_DAYS,
                              placeholder="Expires in days (empty: never)")], md=3),
            dbc.Col(dbc.Button("Make a token", id="tokens-create", color="primary"), md=2),
        ], className="g-2 mb-3"),
        html.Div(id="tokens-created"),
        html.Div(id="tokens-table"),
    ])


@callback(Output("tokens-created", "children"), Output("tokens-version", "data"),
          Input("tokens-create", "n_clicks"), State("tokens-name", "value"), State("tokens-days", "value"),
          State("tokens-version", "data"), prevent_initial_call=True)
def create(_n, name, days, version):
    require(rules.LOGIN)
    if g.via != "session":
        return dbc.Alert("Make tokens from a signed-in browser session.", color="danger"), no_update
    try:
        row, secret = tokens.create(_engine(), g.user, name or "", int(days) if days not in (None, "") else None)
    except (UserError, ValueError) as exc:
        return dbc.Alert(str(exc), color="danger", id="tokens-error"), no_update
    return dbc.Alert([html.Div(f"Token {row['name']!r} made. Copy it now: it is not shown again."),
                      html.Code(secret, id="tokens-secret", className="user-select-all fs-6")],
                     color="success"), (version or 0) + 1


@callback(Output("tokens-version", "data", allow_duplicate=True),
          Input({"type": "tokens-revoke", "id": ALL}, "n_clicks"), State("tokens-version", "data"),
          prevent_initial_call=True)
def revoke(clicks, version):
    require(rules.LOGIN)
    if not ctx.triggered_id or not any(clicks):
        return no_update
    tokens.revoke(_engine(), int(ctx.triggered_id["id"]), user_id=g.user.id)
    return (version or 0) + 1


@callback(Output("tokens-table", "children"), Input("tokens-version", "data"))
def table(_version):
    require(rules.LOGIN)
    rows = tokens.list_for(_engine(), g.user.id)
    if not rows:
        return html.P("No tokens yet.", className="text-muted", id="tokens-none")
    body = [html.Tr([
        html.Td(t["name"]), html.Td(html.Code(t["prefix"] + "…")), html.Td((t["created_at"] or "")[:16]),
        html.Td((t["expires_at"] or "never")[:16]), html.Td((t["last_used_at"] or "—")[:16]),
        html.Td("active" if t["active"] else ("revoked" if t["revoked_at"] else "expired")),
        html.Td(dbc.Button("Revoke", id={"type": "tokens-revoke", "id": t["id"]}, size="sm", color="danger",
                           outline=True) if t["revoked_at"] is None else ""),
    ]) for t in rows]
    head = html.Thead(html.Tr([html.Th(h) for h in ("Name", "Starts with", "Made", "Expires", "Last used", "State",
                                                    "")]))
    return dbc.Table([head, html.Tbody(body)], size="sm", striped=True, id="tokens-list")
