"""/plc-monitor/: the live value, quality and age of every tag of every machine, filterable (a quick client).

Live values arrive over the WebSocket (/ws/plc/<machine_ids>/, docs/live.md), not by polling the server:
assets/plc_monitor.js draws the table once from the tag catalog this page puts in a dcc.Store, then updates only
the cells of the tags a `tag_update` names, ticks the ages every second in the browser (when each value last
changed, and when its connection was last read, from /healthz), shows one page of PAGE_SIZE rows, and applies the
text and quality filters in the browser too. The server answers only when the filters change (to keep them in the URL) and
when the machine filter changes (a socket for that machine alone, and its catalog). The page never talks to a PLC.

The catalog carries each tag's value as this process knows it when the page is drawn (the collectors' snapshot,
or in the web role the newest stored sample), so the table is filled before the socket's snapshot arrives and
still useful where no live bus links the web process to the collectors.
"""
from __future__ import annotations

from urllib.parse import quote

import dash
import dash_bootstrap_components as dbc
from dash import Input, Output, State, callback, clientside_callback, dcc, html

from components import context, timerange
from components.live import live_socket
from db import ui_queries
from live.service import clean_value
from live.websocket import MAX_MACHINES_IN_PATH

dash.register_page(__name__, path="/plc-monitor/", name="PLC monitor", title="OEE · PLC monitor", order=30)

PREFIX = "plc"
PAGE_SIZE = 100  # rows drawn at once (the browser keeps every tag's value; the pager shows the others)
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
    known = {m["machine_id"] for m in machines}
    machine = query.get("machine") if query.get("machine") in known else None
    return html.Div([
        html.H2("PLC monitor", className="page-title"),
        dcc.Location(id="plc-url", refresh=False),
        html.Div([
            dbc.Label("Filter tags", html_for="plc-filter", className="mb-0 small"),
            dbc.Input(id="plc-filter", value=query.get("q", ""), placeholder="Filter: machine, tag, address or role",
                      debounce=0.3, className="filter-text", type="search"),
            dcc.Dropdown(id="plc-machine", options=[{"label": f"{m['name']} · {m['machine_id']}",
                                                     "value": m["machine_id"]} for m in machines],
                         value=machine, placeholder="All machines", className="filter-select"),
            dcc.Dropdown(id="plc-quality", options=QUALITY_OPTIONS, value=query.get("quality", ""),
                         clearable=False, className="filter-select-sm"),
            html.Div(sockets(machine, machines), id="plc-sockets", className="ms-auto small"),
        ], className="d-flex flex-wrap gap-2 align-items-center mb-2 no-print",
            style={"display": "none"} if embed else {}),
        dcc.Store(id="plc-query", data=query),
        dcc.Store(id="plc-catalog", data=catalog(machine)),
        html.Div(id="plc-sink", style={"display": "none"}),
        # Drawn and kept up to date by assets/plc_monitor.js (never by a callback: React leaves them alone).
        html.Div(id="plc-summary", className="mb-2"),
        html.Div(id="plc-table", **{"data-page-size": str(PAGE_SIZE), "data-health-url": dash.get_relative_path("/healthz"), "data-stale-after": str(STALE_AFTER_S)}),
    ], className="plc-monitor" + (" embedded" if embed else ""))


def sockets(machine: str | None, machines: list[dict]) -> list:
    """One /ws/plc/ socket for the chosen machine, else for every machine (in groups of the path's limit)."""
    ids = [machine] if machine else [m["machine_id"] for m in machines]
    groups = [ids[i:i + MAX_MACHINES_IN_PATH] for i in range(0, len(ids), MAX_MACHINES_IN_PATH)]
    return [live_socket(f"plc-live-{i}", "/ws/plc/" + ",".join(quote(k, safe="") for k in group) + "/")
            for i, group in enumerate(groups)]


CATALOG_COLUMNS = ("id", "machine_id", "name", "address", "data_type", "role", "connection", "value")


def catalog(machine: str | None) -> dict:
    """The tags to show, with what the table's fixed columns need and the value as this process knows it now: one
    list per tag in CATALOG_COLUMNS' order, machine names once (20,000 tags as objects with their keys and machine
    name repeated were 169 bytes a tag)."""
    s = context.store()
    rt = context.runtime()
    tags = ui_queries.tag_catalog(s, machine or None)
    if rt.collectors is not None:
        values = rt.collectors.snapshot.tags()
        source = "collectors"
    else:
        values = ui_queries.latest_samples(s, None, since_s=3600)
        source = "stored"
    rows, names = [], {}
    for t in tags:
        item = values.get(t["id"])
        value = None
        if item:
            when, v, q = item[0], clean_value(item[1]), item[2]
            reason = item[3] if len(item) > 3 else None
            value = [round(when, 3), v, q] + ([reason] if reason and q != 0 else [])
        names[t["machine_id"]] = t["machine_name"]
        rows.append([t["id"], t["machine_id"], t["name"], t["address"], t["data_type"], t["role"], t["connection"],
                     value])
    return {"machine": machine, "source": source, "columns": CATALOG_COLUMNS, "machines": names, "rows": rows}


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
    Output("plc-sockets", "children"),
    Output("plc-catalog", "data"),
    Input("plc-machine", "value"),
    prevent_initial_call=True,
)
def _machine(machine):
    machines = ui_queries.plant_machines(context.store())
    if machine not in {m["machine_id"] for m in machines}:
        machine = None
    return sockets(machine, machines), catalog(machine)


# The table lives in the browser: a new catalog (the machine filter) redraws it, the text and quality filters only
# show and hide its rows. No request to the server.
clientside_callback(
    """function (catalog, text, quality) {
        if (window.oeePlcMonitor) { window.oeePlcMonitor.configure(catalog, text || "", quality || ""); }
        return window.dash_clientside.no_update;
    }""",
    Output("plc-sink", "children"),
    Input("plc-catalog", "data"),
    Input("plc-filter", "value"),
    Input("plc-quality", "value"),
)
