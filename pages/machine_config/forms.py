"""What every step of the machine wizard shares: the runtime, form fields, Back/Next buttons, how a value is shown."""
from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import html
from flask import current_app

from config import store as cs

STEPS = ("Protocol", "Settings", "Test", "Discover", "Map", "Save")
STATE_COLORS = {"running": "success", "idle": "warning", "blocked": "warning", "faulted": "danger",
                "failing": "danger", "config_error": "danger", "planned_stop": "info", "changeover": "info",
                "disabled": "secondary", "offline": "dark", "connecting": "light", "not_polled": "light"}


def runtime():
    return current_app.extensions["oee"]


def engine():
    return runtime().store.engine


def field(label: str, control, help_text: str = "", fid: str | None = None, width: int = 6) -> dbc.Col:
    parts = [dbc.Label(label, html_for=fid or getattr(control, "id", None)), control]
    if fid:
        parts.append(dbc.FormFeedback(id=f"{fid}-fb", type="invalid"))
    if help_text:
        parts.append(dbc.FormText(help_text))
    return dbc.Col(html.Div(parts, className="mb-3"), md=width)


def text_input(fid: str, kind: str = "text", **kw) -> dbc.Input:
    return dbc.Input(id=fid, type=kind, debounce=False, **kw)


def nav_buttons(prefix: str, next_label: str = "Next") -> html.Div:
    return html.Div([dbc.Button("Back", id=f"{prefix}-back", color="secondary", outline=True, className="me-2"),
                     dbc.Button(next_label, id=f"{prefix}-next", color="primary")], className="mt-2")


def show_value(value) -> str:
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else f"{value:.6g}"
    if isinstance(value, list):
        return "[" + ", ".join(show_value(v) for v in value[:4]) + (", …]" if len(value) > 4 else "]")
    return str(value)


def line_options():
    return [{"label": "(no line)", "value": ""}] + [{"label": o["path"], "value": str(o["id"])}
                                                    for o in cs.line_options(engine())]
