"""/settings/audit/: the audit log for admins (auth.rules): who changed what and when, with what changed
from what, and every value written to a PLC. Newest first, 50 to a page.

Filters live in the URL (actor, action, target, start, end, page), so a view can be bookmarked or sent: the form
navigates to the URL, and the page is drawn from it. The same filters serve GET /api/audit/ and
/export/audit.csv, linked here with the page's filters.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import dash
import dash_bootstrap_components as dbc
from dash import Input, Output, State, callback, dcc, html, no_update

from api import ApiError
from components import context
from db import audit

dash.register_page(__name__, path="/settings/audit/", name="Audit log", title="OEE · Audit log", order=91)

PAGE_SIZE = 50
MAX_CHANGES = 40  # lines of one entry's diff on the page (the CSV and the API have all of it)
TEXT_FILTERS = ("actor", "action", "target")
TIME_FILTERS = ("start", "end")


def _search(query: dict) -> str:
    items = [(k, query[k]) for k in (*TEXT_FILTERS, *TIME_FILTERS, "page") if query.get(k) not in (None, "")]
    return "?" + urlencode(items) if items else ""


def _show(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, str):
        return value if value else '""'
    return json.dumps(value, ensure_ascii=False)


def _diff(entry: dict) -> html.Div:
    rows = audit.changes(entry["before"], entry["after"])
    if not rows:
        return html.Div("no fields", className="text-muted small")
    shown = rows[:MAX_CHANGES]
    body = [html.Tr([html.Td(path, className="font-monospace"), html.Td(_show(old), className="audit-old"),
                     html.Td(_show(new), className="audit-new")]) for path, old, new in shown]
    table = dbc.Table([html.Thead(html.Tr([html.Th("Field"), html.Th("Before"), html.Th("After")])),
                       html.Tbody(body)], size="sm", bordered=False, className="mb-0 small")
    more = [html.Div(f"… and {len(rows) - len(shown)} more (see the CSV export)", className="text-muted small")
            ] if len(rows) > len(shown) else []
    return html.Div([table, *more])


def _time(iso: str, tz) -> str:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")


def _filters(query: dict) -> tuple[dict, str | None]:
    """db.audit filters from the URL, or the error to show (the API's message naming the argument)."""
    from api.audit import parse_filters

    args = {k: query[k] for k in (*TEXT_FILTERS, *TIME_FILTERS) if query.get(k) not in (None, "")}
    try:
        return parse_filters(args, path="/settings/audit/"), None
    except ApiError as exc:
        fields = "; ".join(f"{k}: {v}" for k, v in (exc.fields or {}).items())
        return {}, f"{exc.message}" + (f" ({fields})" if fields else "")


def _pager(query: dict, page: int, pages: int) -> html.Div:
    def link(n: int, label: str, lid: str):
        href = dash.get_relative_path("/settings/audit/") + _search({**query, "page": n})
        return dcc.Link(label, href=href, id=lid, className="btn btn-outline-secondary btn-sm me-2")

    parts = []
    if page > 1:
        parts.append(link(page - 1, "← Newer", "audit-newer"))
    parts.append(html.Span(f"page {page} of {max(pages, 1)}", className="me-2 small", id="audit-page-of"))
    if page < pages:
        parts.append(link(page + 1, "Older →", "audit-older"))
    return html.Div(parts, className="d-flex align-items-center my-2")


def layout(**query):
    query = {k: v for k, v in query.items() if isinstance(v, str)}
    try:
        page = max(1, int(query.get("page", "1")))
    except ValueError:
        page = 1
    filters, problem = _filters(query)
    tz_name = context.tz()
    tz = timezone.utc if tz_name.upper() == "UTC" else ZoneInfo(tz_name)
    if problem:
        total, entries = 0, []
    else:
        total, entries = audit.list_entries(context.store().engine, offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE,
                                            **filters)
    pages = (total + PAGE_SIZE - 1) // PAGE_SIZE
    export_href = dash.get_relative_path("/export/audit.csv") + _search({**query, "page": None})

    def text_input(key: str, placeholder: str):
        return dbc.Col([dbc.Label(key.capitalize(), html_for=f"audit-{key}"),
                        dbc.Input(id=f"audit-{key}", value=query.get(key, ""), placeholder=placeholder, debounce=True,
                                  maxLength=200)], md=2)

    def time_input(key: str, label: str):
        return dbc.Col([dbc.Label(label, html_for=f"audit-{key}"),
                        dbc.Input(id=f"audit-{key}", value=query.get(key, ""), placeholder="2026-11-28T06:00Z",
                                  debounce=True)], md=2)

    form = dbc.Row([
        text_input("actor", "user name, token:…"),
        text_input("action", "machine, tag.write"),
        text_input("target", "LINE-017"),
        time_input("start", "From (UTC unless an offset)"),
        time_input("end", "Until"),
        dbc.Col([dbc.Button("Apply", id="audit-apply", color="primary", className="me-2"),
                 dbc.Button("Clear", id="audit-clear", color="secondary", outline=True)],
                md=2, className="d-flex align-items-end"),
    ], className="g-2 mb-3")
    rows = [html.Tr([
        html.Td(_time(e["time"], tz), className="text-nowrap"),
        html.Td(e["actor"]), html.Td(html.Code(e["action"])), html.Td(e["target"]),
        html.Td(e["source_ip"] or "", className="small text-muted"), html.Td(_diff(e)),
    ], id={"type": "audit-entry", "id": e["id"]}) for e in entries]
    table = dbc.Table([
        html.Thead(html.Tr([html.Th(f"Time ({tz_name})"), html.Th("Who"), html.Th("Action"), html.Th("Target"),
                            html.Th("From"), html.Th("What changed")])),
        html.Tbody(rows)], striped=True, hover=True, responsive=True, size="sm", id="audit-table")
    return html.Div([
        dcc.Location(id="audit-nav", refresh="callback-nav"),
        html.H2("Settings · Audit log"),
        html.P("Every configuration change (who, when, before and after) and every value written to a PLC. "
               "Passwords never appear ('***').", className="text-muted"),
        form,
        dbc.Alert(problem, color="danger", id="audit-problem") if problem else None,
        html.Div([html.Span(f"{total} entr{'y' if total == 1 else 'ies'}", id="audit-count", className="me-3"),
                  html.A("Download CSV", href=export_href, id="audit-csv", className="btn btn-link btn-sm")],
                 className="d-flex align-items-center"),
        _pager(query, page, pages),
        table if entries else html.P("No entries match." if total == 0 else "", className="text-muted",
                                     id="audit-empty"),
    ])


@callback(Output("audit-nav", "href"),
          Input("audit-apply", "n_clicks"), Input("audit-clear", "n_clicks"),
          *(Input(f"audit-{k}", "n_submit") for k in (*TEXT_FILTERS, *TIME_FILTERS)),
          *(State(f"audit-{k}", "value") for k in (*TEXT_FILTERS, *TIME_FILTERS)),
          prevent_initial_call=True)
def apply_filters(*args):
    """The form to the URL (page 1); the page is drawn again from it."""
    if not dash.ctx.triggered_id:
        return no_update
    values = args[-len(TEXT_FILTERS) - len(TIME_FILTERS):]
    query = {} if dash.ctx.triggered_id == "audit-clear" else {
        k: (v or "").strip() for k, v in zip((*TEXT_FILTERS, *TIME_FILTERS), values)}
    return dash.get_relative_path("/settings/audit/") + _search(query)
