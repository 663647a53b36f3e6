"""The andon board's tiles: one per machine, readable across a hall (assets/andon.css: dark, big type, colour by
state). A tile: the machine, its state, how long the stop has lasted and why (the operator's reason if given,
else the fault's text from the machine's fault table), good parts of the shift against plan, and the order.

Two sources, merged per tile: the live status from the WebSocket's store (state, since, fault: changes within a
second) and the slower numbers (count and plan of the shift, reasons given to the stops going on, the order) read
every few seconds (numbers()).
"""
from __future__ import annotations

import time

from dash import html

from components import context, floor
from components.format import STATE_COLORS, STATE_LABELS, duration
from db import downtime_queries, floor_queries, ui_queries
from db.oee_queries import TooMuchData, machine_reports

SHIFT_FALLBACK = "today"


def machines_of(scope: str | None, key: str | None) -> list[dict]:
    """The board's machines (plant_machines' dicts) in plant order; raises LookupError for an unknown scope."""
    machines = ui_queries.plant_machines(context.store())
    if scope is None:
        return machines
    field = {"line": ("line_id", "line"), "area": ("area_id", "area"), "site": ("site_id", "site")}[scope]
    mine = [m for m in machines if str(m.get(field[0])) == str(key) or str(m.get(field[1])) == str(key)]
    if not mine:
        raise LookupError(f"there is no {scope} {key!r} with machines")
    return mine


def numbers(machines: list[dict], scope: str | None, key: str | None) -> dict:
    """Per machine_id: {good, plan, shift, reason, order}: the shift's good parts and the plan so far (planned time
    over the ideal cycle time), the reason an operator gave the stop going on, and the order's progress."""
    from components import timerange

    s = context.store()
    now = time.time()
    shifts = ui_queries.machine_shifts(s, now)
    today = timerange.resolve({"range": SHIFT_FALLBACK}, tz=context.tz(), now=now)
    ranges, labels = {}, {}
    for m in machines:
        sh = shifts.get(m["id"])
        a, b = (sh["start"], min(sh["end"], now)) if sh else (today.start, now)
        labels[m["machine_id"]] = f"shift {sh['name']}" if sh and sh["current"] else SHIFT_FALLBACK
        if b - a >= 1:
            ranges[m["machine_id"]] = (round(a, 3), round(b, 3))
    reports = machine_reports(s, ranges)
    states = context.machine_states([m["id"] for m in machines])
    orders = floor.order_progress([m["id"] for m in machines], states)
    try:
        events = downtime_queries.downtime_events(
            s, now - floor_queries.STOP_LOOKBACK_S, now + 1, scope=scope if scope in ("line", "area") else None,
            key=key if scope in ("line", "area") else None, include_planned=True, reconcile=False)
    except (LookupError, TooMuchData):
        events = []
    reasons = {e["machine_id"]: e["reason_name"] for e in events if e["open"] and e["source"] == "operator"}
    out = {}
    for m in machines:
        r = reports.get(m["machine_id"]) or {}
        ideal = (states.get(m["id"]) or {}).get("ideal_cycle_time_s") or m.get("ideal_cycle_time_s")
        plan = r.get("planned_time_s", 0) / ideal if ideal and r else None
        out[m["machine_id"]] = {"good": r.get("good_count"), "plan": plan, "shift": labels[m["machine_id"]],
                                "reason": reasons.get(m["machine_id"]), "order": orders.get(m["id"])}
    return out


def _live_status(live: dict | None, machine_id: str, stored: dict | None) -> dict | None:
    """The WebSocket's status of the machine when the socket has one, else the stored one."""
    entry = ((live or {}).get("machines") or {}).get(machine_id) or {}
    return entry.get("status") or stored


def tiles(machines: list[dict], live: dict | None, nums: dict | None, now: float | None = None) -> list:
    now = time.time() if now is None else now
    stored = context.machine_states([m["id"] for m in machines]) if not (live or {}).get("machines") else {}
    faults = None
    out = []
    for m in machines:
        status = _live_status(live, m["machine_id"], stored.get(m["id"]))
        if status and status.get("fault_code") and faults is None:
            faults = floor.fault_texts([x["id"] for x in machines])
        facts = floor.state_facts(m, status, (faults or {}).get(m["id"], {}), now)
        n = (nums or {}).get(m["machine_id"]) or {}
        running = facts["state"] == "running"
        why = None if running else (n.get("reason") or facts["why"])
        good, plan = n.get("good"), n.get("plan")
        count = (f"{good:,.0f}" if good is not None else "—") + (f" / {plan:,.0f}" if plan else "")
        behind = good is not None and plan and good < 0.9 * plan
        order = n.get("order") or {}
        order_text = ""
        if order.get("order_id") or order.get("quantity") is not None:
            share = order.get("share")
            order_text = f"Order {order.get('order_id') or '—'}" + (f" · {share * 100:.0f} %" if share is not None
                                                                      else "")
        out.append(html.Div([
            html.Div([html.Span(m["machine_id"], className="andon-id"), html.Span(m["name"], className="andon-name")],
                     className="andon-head"),
            html.Div(STATE_LABELS.get(facts["state"], facts["state"]), className="andon-state",
                     id={"type": "andon-state", "machine": m["machine_id"]}),
            html.Div(duration(facts["since_s"]) if facts["since_s"] is not None and not running else "",
                     className="andon-since"),
            html.Div(why or "", className="andon-why", id={"type": "andon-why", "machine": m["machine_id"]}),
            html.Div([html.Span("Good ", className="andon-label"), html.Span(count, className="andon-count"),
                      html.Span(f" {n.get('shift', '')}", className="andon-label")],
                     className="andon-plan" + (" andon-behind" if behind else "")),
            html.Div([html.Div(order_text, className="andon-order-text"),
                      html.Div(html.Div(className="andon-bar-fill",
                                        style={"width": f"{(order.get('share') or 0) * 100:.0f}%"}),
                               className="andon-bar")] if order_text else [], className="andon-order"),
        ], className=f"andon-tile andon-{facts['state']}", style=_tile_style(facts["state"], running),
            id={"type": "andon-tile", "machine": m["machine_id"]},
            **{"data-state": facts["state"]}))
    return out


TILE = "#161b22"  # a running tile; a stopped one is tinted with its state's colour


def _tile_style(state: str, running: bool) -> dict:
    colour = STATE_COLORS.get(state, "#aab2ba")
    style = {"--andon-color": colour}
    if not running:
        style["backgroundColor"] = _mix(colour, TILE, 0.28)
    return style


def _mix(colour: str, base: str, share: float) -> str:
    """share of colour over base, as #rrggbb."""
    a, b = (tuple(int(c[i:i + 2], 16) for i in (1, 3, 5)) for c in (colour, base))
    return "#" + "".join(f"{round(x * share + y * (1 - share)):02x}" for x, y in zip(a, b))
