"""/reports/: the shift report of a line (or the plant) for a date and shift, on one printed page.

URL: /reports/?date=YYYY-MM-DD&shift=<name>&line=<id>. The sheet is a fixed-width page on screen and in print
(assets/print.css: A4 portrait, navigation and controls hidden, nothing split across pages). Its numbers come
from oee_report over the shift (the function behind GET /api/oee/), its stops from db.ui_queries.
"""
from __future__ import annotations

import time
from datetime import date, datetime, timedelta

import dash
import dash_bootstrap_components as dbc
from dash import Input, Output, State, callback, clientside_callback, dcc, html

from components import charts, context, timerange
from components.download import export_url
from components.format import count, duration, local, pct, zone
from components.kpi import FACTORS, TARGETS, flag_notes, warning_mark, warning_text
from db import downtime_queries, ui_queries
from db.oee_queries import ScopeError, oee_report

dash.register_page(__name__, path="/reports/", name="Reports", title="OEE · Shift report", order=20)

PREFIX = "report"
WHOLE_DAY = "__day__"
SHEET_WIDTH = 720  # px: the printable width of A4 portrait with 10 mm margins, so the charts need no reflow
STATIC = {"staticPlot": True, "displayModeBar": False}


def _default_shift(line: str | None, tz: str) -> tuple[str, str]:
    now = time.time()
    sh = ui_queries.shift_at(context.store(), "line" if line else None, line, now)
    if sh is None:
        return datetime.fromtimestamp(now, zone(tz)).date().isoformat(), WHOLE_DAY
    return sh["date"], sh["name"]


def layout(**query):
    query = timerange.normalize(query)
    s = context.store()
    tz = context.tz()
    lines = ui_queries.plant_lines(s)
    if not lines:
        return html.Div([html.H2("Shift report", className="page-title"),
                         dbc.Alert(["No lines yet. Add machines and lines in the ",
                                    dcc.Link("configuration wizard", href=dash.get_relative_path("/machine-config/")),
                                    "."], color="info", id="report-empty")])
    line = query.get("line") or str(lines[0]["id"])
    day, shift = _default_shift(line, tz)
    day = query.get("date") or day
    shift = query.get("shift") or shift
    embed = timerange.is_embed(query)
    controls = html.Div([
        dbc.Label("Date", html_for="report-date", className="mb-0 small"),
        dbc.Input(id="report-date", value=day, type="text", placeholder="YYYY-MM-DD", className="range-input",
                  debounce=True),
        dbc.Label("Shift", html_for="report-shift", className="mb-0 small"),
        dcc.Dropdown(id="report-shift", value=shift, clearable=False, placeholder="Shift", className="filter-select-sm"),
        dcc.Dropdown(id="report-line", value=line, clearable=False, className="filter-select",
                     options=[{"label": f"{ln['name']} ({ln['area']})", "value": str(ln["id"])} for ln in lines]
                     + [{"label": "Whole plant", "value": "site"}]),
        dbc.Button("Print", id="report-print", color="primary", outline=True),
    ], className="d-flex flex-wrap gap-2 align-items-center mb-3 no-print",
        style={"display": "none"} if embed else {})
    return html.Div([
        html.H2("Shift report", className="page-title no-print"),
        dcc.Location(id="report-url", refresh=False),
        controls,
        html.Div(id="report-print-dummy", style={"display": "none"}),
        dcc.Loading(html.Div(id="report-sheet", className="report-sheet"), type="dot", delay_show=400),
    ], className="reports" + (" embedded" if embed else ""))


def _day(day) -> date | None:
    """The report's date, or None when it is not one: not YYYY-MM-DD, or outside 1970 to tomorrow (nothing is
    recorded there, and the year 9999 has no next day to end a shift on)."""
    try:
        d = date.fromisoformat(day or "")
    except (TypeError, ValueError):
        return None
    return d if date(1970, 1, 2) <= d <= date.fromtimestamp(time.time() + 86400) else None


@callback(
    Output("report-shift", "options"),
    Output("report-shift", "value"),
    Input("report-date", "value"),
    Input("report-line", "value"),
    State("report-shift", "value"),
)
def _shifts(day, line, current):
    if _day(day) is None:
        return [{"label": "Whole day", "value": WHOLE_DAY}], WHOLE_DAY
    shifts = ui_queries.shifts_on(context.store(), day, None if line in (None, "site") else line)
    options = [{"label": f"Shift {s['name']} ({local(s['start'], context.tz())}–{local(s['end'], context.tz())})",
                "value": s["name"]} for s in shifts] + [{"label": "Whole day", "value": WHOLE_DAY}]
    values = [o["value"] for o in options]
    return options, current if current in values else values[0]


def _window(day: str, shift: str, line: str | None, tz: str) -> tuple[float, float, str] | None:
    d = _day(day)
    if d is None:
        return None
    if shift != WHOLE_DAY:
        for s in ui_queries.shifts_on(context.store(), day, line):
            if s["name"] == shift:
                return s["start"], s["end"], f"Shift {shift}"
    z = zone(tz)
    a = datetime.combine(d, datetime.min.time(), tzinfo=z).timestamp()
    b = datetime.combine(d + timedelta(days=1), datetime.min.time(), tzinfo=z).timestamp()
    return a, b, "Whole day"


@callback(
    Output("report-sheet", "children"),
    Output("report-url", "search"),
    Input("report-date", "value"),
    Input("report-shift", "value"),
    Input("report-line", "value"),
)
def _sheet(day, shift, line):
    s = context.store()
    tz = context.tz()
    site = context.site()
    scope, key = ("site", str(site["id"])) if line in (None, "site") else ("line", line)
    search = timerange.search_of({"date": day, "shift": shift, "line": line})
    window = _window(day, shift, None if scope == "site" else key, tz)
    if window is None:
        return dbc.Alert("Write the date as YYYY-MM-DD, from 1970 to today.", color="warning",
                         id="report-bad-date"), search
    a, b, label = window
    now = time.time()
    if a >= now:
        return dbc.Alert("This shift has not started yet.", color="info", id="report-future"), search
    rng = context.resolve({"range": "custom", "start": repr(a), "end": repr(min(b, now))},
                          None if scope == "site" else scope, None if scope == "site" else key)
    start, end = round(rng.start, 3), round(rng.end, 3)
    try:
        report = oee_report(s, scope, key, start, end, bucket="hour")
        events = downtime_queries.downtime_events(s, start, end, scope=scope, key=key)
    except (ScopeError, ValueError) as exc:
        return dbc.Alert(str(exc), color="warning"), search
    name = site["name"] if scope == "site" else ui_queries.scope_name(s, "line", key)
    ongoing = b > now
    header = html.Div([
        html.Div([html.Div(site["name"] or "", className="report-site"),
                  html.H3(f"Shift report · {name}", className="report-title", id="report-title")]),
        html.Div([html.Div(f"{datetime.fromisoformat(day).strftime('%A %d %B %Y')} · {label}", className="fw-bold"),
                  html.Div(f"{local(start, tz)} – {local(end, tz)} {datetime.fromtimestamp(end, zone(tz)).tzname()}"
                           + (" (shift still running)" if ongoing else "")),
                  html.Div(f"printed {local(now, tz, '%d %b %Y %H:%M')}", className="text-muted small"),
                  html.Div([html.A("CSV by machine", href=export_url("shift-report", {scope: key, "start": start,
                                                                                       "end": end}), download=""),
                            " · ",
                            html.A("CSV by hour", href=export_url("oee", {scope: key, "start": start, "end": end,
                                                                          "bucket": "hour"}), download="")],
                           className="small no-print", id="report-csv")],
                 className="text-end"),
    ], className="report-header")
    kpis = html.Div([html.Div([
        html.Div(title, className="kpi-label"),
        html.Div([html.Span(pct(report.get(k)), id=f"report-kpi-{k}"),
                  warning_mark(warning_text(report, k), f"report-kpi-{k}-warning")], className="report-kpi-value"),
        html.Div(f"target {TARGETS[k] * 100:.0f} %", className="kpi-target"),
    ], className=f"report-kpi kpi-{charts.kpi_color(report.get(k), TARGETS[k])}") for k, title in FACTORS],
        className="report-kpis")
    facts = html.Table(html.Tbody(html.Tr([html.Td([html.Div(lbl, className="fact-label"),
                                                    html.Div(v, className="report-fact")]) for lbl, v in (
        ("Good", count(report.get("good_count"))), ("Total", count(report.get("total_count"))),
        ("Rejects", count(report.get("reject_count"))), ("Planned time", duration(report.get("planned_time_s"))),
        ("Run time", duration(report.get("run_time_s"))), ("Stops", count(report.get("stop_count"))),
        ("MTBF", duration(report.get("mtbf_s"))), ("MTTR", duration(report.get("mttr_s"))))])),
        className="report-facts")
    half = SHEET_WIDTH // 2 - 6
    waterfall = charts.waterfall_figure(report.get("waterfall") or [])
    waterfall.update_layout(width=half, height=250, font={"size": 10}, margin={"l": 4, "r": 4, "t": 4, "b": 4})
    trend = charts.trend_figure(report.get("buckets") or [], tz, TARGETS, "hour")
    trend.update_layout(width=half, height=250, font={"size": 10}, margin={"l": 4, "r": 4, "t": 4, "b": 4},
                        legend={"font": {"size": 9}})
    figures = html.Div([
        html.Div([html.Div("Losses", className="report-section"),
                  dcc.Graph(figure=waterfall, config=STATIC, style={"width": f"{half}px", "height": "250px"})]),
        html.Div([html.Div("OEE by hour", className="report-section"),
                  dcc.Graph(figure=trend, config=STATIC, style={"width": f"{half}px", "height": "250px"})]),
    ], className="report-figures")
    machines = report.get("machines") or []
    mtable = dbc.Table([
        html.Thead(html.Tr([html.Th(h) for h in ("Machine", "OEE", "A", "P", "Q", "Good", "Total")])),
        html.Tbody([html.Tr([html.Td(f"{m['machine_id']} {m['name']}")]
                            + [html.Td([pct(m[k]), warning_mark(warning_text(m, k))])
                               for k in ("oee", "availability", "performance", "quality")]
                            + [html.Td(count(m["good_count"])), html.Td(count(m["total_count"]))])
                    for m in machines]),
    ], size="sm", className="report-table", id="report-machines")
    pareto = downtime_queries.downtime_pareto(events)[:6]
    causes = dbc.Table([
        html.Thead(html.Tr([html.Th(h) for h in ("Cause", "Stops", "Time", "Share")])),
        html.Tbody([html.Tr([html.Td(g["label"] + (" (planned)" if g["planned"] else "")), html.Td(g["count"]),
                             html.Td(duration(g["seconds"])), html.Td(f"{g['share'] * 100:.0f} %")])
                    for g in pareto] or [html.Tr(html.Td("No stops.", colSpan=4))]),
    ], size="sm", className="report-table")
    noted = [e for e in events if e["note"]][:5]
    notes = html.Ul([html.Li(f"{local(e['start'], tz)} {e['machine_id']} ({duration(e['duration_s'])}): {e['note']}")
                     for e in noted], className="report-notes") if noted else html.Div(
        "No operator notes.", className="text-muted")
    flags = flag_notes(report)
    return html.Div([
        header, kpis, facts, figures,
        html.Div("Machines", className="report-section"), mtable,
        html.Div([html.Div([html.Div("Largest causes of stops", className="report-section"), causes],
                           className="report-col"),
                  html.Div([html.Div("Operator notes", className="report-section"), notes]
                           + ([html.Div("Data: " + " ".join(flags), className="report-flags")] if flags else []),
                           className="report-col")], className="report-cols"),
        html.Div([html.Div("Shift lead", className="report-sign"), html.Div("Production manager",
                                                                               className="report-sign")],
                 className="report-signatures"),
    ], className="report-page", id="report-page"), search


clientside_callback(
    "function(n) { if (n) { window.print(); } return ''; }",
    Output("report-print-dummy", "children"),
    Input("report-print", "n_clicks"),
    prevent_initial_call=True,
)
