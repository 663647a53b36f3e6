"""What every step of the machine wizard shares: the runtime, form fields, Back/Next buttons, how a value is shown."""
from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import html
from flask import current_app

from collectors.machine_model import STATE_PRESETS
from config import store as cs
from db.models import FAULT_KINDS

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


# The value of a drop-down's "unset" entry: dbc.Select keeps a hidden placeholder option of value "", so an
# entry of value "" showed as a blank beside "(no line)".
UNSET = "__unset__"


def line_options():
    return [{"label": "(no line)", "value": UNSET}] + [{"label": o["path"], "value": str(o["id"])}
                                                    for o in cs.line_options(engine())]


# --- the state code and fault tables as text (one entry a line), as the map step edits them ---------------------

CUSTOM = "custom"


def state_codes_text(codes: dict | None) -> str:
    return "\n".join(f"{k}, {v}" for k, v in sorted((codes or {}).items(), key=lambda kv: int(kv[0])))


def parse_state_codes(text: str | None) -> dict | None:
    """'3, faulted' per line (',', ':', '=' or spaces between) as {"3": "faulted"} for the API's validation, which
    names a bad entry; a line without two parts is kept whole as a code it will refuse. Empty: None."""
    out: dict = {}
    for line in (text or "").splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = [p for p in line.replace(":", ",").replace("=", ",").replace(" ", ",").split(",") if p]
        out[parts[0]] = parts[1] if len(parts) > 1 else ""
    return out or None


def fault_codes_text(codes: list[dict] | None) -> str:
    return "\n".join(f"{f['code']}, {f['text']}, {f['kind']}" for f in codes or [])


def parse_fault_codes(text: str | None) -> list[dict] | None:
    """'42, Jam at infeed, fault' per line (the kind may be left out: fault) for the API's validation."""
    out = []
    for line in (text or "").splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = [p.strip() for p in line.split(",")]
        kind = parts.pop() if len(parts) > 2 and parts[-1] in FAULT_KINDS else "fault"
        code = parts[0]
        out.append({"code": int(code) if code.lstrip("-").isdigit() else code, "text": ", ".join(parts[1:]),
                    "kind": kind})
    return out or None


def preset_of(codes: dict | None) -> str:
    """The preset whose code table this is, else custom."""
    for key, preset in STATE_PRESETS.items():
        if preset.codes and {str(k): v for k, v in preset.codes.items()} == (codes or {}):
            return key
    return CUSTOM if codes else "demo"


def preset_options() -> list[dict]:
    return [{"label": p.label, "value": k} for k, p in STATE_PRESETS.items()] + [
        {"label": "My PLC's own state codes (the table below)", "value": CUSTOM}]
