"""The KPI row: OEE, availability, performance and quality against their targets, each with a sparkline.

Targets are world-class reference values until plants set their own (a per-line target belongs in the
configuration; see the issue tracker).
"""
from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import dcc, html

from components.charts import kpi_color, sparkline
from components.format import FACTOR_COLORS, count, duration, pct

TARGETS = {"oee": 0.85, "availability": 0.90, "performance": 0.95, "quality": 0.99}
# A machine's first minutes say little (a few cycles, counters not yet moved): its numbers are shown, but judged
# against the targets, and listed among the lowest, only after this much planned time.
JUDGE_AFTER_S = 600
FACTORS = (("oee", "OEE"), ("availability", "Availability"), ("performance", "Performance"), ("quality", "Quality"))


def warning_text(part: dict | None, key: str) -> str | None:
    """The likely cause of a factor above 100 % in a report (or bucket, or machine row), or None."""
    texts = [w["text"] for w in (part or {}).get("warnings") or () if w.get("factor") == key]
    return " ".join(texts) or None


def warning_mark(text: str | None, id_: str | None = None) -> html.Span | None:
    """A small warning sign beside a value above 100 %, its cause in the tooltip: never a silent 110 %."""
    if not text:
        return None
    return html.Span("\u26a0", title=text, className="factor-warning", role="img", **{"aria-label": text},
                     **({"id": id_} if id_ else {}))


def data_span_s(report: dict) -> float:
    """How much data a report stands on: the planned time of its longest-reporting machine (a line's or site's
    planned time is the sum of its machines', which would pass the mark after seconds on a fresh plant)."""
    rows = report.get("machines") or []
    if rows:
        return max((r.get("planned_time_s") or 0.0) for r in rows)
    return report.get("planned_time_s") or 0.0


def collecting_text(span_s: float) -> str:
    return (f"collecting: judged against target after {duration(JUDGE_AFTER_S)} of data "
            f"({duration(span_s)} so far)")


def kpi_card(prefix: str, key: str, label: str, value, target, spark_x=None, spark_y=None,
             warning: str | None = None, collecting_s: float | None = None) -> dbc.Col:
    """collecting_s: the data span so far when it is too short to judge (JUDGE_AFTER_S): no colour, no delta."""
    color = kpi_color(value, target) if collecting_s is None else "secondary"
    delta = ""
    if collecting_s is not None:
        delta = collecting_text(collecting_s)
    elif value is not None and target is not None:
        diff = (value - target) * 100
        delta = f"{diff:+.1f} pp vs target {target * 100:.0f} %"
    elif target is not None:
        delta = f"target {target * 100:.0f} %"
    body = [
        html.Div(label, className="kpi-label"),
        html.Div([html.Span(pct(value), id=f"{prefix}-kpi-{key}", className=f"kpi-value text-{color}",
                            **{"data-value": "" if value is None else repr(value)}),
                  warning_mark(warning, f"{prefix}-kpi-{key}-warning")]),
        html.Div(delta, className="kpi-target"),
    ]
    if spark_y and any(v is not None for v in spark_y):
        body.append(dcc.Graph(figure=sparkline(spark_x, spark_y, FACTOR_COLORS[key], target),
                              config={"displayModeBar": False, "staticPlot": True}, className="kpi-spark"))
    return dbc.Col(dbc.Card(dbc.CardBody(body), className=f"kpi-card kpi-{color}"), xs=6, lg=3, className="mb-3")


def kpi_row(prefix: str, report: dict, buckets: list[dict] | None = None) -> dbc.Row:
    span = data_span_s(report)
    collecting = span if span < JUDGE_AFTER_S else None
    # Each bucket a flat step over its own time, the last one up to its end: the current hour draws from its first
    # minute (one point per bucket drew nothing until the second bucket began).
    buckets = [b for b in buckets or [] if b.get("end") is not None]
    xs = [b["start"] for b in buckets] + [buckets[-1]["end"]] if buckets else []
    cards = [kpi_card(prefix, key, label, report.get(key), TARGETS[key], xs,
                      [b.get(key) for b in buckets] + [buckets[-1].get(key)] if buckets else [],
                      warning_text(report, key), collecting) for key, label in FACTORS]
    return dbc.Row(cards, className="kpi-row")


def facts(prefix: str, report: dict) -> html.Div:
    """Counts, MTBF and MTTR under the KPI row."""
    items = [
        ("Good", count(report.get("good_count")), "good"),
        ("Total", count(report.get("total_count")), "total"),
        ("Rejects", count(report.get("reject_count")), "rejects"),
        ("Run time", duration(report.get("run_time_s")), "run"),
        ("Planned time", duration(report.get("planned_time_s")), "planned"),
        ("Stops", count(report.get("stop_count")), "stops"),
        ("MTBF", duration(report.get("mtbf_s")), "mtbf"),
        ("MTTR", duration(report.get("mttr_s")), "mttr"),
    ]
    return html.Div([html.Div([html.Span(label, className="fact-label"),
                               html.Span(value, id=f"{prefix}-fact-{key}", className="fact-value")],
                              className="fact") for label, value, key in items], className="facts")


FLAG_TEXT = {
    "data_gap": "Part of this range has no data (a collector or PLC was not reporting): that time counts as an "
                "availability loss ('Unknown').",
    "no_run_time": "The machine did not run in this range.",
    "no_count": "No parts were counted in this range.",
    "no_planned_time": "No planned production time in this range (outside the shifts).",
    "no_ideal_cycle_time": "Some parts have no ideal cycle time (neither the product nor the machine has one): "
                           "performance and OEE cannot be computed. Set it in the machine configuration.",
    "count_without_run_time": "Parts were counted while the machine was not running.",
    "good_exceeds_total": "More good parts than total parts were counted: check the counter tags.",
    "no_all_time": "The range is empty.",
    "production_outside_planned_time": "Parts were made outside planned production time.",
}


def flag_notes(report: dict) -> list[str]:
    """The report's flags in words; a factor above 100 % says its likely cause (oee.formulas.WARNING_TEXT)."""
    causes = {w["flag"]: w["text"] for w in report.get("warnings") or ()}
    return [causes.get(f) or FLAG_TEXT.get(f, f.replace("_", " ")) for f in report.get("flags") or []]
