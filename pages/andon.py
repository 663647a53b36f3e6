"""/andon/: the board for a hall's TV. ?line=<id or name>, ?area=<id or name> or ?site=<name>; the whole plant
without any. Dark, big type, a tile per machine coloured by its state (components.andon).

Live: the page holds the WebSocket of its scope (/ws/dashboard/line/<id>/, else /ws/dashboard/); each status the
socket brings redraws the tiles within a second, without a reload. The shift's counts, the reasons given and the
orders are read every NUMBERS_S. For a TV without a login: an embed link to a line's board (auth/embed.py, made on
/settings/embed-links/), opened with ?embed=1 (no navigation bar).
"""
from __future__ import annotations

import time

import dash
import dash_bootstrap_components as dbc
from dash import Input, Output, State, callback, dcc, html, no_update

from components import andon, context, timerange
from components.format import local
from components.live import live_socket

dash.register_page(__name__, path="/andon/", name="Andon", title="OEE · Andon", order=5)

NUMBERS_S = 15
TICK_MS = 5000


def _scope(query: dict) -> tuple[str | None, str | None]:
    for scope in ("line", "area", "site"):
        value = query.get(scope)
        if isinstance(value, list):
            value = value[0] if value else None
        if value:
            return scope, str(value)
    return None, None


def _socket_path(scope: str | None, key: str | None, machines: list[dict]) -> str:
    if scope == "line":
        return f"/ws/dashboard/line/{machines[0]['line_id']}/"
    return "/ws/dashboard/"


def layout(**query):
    scope, key = _scope(query)
    embed = timerange.is_embed(query)
    try:
        machines = andon.machines_of(scope, key)
    except LookupError as exc:
        return html.Div(dbc.Alert(str(exc).capitalize() + ".", color="warning", id="andon-missing"),
                        className="andon")
    if not machines:
        return html.Div(dbc.Alert("No machines yet.", color="info", id="andon-empty"), className="andon")
    title = context.site()["name"] or "Plant"
    if scope == "line":
        title = machines[0]["line"]
    elif scope == "area":
        title = machines[0]["area"]
    return html.Div([
        dcc.Store(id="andon-config", data={"scope": scope, "key": key}),
        dcc.Store(id="andon-numbers"),
        dcc.Interval(id="andon-numbers-tick", interval=NUMBERS_S * 1000),
        dcc.Interval(id="andon-tick", interval=TICK_MS),
        html.Div([html.H1(title, className="andon-title", id="andon-title"),
                  html.Span(id="andon-clock", className="andon-clock"),
                  live_socket("andon-live", _socket_path(scope, key, machines))], className="andon-top"),
        html.Div(andon.tiles(machines, None, None), id="andon-tiles", className="andon-grid"),
        html.Div(_embed_hint(scope, key), className="andon-foot") if not embed else None,
    ], className="andon" + (" embedded" if embed else ""))


def _embed_hint(scope, key) -> list:
    if scope != "line":
        return []
    return ["For a TV without a login: an embed link of this line's board, made on ",
            dcc.Link("Settings · Embed links", href=dash.get_relative_path("/settings/embed-links/")), "."]


@callback(Output("andon-numbers", "data"), Input("andon-numbers-tick", "n_intervals"), State("andon-config", "data"))
def _numbers(_n, config):
    config = config or {}
    try:
        machines = andon.machines_of(config.get("scope"), config.get("key"))
    except (LookupError, KeyError):  # the line was removed meanwhile (or the config is not one of ours)
        return no_update
    return andon.numbers(machines, config.get("scope"), config.get("key"))


@callback(
    Output("andon-tiles", "children"),
    Output("andon-clock", "children"),
    Input("andon-live-store", "data"),
    Input("andon-numbers", "data"),
    Input("andon-tick", "n_intervals"),
    State("andon-config", "data"),
    # The layout drew the tiles just now from the same states: drawn again when the numbers or the socket bring
    # something (the numbers are read at once), not a second time on load (100 tiles: ~100 ms of the server).
    prevent_initial_call=True,
)
def _tiles(live, nums, _n, config):
    config = config or {}
    now = time.time()
    try:
        machines = andon.machines_of(config.get("scope"), config.get("key"))
    except (LookupError, KeyError):
        return dbc.Alert("This board's line, area or site is gone: reload the page.", color="warning"), no_update
    return andon.tiles(machines, live, nums, now), local(now, context.tz(), "%H:%M")
