"""/settings/alerts/: alert rules (what to watch, whom to tell) and the latest alerts.

The form is the API's body (config/alert_rules.py validates both): a rule's scope is one of machine, line, area or
site; threshold is a fraction (0.65 is 65 %); the webhook secret is written, never shown back.
"""
from __future__ import annotations

from datetime import datetime

import dash
import dash_bootstrap_components as dbc
from dash import Input, Output, callback, dcc, html
from flask import current_app

from components import context, format
from components.settings_crud import CrudSection, Field, settings_nav
from config import alert_rules
from db import alerts as alert_store
from db.models import ALERT_KINDS

dash.register_page(__name__, path="/settings/alerts/", name="Alert rules", title="OEE · Alert rules", nav=False)
VERSION = "sa-version"
KINDS = [{"label": k.replace("_", " "), "value": k} for k in ALERT_KINDS]
SCOPES = [{"label": s, "value": s} for s in alert_rules.SCOPES]
METRICS = [{"label": m, "value": m} for m in alert_rules.METRICS]
WINDOWS = [{"label": w, "value": w} for w in alert_rules.WINDOWS]


class RuleStore:
    """config.alert_rules behind the functions CrudSection calls (kind 'alert_rules')."""

    NotFound = alert_rules.NotFound

    @staticmethod
    def _credentials():
        return current_app.extensions["oee"].credentials

    @staticmethod
    def list_items(engine, _kind, limit=500):
        return alert_rules.list_rules(engine, limit=limit)

    @staticmethod
    def get_item(engine, _kind, pk):
        return alert_rules.get_rule(engine, pk)

    @classmethod
    def create_item(cls, engine, _kind, body):
        return alert_rules.create_rule(engine, body, cls._credentials())

    @classmethod
    def update_item(cls, engine, _kind, pk, body):
        if not body.get("webhook_secret"):  # left blank in the form: keep the stored secret
            body.pop("webhook_secret", None)
        return alert_rules.update_rule(engine, pk, body, cls._credentials())

    @staticmethod
    def delete_item(engine, _kind, pk):
        alert_rules.delete_rule(engine, pk)

    @staticmethod
    def item_impact(engine, _kind, pk):
        return {"alerts": alert_store.list_alerts(engine, rule_id=pk, limit=1)[0]}


def _number(value):
    if value in (None, ""):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return value  # the validator names the field


def to_body(v: dict) -> dict:
    body = {"name": v["name"], "kind": v["kind"], "for_s": _number(v["for_s"]), "reset_s": _number(v["reset_s"]),
            "webhook_url": v["webhook_url"] or None, "webhook_secret": v["webhook_secret"] or None,
            "email_to": [a.strip() for a in (v["email_to"] or "").replace(";", ",").split(",") if a.strip()],
            "enabled": bool(v["enabled"])}
    if v["scope"] and v["scope_key"]:
        body[v["scope"]] = v["scope_key"]
    if v["kind"] == "oee_below":
        body.update(threshold=_number(v["threshold"]), metric=v["metric"] or "oee", window=v["window"] or "hour")
    return body


def to_form(rule: dict) -> dict:
    scope = next((s for s in alert_rules.SCOPES if rule.get(s) is not None), None)
    return {**rule, "scope": scope, "scope_key": rule.get(scope) if scope else None, "webhook_secret": "",
            "email_to": ", ".join(rule["email_to"])}


def _delivery(rule: dict) -> str:
    if rule["last_error"]:
        return f"failed: {rule['last_error']}"
    return f"sent {rule['last_sent']}" if rule["last_sent"] else "—"


RULES = CrudSection(
    "sa-rule", "alert_rules", "Alert rules", [
        Field("name", "Name", help="e.g. Filler stopped"),
        Field("kind", "Kind", kind="select", options=KINDS, default="machine_stopped", width=4,
              help="machine stopped (unplanned), OEE below, connection failing, writer spooling"),
        Field("scope", "Scope", kind="select", options=SCOPES, default="machine", width=2),
        Field("scope_key", "Machine id, line, area or site", width=2,
              help="LINE-001, or a name or id; none: the plant (connection, writer)"),
        Field("for_s", "For (s)", kind="number", default=60, width=2, help="the condition must hold this long"),
        Field("reset_s", "Reset (s)", kind="number", default=0, width=2, help="gone this long before it resolves"),
        Field("threshold", "Threshold (0-1)", kind="number", width=2, help="OEE below: 0.65 is 65 %"),
        Field("metric", "Metric", kind="select", options=METRICS, default="oee", width=2),
        Field("window", "Window", kind="select", options=WINDOWS, default="hour", width=2),
        Field("webhook_url", "Webhook URL", width=6, help="http:// or https://; a signed JSON POST"),
        Field("webhook_secret", "Webhook secret", kind="password", width=3,
              help="16+ characters; never shown; blank keeps the stored one"),
        Field("email_to", "E-mail to", width=6, help="addresses, comma-separated"),
        Field("enabled", "Enabled", kind="switch", default=True, width=2),
    ], [("Name", lambda r: r["name"]), ("Kind", lambda r: r["kind"].replace("_", " ")),
        ("Scope", lambda r: next((f"{s} {r[s]}" for s in alert_rules.SCOPES if r.get(s) is not None), "plant")),
        ("For", lambda r: f"{r['for_s']:g} s"), ("Enabled", lambda r: "yes" if r["enabled"] else "no"),
        ("Last notification", _delivery)],
    lambda body: body, VERSION, to_form=to_form, to_body=to_body, store=RuleStore)


def alert_table():
    engine = current_app.extensions["oee"].store.engine
    _total, rows = alert_store.list_alerts(engine, limit=50)
    if not rows:
        return dbc.Alert("No alerts yet.", color="light", id="sa-alerts-empty")
    colour = {"active": "danger", "acknowledged": "warning", "resolved": "success"}
    tz = context.tz()

    def when(text):
        if not text:
            return "—"
        return format.local(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp(), tz, "%Y-%m-%d %H:%M:%S")

    return dbc.Table([html.Thead(html.Tr([html.Th(h) for h in ("Started", "Rule", "Machine", "State", "Message",
                                                               "Acknowledged by", "Resolved")])),
                      html.Tbody([html.Tr([html.Td(when(a["started_at"])), html.Td(a["rule"]), html.Td(a["machine_id"] or "—"),
                                           html.Td(dbc.Badge(a["state"], color=colour.get(a["state"], "secondary"))),
                                           html.Td(a["message"]), html.Td(a["acknowledged_by"] or "—"),
                                           html.Td(when(a["resolved_at"]))], className="sa-alert-row")
                                  for a in rows])], size="sm", id="sa-alerts-table")


@callback(Output("sa-alerts", "children"), Input("sa-alerts-tick", "n_intervals"), Input(VERSION, "data"))
def _alerts(_n, _version):
    return alert_table()


def layout(**_query):
    return html.Div([dcc.Store(id=VERSION, data=0), html.H2("Settings · Alert rules"),
                     settings_nav("/settings/alerts/"), RULES.layout(),
                     dbc.Card([dbc.CardHeader(html.Span("Alerts", className="fw-bold")),
                               dbc.CardBody(html.Div(id="sa-alerts"))]),
                     dcc.Interval(id="sa-alerts-tick", interval=5000)])
