"""The first minute of a plant reads as the start of data, not as a disaster: numbers are shown, but no factor is
judged against its target and no machine is listed as the lowest OEE until a machine has JUDGE_AFTER_S of planned
time; the sparklines draw from the first minute."""
from __future__ import annotations

import time

from components import kpi

from tests.pages.conftest import screenshot, wait_for
from tests.support.browser import By
from tests.support.plants import demo_plant_without_breaks
from tests.test_app import RunningApp


def _report(planned_s: float) -> dict:
    machines = [{"machine_id": m, "planned_time_s": planned_s} for m in ("A", "B", "C")]
    return {"oee": 0.0, "availability": 0.3, "performance": 0.0, "quality": None, "planned_time_s": 3 * planned_s,
            "machines": machines}


def _texts(component) -> list[str]:
    out = []

    def walk(c):
        if isinstance(c, str):
            out.append(c)
        elif isinstance(c, (list, tuple)):
            for x in c:
                walk(x)
        elif hasattr(c, "children"):
            walk(c.children)

    walk(component)
    return out


def test_a_short_span_is_shown_but_not_judged():
    # Three machines of 4 minutes each: 12 minutes summed, yet no machine has 10 minutes of data.
    short = " ".join(_texts(kpi.kpi_row("t", _report(240.0), [])))
    assert "vs target" not in short
    assert "collecting: judged against target after 10 min of data (4 min so far)" in short
    long = " ".join(_texts(kpi.kpi_row("t", _report(kpi.JUDGE_AFTER_S), [])))
    assert "-85.0 pp vs target 85 %" in long and "collecting" not in long


def test_the_sparkline_of_one_bucket_is_a_step_over_its_time():
    buckets = [{"start": 1000.0, "end": 1060.0, "oee": 0.5, "availability": 0.9, "performance": 0.6,
                "quality": 1.0}]
    row = kpi.kpi_row("t", {**_report(60.0), "buckets": buckets}, buckets)
    graphs = [c for c in _walk(row) if type(c).__name__ == "Graph"]
    assert len(graphs) == 4
    trace = graphs[0].figure["data"][0]
    assert list(trace["x"]) == [1000.0, 1060.0] and list(trace["y"]) == [0.5, 0.5]  # a line, not a lone point
    assert trace["line"]["shape"] == "hv"


def _walk(c):
    yield c
    kids = getattr(c, "children", None)
    for k in kids if isinstance(kids, (list, tuple)) else [kids] if kids is not None else []:
        yield from _walk(k)


def test_a_fresh_plant_in_its_first_minute(tmp_path, browser):
    app = RunningApp(tmp_path, "--plant-file", str(demo_plant_without_breaks(tmp_path)))
    try:
        app.wait_healthy(90)
        started = time.time()
        browser.get(app.base + "/")
        wait_for(lambda: browser.find_element(By.ID, "overview-kpi-oee").text.endswith("%"), 40, message="OEE")
        # The tiles have their numbers by now (each over its machine's own shift, from its first sample).
        wait_for(lambda: browser.find_elements(By.ID, "overview-worst-strip"), 30, message="the lowest-OEE strip")
        targets = [e.text for e in browser.find_elements(By.CSS_SELECTOR, ".kpi-target")]
        strip = browser.find_element(By.ID, "overview-worst-strip").text
        drawn = wait_for(lambda: (lambda n: n if n >= 3 else None)(browser.execute_script(
            "return [...document.querySelectorAll('.kpi-spark path.js-line')]"
            ".filter(p => (p.getAttribute('d') || '').length > 6).length")), 30, message="three sparklines drawn")
        # Counted after the drawing: the tiles' graphs mount one by one, so an earlier count can catch 2 of 4.
        sparks = browser.find_elements(By.CSS_SELECTOR, ".kpi-spark")
        elapsed = time.time() - started
        screenshot(browser, "overview-first-minute")
        assert elapsed < 120, f"the page took {elapsed:.0f} s: not the first minutes any more"
        assert len(targets) == 4 and all(t.startswith("collecting") for t in targets), targets
        assert not any("vs target" in t for t in targets)
        assert "Lowest OEE now" not in strip and "listed after 10 min of data" in strip, strip
        assert len(sparks) >= 3 and drawn >= 3, (len(sparks), drawn)  # quality may have no value yet
        for key in ("oee", "availability", "performance"):
            cls = browser.find_element(By.ID, f"overview-kpi-{key}").get_attribute("class")
            assert "text-danger" not in cls and "text-warning" not in cls, (key, cls)
    finally:
        app.stop()
