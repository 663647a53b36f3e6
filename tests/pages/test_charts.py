"""Figures from what db/ returns: the state timeline stays a handful of traces with thousands of intervals, every
empty figure says why, the waterfall runs from all time down to fully productive time."""
from __future__ import annotations

import pytest

import random
import time

from components import charts


def _timeline(n: int, machines: int = 2, start: float = 1_795_800_000.0) -> dict:
    rng = random.Random(7)
    out = []
    for m in range(machines):
        t, intervals = start, []
        for _ in range(n):
            d = rng.choice((3.0, 8.0, 20.0, 90.0, 400.0))
            state = rng.choice(("running", "running", "idle", "faulted", "blocked"))
            intervals.append([t, t + d, state, 101 if state == "faulted" else None, "P1"])
            t += d
        out.append({"machine_id": f"M{m}", "name": f"Machine {m}", "intervals": intervals})
    end = max(m["intervals"][-1][1] for m in out)
    return {"start": start, "end": end, "machines": out, "count": n * machines}


def test_timeline_is_one_bar_trace_per_state_whatever_the_number_of_intervals():
    small = charts.timeline_figure(_timeline(200), "America/Chicago", {101: "Infeed jam"})
    assert len(small.data) <= 4 and sum(len(t["x"]) for t in small.data) == 400  # exact below the threshold
    assert all(t["type"] == "bar" and t["orientation"] == "h" for t in small.data)
    assert any("fault 101 Infeed jam" in text for t in small.data for text in t["customdata"])

    started = time.perf_counter()
    big = charts.timeline_figure(_timeline(20_000, machines=3), "America/Chicago")
    elapsed = time.perf_counter() - started
    bars = sum(len(t["x"]) for t in big.data)
    assert len(big.data) <= 4 and bars <= 3 * charts.TIMELINE_BINS  # binned: bounded whatever the input
    assert any("changes" in text for t in big.data for text in t["customdata"])
    print(f"\n60,000 intervals -> {bars} bars in {elapsed * 1000:.0f} ms")


def test_empty_figures_say_what_is_going_on():
    for fig in (charts.timeline_figure({"machines": [], "count": 0}, "UTC"), charts.trend_figure([], "UTC"),
                charts.waterfall_figure([]), charts.pareto_figure([]),
                charts.progress_figure({"times": []}, "UTC"), charts.cycle_figure(None, None, "UTC"),
                charts.live_figure([], {}, "UTC"), charts.speed_figure([])):
        assert fig.layout["annotations"] and fig.layout["annotations"][0]["text"]


def test_waterfall_levels_are_totals_and_losses_drops():
    steps = [
        {"key": "all_time", "label": "All time", "seconds": 28800, "kind": "level"},
        {"key": "planned.break", "label": "Breaks", "seconds": 1800, "kind": "loss", "factor": "planned"},
        {"key": "planned_production_time", "label": "Planned production time", "seconds": 27000, "kind": "level"},
        {"key": "availability.equipment_failure", "label": "Equipment failure", "seconds": 3600, "kind": "loss"},
        {"key": "availability.setup_adjustment", "label": "Setup", "seconds": 0.0, "kind": "loss"},
        {"key": "run_time", "label": "Run time", "seconds": 23400, "kind": "level"},
        {"key": "net_run_time", "label": "Net run time", "seconds": None, "kind": "level"},
    ]
    fig = charts.waterfall_figure(steps)
    w = fig.data[0]
    assert list(w["measure"]) == ["absolute", "relative", "total", "relative", "total"]  # zero and unknown steps left out
    assert list(w["x"]) == [8.0, -0.5, 7.5, -1.0, 6.5] and fig.layout["xaxis"]["title"]["text"] == "hours"
    # Horizontal, the first level on top: the steps' names are rows, never rotated labels on each other.
    assert w["orientation"] == "h" and list(w["y"])[0] == "All time" and fig.layout["yaxis"]["autorange"] == "reversed"


def test_every_figure_is_valid_for_plotly():
    """Figures are plain dicts (speed); plotly.graph_objects still checks every property name and value, so a
    typo that Plotly.js would silently ignore fails here."""
    import plotly.graph_objects as go

    buckets = [{"start": 1_795_800_000.0 + 3600 * i, "end": 1_795_803_600.0 + 3600 * i, "label": f"S{i}",
                "oee": 0.5 + i / 10, "availability": 0.9, "performance": 0.8, "quality": None} for i in range(3)]
    groups = [{"label": "Jam", "seconds": 600.0, "planned": False, "count": 3, "cumulative": 0.6},
              {"label": "Break", "seconds": 400.0, "planned": True, "count": 1, "cumulative": 1.0}]
    series = {"t": [1_795_800_000.0, 1_795_800_060.0], "v": [2.0, 2.5], "min": [1.9, 2.1], "max": [2.2, 2.9]}
    figures = [
        charts.sparkline([1, 2, 3], [0.5, None, 0.7], "#1f4e79", 0.85),
        charts.trend_figure(buckets, "America/Chicago", {"oee": 0.85}),
        charts.trend_figure(buckets, "America/Chicago", {"oee": 0.85}, "shift"),
        charts.waterfall_figure([{"label": "All time", "seconds": 3600.0, "kind": "level"},
                                 {"label": "Jam", "seconds": 600.0, "kind": "loss"},
                                 {"label": "Run time", "seconds": 3000.0, "kind": "level"}]),
        charts.timeline_figure(_timeline(50), "UTC", {101: "Infeed jam"}),
        charts.timeline_figure(_timeline(2000), "UTC"),
        charts.pareto_figure(groups),
        charts.progress_figure({"times": series["t"], "ideal": [10, 20], "total": [8, 15], "good": [8, 14]}, "UTC",
                               0.85),
        charts.cycle_figure(series, {"t": [1_795_800_000.0], "v": [2.0]}, "UTC"),
        charts.speed_figure([{"machine_id": "M1", "availability": 0.9, "performance": None, "quality": 1.0}]),
        charts.live_figure([{"id": 7, "name": "Speed"}], {7: {"t": series["t"], "v": series["v"]}}, "UTC"),
        charts.empty_figure("Nothing yet."),
    ]
    reports_style = charts.waterfall_figure([{"label": "All time", "seconds": 7200.0, "kind": "level"}])
    reports_style.update_layout(width=400, font={"size": 10}, legend={"font": {"size": 9}})
    assert reports_style.layout["font"]["size"] == 10 and reports_style.layout["font"]["family"] == charts.FONT["family"]
    for fig in figures + [reports_style]:
        go.Figure(fig)  # raises ValueError naming the property
    assert charts.TEMPLATE["layout"]["xaxis"] == charts.TEMPLATE["layout"]["yaxis"]  # merges copied, not mutated


def test_pareto_reads_in_the_unit_of_its_largest_stop():
    """A 3 s stop was '0.05 minutes': the axis takes the unit that fits the largest bar."""
    short = charts.pareto_figure([{"label": "Jam", "seconds": 3.0, "planned": False, "count": 1, "cumulative": 1.0}])
    assert short.layout["yaxis"]["title"]["text"] == "seconds" and list(short.data[0]["y"]) == [3.0]
    assert short.data[0]["customdata"][0][2] == "1 stop"
    long = charts.pareto_figure([{"label": "Jam", "seconds": 5400.0, "planned": False, "count": 4,
                                  "cumulative": 1.0}])
    assert long.layout["yaxis"]["title"]["text"] == "minutes" and list(long.data[0]["y"]) == [90.0]
    assert long.data[0]["customdata"][0][:1] == ["1 h 30 min"]


def test_the_oee_target_is_named_in_the_legend_not_on_the_bars():
    buckets = [{"start": 1_795_800_000.0, "end": 1_795_803_600.0, "oee": 0.9, "availability": 0.9,
                "performance": 1.0, "quality": 1.0}]
    fig = charts.trend_figure(buckets, "UTC", {"oee": 0.85})
    assert not fig.layout.get("annotations")
    assert fig.layout["shapes"][0]["y0"] == pytest.approx(85.0)
    assert any(t.get("name") == "OEE target 85 %" for t in fig.data)
