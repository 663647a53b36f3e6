"""The dashboard of one machine or one line: /machine/<id> and /line/<id> are this All-in-One component.

Sections: status, KPI row against targets with sparklines, OEE trend (hour, shift or day), loss waterfall from all
time down to fully productive time, state timeline, downtime Pareto, planned against actual count, cycle time
against ideal (a machine) or speed by machine (a line), the machines of a line, and live tag graphs (a machine).

Every OEE number comes from one call of db.oee_queries.oee_report, the function behind GET /api/oee/, over a range
rounded to the millisecond; the page links that exact API query ("API" under the KPI row), so what is shown and
what the API answers are the same computation.
"""
from __future__ import annotations

import time
from urllib.parse import urlencode

import dash_bootstrap_components as dbc
from dash import MATCH, Input, Output, State, callback, dcc, get_relative_path, html, no_update

import oee
from components import charts, context, range_picker, timerange
from components.download import export_url
from components.format import product as product_label
from components.format import STATE_COLORS, STATE_LABELS, STATE_TEXT_COLORS, duration, pct
from components.kpi import TARGETS, facts, flag_notes, kpi_row
from components.live import live_graph_attrs, live_socket
from db import downtime_queries, ui_queries
from db.oee_queries import ScopeError, TooMuchData, oee_report

LIVE_WINDOW_S = 600
LIVE_TICK_MS = 2000
MAX_LIVE_POINTS = 900
DEFAULT_REFRESH_S = 60
GRAPH_CONFIG = {"displaylogo": False, "displayModeBar": "hover"}


def _id(sub: str):
    return lambda aio_id: {"component": "ScopeDashboardAIO", "subcomponent": sub, "aio_id": aio_id}


class ScopeDashboardAIO(html.Div):
    class ids:
        config = staticmethod(_id("config"))
        refresh = staticmethod(_id("refresh"))
        status = staticmethod(_id("status"))
        notes = staticmethod(_id("notes"))
        kpis = staticmethod(_id("kpis"))
        facts = staticmethod(_id("facts"))
        api = staticmethod(_id("api"))
        csv = staticmethod(_id("csv"))
        bucket = staticmethod(_id("bucket"))
        trend = staticmethod(_id("trend"))
        waterfall = staticmethod(_id("waterfall"))
        timeline = staticmethod(_id("timeline"))
        pareto = staticmethod(_id("pareto"))
        progress = staticmethod(_id("progress"))
        extra = staticmethod(_id("extra"))
        machines = staticmethod(_id("machines"))
        live_tags = staticmethod(_id("live-tags"))
        live = staticmethod(_id("live"))
        live_tick = staticmethod(_id("live-tick"))
        live_since = staticmethod(_id("live-since"))

    ids = ids

    def __init__(self, aio_id: str, scope: str, key: str, query: dict, *, title: str, live_tags: list | None = None):
        tz = context.tz()
        embed = timerange.is_embed(query)
        refresh = timerange.parse_refresh(query.get("refresh"), DEFAULT_REFRESH_S)
        try:
            resolved = context.resolve(query, scope, key)
        except LookupError:
            resolved = None
        machines = ui_queries.plant_machines(context.store())
        lines = ui_queries.plant_lines(context.store())
        scope_value = f"{scope}:{key}"
        bucket = query.get("bucket") or ""
        picker = range_picker.TimeRangeAIO(
            aio_id, query, tz=tz, resolved=resolved, scope_options=range_picker.scope_options(machines, lines),
            scope_value=scope_value, scope_path=scope, scope_key=key, path=f"/{scope}/{key}", hidden=embed)
        card = _card
        extra_title = "Cycle time against ideal" if scope == "machine" else "Speed, availability and quality by machine"
        body = [
            dcc.Store(id=self.ids.config(aio_id), data={"scope": scope, "key": key}),
            dcc.Interval(id=self.ids.refresh(aio_id), interval=(refresh or 86400) * 1000, disabled=refresh is None),
            html.Div([
                html.H2(title, className="page-title"),
                html.Div(id=self.ids.status(aio_id), className="scope-status"),
            ], className="d-flex flex-wrap align-items-center gap-3 mb-2"),
            picker,
            html.Div(id=self.ids.notes(aio_id)),
            dcc.Loading(html.Div(id=self.ids.kpis(aio_id)), type="dot", delay_show=400),
            html.Div([html.Div(id=self.ids.facts(aio_id)),
                      html.Span([
                          html.A("API", id=self.ids.api(aio_id), href="#", target="_blank",
                                 className="api-link no-print", title="The same numbers from GET /api/oee/"),
                          html.A("CSV", id=self.ids.csv(aio_id), href="#", download="",
                                 className="api-link csv-link no-print ms-3",
                                 title="These numbers by bucket, with the losses, as a spreadsheet")])],
                     className="d-flex flex-wrap align-items-center justify-content-between mb-3"),
            dbc.Row([
                dbc.Col(card("OEE trend", dcc.Graph(id=self.ids.trend(aio_id), config=GRAPH_CONFIG),
                             tools=dbc.RadioItems(
                                 id=self.ids.bucket(aio_id), value=bucket, inline=True,
                                 options=[{"label": "Auto", "value": ""}, {"label": "Hour", "value": "hour"},
                                          {"label": "Shift", "value": "shift"}, {"label": "Day", "value": "day"}],
                                 className="btn-group btn-group-sm no-print", inputClassName="btn-check",
                                 labelClassName="btn btn-outline-secondary btn-sm", labelCheckedClassName="active")),
                        lg=6),
                dbc.Col(card("Losses: all time down to fully productive time",
                             dcc.Graph(id=self.ids.waterfall(aio_id), config=GRAPH_CONFIG)), lg=6),
            ]),
            card("State timeline", dcc.Graph(id=self.ids.timeline(aio_id), config=GRAPH_CONFIG)),
            dbc.Row([
                dbc.Col(card("Downtime by cause (Pareto)", dcc.Graph(id=self.ids.pareto(aio_id), config=GRAPH_CONFIG)),
                        lg=6),
                dbc.Col(card("Planned against actual count",
                             dcc.Graph(id=self.ids.progress(aio_id), config=GRAPH_CONFIG)), lg=6),
            ]),
            dbc.Row([
                dbc.Col(card(extra_title, dcc.Graph(id=self.ids.extra(aio_id), config=GRAPH_CONFIG)),
                        lg=6 if scope == "line" else 12),
                dbc.Col(card("Machines", html.Div(id=self.ids.machines(aio_id))), lg=6,
                        style={} if scope == "line" else {"display": "none"}),
            ]),
        ]
        if scope == "machine":
            options = [{"label": t["name"] + (f" ({t['role']})" if t["role"] else ""), "value": t["id"]}
                       for t in live_tags or []]
            default = [t["id"] for t in (live_tags or []) if t.get("default")][:4]
            # New values arrive over the WebSocket (assets/live.js appends them through extendData).
            socket = f"{aio_id}-live-ws"
            body.append(card("Live values", html.Div([
                dcc.Dropdown(id=self.ids.live_tags(aio_id), options=options, value=default, multi=True,
                             placeholder="Pick tags to plot", className="mb-2 no-print"),
                live_socket(socket, f"/ws/dashboard/machine/{key}/", show_status=False),
                html.Div(dcc.Graph(id=self.ids.live(aio_id), config=GRAPH_CONFIG),
                         **live_graph_attrs(self.ids.live(aio_id), socket, tz=tz, points=MAX_LIVE_POINTS)),
            ])))
        body += [
            dcc.Interval(id=self.ids.live_tick(aio_id), interval=LIVE_TICK_MS),
            dcc.Store(id=self.ids.live_since(aio_id), data={}),
        ]
        super().__init__(body, className=f"scope-dashboard scope-{scope}" + (" embedded" if embed else ""))


def _card(title: str, content, tools=None) -> dbc.Card:
    header = [html.Span(title, className="card-title-text")]
    if tools is not None:
        header.append(tools)
    return dbc.Card([dbc.CardHeader(header, className="d-flex flex-wrap justify-content-between align-items-center"),
                     dbc.CardBody(content)], className="mb-3 chart-card")


# --- helpers ----------------------------------------------------------------------------------------------------


def report_range(query: dict, scope: str, key: str) -> timerange.Range:
    r = context.resolve(query, scope, key)
    # Rounded to the millisecond so that the API link carries exactly the range computed here.
    return timerange.Range(r.preset, round(r.start, 3), round(r.end, 3), r.label, r.text, r.note, r.shift,
                           r.requested_start)


def pick_bucket(start: float, end: float, asked: str | None, has_calendar: bool) -> str:
    if asked in ("hour", "day") or (asked == "shift" and has_calendar):
        return asked
    span = end - start
    if span <= 2 * 86400:
        return "hour"
    if span <= 14 * 86400 and has_calendar:
        return "shift"
    return "day"


def run_report(scope: str, key: str, rng: timerange.Range, asked_bucket: str | None) -> tuple[dict, str, str]:
    """(report, bucket used, note). Falls back to a coarser bucket rather than failing."""
    has_calendar = ui_queries.shift_at(context.store(), scope, key, rng.end) is not None
    bucket = pick_bucket(rng.start, rng.end, asked_bucket, has_calendar)
    note = ""
    if asked_bucket == "shift" and not has_calendar:
        note = "No shift calendar for this scope: the trend is by " + bucket + "."
    for b in dict.fromkeys([bucket, "day", None]):
        try:
            return oee_report(context.store(), scope, key, rng.start, rng.end, bucket=b), b or "", note
        except oee.TooManyBuckets:
            note = "Too many buckets for this range: the trend is coarser."
        except TooMuchData:
            raise  # as much data whatever the bucket: no point in reading it again
        except ValueError as exc:
            if b is None:
                raise
            note = str(exc)
    raise RuntimeError("unreachable")


def api_href(scope: str, key: str, rng: timerange.Range, bucket: str) -> str:
    args = {scope: key, "start": repr(rng.start), "end": repr(rng.end)}
    if bucket:
        args["bucket"] = bucket
    return get_relative_path("/api/oee/") + "?" + urlencode(args)


def _notes(*items) -> list:
    out = []
    for text in items:
        if text:
            out.append(dbc.Alert(text, color="info", className="py-1 px-2 mb-2 small"))
    return out


def machines_table(report: dict, states: dict, db_ids: dict) -> html.Table:
    rows = []
    for m in sorted(report.get("machines") or [], key=lambda m: (m["oee"] is None, m["oee"] or 0)):
        st = states.get(db_ids.get(m["machine_id"]), {})
        state = st.get("state", "unknown")
        rows.append(html.Tr([
            html.Td(dcc.Link(m["machine_id"], href=get_relative_path(f"/machine/{m['machine_id']}"))),
            html.Td(m["name"]),
            html.Td(html.Span("Disabled" if st.get("disabled") else STATE_LABELS.get(state, state),
                              className="state-pill",
                              style={"backgroundColor": STATE_COLORS.get(state, "#aab2ba"),
                                     "color": STATE_TEXT_COLORS.get(state, "#000")})),
            html.Td(pct(m["oee"]), className="num"), html.Td(pct(m["availability"]), className="num"),
            html.Td(pct(m["performance"]), className="num"), html.Td(pct(m["quality"]), className="num"),
        ]))
    head = html.Thead(html.Tr([html.Th(h) for h in ("Machine", "Name", "Now", "OEE", "A", "P", "Q")]))
    return dbc.Table([head, html.Tbody(rows)], size="sm", hover=True, className="machines-table mb-0")


# --- callbacks --------------------------------------------------------------------------------------------------


@callback(
    Output(range_picker.TimeRangeAIO.ids.query(MATCH), "data", allow_duplicate=True),
    Output(range_picker.TimeRangeAIO.ids.url(MATCH), "search", allow_duplicate=True),
    Input(ScopeDashboardAIO.ids.bucket(MATCH), "value"),
    State(range_picker.TimeRangeAIO.ids.query(MATCH), "data"),
    prevent_initial_call=True,
)
def _bucket_changed(bucket, query):
    query = dict(query or {})
    if bucket:
        query["bucket"] = bucket
    else:
        query.pop("bucket", None)
    return query, timerange.search_of(query)


@callback(
    Output(ScopeDashboardAIO.ids.notes(MATCH), "children"),
    Output(ScopeDashboardAIO.ids.kpis(MATCH), "children"),
    Output(ScopeDashboardAIO.ids.facts(MATCH), "children"),
    Output(ScopeDashboardAIO.ids.trend(MATCH), "figure"),
    Output(ScopeDashboardAIO.ids.waterfall(MATCH), "figure"),
    Output(ScopeDashboardAIO.ids.extra(MATCH), "figure"),
    Output(ScopeDashboardAIO.ids.machines(MATCH), "children"),
    Output(ScopeDashboardAIO.ids.api(MATCH), "href"),
    Output(ScopeDashboardAIO.ids.csv(MATCH), "href"),
    Input(range_picker.TimeRangeAIO.ids.query(MATCH), "data"),
    Input(ScopeDashboardAIO.ids.refresh(MATCH), "n_intervals"),
    State(ScopeDashboardAIO.ids.config(MATCH), "data"),
)
def _oee(query, _n, config):
    scope, key = config["scope"], config["key"]
    tz = context.tz()
    rng = report_range(query or {}, scope, key)
    try:
        report, bucket, bucket_note = run_report(scope, key, rng, (query or {}).get("bucket"))
    except (ScopeError, TooMuchData) as exc:
        msg = charts.empty_figure(str(exc))
        return _notes(str(exc)), None, None, msg, msg, msg, None, no_update, no_update
    buckets = report.get("buckets") or []
    caption = html.Div([html.Strong(rng.label), " · ", rng.text], className="range-caption",
                       id=f"{config['scope']}-range-caption",
                       **{"data-start": repr(rng.start), "data-end": repr(rng.end)})
    notes = [caption] + _notes(rng.note, bucket_note, *flag_notes(report))
    prefix = config["scope"]
    kpis = kpi_row(prefix, report, buckets)
    fact_row = facts(prefix, report)
    trend = charts.trend_figure(buckets, tz, TARGETS, bucket or "hour")
    waterfall = charts.waterfall_figure(report.get("waterfall") or [])
    table = None
    if scope == "line":
        extra = charts.speed_figure(report.get("machines") or [])
        states = context.machine_states()
        for m in ui_queries.plant_machines(context.store()):
            if not m.get("enabled", True):  # its last report is not its state now: the configuration's word wins
                states[m["id"]] = {"state": "offline", "disabled": True}
        table = machines_table(report, states, ui_queries.machine_db_ids(context.store()))
    else:
        extra = _cycle_figure(key, rng, tz)
    csv = export_url("oee", {scope: key, "start": rng.start, "end": rng.end, "bucket": bucket})
    return notes, kpis, fact_row, trend, waterfall, extra, table, api_href(scope, key, rng, bucket), csv


def _cycle_figure(machine_id: str, rng: timerange.Range, tz: str):
    s = context.store()
    tags = ui_queries.cycle_time_tags(s, machine_id)
    ids = [t for t in (tags["actual"], tags["ideal"]) if t]
    if not tags["actual"]:
        return charts.empty_figure("This machine has no cycle.time tag: map one in its configuration to see cycle "
                                   "times here.")
    data = ui_queries.series(s, ids, rng.start, rng.end)
    return charts.cycle_figure(data.get(tags["actual"]), data.get(tags["ideal"]) if tags["ideal"] else None, tz)


@callback(
    Output(ScopeDashboardAIO.ids.timeline(MATCH), "figure"),
    Output(ScopeDashboardAIO.ids.pareto(MATCH), "figure"),
    Input(range_picker.TimeRangeAIO.ids.query(MATCH), "data"),
    Input(ScopeDashboardAIO.ids.refresh(MATCH), "n_intervals"),
    State(ScopeDashboardAIO.ids.config(MATCH), "data"),
)
def _states(query, _n, config):
    scope, key = config["scope"], config["key"]
    rng = report_range(query or {}, scope, key)
    s = context.store()
    try:
        timeline = ui_queries.state_timeline(s, scope, key, rng.start, rng.end)
        events = downtime_queries.downtime_events(s, rng.start, rng.end, scope=scope, key=key)
    except (ScopeError, TooMuchData) as exc:
        msg = charts.empty_figure(str(exc))
        return msg, msg
    return (charts.timeline_figure(timeline, context.tz(),  # fault texts come with each machine's intervals
                                   product_names=ui_queries.product_names(s)),
            charts.pareto_figure(downtime_queries.downtime_pareto(events)))


@callback(
    Output(ScopeDashboardAIO.ids.progress(MATCH), "figure"),
    Input(range_picker.TimeRangeAIO.ids.query(MATCH), "data"),
    Input(ScopeDashboardAIO.ids.refresh(MATCH), "n_intervals"),
    State(ScopeDashboardAIO.ids.config(MATCH), "data"),
)
def _progress(query, _n, config):
    scope, key = config["scope"], config["key"]
    rng = report_range(query or {}, scope, key)
    try:
        progress = ui_queries.count_progress(context.store(), scope, key, rng.start, rng.end)
    except (ScopeError, TooMuchData) as exc:
        return charts.empty_figure(str(exc))
    return charts.progress_figure(progress, context.tz(), TARGETS["oee"])


@callback(
    Output(ScopeDashboardAIO.ids.status(MATCH), "children"),
    Input(ScopeDashboardAIO.ids.live_tick(MATCH), "n_intervals"),
    State(ScopeDashboardAIO.ids.config(MATCH), "data"),
)
def _status(_n, config):
    scope, key = config["scope"], config["key"]
    health = context.connections_health()
    machines = [m for m in ui_queries.plant_machines(context.store())
                if (scope == "machine" and m["machine_id"] == key)
                or (scope == "line" and (str(m["line_id"]) == str(key) or m["line"] == key))]
    states = context.machine_states([m["id"] for m in machines])  # every 2 s: this scope's machines only
    chips = []
    now = time.time()
    for m in machines:
        st = states.get(m["id"])
        state = (st or {}).get("state", "unknown")
        why = context.not_reporting(m, st, health.get(m["connection_id"]))
        if not m.get("enabled", True):  # what it last reported is not its state now
            st, state = None, "offline"
        text = [html.Strong("Disabled" if not m.get("enabled", True) else STATE_LABELS.get(state, state))]
        if st and st.get("since"):
            text.append(f" for {duration(now - st['since'])}")
        if st and st.get("fault_code") and state == "faulted":
            text.append(f" · fault {st['fault_code']}")
        if st and st.get("product_code"):
            text.append(" · " + product_label(st["product_code"], ui_queries.product_names(context.store())))
        label = [html.Span(m["machine_id"] + " ", className="chip-id")] if scope == "line" else []
        chip = html.Span(label + text, className="state-chip", title=why or "",
                         style={"borderColor": STATE_COLORS.get(state, "#aab2ba"),
                                "backgroundColor": STATE_COLORS.get(state, "#aab2ba") + "22"})
        if scope == "line":
            chip = dcc.Link(chip, href=get_relative_path(f"/machine/{m['machine_id']}"))
        chips.append(chip)
        if why and scope == "machine":
            chips.append(html.Span(why, className="text-danger small ms-2", id="machine-not-reporting"))
    return chips


@callback(
    Output(ScopeDashboardAIO.ids.live(MATCH), "figure"),
    Output(ScopeDashboardAIO.ids.live_since(MATCH), "data"),
    Input(ScopeDashboardAIO.ids.live_tags(MATCH), "value"),
    State(ScopeDashboardAIO.ids.config(MATCH), "data"),
)
def _live_init(tag_ids, config):
    tag_ids = [int(t) for t in tag_ids or []]
    catalog = {t["id"]: t for t in ui_queries.tag_catalog(context.store(), config["key"])}
    tags = [catalog[t] for t in tag_ids if t in catalog]
    now = time.time()
    history = ui_queries.series(context.store(), [t["id"] for t in tags], now - LIVE_WINDOW_S, now + 1,
                                max_points=MAX_LIVE_POINTS)
    since = {str(t["id"]): (history[t["id"]]["t"][-1] if history[t["id"]]["t"] else now - LIVE_WINDOW_S)
             for t in tags}
    fig = charts.live_figure(tags, history, context.tz())
    return fig, {"tags": [t["id"] for t in tags], "since": since}

