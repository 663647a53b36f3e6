"""The time range picker and the machine / line selector, kept in the URL so that any view can be bookmarked.

URL query arguments (every page reads the same ones):
    range    hour | shift | today | yesterday | 7d | custom (default: the page's, usually shift)
    start, end
             custom range: plant-local 'YYYY-MM-DDTHH:MM' (no offset = the plant's time zone), an ISO time with
             an offset or Z, or epoch seconds or milliseconds; either alone implies range=custom
    from, to Grafana's ${__from} / ${__to} (epoch milliseconds, or now / now-6h): the same as start / end
    machine, line
             the scope (machine_id; line id or name)
    bucket   hour | shift | day (trends)
    refresh  seconds between updates (30, 30s, 1m, 5m; 0 or off: none)
    embed    1: no navigation and no controls (Grafana iframes, kiosks)

`TimeRangeAIO` is an All-in-One component: dictionary ids with an aio_id (the page's prefix) and MATCH callbacks,
so one set of callbacks serves every page. A choice is written to the URL with history.pushState (the view does not
reload) and to a dcc.Store, `TimeRangeAIO.ids.query(aio_id)`, which the page's callbacks take as input. A new
machine or line on a page whose path names it (/machine/<id>) navigates there instead.
"""
from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlencode

import dash_bootstrap_components as dbc
from dash import MATCH, Input, Output, State, callback, ctx, dcc, get_relative_path, html, no_update

from components.format import range_text, zone

PRESETS = {"hour": "Last hour", "shift": "This shift", "today": "Today", "yesterday": "Yesterday",
           "7d": "Last 7 days", "custom": "Custom"}
KEYS = ("range", "start", "end", "machine", "line", "bucket", "category", "min", "minor", "q", "quality", "date",
        "shift", "refresh", "embed")
BUCKETS = ("hour", "shift", "day")
LOCAL_FORMAT = "%Y-%m-%dT%H:%M"
MIN_REFRESH_S = 2


@dataclass(frozen=True)
class Range:
    preset: str
    start: float
    end: float
    label: str  # 'This shift (B)', 'Today', ...
    text: str  # 'Sat 28 Nov 06:00 – 10:35 CST'
    note: str = ""  # what the page should say about it: a clamp, a missing calendar
    shift: dict | None = None
    requested_start: float | None = None  # before the clamp to the start of the data


# --- parsing ------------------------------------------------------------------------------------------------------


def _first(value):
    if isinstance(value, (list, tuple)):
        return value[0] if value else None
    return value


def parse_time(raw, tz: str | None, now: float | None = None) -> float | None:
    """Epoch seconds from epoch seconds or milliseconds, 'now', 'now-6h' (Grafana), an ISO time with an offset,
    or a local time without one (the plant's zone). None when empty or not a time."""
    raw = _first(raw)
    if raw is None:
        return None
    text = str(raw).strip()
    if not text:
        return None
    now = time.time() if now is None else now
    m = re.fullmatch(r"now(?:-(\d+)([smhdw]))?(?:/[dw])?", text)
    if m:
        if not m.group(1):
            return now
        unit = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[m.group(2)]
        return now - int(m.group(1)) * unit
    try:
        number = float(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(number):
            return None
        return number / 1000.0 if number > 1e11 else number
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "T", 1))
    except ValueError:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone(tz))
    return value.timestamp()


def parse_refresh(raw, default: int | None) -> int | None:
    """Seconds between refreshes from '30', '30s', '1m', '5m'; 0 / off / false: None (no refresh)."""
    raw = _first(raw)
    if raw is None or str(raw).strip() == "":
        return default
    text = str(raw).strip().lower()
    if text in ("0", "off", "false", "no", "none"):
        return None
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(s|m|h)?", text)
    if not m:
        return default
    seconds = float(m.group(1)) * {"s": 1, "m": 60, "h": 3600, None: 1}[m.group(2)]
    return max(MIN_REFRESH_S, int(seconds))


def is_embed(query: dict) -> bool:
    return str(_first(query.get("embed")) or "").lower() in ("1", "true", "yes", "on")


def normalize(query: dict | None, default_range: str = "shift") -> dict:
    """The known arguments of a query as plain strings; from/to become start/end; start or end without a range
    means a custom range; an unknown range falls back to the default."""
    query = dict(query or {})
    out: dict = {}
    for k in KEYS:
        v = _first(query.get(k))
        if v is not None and str(v) != "":
            out[k] = str(v)
    if "from" in query and "start" not in out and _first(query.get("from")):
        out["start"] = str(_first(query["from"]))
    if "to" in query and "end" not in out and _first(query.get("to")):
        out["end"] = str(_first(query["to"]))
    if out.get("range") not in PRESETS:
        out["range"] = "custom" if ("start" in out or "end" in out) else default_range
    if out["range"] != "custom":
        out.pop("start", None)
        out.pop("end", None)
    if out.get("bucket") not in BUCKETS:
        out.pop("bucket", None)
    return out


def search_of(query: dict, drop: tuple = ()) -> str:
    """The URL query string of a normalized query ('' when empty), keys in a fixed order."""
    items = [(k, query[k]) for k in KEYS if k in query and k not in drop and query[k] not in (None, "")]
    return "?" + urlencode(items) if items else ""


def resolve(query: dict, *, tz: str, now: float, shift: dict | None = None, data_start: float | None = None,
            default_range: str = "shift") -> Range:
    """[start, end) of a normalized query. shift: the scope's current (or last) shift from its calendar;
    data_start: when the scope's data begins (the start is clamped to it, and the page says so)."""
    q = normalize(query, default_range)
    preset = q["range"]
    z = zone(tz)
    local_now = datetime.fromtimestamp(now, z)
    midnight = datetime.combine(local_now.date(), datetime.min.time(), tzinfo=z).timestamp()
    note = ""
    label = PRESETS[preset]
    if preset == "hour":
        start, end = now - 3600, now
    elif preset == "today":
        start, end = midnight, now
    elif preset == "yesterday":
        day = local_now.date() - timedelta(days=1)
        start = datetime.combine(day, datetime.min.time(), tzinfo=z).timestamp()
        end = midnight
    elif preset == "7d":
        start, end = now - 7 * 86400, now
    elif preset == "shift":
        if shift is None:
            start, end = midnight, now
            note = "No shift calendar: showing today."
            label = "Today"
        elif shift.get("current", True):
            start, end = shift["start"], min(shift["end"], now)
            label = f"This shift ({shift['name']})"
        else:
            start, end = shift["start"], shift["end"]
            label = f"Last shift ({shift['name']})"
            note = f"No shift is running now: showing the last one ({shift['name']})."
    else:
        end = parse_time(q.get("end"), tz, now)
        start = parse_time(q.get("start"), tz, now)
        end = now if end is None else end
        start = end - 86400 if start is None else start
        if end <= start:
            start, end = end - 3600, end
            note = "The custom range was empty or inverted: showing the hour before its end."
    requested = start
    if data_start is not None and start < data_start < end:
        start = data_start
        begins = datetime.fromtimestamp(data_start, z).strftime("%a %H:%M")
        clamp = f"Data begins {begins}: earlier time is not counted."
        note = f"{note} {clamp}".strip()
    return Range(preset, start, end, label, range_text(start, end, tz), note, shift, requested)


def local_input(t: float, tz: str) -> str:
    return datetime.fromtimestamp(t, zone(tz)).strftime(LOCAL_FORMAT)


# --- the component ----------------------------------------------------------------------------------------------


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


def scope_of(query: dict) -> tuple[str | None, str | None]:
    """('machine', id) or ('line', id) from a query; (None, None) for the whole plant."""
    if query.get("machine"):
        return "machine", query["machine"]
    if query.get("line"):
        return "line", query["line"]
    return None, None


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
    from components import context

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
