"""/downtime/: every stop in a range, filtered; operators give a reason, add a note, or split a stop in two.

Events are derived from the machine states (db.downtime_queries.downtime_events); what an operator decides is stored in
downtime_events and read by oee_report as an override, so a reason given here moves that time in the loss
breakdown of the pages and of GET /api/oee/ at once.
"""
from __future__ import annotations

import time

import dash
import dash_bootstrap_components as dbc
from dash import ALL, Input, Output, State, callback, ctx, dcc, html, no_update

from auth.web import may
from components import context, range_picker, timerange
from components.download import DownloadLinkAIO
from components.loss_pareto import LossParetoAIO
from components.format import STATE_COLORS, STATE_LABELS, STATE_TEXT_COLORS, duration, local, plural
from db import downtime_queries, ui_queries
from db.oee_queries import TooMuchData
from oee.vocabulary import LABELS, PLANNED_CATEGORIES, STOP_CATEGORIES, UNKNOWN

dash.register_page(__name__, path="/downtime/", name="Downtime", title="OEE · Downtime", order=10)

PREFIX = "downtime"
MAX_ROWS = 300
DEFAULT_REFRESH_S = 60
MIN_OPTIONS = [{"label": "Any length", "value": ""}, {"label": "≥ 30 s", "value": "30"},
               {"label": "≥ 2 min", "value": "120"}, {"label": "≥ 10 min", "value": "600"},
               {"label": "≥ 1 h", "value": "3600"}]
CATEGORY_OPTIONS = ([{"label": "All causes", "value": ""},
                     {"label": "Without an operator's reason", "value": "unassigned"}]
                    + [{"label": LABELS[c], "value": c} for c in STOP_CATEGORIES + (UNKNOWN,) + PLANNED_CATEGORIES])


def layout(**query):
    query = timerange.normalize(query)
    s = context.store()
    tz = context.tz()
    embed = timerange.is_embed(query)
    machines = ui_queries.plant_machines(s)
    lines = ui_queries.plant_lines(s)
    scope, key = timerange.scope_of(query)
    try:
        resolved = context.resolve(query, scope, key)
    except LookupError:
        resolved = None
    refresh = timerange.parse_refresh(query.get("refresh"), DEFAULT_REFRESH_S)
    reasons = downtime_queries.reason_codes(s)
    if not machines:
        return html.Div([html.H2("Downtime", className="page-title"),
                         dbc.Alert(["No machines yet. Add them in the ",
                                    dcc.Link("configuration wizard", href=dash.get_relative_path("/machine-config/")),
                                    "."], color="info", id="downtime-empty")])
    filters = html.Div([
        dcc.Dropdown(id="downtime-category", options=CATEGORY_OPTIONS, value=query.get("category", ""),
                     clearable=False, className="filter-select"),
        dcc.Dropdown(id="downtime-min", options=MIN_OPTIONS, value=query.get("min", ""), clearable=False,
                     className="filter-select-sm"),
        dbc.Checkbox(id="downtime-minor", label="Include minor stops (< 2 min)",
                     value=query.get("minor", "1") != "0"),
    ], className="d-flex flex-wrap gap-3 align-items-center mb-2 no-print", style={"display": "none"} if embed else {})
    reason_options = [{"label": f"{r['name']} · {r['category_label']}" + (" (planned)" if r["planned"] else ""),
                       "value": r["code"]} for r in reasons]
    modal = dbc.Modal([
        dbc.ModalHeader(dbc.ModalTitle("Stop", id="downtime-modal-title")),
        dbc.ModalBody([
            html.Div(id="downtime-modal-facts", className="mb-3"),
            dbc.Label("Reason", html_for="downtime-reason"),
            dcc.Dropdown(id="downtime-reason", options=reason_options, placeholder="Pick a reason",
                         className="mb-2"),
            html.Div("No reason codes yet: add them in the configuration." if not reasons else "",
                     className="text-muted small"),
            dbc.Label("Note", html_for="downtime-note", className="mt-2"),
            dbc.Textarea(id="downtime-note", placeholder="What happened, what was done", rows=3),
            dbc.Button("Save reason and note", id="downtime-save", color="primary", className="mt-2"),
            html.Hr(),
            dbc.Label("Split this stop at (plant time, HH:MM:SS)", html_for="downtime-split-at"),
            dbc.InputGroup([dbc.Input(id="downtime-split-at", placeholder="HH:MM:SS", type="text"),
                            dbc.Button("Split", id="downtime-split", color="secondary")]),
            html.Div(id="downtime-modal-message", className="mt-2"),
        ]),
    ], id="downtime-modal", is_open=False, size="lg")
    return html.Div([
        html.H2("Downtime", className="page-title"),
        range_picker.TimeRangeAIO(PREFIX, query, tz=tz, resolved=resolved,
                               scope_options=range_picker.scope_options(machines, lines),
                               scope_value=f"{scope}:{key}" if scope else None, hidden=embed),
        filters,
        dcc.Interval(id="downtime-refresh", interval=(refresh or 86400) * 1000, disabled=refresh is None),
        dcc.Store(id="downtime-events", data=[]),
        dcc.Store(id="downtime-selected", data=None),
        dcc.Store(id="downtime-saved", data=0),
        html.Div([html.Div(id="downtime-summary"),
                  DownloadLinkAIO("downtime-csv", "downtime", {}, className="no-print ms-auto")],
                 className="d-flex flex-wrap align-items-start gap-2 mb-2"),
        LossParetoAIO(PREFIX, what="downtime", by="reason"),
        dcc.Loading(html.Div(id="downtime-table"), type="dot", delay_show=400),
        modal,
    ], className="downtime" + (" embedded" if embed else ""))


def _seconds(raw) -> float:
    """The URL's min (seconds); not a number of seconds: 0 (no filter), as a missing one."""
    try:
        value = float(raw or 0)
    except (TypeError, ValueError):
        return 0.0
    return value if 0 <= value <= 366 * 86400 else 0.0


@callback(
    Output(range_picker.TimeRangeAIO.ids.query(PREFIX), "data", allow_duplicate=True),
    Output(range_picker.TimeRangeAIO.ids.url(PREFIX), "search", allow_duplicate=True),
    Input("downtime-category", "value"),
    Input("downtime-min", "value"),
    Input("downtime-minor", "value"),
    State(range_picker.TimeRangeAIO.ids.query(PREFIX), "data"),
    prevent_initial_call=True,
)
def _filters(category, minimum, minor, query):
    query = dict(query or {})
    for k, v in (("category", category), ("min", minimum), ("minor", "" if minor else "0")):
        if v:
            query[k] = v
        else:
            query.pop(k, None)
    return query, timerange.search_of(query)


@callback(
    Output("downtime-summary", "children"),
    Output("downtime-table", "children"),
    Output("downtime-events", "data"),
    Output(DownloadLinkAIO.ids.params("downtime-csv"), "data"),
    Input(range_picker.TimeRangeAIO.ids.query(PREFIX), "data"),
    Input("downtime-refresh", "n_intervals"),
    Input("downtime-saved", "data"),
)
def _list(query, _n, _saved):
    query = query or {}
    scope, key = timerange.scope_of(query)
    rng = context.resolve(query, scope, key)
    tz = context.tz()
    csv = DownloadLinkAIO.data("downtime", {**({scope: key} if scope else {}), "start": rng.start, "end": rng.end,
                                            "category": query.get("category"), "minor": query.get("minor"),
                                            "min_duration_s": query.get("min")})
    try:
        events = downtime_queries.downtime_events(
            context.store(), rng.start, rng.end, scope=scope, key=key, category=query.get("category") or None,
            include_minor=query.get("minor", "1") != "0", min_duration_s=_seconds(query.get("min")))
    except (LookupError, TooMuchData) as exc:
        return dbc.Alert(str(exc), color="warning"), None, [], csv
    total = sum(e["in_range_s"] for e in events)
    open_ = sum(1 for e in events if e["source"] != "operator" and not e["planned"])
    summary = html.Div([
        html.Div([html.Strong(rng.label), " · ", rng.text], className="range-caption"),
        html.Span(plural(len(events), "stop"), id="downtime-count", className="fact-value me-3"),
        html.Span(f"{duration(total)} in this range", className="me-3"),
        html.Span(f"{open_:,} unplanned without an operator's reason", className="text-muted"),
    ] + ([dbc.Alert(rng.note, color="info", className="py-1 px-2 mt-2 mb-0 small")] if rng.note else []))
    if not events:
        return summary, dbc.Alert("No stops in this range with these filters.", color="light",
                                  id="downtime-none"), [], csv
    rows = []
    # Giving reasons, notes and splits is an operator's work (auth/rules.py refuses the save for others):
    # everyone else sees the button disabled, with why, rather than a dialog whose save fails.
    can_edit = may("operator")
    edit_title = None if can_edit else "Sign in as an operator to give stops reasons and notes"
    for e in events[:MAX_ROWS]:
        state = e["state"]
        cause = e["reason_name"] or e["fault_label"] or ""
        rows.append(html.Tr([
            html.Td(local(e["start"], tz, "%a %d %b %H:%M:%S")),
            html.Td(dcc.Link([e["machine_name"] or e["machine_id"], " ",
                              html.Span(e["machine_id"], className="text-muted small")],
                             href=dash.get_relative_path(f"/machine/{e['machine_id']}")), title=e["machine_id"]),
            html.Td(duration(e["duration_s"]) + (" (ongoing)" if e["open"] else ""), className="num"),
            html.Td(html.Span(STATE_LABELS.get(state, state), className="state-pill",
                              style={"backgroundColor": STATE_COLORS.get(state, "#aab2ba"),
                                     "color": STATE_TEXT_COLORS.get(state, "#000")})),
            html.Td([cause, html.Span(" minor" if e["minor"] else "", className="text-muted small")]),
            html.Td(e["category_label"] + (" (planned)" if e["planned"] else ""),
                    className="fw-semibold" if e["source"] == "operator" else ""),
            html.Td(e["note"], className="note-cell"),
            html.Td(dbc.Button("Edit", id={"type": "downtime-edit", "key": e["key"]}, size="sm",
                               color="primary", outline=True, className="no-print", disabled=not can_edit,
                               title=edit_title)),
        ], className="row-operator" if e["source"] == "operator" else ""))
    head = html.Thead(html.Tr([html.Th(h) for h in ("Start", "Machine", "Duration", "State", "Cause", "Category",
                                                    "Note", "")]))
    more = [] if len(events) <= MAX_ROWS else [html.Div(
        f"Showing the {MAX_ROWS} most recent of {len(events):,} stops: narrow the range or the filters.",
        className="text-muted small")]
    table = html.Div([dbc.Table([head, html.Tbody(rows)], size="sm", hover=True, striped=True,
                                className="monitor-table downtime-table", id="downtime-rows")] + more)
    keep = ("key", "machine_id", "machine_name", "start", "end", "duration_s", "state", "fault_code", "fault_label",
            "category_label", "reason_code", "note", "open", "planned", "source")
    return summary, table, [{k: e[k] for k in keep} for e in events[:MAX_ROWS]], csv


@callback(
    Output("downtime-modal", "is_open"),
    Output("downtime-selected", "data"),
    Output("downtime-modal-title", "children"),
    Output("downtime-modal-facts", "children"),
    Output("downtime-reason", "value"),
    Output("downtime-note", "value"),
    Output("downtime-split-at", "value"),
    Output("downtime-modal-message", "children", allow_duplicate=True),
    Input({"type": "downtime-edit", "key": ALL}, "n_clicks"),
    State("downtime-events", "data"),
    prevent_initial_call=True,
)
def _open(clicks, events):
    if not ctx.triggered_id or not any(clicks or []):
        return (no_update,) * 8
    key = ctx.triggered_id["key"]
    ev = next((e for e in events or [] if e["key"] == key), None)
    if ev is None:
        return (no_update,) * 8
    tz = context.tz()
    end = ev["end"] if ev["end"] is not None else time.time()
    facts = html.Div([
        html.Div([html.Strong(ev["machine_name"] or ev["machine_id"]), f" {ev['machine_id']}"]),
        html.Div(f"{local(ev['start'], tz, '%a %d %b %H:%M:%S')} – "
                 f"{local(ev['end'], tz, '%H:%M:%S') if ev['end'] else 'ongoing'} ({duration(end - ev['start'])})"),
        html.Div(f"{STATE_LABELS.get(ev['state'], ev['state'])}"
                 + (f" · fault {ev['fault_label']}" if ev["fault_code"] is not None else "")
                 + f" · {ev['category_label']}"),
    ])
    middle = local((ev["start"] + end) / 2, tz, "%H:%M:%S")
    reason = ev["reason_code"] if ev.get("source") == "operator" else None  # a fault's own reason is no decision
    return True, ev, f"Stop on {ev['machine_name'] or ev['machine_id']}", facts, reason, ev["note"], middle, ""


@callback(
    Output("downtime-modal-message", "children"),
    Output("downtime-saved", "data"),
    Output("downtime-modal", "is_open", allow_duplicate=True),
    Input("downtime-save", "n_clicks"),
    State("downtime-selected", "data"),
    State("downtime-reason", "value"),
    State("downtime-note", "value"),
    State("downtime-saved", "data"),
    prevent_initial_call=True,
)
def _save(_clicks, ev, reason, note, saved):
    if not ev:
        return no_update, no_update, no_update
    try:
        downtime_queries.assign_downtime_reason(context.store(), ev["machine_id"], ev["start"], reason or None, note or "")
    except downtime_queries.DowntimeError as exc:
        return dbc.Alert(str(exc), color="danger", className="py-1"), no_update, no_update
    return "", (saved or 0) + 1, False


@callback(
    Output("downtime-modal-message", "children", allow_duplicate=True),
    Output("downtime-saved", "data", allow_duplicate=True),
    Output("downtime-modal", "is_open", allow_duplicate=True),
    Input("downtime-split", "n_clicks"),
    State("downtime-selected", "data"),
    State("downtime-split-at", "value"),
    State("downtime-saved", "data"),
    prevent_initial_call=True,
)
def _split(_clicks, ev, at_text, saved):
    if not ev:
        return no_update, no_update, no_update
    at = _time_on(ev["start"], at_text, context.tz())
    if at is None:
        return dbc.Alert("Write the split time as HH:MM:SS (plant time).", color="danger", className="py-1"), \
            no_update, no_update
    try:
        downtime_queries.split_downtime(context.store(), ev["machine_id"], ev["start"], at)
    except downtime_queries.DowntimeError as exc:
        return dbc.Alert(str(exc), color="danger", className="py-1"), no_update, no_update
    return "", (saved or 0) + 1, False


def _time_on(start: float, text: str | None, tz: str) -> float | None:
    """HH:MM[:SS] in plant time on the day of the stop's start (or the day after, for a stop across midnight)."""
    from datetime import datetime, timedelta

    from components.format import zone

    if not text:
        return None
    parts = text.strip().split(":")
    try:
        h, m, s = (int(parts[0]), int(parts[1]), int(parts[2]) if len(parts) > 2 else 0)
    except (ValueError, IndexError):
        return None
    if not (0 <= h < 24 and 0 <= m < 60 and 0 <= s < 60):
        return None
    z = zone(tz)
    day = datetime.fromtimestamp(start, z)
    at = day.replace(hour=h, minute=m, second=s, microsecond=0)
    if at.timestamp() < start:
        at = (at + timedelta(days=1)).replace(hour=h, minute=m, second=s)
    return at.timestamp()
