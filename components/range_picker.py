"""The time range picker and the machine / line selector of every page.

`TimeRangeAIO` is an All-in-One component: dictionary ids with an aio_id (the page's prefix) and MATCH callbacks,
so one set of callbacks serves every page. A choice is written to the URL with history.pushState (the view does not
reload) and to a dcc.Store, `TimeRangeAIO.ids.query(aio_id)`, which the page's callbacks take as input. A new
machine or line on a page whose path names it (/machine/<id>) navigates there instead.
"""
from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import MATCH, Input, Output, State, callback, ctx, dcc, get_relative_path, html, no_update

from components import context
from components.format import zone
from components.timerange import PRESETS, Range, local_input, parse_time, scope_of, search_of


class TimeRangeAIO(html.Div):
    """Range buttons, custom start/end, a machine/line selector and the range in words.

    aio_id: the page's prefix. query: the page's normalized query. scope_options: dropdown options whose values
    are 'machine:<machine_id>', 'line:<id>' or '' (the whole plant). scope_path: when set ('machine' or 'line'),
    picking a machine or line navigates to /machine/<id> or /line/<id>; otherwise it is a query argument.
    """

    class ids:
        preset = staticmethod(lambda aio_id: {"component": "TimeRangeAIO", "subcomponent": "preset", "aio_id": aio_id})
        start = staticmethod(lambda aio_id: {"component": "TimeRangeAIO", "subcomponent": "start", "aio_id": aio_id})
        end = staticmethod(lambda aio_id: {"component": "TimeRangeAIO", "subcomponent": "end", "aio_id": aio_id})
        apply = staticmethod(lambda aio_id: {"component": "TimeRangeAIO", "subcomponent": "apply", "aio_id": aio_id})
        custom = staticmethod(lambda aio_id: {"component": "TimeRangeAIO", "subcomponent": "custom", "aio_id": aio_id})
        scope = staticmethod(lambda aio_id: {"component": "TimeRangeAIO", "subcomponent": "scope", "aio_id": aio_id})
        query = staticmethod(lambda aio_id: {"component": "TimeRangeAIO", "subcomponent": "query", "aio_id": aio_id})
        config = staticmethod(lambda aio_id: {"component": "TimeRangeAIO", "subcomponent": "config", "aio_id": aio_id})
        url = staticmethod(lambda aio_id: {"component": "TimeRangeAIO", "subcomponent": "url", "aio_id": aio_id})
        nav = staticmethod(lambda aio_id: {"component": "TimeRangeAIO", "subcomponent": "nav", "aio_id": aio_id})
        error = staticmethod(lambda aio_id: {"component": "TimeRangeAIO", "subcomponent": "error", "aio_id": aio_id})

    ids = ids

    def __init__(self, aio_id: str, query: dict, *, tz: str, resolved: Range | None = None,
                 scope_options: list | None = None, scope_value: str | None = None, scope_path: str | None = None,
                 scope_key: str | None = None, scope_placeholder: str = "Whole plant", path: str = "/",
                 presets: dict | None = None,
                 hidden: bool = False):
        presets = presets or PRESETS
        custom = query.get("range") == "custom"
        start_value = end_value = ""
        if resolved is not None:
            start_value = local_input(resolved.requested_start or resolved.start, tz)
            end_value = local_input(resolved.end, tz)
        controls = [
            dbc.RadioItems(
                id=self.ids.preset(aio_id), value=query.get("range"),
                options=[{"label": label, "value": key} for key, label in presets.items()],
                inline=True, className="btn-group range-presets", inputClassName="btn-check",
                labelClassName="btn btn-outline-primary", labelCheckedClassName="active",
            ),
            html.Div([
                dbc.Input(id=self.ids.start(aio_id), value=start_value, placeholder="YYYY-MM-DDTHH:MM",
                          size="sm", className="range-input", debounce=True, type="text"),
                html.Span("–", className="mx-1"),
                dbc.Input(id=self.ids.end(aio_id), value=end_value, placeholder="YYYY-MM-DDTHH:MM", size="sm",
                          className="range-input", debounce=True, type="text"),
                dbc.Button("Apply", id=self.ids.apply(aio_id), size="sm", color="primary", className="ms-1"),
                html.Small(f"plant time ({zone(tz).key})", className="text-muted ms-2"),
            ], id=self.ids.custom(aio_id), className="range-custom",
                style={} if custom else {"display": "none"}),
        ]
        if scope_options is not None:
            controls.append(html.Div(dcc.Dropdown(
                id=self.ids.scope(aio_id), options=scope_options, value=scope_value, placeholder=scope_placeholder,
                clearable=scope_path is None, searchable=True, className="scope-select"), className="scope-wrap"))
        super().__init__([
            dcc.Location(id=self.ids.url(aio_id), refresh=False),
            dcc.Location(id=self.ids.nav(aio_id), refresh="callback-nav"),
            dcc.Store(id=self.ids.query(aio_id), data=query),
            dcc.Store(id=self.ids.config(aio_id), data={"scope_path": scope_path, "scope_key": scope_key,
                                                        "path": path, "tz": tz}),
            html.Div(controls, className="range-bar d-flex flex-wrap align-items-center gap-2"),
            html.Div(id=self.ids.error(aio_id), className="text-danger small"),
        ], className="range-picker no-print mb-2", style={"display": "none"} if hidden else {})


def scope_options(machines: list[dict], lines: list[dict], *, with_lines: bool = True,
                  with_machines: bool = True) -> list[dict]:
    """Dropdown options: lines first ('Line · Bottling 1'), then machines ('LINE-001 · PET Line 1')."""
    out = []
    if with_lines:
        out += [{"label": f"Line · {ln['name']} ({ln['area']})", "value": f"line:{ln['id']}"} for ln in lines]
    if with_machines:
        out += [{"label": f"{m['machine_id']} · {m['name']}", "value": f"machine:{m['machine_id']}"} for m in machines]
    return out


@callback(
    Output(TimeRangeAIO.ids.query(MATCH), "data"),
    Output(TimeRangeAIO.ids.url(MATCH), "search"),
    Output(TimeRangeAIO.ids.nav(MATCH), "href"),
    Output(TimeRangeAIO.ids.custom(MATCH), "style"),
    Output(TimeRangeAIO.ids.start(MATCH), "value"),
    Output(TimeRangeAIO.ids.end(MATCH), "value"),
    Output(TimeRangeAIO.ids.error(MATCH), "children"),
    Input(TimeRangeAIO.ids.preset(MATCH), "value"),
    Input(TimeRangeAIO.ids.apply(MATCH), "n_clicks"),
    Input(TimeRangeAIO.ids.start(MATCH), "n_submit"),
    Input(TimeRangeAIO.ids.end(MATCH), "n_submit"),
    State(TimeRangeAIO.ids.start(MATCH), "value"),
    State(TimeRangeAIO.ids.end(MATCH), "value"),
    State(TimeRangeAIO.ids.query(MATCH), "data"),
    State(TimeRangeAIO.ids.config(MATCH), "data"),
    prevent_initial_call=True,
)
def _range_changed(preset, _apply, _submit_start, _submit_end, start_text, end_text, query, config):
    query = dict(query or {})
    tz = config.get("tz") or "UTC"
    trigger = (ctx.triggered_id or {}).get("subcomponent")
    start_out = end_out = no_update
    error = ""
    if trigger == "preset":
        if preset == "custom":
            # Start from what is shown now, so that Custom is an edit of the current view.
            scope, key = _scope_key(query, config)
            shown = context.resolve(query, scope, key, clamp=False)
            start_text, end_text = local_input(shown.start, tz), local_input(shown.end, tz)
            start_out, end_out = start_text, end_text
            query.update({"range": "custom", "start": start_text, "end": end_text})
        else:
            query["range"] = preset
            query.pop("start", None)
            query.pop("end", None)
    else:
        a, b = parse_time(start_text, tz), parse_time(end_text, tz)
        if a is None or b is None:
            error = "Write start and end as YYYY-MM-DDTHH:MM (plant time)."
        elif b <= a:
            error = "The end must be after the start."
        else:
            query.update({"range": "custom", "start": start_text.strip(), "end": end_text.strip()})
    if error:
        return no_update, no_update, no_update, no_update, no_update, no_update, error
    style = {} if query.get("range") == "custom" else {"display": "none"}
    return query, search_of(query), no_update, style, start_out, end_out, ""


@callback(
    Output(TimeRangeAIO.ids.query(MATCH), "data", allow_duplicate=True),
    Output(TimeRangeAIO.ids.url(MATCH), "search", allow_duplicate=True),
    Output(TimeRangeAIO.ids.nav(MATCH), "href", allow_duplicate=True),
    Input(TimeRangeAIO.ids.scope(MATCH), "value"),
    State(TimeRangeAIO.ids.query(MATCH), "data"),
    State(TimeRangeAIO.ids.config(MATCH), "data"),
    prevent_initial_call=True,
)
def _scope_changed(value, query, config):
    query = dict(query or {})
    kind, _, key = (value or "").partition(":")
    path_scope = config.get("scope_path")
    if path_scope and kind in ("machine", "line") and key:
        rest = {k: v for k, v in query.items() if k not in ("machine", "line")}
        return no_update, no_update, get_relative_path(f"/{kind}/{key}") + search_of(rest)
    query.pop("machine", None)
    query.pop("line", None)
    if kind in ("machine", "line") and key:
        query[kind] = key
    return query, search_of(query), no_update


def _scope_key(query: dict, config: dict) -> tuple[str | None, str | None]:
    if config.get("scope_path") and config.get("scope_key"):
        return config["scope_path"], config["scope_key"]
    return scope_of(query)
