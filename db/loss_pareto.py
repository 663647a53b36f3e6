"""The plant's losses as a Pareto: downtime (the stops) or all six losses, grouped by reason, machine, line or loss
category, over any range; each group keeps the stops behind it so that a page can open them.

Downtime groups are the stops' time inside the range (db.downtime_queries.downtime_events, unplanned only). The six
losses (equipment failure, setup and adjustment, idling and minor stops, reduced speed, process defects, startup
rejects) are each machine's from the OEE engine (oee_report_with_machines, the function behind GET /api/oee/);
speed and quality losses have no stops behind them, and stops have a reason only as time: so "by reason" for the
six losses is the stops by reason plus reduced speed, process defects and startup rejects as groups of their own.
"""
from __future__ import annotations

from typing import Callable

from db.downtime_queries import downtime_events
from db.oee_queries import oee_report_with_machines
from oee.vocabulary import LABELS

BY = ("reason", "machine", "line", "category")
WHAT = ("downtime", "losses")
SIX = ("equipment_failure", "setup_adjustment", "idling_minor_stops", "reduced_speed", "process_defects",
       "startup_rejects")
LOSS_KEYS = {  # the engine's loss steps (oee.Totals.losses) per six-loss category
    "equipment_failure": ("availability.equipment_failure",),
    "setup_adjustment": ("availability.setup_adjustment",),
    "idling_minor_stops": ("availability.idling_minor_stops", "performance.idling_minor_stops"),
    "reduced_speed": ("performance.reduced_speed",),
    "process_defects": ("quality.process_defects",),
    "startup_rejects": ("quality.startup_rejects",),
}
PART_LOSSES = ("reduced_speed", "process_defects", "startup_rejects")  # no stops behind them


def _cause(ev: dict, by: str) -> tuple[str, str]:
    if by == "machine":
        return ev["machine_id"], f"{ev['machine_id']} {ev['machine_name']}"
    if by == "line":
        return str(ev["line"]), ev["line"] or "No line"
    if by == "category":
        return ev["loss_category"], ev["category_label"]
    if ev["reason_code"] and ev["source"] == "operator":
        return f"reason:{ev['reason_code']}", ev["reason_name"] or ev["reason_code"]
    if ev["minor"]:
        return "minor_stops", "Minor stops"
    if ev["fault_code"] is not None:
        return f"fault:{ev['fault_code']}", ev["fault_label"]
    return f"category:{ev['loss_category']}", f"{ev['category_label']} (no reason given)"


def _finish(groups: dict) -> list[dict]:
    out = sorted((g for g in groups.values() if g["seconds"] > 0.5), key=lambda g: -g["seconds"])
    total = sum(g["seconds"] for g in out) or 1.0
    cum = 0.0
    for g in out:
        cum += g["seconds"]
        g["share"], g["cumulative"] = g["seconds"] / total, cum / total
    return out


def pareto(store, start: float, end: float, *, what: str = "downtime", by: str = "reason", site_key: str = "",
           site_report: Callable[[float, float], tuple[dict, dict]] | None = None) -> dict:
    """{"groups": [{key, label, seconds, count, share, cumulative, events: [event keys], parts}], "events": {key:
    event}}: largest first. Raises ValueError for a what or by it does not know, TooMuchData as its readers do.
    site_report(start, end): the site's (report, analyses) as oee_report_with_machines gives them, for a caller
    that shares one read between callbacks (components/site_report.py); by default read here."""
    if what not in WHAT:
        raise ValueError(f"what: use one of {', '.join(WHAT)}")
    if by not in BY:
        raise ValueError(f"by: use one of {', '.join(BY)}")
    events = [e for e in downtime_events(store, start, end, include_planned=False, reconcile=False)
              if e["loss_category"] in SIX]
    groups: dict[str, dict] = {}

    def add(key, label, seconds, ev=None, part=None):
        g = groups.setdefault(key, {"key": key, "label": label, "seconds": 0.0, "count": 0, "events": [],
                                    "parts": []})
        g["seconds"] += seconds
        if ev is not None:
            g["count"] += 1
            g["events"].append(ev["key"])
        if part is not None:
            g["parts"].append(part)

    if what == "downtime":
        for ev in events:
            add(*_cause(ev, by), ev["in_range_s"], ev)
        return {"groups": _finish(groups), "events": {e["key"]: e for e in events}}

    if site_report is None:
        report, analyses = oee_report_with_machines(store, "site", site_key, start, end)
    else:
        report, analyses = site_report(start, end)
    lines = {m["machine_id"]: m.get("line") for m in report.get("machines", [])}
    # Time losses: the engine's per machine and category (what the API says); the stops behind them by category.
    for mid, analysis in analyses.items():
        losses = analysis.totals.losses()
        for cat in SIX:
            seconds = sum(losses.get(k) or 0.0 for k in LOSS_KEYS[cat])
            if seconds <= 0:
                continue
            part = {"machine_id": mid, "category": cat, "seconds": seconds}
            if by == "category" or (by == "reason" and cat in PART_LOSSES):
                add(cat, LABELS.get(cat, cat), seconds, part=part)
            elif by == "machine":
                add(mid, mid, seconds, part=part)
            elif by == "line":
                add(str(lines.get(mid)), lines.get(mid) or "No line", seconds, part=part)
    if by == "reason":  # the stop losses by the stops' reasons, the part losses as they are
        for ev in events:
            add(*_cause(ev, "reason"), ev["in_range_s"], ev)
    else:
        for ev in events:
            key = {"category": ev["loss_category"], "machine": ev["machine_id"], "line": str(ev["line"])}[by]
            if key in groups:
                groups[key]["count"] += 1
                groups[key]["events"].append(ev["key"])
    return {"groups": _finish(groups), "events": {e["key"]: e for e in events}}
