"""/ : the plant at a glance. KPIs against targets, the machines that lose most, and a tile per machine.

The KPI row is the site's OEE over the chosen range (default: this shift). A tile shows a machine's state now
(live from the collectors, else the latest stored state), its OEE in its own current shift (its calendar's; today
without one), product, speed against ideal and an active fault with its duration; clicking it opens the machine.
Every OEE comes from oee_report, the function behind GET /api/oee/ (a tile's exact range is in its tooltip).
"""
from __future__ import annotations

import time

import dash
import dash_bootstrap_components as dbc
from dash import Input, Output, callback, clientside_callback, dcc, html
from sqlalchemy.exc import SQLAlchemyError

import oee
from components import context, range_picker, site_report, timerange
from components.format import product as fmt_product
from components.format import STATE_COLORS, STATE_LABELS, STATE_TEXT_COLORS, duration, local, pct, range_text
from components.kpi import JUDGE_AFTER_S, flag_notes, kpi_row
from components.loss_pareto import LossParetoAIO
from db import ui_queries
from db.oee_queries import ScopeError, machine_reports

dash.register_page(__name__, path="/", name="Overview", title="OEE · Overview", order=0)

PREFIX = "overview"
DEFAULT_REFRESH_S = 30
STATUS_TICK_MS = 3000


def _plant(machines: list[dict]) -> list[dict]:
    """Areas, their lines and their machines in the order the tiles are drawn (assets/overview.js)."""
    areas: dict[str, dict[tuple, list]] = {}
    for m in machines:
        areas.setdefault(m["area"] or "Unassigned", {}).setdefault((m["line"] or "No line", m["line_id"]), []).append(m)
    return [{"name": area, "lines": [
        {"name": line, "key": str(line_id), "href": dash.get_relative_path(f"/line/{line_id}") if line_id else None,
         "machines": [{"machine_id": m["machine_id"], "name": m["name"],
                       "href": dash.get_relative_path(f"/machine/{m['machine_id']}")} for m in members]}
        for (line, line_id), members in lines.items()]} for area, lines in areas.items()]


def _status_line(health: dict) -> html.Div:
    db = health["database"]
    writer = health.get("writer") or {}
    parts = [html.Span([html.Strong("Database "), f"{db['backend']} (schema {db['schema_version']})"],
                       id="overview-backend")]
    if writer:
        parts.append(html.Span(f" · writer: {writer['queue_rows']:,} queued, {writer['spooled_rows']:,} spooled, "
                               f"{writer['dropped_rows']:,} dropped"))
    parts.append(html.Span([" · ", dcc.Link("data flow", href=dash.get_relative_path("/dataflow-monitor/"))]))
    return html.Div(parts, className="status-line text-muted small no-print")


def layout(**query):
    query = timerange.normalize(query)
    rt = context.runtime()
    embed = timerange.is_embed(query)
    try:
        machines = ui_queries.plant_machines(rt.store)
        site = context.site()
    except SQLAlchemyError:
        # The collectors keep the data in the spool meanwhile; the page says so instead of failing.
        return html.Div([html.H2("Plant overview", className="page-title"),
                         dbc.Alert("The database cannot be reached right now; data is kept and written when it is "
                                   "back. Reload this page in a moment.", color="warning", id="overview-db-down"),
                         _status_line(rt.health())])
    if not machines:
        return html.Div([
            html.H2("Plant overview", className="page-title"),
            dbc.Alert([html.H5("No machines yet", className="alert-heading"),
                       "Add a machine and its PLC connection in the ",
                       dcc.Link("configuration wizard", href=dash.get_relative_path("/machine-config/"),
                                className="alert-link", id="overview-wizard-link"),
                       ", or start the app with the simulated plant (without --no-demo) to look around."],
                      color="info", id="overview-empty"),
            _status_line(rt.health()),
        ])
    refresh = timerange.parse_refresh(query.get("refresh"), DEFAULT_REFRESH_S)
    try:
        resolved = context.resolve(query)
    except LookupError:
        resolved = None
    return html.Div([
        html.Div([html.H2(site["name"] or "Plant overview", className="page-title", id="overview-title"),
                  html.Span(id="overview-clock", className="text-muted")],
                 className="d-flex align-items-baseline gap-3"),
        range_picker.TimeRangeAIO(PREFIX, query, tz=site["timezone"], resolved=resolved, hidden=embed),
        dcc.Interval(id="overview-refresh", interval=(refresh or 86400) * 1000, disabled=refresh is None),
        dcc.Interval(id="overview-tick", interval=STATUS_TICK_MS),
        html.Div(id="overview-notes"),
        dcc.Loading(html.Div(id="overview-kpis"), type="dot", delay_show=400),
        html.Div(id="overview-worst", className="mb-3"),
        LossParetoAIO(PREFIX, what="losses", by="category"),
        # The tiles are drawn and updated by assets/overview.js from these stores (not Dash components: speed).
        dcc.Store(id="overview-plant", data=_plant(machines)),
        dcc.Store(id="overview-numbers"),
        dcc.Store(id="overview-status"),
        html.Div(id="overview-tiles"),
        html.Div(id="overview-tiles-sink", style={"display": "none"}),
        _status_line(rt.health()),
    ], className="overview" + (" embedded" if embed else ""))


def _shift_ranges(machines: list[dict], now: float) -> dict[str, tuple[float, float, str]]:
    """Per machine: its current shift (or last one; today without a calendar), from the shift's start, as /metrics
    counts it. Time before the machine was added is not its planned time (db/oee_queries.py), so a machine added
    mid-shift reads the same here as on /metrics and in the API."""
    s = context.store()
    shifts = ui_queries.machine_shifts(s, now)
    out = {}
    today = timerange.resolve({"range": "today"}, tz=context.tz(), now=now)
    for m in machines:
        sh = shifts.get(m["id"])
        if sh is None:
            a, b, label = today.start, now, "today"
        else:
            a, b = sh["start"], min(sh["end"], now)
            label = f"shift {sh['name']}" if sh["current"] else f"last shift {sh['name']}"
        out[m["machine_id"]] = (round(a, 3), round(b, 3), label)
    return out


@callback(
    Output("overview-notes", "children"),
    Output("overview-kpis", "children"),
    Output("overview-worst", "children"),
    Output("overview-numbers", "data"),
    Input(range_picker.TimeRangeAIO.ids.query(PREFIX), "data"),
    Input("overview-refresh", "n_intervals"),
)
def _numbers(query, _n):
    s = context.store()
    tz = context.tz()
    now = time.time()
    site = context.site()
    rng = context.resolve(query or {})
    start, end = round(rng.start, 3), round(rng.end, 3)
    analyses, problem = {}, []
    try:
        # Shared with the loss Pareto below, which asks for the same range at the same time.
        report, analyses = site_report.site_report(s, site["id"], start, end)
    except (ScopeError, ValueError) as exc:
        report, problem = None, [dbc.Alert(str(exc), color="warning")]
    caption = html.Div([html.Strong(rng.label), " · ", rng.text], className="range-caption",
                       id="overview-range-caption", **{"data-start": repr(start), "data-end": repr(end)})
    notes = [caption] + problem + [dbc.Alert(t, color="info", className="py-1 px-2 mb-2 small")
                         for t in ([rng.note] if rng.note else []) + (flag_notes(report) if report else [])]
    kpis = kpi_row(PREFIX, report, report.get("buckets")) if report else None

    machines = {m["machine_id"]: m for m in ui_queries.plant_machines(s)}
    ranges = _shift_ranges(list(machines.values()), now)
    # One read for every tile, each over its machine's own shift.
    tile_reports = machine_reports(s, {mid: (a, b) for mid, (a, b, _label) in ranges.items() if b - a >= 1})
    tiles, scored, collecting = {}, [], []
    for mid in machines:
        if mid not in ranges:
            continue
        a, b, label = ranges[mid]
        if b - a < 1:
            tiles[mid] = {"text": f"{label}: just started"}
            continue
        r = tile_reports.get(mid)
        if r is None:
            continue
        if (r.get("planned_time_s") or 0) >= JUDGE_AFTER_S:  # a machine's first minutes are not its OEE yet
            scored.append((r["oee"], mid))
        else:
            collecting.append(r.get("planned_time_s") or 0.0)
        warn = " ".join(dict.fromkeys(w["text"] for w in r.get("warnings") or ()))
        tiles[mid] = {"warn": warn or None,
            "value": pct(r["oee"]), "start": repr(a), "end": repr(b), "label": f"OEE {label}",
            "rate": f" · speed {pct(r['performance'], 0)} of ideal" if r["performance"] is not None else "",
            "title": f"{range_text(a, b, tz)}: A {pct(r['availability'])} · P {pct(r['performance'])} · "
                     f"Q {pct(r['quality'])} · {r['good_count']:,.0f} good of {r['total_count']:,.0f}"}
    worst = sorted((v, m) for v, m in scored if v is not None)[:3]
    worst_row = None
    if worst:
        worst_row = html.Div([html.Span("Lowest OEE now: ", className="fw-semibold")] + [
            dcc.Link([html.Strong(machines[m]["name"] or m), f" {m} ", html.Span(pct(v), className="worst-value")],
                     href=dash.get_relative_path(f"/machine/{m}"), className="worst-item")
            for v, m in worst], className="worst-strip", id="overview-worst-strip")
    elif collecting:
        worst_row = html.Div([html.Span("Lowest OEE: ", className="fw-semibold"),
                              f"machines are listed after {duration(JUDGE_AFTER_S)} of data "
                              f"({duration(max(collecting))} so far)."],
                             className="worst-strip text-muted", id="overview-worst-strip")
    line_machines: dict[str, list[str]] = {}
    for m in machines.values():
        line_machines.setdefault(str(m["line_id"]), []).append(m["machine_id"])
    lines = {}
    for line_key, members in line_machines.items():
        # A line's OEE is its machines' analyses of the site's range rolled up: what GET /api/oee/?line= says.
        parts = [analyses[mid] for mid in members if mid in analyses]
        if parts:
            lines[line_key] = f"OEE {pct(oee.rollup_analyses(parts).as_dict()['oee'])}"
    return notes, kpis, worst_row, {"tiles": tiles, "lines": lines}


@callback(
    Output("overview-status", "data"),
    Output("overview-clock", "children"),
    Input("overview-tick", "n_intervals"),
)
def _status(_n):
    now = time.time()
    machines = ui_queries.plant_machines(context.store())
    states = context.machine_states()
    health = context.connections_health()
    faults = products = None
    tiles = {}
    for m in machines:
        st = states.get(m["id"])
        why = context.not_reporting(m, st, health.get(m["connection_id"]))
        state = (st or {}).get("state") or "unknown"
        if not m.get("enabled", True):  # what it last reported is not its state now: the configuration's word wins
            st, state = None, "offline"
        tile = {"state": state, "pill": "Disabled" if not m.get("enabled", True) else STATE_LABELS.get(state, state),
                "color": STATE_COLORS.get(state, "#aab2ba"), "text": STATE_TEXT_COLORS.get(state, "#000"),
                "since": duration(now - st["since"]) if st and st.get("since") else ""}
        if state == "faulted" and st and st.get("fault_code"):
            code = st["fault_code"]
            if faults is None:  # the machine's own fault table, else the plant's reason of that code
                faults = ui_queries.fault_names(context.store())
            text = faults.get(m["id"], {}).get(code)
            tile["fault"] = f"Fault {code}" + (f" {text}" if text else "") + f" · {duration(now - st['since'])}"
        info = []
        if st and st.get("product_code"):
            if products is None:
                products = ui_queries.product_names(context.store())
            info.append(fmt_product(st["product_code"], products))
        if st and st.get("last_cycle_time_s") and st.get("ideal_cycle_time_s") and state == "running":
            rate = st["ideal_cycle_time_s"] / st["last_cycle_time_s"]
            info.append(f"rate {rate * 100:.0f} % of ideal ({60 / st['last_cycle_time_s']:.0f}/min)")
        if info:
            tile["info"] = " · ".join(info)
        if why:
            tile["why"] = why
        tiles[m["machine_id"]] = tile
    return {"tiles": tiles}, local(now, context.tz(), "%a %d %b %H:%M:%S %Z")


# The tiles live in the browser (assets/overview.js): a new plant draws them, new numbers or states only change
# the texts and classes that differ. No request to the server.
clientside_callback(
    """function (plant, numbers, status) {
        if (window.oeeOverview) { window.oeeOverview.update(plant, numbers, status); }
        return window.dash_clientside.no_update;
    }""",
    Output("overview-tiles-sink", "children"),
    Input("overview-plant", "data"),
    Input("overview-numbers", "data"),
    Input("overview-status", "data"),
)
