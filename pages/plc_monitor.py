"""/plc-monitor/: the live value, quality and age of every tag of every machine, filterable (a quick client).

Values come from the collectors' latest-values snapshot (the page never talks to a PLC). In the web role, where
the collectors run in another process, they come from the newest stored samples instead, and the page says so.
"""
from __future__ import annotations

import json
import math
import time

import dash
import dash_bootstrap_components as dbc
from dash import Input, Output, State, callback, dcc, html

from components import context, timerange
from components.format import duration
from db import ui_queries

dash.register_page(__name__, path="/plc-monitor/", name="PLC monitor", title="OEE · PLC monitor", order=30)

PREFIX = "plc"
MAX_ROWS = 150
TICK_MS = 5000
QUALITY = {0: ("good", "quality-good"), 1: ("uncertain", "quality-uncertain"), 2: ("bad", "quality-bad")}
QUALITY_OPTIONS = [{"label": "Any quality", "value": ""}, {"label": "Not good", "value": "notgood"},
                   {"label": "Bad", "value": "bad"}, {"label": "Uncertain", "value": "uncertain"},
                   {"label": "No value", "value": "none"}]
STALE_AFTER_S = 30


def layout(**query):
    query = timerange.normalize(query)
    embed = timerange.is_embed(query)
    machines = ui_queries.plant_machines(context.store())
    if not machines:
        return html.Div([html.H2("PLC monitor", className="page-title"),
                         dbc.Alert(["No machines yet. Add a machine and its PLC connection in the ",
                                    dcc.Link("configuration wizard", href=dash.get_relative_path("/machine-config/")),
                                    "."], color="info", id="plc-empty")])
    refresh = timerange.parse_refresh(query.get("refresh"), TICK_MS // 1000)
    return html.Div([
        html.H2("PLC monitor", className="page-title"),
        dcc.Location(id="plc-url", refresh=False),
        html.Div([
            dbc.Input(id="plc-filter", value=query.get("q", ""), placeholder="Filter: machine, tag, address or role",
                      debounce=0.3, className="filter-text", type="search"),
            dcc.Dropdown(id="plc-machine", options=[{"label": f"{m['machine_id']} · {m['name']}",
                                                     "value": m["machine_id"]} for m in machines],
                         value=query.get("machine"), placeholder="All machines", className="filter-select"),
            dcc.Dropdown(id="plc-quality", options=QUALITY_OPTIONS, value=query.get("quality", ""),
                         clearable=False, className="filter-select-sm"),
        ], className="d-flex flex-wrap gap-2 align-items-center mb-2 no-print",
            style={"display": "none"} if embed else {}),
        dcc.Interval(id="plc-tick", interval=(refresh or 3600) * 1000, disabled=refresh is None),
        dcc.Store(id="plc-query", data=query),
        html.Div(id="plc-summary", className="mb-2"),
        html.Div(id="plc-table"),
    ], className="plc-monitor" + (" embedded" if embed else ""))


def fmt_value(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        if value.is_integer() and abs(value) < 1e15:
            return f"{value:.0f}"
        return f"{value:.4g}" if abs(value) >= 1e6 or abs(value) < 1e-3 else f"{value:.4f}".rstrip("0").rstrip(".")
    if isinstance(value, (list, tuple)):
        text = json.dumps(value)
    else:
        text = str(value)
    return text if len(text) <= 60 else text[:57] + "…"


def matches(tag: dict, needle: str) -> bool:
    if not needle:
        return True
    hay = " ".join(str(tag.get(k) or "") for k in ("machine_id", "machine_name", "name", "address", "role",
                                                      "data_type", "connection")).lower()
    return all(word in hay for word in needle.lower().split())


@callback(
    Output("plc-url", "search"),
    Output("plc-query", "data"),
    Input("plc-filter", "value"),
    Input("plc-machine", "value"),
    Input("plc-quality", "value"),
    State("plc-query", "data"),
    prevent_initial_call=True,
)
def _filters(text, machine, quality, query):
    query = dict(query or {})
    for k, v in (("q", text), ("machine", machine), ("quality", quality)):
        if v:
            query[k] = v
        else:
            query.pop(k, None)
    return timerange.search_of({k: v for k, v in query.items() if k != "range"}), query


@callback(
    Output("plc-summary", "children"),
    Output("plc-table", "children"),
    Input("plc-tick", "n_intervals"),
    Input("plc-query", "data"),
)
def _table(_n, query):
    query = query or {}
    s = context.store()
    rt = context.runtime()
    tags = ui_queries.tag_catalog(s, query.get("machine") or None)
    if rt.collectors is not None:
        values = rt.collectors.snapshot.tags()
        source = "live from the collectors"
    else:
        values = ui_queries.latest_samples(s, None, since_s=3600)
        source = "the newest stored samples (the collectors run in another process)"
    now = time.time()
    needle = (query.get("q") or "").strip()
    want = query.get("quality") or ""
    shown, counts = [], {"good": 0, "uncertain": 0, "bad": 0, "none": 0}
    for t in tags:
        item = values.get(t["id"])
        q = item[2] if item else None
        qname = QUALITY.get(q, ("none", ""))[0]
        counts[qname] = counts.get(qname, 0) + 1
        if not matches(t, needle):
            continue
        if want == "notgood" and qname == "good":
            continue
        if want in ("bad", "uncertain", "none") and qname != want:
            continue
        shown.append((t, item))
    summary = html.Div([
        html.Span(f"{len(tags):,} tags", className="fact-value me-3", id="plc-count"),
        html.Span(f"{counts['good']:,} good", className="quality-good me-3"),
        html.Span(f"{counts['uncertain']:,} uncertain", className="quality-uncertain me-3"),
        html.Span(f"{counts['bad']:,} bad", className="quality-bad me-3"),
        html.Span(f"{counts['none']:,} without a value", className="text-muted me-3"),
        html.Span(f"Values {source}.", className="text-muted small"),
    ])
    rows = []
    for t, item in shown[:MAX_ROWS]:
        if item:
            when, value, q, reason = item
            age = now - when if when else None
            qname, qclass = QUALITY.get(q, ("?", ""))
        else:
            value, reason, age, qname, qclass = None, None, None, "no value", "text-muted"
        rows.append(html.Tr([
            html.Td(t["machine_id"] or "—"), html.Td(t["name"], className="fw-semibold"),
            html.Td(t["address"], className="text-muted"), html.Td(t["data_type"]), html.Td(t["role"] or ""),
            html.Td(fmt_value(value), className="num value-cell"),
            html.Td(qname, className=qclass),
            html.Td(duration(age) if age is not None else "—",
                    className="num" + (" stale" if age is not None and age > STALE_AFTER_S else "")),
            html.Td(reason or "", className="small text-muted"),
        ], className="tag-row", **{"data-tag": str(t["id"])}))
    head = html.Thead(html.Tr([html.Th(h) for h in ("Machine", "Tag", "Address", "Type", "Role", "Value",
                                                    "Quality", "Age", "Why not good")]))
    table = [dbc.Table([head, html.Tbody(rows)], size="sm", hover=True, striped=True,
                       className="monitor-table plc-table", id="plc-rows")]
    if len(shown) > MAX_ROWS:
        table.append(html.Div(f"Showing {MAX_ROWS} of {len(shown):,} matching tags: filter to see the rest.",
                              className="text-muted small", id="plc-more"))
    elif not shown:
        table = [dbc.Alert("No tag matches the filter.", color="light", id="plc-none")]
    return summary, table
