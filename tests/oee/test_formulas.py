"""A, P, Q, OEE, TEEP, MTBF, MTTR: published worked examples, every zero-denominator case, flags, properties."""
from __future__ import annotations

import math
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from oee import ProductRun, calculate, calculate_runs, calculate_times, mtbf, mttr, teep, utilization


def test_published_worked_example_vorne():
    """The worked example of Vorne Industries' "Calculating OEE" worksheet (oee.com, (c) 2002-2005 Vorne
    Industries; the same figures are on oee.com/calculating-oee): shift 8 h = 480 min, two 15-min breaks and a
    30-min meal -> planned production time 420 min; downtime 47 min -> run time 373 min; ideal run rate 60 parts
    per minute (ideal cycle time 1.0 s); total 19,271; rejects 423 -> good 18,848.
    Published: availability 88.81 %, performance 86.11 %, quality 97.80 %, OEE 74.79 %.
    (Not 95.12 % performance: 19,271 parts / (373 min x 60 /min) = 0.8611.)"""
    r = calculate(420 * 60, 373 * 60, 19_271, 19_271 - 423, 1.0)
    # Exact values, by hand, as fractions:
    assert r.availability == pytest.approx(float(Fraction(373, 420)), rel=1e-15)  # 0.888095...
    assert r.performance == pytest.approx(float(Fraction(19_271, 373 * 60)), rel=1e-15)  # 0.861081...
    assert r.quality == pytest.approx(float(Fraction(18_848, 19_271)), rel=1e-15)  # 0.978050...
    assert r.oee == pytest.approx(float(Fraction(18_848, 420 * 60)), rel=1e-15)  # 0.747936...
    # The published, rounded percentages:
    assert round(r.availability * 100, 2) == 88.81
    assert round(r.performance * 100, 2) == 86.11
    assert round(r.quality * 100, 2) == 97.80
    assert round(r.oee * 100, 2) == 74.79
    assert r.reject_count == 423
    assert r.flags == ()
    assert r.oee == pytest.approx(r.availability * r.performance * r.quality, rel=1e-12)


def test_textbook_example_minutes():
    """A common textbook example (e.g. waycalculator.com's OEE calculator): planned 480 min, run 420 min, ideal
    cycle 1 min, total 400, good 380 -> A 87.5 %, P 95.24 %, Q 95 %, OEE 79.17 % (= 380 min / 480 min)."""
    r = calculate(480 * 60, 420 * 60, 400, 380, 60.0)
    assert r.availability == 0.875
    assert r.performance == pytest.approx(400 / 420)
    assert r.quality == 0.95
    assert r.oee == pytest.approx(380 / 480)


def test_hand_calculated_with_all_time():
    # One day; two 8 h shifts planned (57,600 s); 6 h down; 1,800 parts at an ideal 20 s; 1,710 good.
    r = calculate(57_600, 36_000, 1_800, 1_710, 20.0, all_time_s=86_400)
    assert r.availability == 36_000 / 57_600 == 0.625
    assert r.performance == 1_800 * 20 / 36_000 == 1.0
    assert r.quality == 0.95
    assert r.oee == pytest.approx(0.59375)
    assert r.utilization == pytest.approx(2 / 3)
    assert r.teep == pytest.approx(1_710 * 20 / 86_400)
    assert r.teep == pytest.approx(r.oee * r.utilization)
    assert r.flags == ()


# --- zero denominators: each case defined --------------------------------------------------------------------


def test_no_planned_time():
    r = calculate(0, 0, 0, 0, 1.0)
    assert (r.availability, r.performance, r.quality, r.oee) == (None, None, None, None)
    assert set(r.flags) == {"no_planned_time", "no_run_time", "no_count"}


def test_no_planned_time_but_production_is_reported_not_hidden():
    r = calculate(0, 100, 50, 50, 1.0)
    assert r.availability is None and r.oee is None
    assert r.performance == 0.5 and r.quality == 1.0
    assert "no_planned_time" in r.flags


def test_down_all_planned_time():
    """Run time 0 with planned time > 0: A = 0, P undefined, Q undefined, OEE = 0 (no good part made)."""
    r = calculate(28_800, 0, 0, 0, 1.0)
    assert r.availability == 0.0
    assert r.performance is None
    assert r.quality is None
    assert r.oee == 0.0
    assert set(r.flags) == {"no_run_time", "no_count"}


def test_ran_but_made_nothing():
    r = calculate(28_800, 3_600, 0, 0, 1.0)
    assert r.availability == 0.125
    assert r.performance == 0.0
    assert r.quality is None
    assert r.oee == 0.0
    assert r.flags == ("no_count",)


def test_counts_without_run_time():
    r = calculate(3_600, 0, 10, 10, 1.0)
    assert r.availability == 0.0 and r.performance is None and r.quality == 1.0
    assert r.oee == pytest.approx(10 / 3_600)  # good x ideal / planned stays defined
    assert set(r.flags) == {"no_run_time", "count_without_run_time"}


def test_all_bad_parts():
    r = calculate(3_600, 3_600, 100, 0, 10.0)
    assert r.quality == 0.0 and r.oee == 0.0 and r.performance == pytest.approx(1000 / 3600)


@pytest.mark.parametrize("ideal", [None, 0, 0.0])
def test_unknown_ideal_cycle_time(ideal):
    r = calculate(3_600, 3_000, 100, 90, ideal)
    assert r.availability == pytest.approx(3_000 / 3_600)
    assert r.performance is None and r.oee is None and r.teep is None
    assert r.quality == 0.9  # counts alone still give quality
    assert "no_ideal_cycle_time" in r.flags


def test_no_all_time():
    r = calculate(0, 0, 0, 0, 1.0, all_time_s=0)
    assert r.utilization is None and r.teep is None
    assert "no_all_time" in r.flags


def test_all_time_without_planned_time():
    r = calculate(0, 0, 0, 0, 1.0, all_time_s=86_400)
    assert r.utilization == 0.0
    assert r.teep == 0.0


# --- values above 100 % are returned and flagged, never capped --------------------------------------------------


def test_performance_above_100_is_not_capped():
    # Ideal cycle time set to 2 s, the machine really makes a part a second.
    r = calculate(3_600, 3_600, 3_600, 3_600, 2.0)
    assert r.performance == 2.0
    assert r.oee == 2.0
    assert "performance_above_100" in r.flags and "oee_above_100" in r.flags


def test_good_exceeds_total_is_not_capped():
    r = calculate(3_600, 3_600, 100, 110, 1.0)
    assert r.quality == pytest.approx(1.1)
    assert {"good_exceeds_total", "quality_above_100"} <= set(r.flags)


def test_availability_above_100_is_not_capped():
    r = calculate(3_000, 3_600, 100, 100, 1.0)
    assert r.availability == 1.2
    assert "availability_above_100" in r.flags


def test_polling_jitter_is_not_flagged_a_wrong_ideal_cycle_time_is():
    """A machine at its ideal speed, its run seen 0.06 s short of 20 s by a 100 ms poll: P 100.3 %, no warning
    (measured on the third-party PLC end to end); 1 % over is flagged."""
    jitter = calculate(30, 19.94, 200, 180, 0.1)
    assert jitter.performance == pytest.approx(1.003, abs=1e-3) and "performance_above_100" not in jitter.flags
    wrong = calculate(30, 20, 202, 180, 0.1)
    assert wrong.performance == pytest.approx(1.01) and "performance_above_100" in wrong.flags


def test_float_rounding_is_not_flagged():
    r = calculate(0.3, 0.1 + 0.2, 3, 3, 0.1)
    assert r.availability == pytest.approx(1.0)
    assert "availability_above_100" not in r.flags


@pytest.mark.parametrize("args, name", [
    ((-1, 0, 0, 0, 1.0), "planned_time_s"),
    ((1, -1, 0, 0, 1.0), "run_time_s"),
    ((1, 1, -1, 0, 1.0), "total_count"),
    ((1, 1, 1, -1, 1.0), "good_count"),
    ((1, 1, 1, 1, -1.0), "ideal_cycle_time_s"),
    ((math.nan, 1, 1, 1, 1.0), "planned_time_s"),
    ((math.inf, 1, 1, 1, 1.0), "planned_time_s"),
])
def test_invalid_inputs_name_the_argument(args, name):
    with pytest.raises(ValueError, match=name):
        calculate(*args)


def test_missing_input_is_a_type_error():
    with pytest.raises(TypeError, match="run_time_s"):
        calculate(1, None, 1, 1, 1.0)


def test_result_is_immutable():
    r = calculate(1, 1, 1, 1, 1.0)
    with pytest.raises(AttributeError):
        r.oee = 0.5


def test_as_dict():
    d = calculate(420 * 60, 373 * 60, 19_271, 18_848, 1.0).as_dict()
    assert d["reject_count"] == 423
    assert d["flags"] == []
    assert set(d) >= {"availability", "performance", "quality", "oee", "planned_time_s", "run_time_s",
                      "total_count", "good_count", "reject_count", "flags"}


# --- several products ----------------------------------------------------------------------------------------


def test_runs_hand_calculated():
    # 8 h planned, 7 h run. Product A: 10,000 parts at 1.2 s, 9,800 good; product B: 1,500 at 6 s, 1,400 good.
    runs = [ProductRun(10_000, 9_800, 1.2, "A"), ProductRun(1_500, 1_400, 6.0, "B")]
    r = calculate_runs(28_800, 25_200, runs)
    net = 10_000 * 1.2 + 1_500 * 6.0  # 21,000 s
    productive = 9_800 * 1.2 + 1_400 * 6.0  # 20,160 s
    assert r.performance == pytest.approx(net / 25_200)  # 0.8333
    assert r.quality == pytest.approx(productive / net)  # 0.96: a slow product's reject costs more
    assert r.oee == pytest.approx(productive / 28_800)  # 0.7
    assert r.oee == pytest.approx(r.availability * r.performance * r.quality)
    assert r.total_count == 11_500 and r.good_count == 11_200


def test_runs_of_one_product_equal_calculate():
    a = calculate_runs(3_600, 3_000, [(1_000, 950, 2.5)])
    b = calculate(3_600, 3_000, 1_000, 950, 2.5)
    assert a == b


def test_runs_with_unknown_ideal():
    r = calculate_runs(3_600, 3_000, [ProductRun(100, 90, 2.0), ProductRun(10, 10, None)])
    assert r.performance is None and r.oee is None
    assert r.quality == pytest.approx(100 / 110)
    assert "no_ideal_cycle_time" in r.flags


def test_runs_unknown_ideal_without_parts_is_harmless():
    r = calculate_runs(3_600, 3_000, [ProductRun(100, 90, 2.0), ProductRun(0, 0, None)])
    assert r.oee == pytest.approx(180 / 3_600)


def test_runs_empty():
    r = calculate_runs(3_600, 0, [])
    assert r.oee == 0.0 and r.quality is None


def test_runs_bad_value_names_the_run():
    with pytest.raises(ValueError, match=r"runs\[1\].good"):
        calculate_runs(1, 1, [(1, 1, 1.0), (1, -1, 1.0)])


def test_calculate_times_needs_both_ideal_times():
    with pytest.raises(ValueError):
        calculate_times(1, 1, 1, 1, 1.0, None)


# --- TEEP, utilization, MTBF, MTTR -----------------------------------------------------------------------------


def test_utilization_and_teep():
    assert utilization(57_600, 86_400) == pytest.approx(2 / 3)
    assert utilization(0, 86_400) == 0.0
    assert utilization(0, 0) is None
    assert teep(0.6, 0.5) == pytest.approx(0.3)
    assert teep(None, 0.5) is None and teep(0.6, None) is None


def test_mtbf_mttr():
    assert mtbf(36_000, 4) == 9_000
    assert mttr(2_400, 4) == 600
    assert mtbf(36_000, 0) is None  # no failure: MTBF is undefined (not infinite, not 0)
    assert mttr(0, 0) is None
    with pytest.raises(ValueError):
        mtbf(-1, 1)


# --- properties ----------------------------------------------------------------------------------------------

times = st.one_of(st.just(0.0), st.floats(min_value=1e-3, max_value=1e7, allow_nan=False, allow_infinity=False))
counts = st.integers(min_value=0, max_value=10**7)
ideals = st.floats(min_value=0.001, max_value=600, allow_nan=False, allow_infinity=False)


@given(times, times, counts, counts, ideals)
def test_oee_is_good_times_ideal_over_planned(planned, run, total, good, ideal):
    r = calculate(planned, run, total, good, ideal)
    if planned > 0:
        assert r.oee == pytest.approx(good * ideal / planned, rel=1e-12)
        if run > 0 and total > 0:
            assert r.oee == pytest.approx(r.availability * r.performance * r.quality, rel=1e-9, abs=1e-300)
    else:
        assert r.oee is None


@given(st.data())
def test_factors_bounded_when_inputs_are_consistent(data):
    """Consistent: run <= planned, good <= total, and no part faster than ideal (total x ideal <= run)."""
    planned = data.draw(st.floats(min_value=1, max_value=1e7))
    run = data.draw(st.floats(min_value=0, max_value=planned))
    ideal = data.draw(ideals)
    total = data.draw(st.integers(min_value=0, max_value=int(run / ideal)))
    good = data.draw(st.integers(min_value=0, max_value=total))
    r = calculate(planned, run, total, good, ideal)
    for value in (r.availability, r.performance, r.quality, r.oee):
        assert value is None or 0.0 <= value <= 1.0 + 1e-12
    assert not any(f.endswith("_above_100") for f in r.flags)


@given(times, times, st.lists(st.tuples(counts, counts, ideals), max_size=6))
def test_runs_oee_equals_sum_of_good_times_ideal_over_planned(planned, run, runs):
    runs = [ProductRun(t, min(g, t), i) for t, g, i in runs]
    r = calculate_runs(planned, run, runs)
    if planned > 0:
        assert r.oee == pytest.approx(sum(x.good * x.ideal_cycle_time_s for x in runs) / planned, rel=1e-9)
        if run > 0 and r.quality is not None:
            assert r.oee == pytest.approx(r.availability * r.performance * r.quality, rel=1e-9)
