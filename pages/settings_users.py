"""/settings/users/ (admins): make users (a one-time password is shown once), change roles, deactivate, reset
passwords. Roles: viewer (dashboards, exports) < operator (+ downtime reasons and notes) < engineer (+ configuration)
< admin (+ users). An admin cannot demote or deactivate themselves (another admin can)."""
from __future__ import annotations

import dash
import dash_bootstrap_components as dbc
from dash import Input, Output, State, callback, ctx, dcc, html, no_update
from flask import current_app, g

from auth import rules, users
from auth.web import require
from db.models import USER_ROLES

dash.register_page(__name__, path="/settings/users/", name="Users", title="OEE · Users", order=90)


def _engine():
    return current_app.extensions["oee"].store.engine


def _roles():
    return [{"label": r, "value": r} for r in USER_ROLES]


def layout(**_query):
    return html.Div([
        dcc.Store(id="users-version", data=0),
        html.H2("Users"),
        dbc.Row([
            dbc.Col(dbc.Card([dbc.CardHeader("New user"), dbc.CardBody([
                dbc.Label("User name", html_for="users-name"), dbc.Input(id="users-name", maxLength=64),
                dbc.Label("Role", html_for="users-role", className="mt-2"),
                dbc.Select(id="users-role", options=_roles(), value="viewer"),
                dbc.Button("Make user", id="users-create", color="primary", className="mt-3"),
                html.Div(id="users-created", className="mt-3"),
            ])]), md=5),
            dbc.Col(dbc.Card([dbc.CardHeader("Change a user"), dbc.CardBody([
                dbc.Label("User", html_for="users-pick"), dbc.Select(id="users-pick"),
                dbc.Label("Role", html_for="users-new-role", className="mt-2"),
                dbc.Select(id="users-new-role", options=_roles()),
                dbc.Checkbox(id="users-active", label="Active (may log in)", value=True, className="mt-2"),
                html.Div([dbc.Button("Save", id="users-save", color="primary", className="me-2"),
                          dbc.Button("Reset password", id="users-reset", color="warning")], className="mt-3"),
                html.Div(id="users-changed", className="mt-3"),
            ])]), md=7),
        ], className="mb-4"),
        html.Div(id="users-table"),
    ])


@callback(Output("users-created", "children"), Output("users-version", "data"),
          Input("users-create", "n_clicks"), State("users-name", "value"), State("users-role", "value"),
          State("users-version", "data"), prevent_initial_call=True)
def create(_n, name, role, version):
    require(rules.ADMIN)
    password = users.new_one_time_password()
    try:
        user = users.create(_engine(), (name or "").strip(), password, role, must_change_password=True)
    except users.UserError as exc:
        return dbc.Alert(str(exc), color="danger", id="users-error"), no_update
    return dbc.Alert([f"{user.username} ({user.role}) made. One-time password, shown once (they choose their own "
                      "when they first log in): ", html.Code(password, id="users-one-time")], color="success"), \
        (version or 0) + 1


@callback(Output("users-new-role", "value"), Output("users-active", "value"), Input("users-pick", "value"),
          prevent_initial_call=True)
def picked(user_id):
    require(rules.ADMIN)
    user = users.get(_engine(), int(user_id)) if user_id else None
    return (user.role, bool(user.active)) if user else (no_update, no_update)


@callback(Output("users-changed", "children"), Output("users-version", "data", allow_duplicate=True),
          Input("users-save", "n_clicks"), Input("users-reset", "n_clicks"), State("users-pick", "value"),
          State("users-new-role", "value"), State("users-active", "value"), State("users-version", "data"),
          prevent_initial_call=True)
def change(_save, _reset, user_id, role, active, version):
    require(rules.ADMIN)
    if not user_id:
        return dbc.Alert("User: pick one first.", color="danger"), no_update
    changes = {"reset_password": True} if ctx.triggered_id == "users-reset" else {"role": role, "active": bool(active)}
    try:
        user, one_time = users.update(_engine(), int(user_id), changes, by_user_id=g.user.id)
    except users.UserError as exc:
        return dbc.Alert(str(exc), color="danger", id="users-error"), no_update
    if one_time:
        return dbc.Alert([f"New one-time password for {user.username}, shown once: ",
                          html.Code(one_time, id="users-one-time")], color="success"), (version or 0) + 1
    return dbc.Alert(f"{user.username}: {user.role}, {'active' if user.active else 'deactivated'}.",
                     color="success", id="users-saved"), (version or 0) + 1


@callback(Output("users-table", "children"), Output("users-pick", "options"), Input("users-version", "data"))
def table(_version):
    require(rules.ADMIN)
    rows = users.list_all(_engine())
    head = html.Thead(html.Tr([html.Th(h) for h in ("User", "Role", "State", "Last login", "Made")]))
    body = html.Tbody([html.Tr([
        html.Td(u["username"]), html.Td(u["role"]),
        html.Td(("active" if u["active"] else "deactivated") + (" · must change password"
                                                                if u["must_change_password"] else "")),
        html.Td((u["last_login_at"] or "never")[:16]), html.Td((u["created_at"] or "")[:16]),
    ]) for u in rows])
    return (dbc.Table([head, body], size="sm", striped=True, id="users-list"),
            [{"label": f"{u['username']} ({u['role']})", "value": str(u["id"])} for u in rows])
