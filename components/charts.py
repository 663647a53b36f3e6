"""Figures for the pages: pure functions from what db/ returns to Plotly figures (no I/O, easy to test and time).

Figures are plain dicts ({"data": [...], "layout": {...}}, see Figure): plotly.graph_objects validates every
property on construction and embeds its whole template, which cost 25-60 ms a figure, several hundred ms for a
dashboard's callbacks; a dict costs well under a millisecond and Plotly.js draws it the same.

Times go to Plotly as naive plant-local ISO strings, so every axis reads in the plant's time whatever the browser's
zone. Every figure has a message instead of an empty plot when there is nothing to show.
"""
from __future__ import annotations

from collections import defaultdict

from components.format import (
    FACTOR_COLORS,
    STATE_COLORS,
    STATE_LABELS,
    STATE_ORDER,
    duration,
    local,
    local_iso,
    pct,
    plural,
)
from components.format import product as product_label

FONT = {"family": "Inter, Segoe UI, Roboto, Helvetica, Arial, sans-serif", "size": 14, "color": "#1d2733"}
MAX_EXACT_BARS = 1000  # above this the timeline is drawn from bins of the range, each in its dominant state
TIMELINE_BINS = 600
_AXIS = {"gridcolor": "#EBF0F8", "linecolor": "#EBF0F8", "ticks": "", "zerolinecolor": "#EBF0F8",
         "automargin": True, "zerolinewidth": 2, "title": {"standoff": 15}}
# What the pages used of Plotly's "plotly_white" template, sent once per figure in a few hundred bytes.
TEMPLATE = {"layout": {"xaxis": _AXIS, "yaxis": _AXIS, "hovermode": "closest", "hoverlabel": {"align": "left"},
                       "colorway": ["#636efa", "#EF553B", "#00cc96", "#ab63fa", "#FFA15A", "#19d3f3", "#FF6692",
                                    "#B6E880", "#FF97FF", "#FECB52"]}}


def _merge(into: dict, update: dict) -> dict:
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = _merge({}, value) if isinstance(value, dict) else value  # a copy: TEMPLATE stays as it is
    return into


class Figure(dict):
    """A Plotly figure as the plain dict dcc.Graph takes, with the one graph_objects method the pages use."""

    def __init__(self, data: list | None = None, layout: dict | None = None):
        super().__init__(data=list(data or []), layout=dict(layout or {}))

    @property
    def data(self) -> list[dict]:
        return self["data"]

    @property
    def layout(self) -> dict:
        return self["layout"]

    def update_layout(self, **changes) -> Figure:
        """Merge into the layout (nested dicts are merged, not replaced), like go.Figure.update_layout."""
        _merge(self["layout"], changes)
        return self


def _hline(y: float, line: dict, text: str | None = None) -> tuple[dict, dict | None]:
    """A horizontal line across the plot at y (and its label at the left), as go.Figure.add_hline draws it."""
    shape = {"type": "line", "xref": "x domain", "x0": 0, "x1": 1, "yref": "y", "y0": y, "y1": y, "line": line}
    note = None if text is None else {"text": text, "xref": "x domain", "x": 0, "yref": "y", "y": y,
                                      "showarrow": False, "xanchor": "left", "yanchor": "bottom"}
    return shape, note


# Time axes: one line per tick ("21:13", or "Mon 07 Dec" across days), standing off the value axis: Plotly's two-line first tick ("21:12:40 / Dec 6, 2026") lay on the "0" of the value axis and on
# its neighbour at 390 px.
TIME_TICKS = [{"dtickrange": [None, 60_000], "value": "%H:%M:%S"},
              {"dtickrange": [60_000, 86_400_000], "value": "%H:%M"},
              {"dtickrange": [86_400_000, None], "value": "%a %d %b"}]


def time_axis(**extra) -> dict:
    return {"type": "date", "tickformatstops": TIME_TICKS, "ticklabelstandoff": 6, **extra}


def base_layout(fig: Figure, *, height: int = 320, legend: bool = True, uirevision=None) -> Figure:
    return fig.update_layout(
        template=TEMPLATE, font=FONT, height=height, margin={"l": 10, "r": 10, "t": 10, "b": 10},
        showlegend=legend, legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0},
        hoverlabel={"font": {"size": 14}}, uirevision=uirevision, paper_bgcolor="rgba(0,0,0,0)",
        plot_bgcolor="rgba(0,0,0,0)",
    )


def empty_figure(message: str, height: int = 320) -> Figure:
    fig = Figure(layout={
        "annotations": [{"text": message, "x": 0.5, "y": 0.5, "xref": "paper", "yref": "paper",
                         "showarrow": False, "font": {"size": 16, "color": "#5c6670"}}],
        "xaxis": {"visible": False}, "yaxis": {"visible": False}})
    return base_layout(fig, height=height, legend=False)


def sparkline(xs: list, ys: list, color: str, target: float | None = None) -> Figure:
    line = {"type": "scatter", "x": list(xs), "y": list(ys), "mode": "lines",
            "line": {"color": color, "width": 2, "shape": "hv"},
            "fill": "tozeroy", "fillcolor": "rgba(31,78,121,0.08)", "hoverinfo": "skip", "connectgaps": False}
    layout = {"xaxis": {"visible": False, "fixedrange": True},
              "yaxis": {"visible": False, "fixedrange": True,
                        "range": [0, max([1.05] + [y for y in ys if y is not None])]},
              "height": 48, "margin": {"l": 0, "r": 0, "t": 2, "b": 2}, "showlegend": False,
              "paper_bgcolor": "rgba(0,0,0,0)", "plot_bgcolor": "rgba(0,0,0,0)"}
    if target is not None:
        layout["shapes"] = [_hline(target, {"color": "#9aa5b1", "width": 1, "dash": "dot"})[0]]
    return Figure([line], layout)


def trend_figure(buckets: list[dict], tz: str, targets: dict | None = None, bucket: str = "hour") -> Figure:
    """OEE as bars per bucket (as wide as the bucket), availability, performance and quality as lines at the
    buckets' middles; the OEE target dotted. Shift buckets are categories named after the shift."""
    if not buckets:
        return empty_figure("No data in this range yet.")
    if bucket == "shift":
        xs = [b["label"] for b in buckets]
        width = None
    else:
        xs = [local_iso((b["start"] + b["end"]) / 2, tz) for b in buckets]
        width = [(b["end"] - b["start"]) * 1000 * 0.85 for b in buckets]
    labels = [f"{local(b['start'], tz, '%a %H:%M')} – {local(b['end'], tz, '%H:%M')}" for b in buckets]
    bars = {"type": "bar", "x": xs, "y": [_pc(b.get("oee")) for b in buckets], "name": "OEE",
            "marker": {"color": FACTOR_COLORS["oee"]}, "customdata": labels,
            "hovertemplate": "OEE %{y:.1f} %<extra>%{customdata}</extra>"}
    if width is not None:
        bars["width"] = width
    data = [bars]
    for key, label in (("availability", "Availability"), ("performance", "Performance"), ("quality", "Quality")):
        data.append({"type": "scatter", "x": xs, "y": [_pc(b.get(key)) for b in buckets], "name": label,
                     "mode": "lines+markers", "line": {"color": FACTOR_COLORS[key], "width": 2}, "customdata": labels,
                     "hovertemplate": f"{label} %{{y:.1f}} %<extra>%{{customdata}}</extra>"})
    layout: dict = {"yaxis": {"title": {"text": "%"}, "rangemode": "tozero"}}
    if targets and targets.get("oee") is not None:
        # The line across the plot, its name in the legend: a label on the line sat on the first OEE bar.
        style = {"color": "#1f4e79", "dash": "dot", "width": 1}
        shape, _ = _hline(targets["oee"] * 100, style)
        layout["shapes"] = [shape]
        data.append({"type": "scatter", "x": [None], "y": [None], "mode": "lines", "line": style,
                     "name": f"OEE target {targets['oee'] * 100:.0f} %", "hoverinfo": "skip"})
    if bucket != "shift":
        layout["xaxis"] = {**time_axis(),
                           "range": [local_iso(buckets[0]["start"], tz), local_iso(buckets[-1]["end"], tz)]}
    return base_layout(Figure(data, layout), height=320)


def _pc(v):
    return None if v is None else v * 100


def waterfall_figure(steps: list[dict]) -> Figure:
    """From all time down to fully productive time: levels as totals, losses as drops, in hours."""
    steps = [s for s in steps if s.get("seconds") is not None and (s["kind"] == "level" or s["seconds"] > 0.5)]
    if not steps or not any(s["kind"] == "level" and s["seconds"] > 0 for s in steps):
        return empty_figure("No time in this range yet.")
    measure, xs, ys, text = [], [], [], []
    top = steps[0]["seconds"] or 1.0
    unit, per = time_unit(top)
    for i, s in enumerate(steps):
        value = s["seconds"] / per
        if s["kind"] == "level":
            measure.append("absolute" if i == 0 else "total")
            ys.append(value)
        else:
            measure.append("relative")
            ys.append(-value)
        xs.append(s["label"])
        text.append(f"{duration(s['seconds'])} ({s['seconds'] / top * 100:.1f} %)")
    # Each step's amount under its name, on the axis: a bar's own text beside a short loss bar lay on the names.
    names = [f"{x}<br><span style='font-size:12px;color:#5c6670'>{t}</span>" for x, t in zip(xs, text)]
    # Horizontal: each step's name on its own row, never rotated into its neighbours, at a desk's width and a
    # phone's; the first level on top.
    fig = Figure([{
        "type": "waterfall", "orientation": "h", "y": xs, "x": ys, "measure": measure, "text": text,
        "textposition": "none", "hovertemplate": "%{y}<br>%{text}<extra></extra>",
        "decreasing": {"marker": {"color": "#d64545"}}, "totals": {"marker": {"color": "#1f4e79"}},
        "increasing": {"marker": {"color": "#1f4e79"}}, "connector": {"line": {"color": "#c3cad1", "width": 1}},
    }], {"xaxis": {"title": {"text": unit}, "rangemode": "tozero"},
         "yaxis": {"autorange": "reversed", "automargin": True, "tickmode": "array", "tickvals": xs,
                   "ticktext": names}})
    return base_layout(fig, height=max(280, 46 * len(xs) + 60), legend=False)


def timeline_figure(timeline: dict, tz: str, fault_names: dict | None = None, height: int | None = None,
                    product_names: dict | None = None) -> Figure:
    """States over time, one row per machine (a machine's "fault_names" say what its codes mean, over the
    fault_names given for all): one horizontal bar trace per state (bars with base = start and
    length = duration), so thousands of intervals are a handful of traces. Above MAX_EXACT_BARS intervals the
    range is cut into TIMELINE_BINS bins drawn in their dominant state (the hover says how mixed a bin was)."""
    machines = timeline.get("machines") or []
    if not machines or not timeline.get("count"):
        return empty_figure("No machine states recorded in this range.", height=height or 160)
    fault_names = fault_names or {}
    aggregated = timeline["count"] > MAX_EXACT_BARS
    bars: dict[str, dict] = defaultdict(lambda: {"base": [], "x": [], "y": [], "text": []})
    for m in machines:
        row = m["machine_id"]
        names = {**fault_names, **(m.get("fault_names") or {})}  # the machine's own fault table first
        items = _bins(m["intervals"], timeline["start"], timeline["end"]) if aggregated else m["intervals"]
        for s, e, state, fault, product, *extra in items:
            b = bars[state]
            b["base"].append(local_iso(s, tz))
            b["x"].append((e - s) * 1000.0)
            b["y"].append(row)
            what = STATE_LABELS.get(state, state)
            if fault is not None:
                what += f" · fault {fault}" + (f" {names[fault]}" if fault in names else "")
            if extra:
                what = f"mostly {what} ({extra[0] * 100:.0f} %), {extra[1]} changes"
            b["text"].append(f"{what}<br>{local(s, tz, '%a %H:%M:%S')} – {local(e, tz, '%H:%M:%S')} "
                             f"({duration(e - s)})" + (f"<br>{product_label(product, product_names)}" if product else ""))
    data = []
    for state in STATE_ORDER + tuple(k for k in bars if k not in STATE_ORDER):
        if state not in bars:
            continue
        b = bars[state]
        data.append({"type": "bar", "base": b["base"], "x": b["x"], "y": b["y"], "orientation": "h",
                     "name": STATE_LABELS.get(state, state),
                     "marker": {"color": STATE_COLORS.get(state, "#aab2ba"), "line": {"width": 0}},
                     "customdata": b["text"], "hovertemplate": "%{customdata}<extra></extra>"})
    fig = Figure(data, {
        "barmode": "overlay", "bargap": 0.25,
        "xaxis": time_axis(range=[local_iso(timeline["start"], tz), local_iso(timeline["end"], tz)]),
        "yaxis": {"autorange": "reversed", "categoryorder": "array",
                  "categoryarray": [m["machine_id"] for m in machines]}})
    return base_layout(fig, height=height or max(150, 70 + 42 * len(machines)))


def _bins(intervals: list, start: float, end: float, bins: int = TIMELINE_BINS) -> list:
    """Intervals -> runs of bins in their dominant state: (start, end, state, fault, product, share, changes)."""
    width = (end - start) / bins
    if width <= 0:
        return intervals
    per_bin: list[dict] = [defaultdict(float) for _ in range(bins)]
    changes = [0] * bins
    faults: list[dict] = [{} for _ in range(bins)]
    for s, e, state, fault, _product in intervals:
        i = max(0, int((s - start) / width))
        if i < bins:
            changes[i] += 1
        while i < bins:
            a, b = start + i * width, start + (i + 1) * width
            overlap = min(e, b) - max(s, a)
            if overlap > 0:
                per_bin[i][state] += overlap
                if fault is not None:
                    faults[i][state] = fault
            if e <= b:
                break
            i += 1
    out: list = []
    for i in range(bins):
        if not per_bin[i]:
            continue
        state, secs = max(per_bin[i].items(), key=lambda kv: kv[1])
        share = secs / (sum(per_bin[i].values()) or 1.0)
        a, b = start + i * width, start + (i + 1) * width
        if out and out[-1][2] == state and abs(out[-1][1] - a) < 1e-6:
            prev = out[-1]
            out[-1] = (prev[0], b, state, prev[3], None, min(prev[5], share), prev[6] + changes[i])
        else:
            out.append((a, b, state, faults[i].get(state), None, share, changes[i]))
    return out


def time_unit(largest_s: float) -> tuple[str, float]:
    """The unit an axis of durations reads in, from its largest value: a 3 s stop is '3 seconds', not 0.05 min."""
    if largest_s < 120:
        return "seconds", 1.0
    if largest_s < 3 * 3600:
        return "minutes", 60.0
    return ("hours", 3600.0) if largest_s < 4 * 86400 else ("days", 86400.0)


def pareto_figure(groups: list[dict], top: int = 12) -> Figure:
    """Stop time by cause, largest first, with the cumulative share as a line."""
    groups = [g for g in groups if g["seconds"] > 0][:top]
    if not groups:
        return empty_figure("No stops in this range.")
    labels = [g["label"] for g in groups]
    unit, per = time_unit(max(g["seconds"] for g in groups))
    fig = Figure([
        {"type": "bar", "x": labels, "y": [g["seconds"] / per for g in groups], "name": unit.capitalize(),
         "marker": {"color": ["#9aa5b1" if g["planned"] else "#d64545" for g in groups]},
         "customdata": [[duration(g["seconds"]), g["count"], plural(g["count"], "stop")] for g in groups],
         "hovertemplate": "%{x}<br>%{customdata[0]} in %{customdata[2]}<extra></extra>"},
        {"type": "scatter", "x": labels, "y": [g["cumulative"] * 100 for g in groups], "name": "Cumulative %",
         "yaxis": "y2", "mode": "lines+markers", "line": {"color": "#1f4e79"},
         "hovertemplate": "%{y:.0f} % of stop time<extra></extra>"},
    ], {"yaxis": {"title": {"text": unit}},
        "yaxis2": {"overlaying": "y", "side": "right", "range": [0, 105], "showgrid": False,
                   "title": {"text": "cumulative %"}},
        "xaxis": {"tickangle": -30, "automargin": True}})
    return base_layout(fig, height=360)


def progress_figure(progress: dict, tz: str, target_oee: float | None = None) -> Figure:
    """Cumulative actual count against the ideal (100 % speed in planned time) and the target (ideal x target
    OEE)."""
    if not progress.get("times"):
        return empty_figure("No planned production time in this range.")
    xs = [local_iso(t, tz) for t in progress["times"]]

    def line(y, name, style):
        return {"type": "scatter", "x": xs, "y": y, "name": name, "mode": "lines", "line": style}

    data = [line(progress["ideal"], "Ideal (100 % speed)", {"color": "#9aa5b1", "dash": "dash"})]
    if target_oee:
        data.append(line([v * target_oee for v in progress["ideal"]], f"Target ({target_oee:.0%} OEE)",
                         {"color": "#1f4e79", "dash": "dot"}))
    data.append(line(progress["total"], "Actual (total)", {"color": "#e07b24"}))
    data.append(line(progress["good"], "Actual (good)", {"color": "#2e9d4f", "width": 3}))
    return base_layout(Figure(data, {"xaxis": time_axis(),
                                     "yaxis": {"title": {"text": "units"}, "rangemode": "tozero"}}), height=320)


def cycle_figure(actual: dict | None, ideal: dict | None, tz: str) -> Figure:
    """The cycle.time tag against the cycle.ideal_time tag (raw, or minute averages with a min-max band)."""
    if not actual or not actual["t"]:
        return empty_figure("No cycle time recorded in this range (the machine has no cycle.time tag, or it "
                            "did not run).")
    xs = [local_iso(t, tz) for t in actual["t"]]
    data = []
    if actual.get("min") and actual.get("max"):
        data.append({"type": "scatter", "x": xs, "y": actual["max"], "mode": "lines", "line": {"width": 0},
                     "showlegend": False, "hoverinfo": "skip"})
        data.append({"type": "scatter", "x": xs, "y": actual["min"], "mode": "lines", "line": {"width": 0},
                     "fill": "tonexty", "fillcolor": "rgba(224,123,36,0.18)", "name": "min – max",
                     "hoverinfo": "skip"})
    data.append({"type": "scatter", "x": xs, "y": actual["v"],
                 "name": "Cycle time" + (" (average)" if actual.get("min") else ""), "mode": "lines",
                 "line": {"color": "#e07b24", "width": 1.5}, "hovertemplate": "%{y:.2f} s<extra>cycle</extra>"})
    if ideal and ideal["t"]:
        ixs = [local_iso(t, tz) for t in ideal["t"]] + [xs[-1]]
        data.append({"type": "scatter", "x": ixs, "y": ideal["v"] + [ideal["v"][-1]], "name": "Ideal",
                     "mode": "lines", "line": {"color": "#2e9d4f", "width": 2, "shape": "hv"},
                     "hovertemplate": "%{y:.2f} s<extra>ideal</extra>"})
    return base_layout(Figure(data, {"xaxis": time_axis(),
                                     "yaxis": {"title": {"text": "seconds"}, "rangemode": "tozero"}}), height=320)


def speed_figure(machines: list[dict]) -> Figure:
    """Per machine of a line: performance (speed against ideal) and availability side by side."""
    if not machines:
        return empty_figure("No machines.")
    names = [m["machine_id"] for m in machines]
    data = [{"type": "bar", "x": names, "y": [_pc(m.get(key)) for m in machines], "name": label,
             "marker": {"color": FACTOR_COLORS[key]}, "hovertemplate": f"{label} %{{y:.1f}} %<extra>%{{x}}</extra>"}
            for key, label in (("availability", "Availability"), ("performance", "Speed vs ideal"),
                               ("quality", "Quality"))]
    return base_layout(Figure(data, {"yaxis": {"title": {"text": "%"}, "rangemode": "tozero"}, "barmode": "group"}),
                       height=320)


def live_figure(tags: list[dict], history: dict, tz: str) -> Figure:
    """One line per tag, filled with the recent history; later points arrive through extendData. uirevision
    keeps the user's zoom and hidden lines across updates."""
    if not tags:
        return empty_figure("This machine has no numeric process tags to plot.", height=300)
    data = []
    for t in tags:
        h = history.get(t["id"]) or {"t": [], "v": []}
        data.append({"type": "scatter", "x": [local_iso(x, tz) for x in h["t"]], "y": list(h["v"]),
                     "name": t["name"], "mode": "lines", "line": {"width": 1.5},
                     "meta": {"tag_id": t["id"]}})  # assets/live.js appends by tag id
    return base_layout(Figure(data, {"xaxis": time_axis()}), height=300, uirevision="live")


def kpi_color(value: float | None, target: float | None) -> str:
    if value is None or target is None:
        return "secondary"
    if value >= target:
        return "success"
    if value >= target * 0.9:
        return "warning"
    return "danger"


__all__ = ["Figure", "base_layout", "cycle_figure", "empty_figure", "kpi_color", "live_figure", "pareto_figure", "pct",
           "progress_figure", "sparkline", "speed_figure", "timeline_figure", "trend_figure", "waterfall_figure"]
