"""The benchmarks' verdict line: a miss says MISSED and by how much; nothing that is not a pass reads like one."""
import pytest

from bench.verdict import all_met, verdict


def test_met_and_missed_say_which_and_by_how_much():
    assert verdict(143, 200, "ms") == "met: 143 ms (target under 200 ms)"
    assert verdict(257.5, 200, "ms", what="p95") == "p95: MISSED by 57.5 ms: 257.5 ms (target under 200 ms)"
    assert verdict(18000, 20000, "values/s", bound="at least") == \
        "MISSED by 2,000 values/s: 18,000 values/s (target at least 20,000 values/s)"
    assert verdict(0, 0, "skipped cycles", bound="at most").startswith("met")
    assert verdict(200, 200, "ms").startswith("MISSED (equal to it)")


def test_no_figure_is_a_miss():
    assert verdict(None, 1, "s").startswith("MISSED: no figure")
    assert all_met([verdict(1, 2), verdict(None, 2)]) == "VERDICT: 1 of 2 targets MISSED"
    assert all_met([verdict(1, 2)]) == "VERDICT: every target met"


def test_an_unknown_bound_is_refused():
    with pytest.raises(ValueError, match="bound"):
        verdict(1, 2, bound="below")
