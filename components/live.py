"""The page side of live values: declare a socket, bind graphs to it, read its store (assets/live.js does the work).

    from components.live import live_graph, live_socket

    def layout(machine_id=None, **_):
        return html.Div([
            live_socket("mach-live", f"/ws/dashboard/machine/{machine_id}/"),
            live_graph("mach-live-graph", "mach-live", tags=["Speed", "Infeed.Temperature"], window_s=300),
        ])

    @callback(Output("mach-state", "children"), Input("mach-live-store", "data"))
    def show_state(data): ...   # {"connected", "machines": {machine_id: {"status", "metrics"}}, "alerts", "time"}

The graph's traces (one per tag name, in order) grow through extendData as values arrive; its uirevision keeps the
user's zoom and pan; at most window_s x 10 points per trace are kept (10 Hz polling). The socket reconnects by
itself. Ids: prefix them with the page's prefix, as every id (callbacks are global).
"""
from __future__ import annotations

import json

from dash import dcc, html


def live_socket(socket_id: str, path: str, *, show_status: bool = True) -> html.Div:
    """A WebSocket for this page: path is one of docs/live.md's endpoints (/ws/plc/LINE-001/ ...)."""
    children = [dcc.Store(id=f"{socket_id}-store", data={"connected": False, "machines": {}, "alerts": []})]
    children.append(html.Span("connecting…", id=f"{socket_id}-status", className="oee-live-status",
                              style=None if show_status else {"display": "none"}))
    return html.Div(children, id=socket_id, className="oee-live-socket", **{"data-oee-live-url": path})


def live_figure(tags: list[str], *, title: str | None = None, uirevision: str = "live") -> dict:
    """An empty time-series figure with one line per tag, ready to be extended."""
    return {
        "data": [{"type": "scatter", "mode": "lines", "name": name, "meta": {"tag": name}, "x": [], "y": []}
                 for name in tags],
        "layout": {"uirevision": uirevision, "margin": {"l": 50, "r": 10, "t": 30 if title else 10, "b": 40},
                   "title": {"text": title} if title else None, "xaxis": {"type": "date"},
                   "legend": {"orientation": "h"}},
    }


def live_graph_attrs(graph_id, socket_id: str, *, window_s: int = 300, tz: str | None = None,
                     points: int | None = None) -> dict:
    """The data-* attributes that bind an element holding a page's own dcc.Graph to a socket (see live_graph).

    graph_id may be a dictionary id. tz: the time zone whose naive local times the graph's x axis uses (as the
    pages' charts do); without it points are appended with UTC times. points: the most kept per trace (default
    window_s x 10, for 10 Hz polling).
    """
    attrs = {"data-oee-live-graph": json.dumps(graph_id, sort_keys=True, separators=(",", ":"))
             if isinstance(graph_id, dict) else graph_id,
             "data-oee-live-socket": socket_id, "data-oee-live-points": str(points or max(window_s * 10, 100))}
    if tz:
        attrs["data-oee-live-tz"] = tz
    return attrs


def live_graph(graph_id: str, socket_id: str, tags: list[str], *, window_s: int = 300, title: str | None = None,
               style: dict | None = None) -> html.Div:
    """A dcc.Graph fed by the socket: one trace per tag name; the last window_s seconds of points.

    To feed a graph of your own (any figure, a dictionary id), wrap it as live_graph does: an element with
    data-oee-live-graph (the graph's id; JSON for a dictionary id) and data-oee-live-socket; give each trace
    meta={"tag_id": <tag id>} or meta={"tag": <tag name>} (else its name is taken as the tag name). The script
    reads the traces from the rendered figure, so a callback may change them. x values are UTC ISO times.
    """
    return html.Div(
        dcc.Graph(id=graph_id, figure=live_figure(tags, title=title, uirevision=graph_id),
                  config={"displaylogo": False}, style=style or {"height": "320px"}),
        className="oee-live-graph",
        **{"data-oee-live-graph": graph_id, "data-oee-live-socket": socket_id,
           "data-oee-live-tags": json.dumps(list(tags)), "data-oee-live-points": str(max(window_s * 10, 100))},
    )
