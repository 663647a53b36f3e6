"""Where the losses are: a plant-wide Pareto of downtime or of all six losses, by reason, machine, line or
category, over the page's range (its TimeRangeAIO of the same aio_id). A click on a bar lists the stops behind it
(or, for speed and quality losses, which have none, the machines it comes from). Durations in units that fit
(components.format.duration; the axis in s, min or h by the largest bar). Data: db.loss_pareto.pareto.
"""
from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import MATCH, Input, Output, State, callback, dcc, get_relative_path, html, no_update

from components import context, site_report
from components.charts import empty_figure
from components.format import duration, local
from components.range_picker import TimeRangeAIO
from db import loss_pareto
from db.oee_queries import ScopeError, TooMuchData
from oee.vocabulary import LABELS

TOP = 15
MAX_LISTED = 100


def _id(sub: str):
    return lambda aio_id: {"component": "LossParetoAIO", "subcomponent": sub, "aio_id": aio_id}


def _unit(top_s: float) -> tuple[str, float]:
    return ("s", 1.0) if top_s < 180 else ("min", 60.0) if top_s < 3 * 3600 else ("h", 3600.0)


def figure(groups: list[dict]):
    groups = groups[:TOP]
    if not groups:
        return empty_figure("No losses in this range.")
    unit, per = _unit(groups[0]["seconds"])
    return {
        "data": [
            {"type": "bar", "x": [g["label"] for g in groups], "y": [g["seconds"] / per for g in groups],
             "name": unit, "marker": {"color": "#d64545"}, "customdata": [
                [g["key"], duration(g["seconds"]), f"{g['count']:,} stop{'' if g['count'] == 1 else 's'}"
                 if g["count"] else "no stops (speed or parts)"] for g in groups],
             "hovertemplate": "%{x}<br>%{customdata[1]} · %{customdata[2]}<extra></extra>"},
            {"type": "scatter", "mode": "lines+markers", "x": [g["label"] for g in groups],
             "y": [g["cumulative"] * 100 for g in groups], "yaxis": "y2", "name": "cumulative %",
             "hoverinfo": "skip", "line": {"color": "#1f4e79"}},
        ],
        "layout": {"margin": {"l": 55, "r": 45, "t": 10, "b": 110}, "showlegend": False, "height": 340,
                   "yaxis": {"title": {"text": unit}}, "clickmode": "event",
                   "yaxis2": {"overlaying": "y", "side": "right", "range": [0, 105], "ticksuffix": " %",
                              "showgrid": False},
                   # upright names: slanted ones reach left over the value axis on a phone's narrow chart
                   "xaxis": {"tickangle": -90, "automargin": True}},
    }


class LossParetoAIO(html.Div):
    class ids:
        what = staticmethod(_id("what"))
        by = staticmethod(_id("by"))
        graph = staticmethod(_id("graph"))
        data = staticmethod(_id("data"))
        detail = staticmethod(_id("detail"))
        caption = staticmethod(_id("caption"))

    def __init__(self, aio_id: str, *, what: str = "downtime", by: str = "reason", title: str = "Where the losses are"):
        ids = self.ids
        super().__init__([
            html.Div([html.H4(title, className="mb-0 me-2"),
                      html.Label([html.Span("Show", className="small me-1"),
                                  dbc.Select(id=ids.what(aio_id), value=what, size="sm", className="w-auto",
                                             options=[{"label": "Downtime (stops)", "value": "downtime"},
                                                      {"label": "All six losses", "value": "losses"}])],
                                 className="d-flex align-items-center mb-0"),
                      html.Label([html.Span("Group", className="small me-1"),
                                  dbc.Select(id=ids.by(aio_id), value=by, size="sm", className="w-auto",
                                             options=[{"label": f"by {b}", "value": b} for b in loss_pareto.BY])],
                                 className="d-flex align-items-center mb-0"),
                      html.Span(id=ids.caption(aio_id), className="text-muted small")],
                     className="d-flex flex-wrap align-items-center gap-2 mb-1"),
            dcc.Store(id=ids.data(aio_id)),
            dcc.Loading(dcc.Graph(id=ids.graph(aio_id), config={"displaylogo": False, "displayModeBar": False}),
                        type="dot", delay_show=400),
            html.Div(id=ids.detail(aio_id)),
        ], className="loss-pareto mb-3", id=f"loss-pareto-{aio_id}")


@callback(
    Output(LossParetoAIO.ids.graph(MATCH), "figure"),
    Output(LossParetoAIO.ids.data(MATCH), "data"),
    Output(LossParetoAIO.ids.caption(MATCH), "children"),
    Output(LossParetoAIO.ids.detail(MATCH), "children", allow_duplicate=True),
    Input(LossParetoAIO.ids.what(MATCH), "value"),
    Input(LossParetoAIO.ids.by(MATCH), "value"),
    Input(TimeRangeAIO.ids.query(MATCH), "data"),
    prevent_initial_call="initial_duplicate",
)
def _draw(what, by, query):
    rng = context.resolve(query or {})
    store, site_key = context.store(), str(context.site()["id"])
    # To the millisecond, as the overview's KPIs: the same range, so the site's analyses are read once for both.
    start, end = round(rng.start, 3), round(rng.end, 3)
    try:
        found = loss_pareto.pareto(store, start, end, what=what or "downtime", by=by or "reason", site_key=site_key,
                                   site_report=lambda a, b: site_report.site_report(store, site_key, a, b))
    except (ValueError, LookupError, ScopeError, TooMuchData) as exc:
        return empty_figure(str(exc)), None, "", None
    groups = found["groups"]
    total = sum(g["seconds"] for g in groups)
    keep = {"groups": [{k: g[k] for k in ("key", "label", "seconds", "count", "events", "parts")} for g in groups],
            "events": {k: {f: e[f] for f in ("machine_id", "start", "duration_s", "in_range_s", "fault_label",
                                             "reason_name", "source", "category_label", "note", "open")}
                       for k, e in found["events"].items()}}
    caption = f"{rng.label}: {duration(total)} in {len(groups)} groups · click a bar for what is behind it"
    return figure(groups), keep, caption, None


@callback(
    Output(LossParetoAIO.ids.detail(MATCH), "children"),
    Input(LossParetoAIO.ids.graph(MATCH), "clickData"),
    State(LossParetoAIO.ids.data(MATCH), "data"),
    prevent_initial_call=True,
)
def _open(click, data):
    points = (click or {}).get("points") or []
    if not points or not data or not points[0].get("customdata"):
        return no_update
    key = points[0]["customdata"][0]
    group = next((g for g in data["groups"] if g["key"] == key), None)
    if group is None:
        return no_update
    return detail(group, data["events"])


def detail(group: dict, events: dict) -> html.Div:
    tz = context.tz()
    head = html.H5([group["label"], html.Small(f" · {duration(group['seconds'])}", className="text-muted")])
    rows = []
    for k in group["events"][:MAX_LISTED]:
        e = events.get(k)
        if e is None:
            continue
        cause = e["reason_name"] if e["source"] == "operator" else (e["fault_label"] or e["category_label"])
        rows.append(html.Tr([
            html.Td(local(e["start"], tz, "%a %d %b %H:%M:%S")),
            html.Td(html.A(e["machine_id"], href=get_relative_path(f"/machine/{e['machine_id']}"))),
            html.Td(duration(e["duration_s"]) + (" (ongoing)" if e["open"] else ""), className="num"),
            html.Td(cause), html.Td(e["category_label"]), html.Td(e["note"]),
        ]))
    parts = [html.Li(f"{p['machine_id']}: {LABELS.get(p['category'], p['category'])} {duration(p['seconds'])}")
             for p in sorted(group["parts"], key=lambda p: -p["seconds"]) if not rows or p["category"] in
             loss_pareto.PART_LOSSES]
    body = []
    if rows:
        body.append(dbc.Table([html.Thead(html.Tr([html.Th(h) for h in ("Start", "Machine", "Duration", "Cause",
                                                                         "Category", "Note")])),
                               html.Tbody(rows)], size="sm", striped=True, className="loss-pareto-events"))
        if len(group["events"]) > MAX_LISTED:
            body.append(html.Div(f"The first {MAX_LISTED} of {len(group['events'])} stops.", className="small"))
    if parts:
        body.append(html.Div([html.Div("Speed and quality losses (no stops behind them):" if rows else
                                       "No stops behind this bar: it is lost speed or parts, by machine:",
                                       className="small text-muted"), html.Ul(parts[:MAX_LISTED], className="small")]))
    if not body:
        body.append(html.Div("No stops behind this bar.", className="text-muted"))
    return html.Div([head] + body, className="loss-pareto-detail", **{"data-group": group["key"]})
