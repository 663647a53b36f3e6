"""What the shop-floor screens (/andon/, /operator/<machine or line>) share: a machine's live state as the screens
show it (state, how long, why), and its order's progress.

The state comes from the collectors' live snapshot (components.context.machine_states), the order's quantity and
good count from the latest values of the tags that carry them (db.floor_queries.order_tags), read from the live
service the WebSockets feed from, so a screen shows what the PLC says now.
"""
from __future__ import annotations

import time

import dash_bootstrap_components as dbc
from dash import html

from components import context
from components.format import STATE_COLORS, STATE_LABELS, duration
from db import floor_queries, ui_queries



def _value(live, tag_id: int | None):
    if live is None or tag_id is None:
        return None
    v = live.tags.get(tag_id)
    if not v or v[1] is None:
        return None
    try:
        return float(v[1])
    except (TypeError, ValueError):
        return None


def order_progress(machine_ids: list[int], states: dict[int, dict]) -> dict[int, dict]:
    """Per machine (db id): {"order_id", "quantity", "good", "share"} (None where unknown)."""
    live = context.runtime().live
    tags = floor_queries.order_tags(context.store(), machine_ids)
    out = {}
    for mid in machine_ids:
        mine = tags.get(mid, {})
        qty, good = _value(live, mine.get("quantity")), _value(live, mine.get("good"))
        share = good / qty if qty and good is not None and qty > 0 else None
        out[mid] = {"order_id": (states.get(mid) or {}).get("order_id"), "quantity": qty, "good": good,
                    "share": None if share is None else max(0.0, min(share, 1.0))}
    return out


def state_facts(machine: dict, status: dict | None, faults: dict[int, str], now: float | None = None) -> dict:
    """{state, label, color, since_s, why}: why is the fault's text (its code and the machine's fault table)."""
    now = time.time() if now is None else now
    st = status or {}
    state = st.get("state") or "unknown"
    since = st.get("since")
    why = None
    if st.get("fault_code"):
        code = st["fault_code"]
        text = faults.get(code)
        why = f"Fault {code}" + (f" {text}" if text else "")
    return {"state": state, "label": STATE_LABELS.get(state, state), "color": STATE_COLORS.get(state, "#aab2ba"),
            "since_s": (now - since) if since else None, "why": why}


def fault_texts(machine_ids: list[int]) -> dict[int, dict[int, str]]:
    return ui_queries.fault_names(context.store(), machine_ids)


def order_block(order: dict, id_prefix: str, large: bool = False) -> html.Div:
    """The running order: its id, good of quantity, and a progress bar."""
    if not order.get("order_id") and order.get("quantity") is None:
        return html.Div("No order reported", className="text-muted", id=f"{id_prefix}-order-none")
    qty, good = order.get("quantity"), order.get("good")
    counts = f"{good:,.0f} of {qty:,.0f}" if qty is not None and good is not None else "progress not reported"
    share = order.get("share")
    return html.Div([
        html.Div([html.Span("Order ", className="text-muted"),
                  html.Strong(order.get("order_id") or "—", id=f"{id_prefix}-order-id"),
                  html.Span(f" · {counts}", id=f"{id_prefix}-order-counts")]),
        dbc.Progress(value=round(share * 100) if share is not None else 0,
                     label=f"{share * 100:.0f} %" if share is not None else "",
                     style={"height": "1.6rem" if large else "1rem"}, className="mt-1",
                     id=f"{id_prefix}-order-bar"),
    ])


def stop_text(facts: dict) -> str:
    """'stopped 4 min' for a machine not running; '' while it runs."""
    if facts["state"] == "running" or facts["since_s"] is None:
        return ""
    return f"for {duration(facts['since_s'])}"
