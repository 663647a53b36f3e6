"""A factor above 100 % is returned as it is, flagged, and explained: the flag and the likely cause in words, in
the result the API, the CSV and the pages show."""
from __future__ import annotations

from oee import CountIncrement, analyze, calculate
from oee.formulas import WARNING_TEXT
from tests.oee.helpers import H, at, timeline

T0 = at(2024, 5, 6, 6)


def test_performance_above_100_comes_with_its_likely_cause():
    r = calculate(3600, 3600, 4000, 3900, 1.0)  # 4,000 parts at an ideal 1 s in an hour of running
    assert r.performance > 1.0 and "performance_above_100" in r.flags
    (w, oee_w) = r.as_dict()["warnings"]
    assert w["flag"] == "performance_above_100" and w["factor"] == "performance"
    assert w["value"] == r.performance
    assert "ideal cycle time" in w["text"] and "counts twice" in w["text"]
    assert oee_w["flag"] == "oee_above_100"


def test_no_warning_at_or_below_100():
    assert calculate(3600, 3600, 3600, 3600, 1.0).as_dict()["warnings"] == []
    assert calculate(3600, 1800, 100, 90, 1.0).as_dict()["warnings"] == []


def test_good_above_total_is_explained_and_analyze_carries_it_to_buckets():
    a = analyze(T0, T0 + H, states=timeline(T0, (H, "running")),
                counts=[CountIncrement(T0 + 10, T0 + 70, 100, 120, None)], default_ideal_cycle_time_s=1.0)
    flags = [w["flag"] for w in a.totals.as_dict()["warnings"]]
    assert flags == ["quality_above_100"]
    assert all(WARNING_TEXT[f] for f in flags)
