"""Where a part's ideal cycle time comes from: the product's, else the machine's cycle.ideal_time tag at the time the
part was made (its samples over the range, not only the latest), else the machine's own ideal_cycle_time_s."""
from __future__ import annotations

import pytest

from oee import CountIncrement, analyze
from tests.oee.helpers import H, at, timeline

T0 = at(2024, 5, 6, 6)
RUN_2H = timeline(T0, (2 * H, "running"))


def _counts(product=None):
    # 100 parts in each of the two hours, 10 of them rejects in the second
    return [CountIncrement(T0 + 600, T0 + 660, 100, 100, product),
            CountIncrement(T0 + H + 600, T0 + H + 660, 100, 90, product)]


def test_a_plc_that_publishes_its_ideal_rate_gets_oee_with_no_product():
    # The tag says 36 s per part for the whole range: 200 parts x 36 s = 7,200 s = the run time.
    a = analyze(T0, T0 + 2 * H, states=RUN_2H, counts=_counts(), ideal_cycle_time_series=[(T0 - 5, 36.0)])
    r = a.totals.result()
    assert r.performance == pytest.approx(1.0)
    assert r.quality == pytest.approx(190 / 200)
    assert r.oee == pytest.approx(190 * 36 / 7200)
    assert "no_ideal_cycle_time" not in r.flags


def test_the_tag_varies_over_the_range_and_each_part_takes_the_value_of_its_time():
    # 36 s in the first hour, 18 s from the second on: net = 100 x 36 + 100 x 18
    series = [(T0 - 100, 36.0), (T0 + H, 18.0)]
    a = analyze(T0, T0 + 2 * H, states=RUN_2H, counts=_counts(), ideal_cycle_time_series=series)
    assert a.totals.net_run_time_s == pytest.approx(100 * 36 + 100 * 18)
    assert a.totals.fully_productive_time_s == pytest.approx(100 * 36 + 90 * 18)


def test_the_products_ideal_comes_first_then_the_tag_then_the_machine():
    series = [(T0 - 100, 36.0)]
    own = analyze(T0, T0 + 2 * H, states=RUN_2H, counts=_counts("P"), ideal_cycle_times={"P": 30.0},
                  ideal_cycle_time_series=series, default_ideal_cycle_time_s=10.0)
    assert own.totals.net_run_time_s == pytest.approx(200 * 30)
    unknown_product = analyze(T0, T0 + 2 * H, states=RUN_2H, counts=_counts("Q"), ideal_cycle_times={"P": 30.0},
                              ideal_cycle_time_series=series, default_ideal_cycle_time_s=10.0)
    assert unknown_product.totals.net_run_time_s == pytest.approx(200 * 36)
    no_tag = analyze(T0, T0 + 2 * H, states=RUN_2H, counts=_counts("Q"), ideal_cycle_times={"P": 30.0},
                     default_ideal_cycle_time_s=10.0)
    assert no_tag.totals.net_run_time_s == pytest.approx(200 * 10)


def test_before_the_first_sample_and_where_the_tag_reads_nothing_the_machine_value_applies():
    # no value before T0 + 1 h; from T0 + 1.5 h the tag is bad (None) or 0: neither is a speed
    series = [(T0 + H, 36.0), (T0 + 1.5 * H, None)]
    counts = _counts() + [CountIncrement(T0 + 1.6 * H, T0 + 1.6 * H + 60, 10, 10, None)]
    a = analyze(T0, T0 + 2 * H, states=RUN_2H, counts=counts, ideal_cycle_time_series=series,
                default_ideal_cycle_time_s=10.0)
    assert a.totals.net_run_time_s == pytest.approx(100 * 10 + 100 * 36 + 10 * 10)
    zero = analyze(T0, T0 + 2 * H, states=RUN_2H, counts=_counts(), ideal_cycle_time_series=[(T0, 0.0)])
    assert zero.totals.result().performance is None
    assert "no_ideal_cycle_time" in zero.totals.result().flags


def test_buckets_and_split_ranges_add_up_with_a_varying_tag():
    from oee import hour_buckets

    series = [(T0 - 100, 36.0), (T0 + H, 18.0)]
    whole = analyze(T0, T0 + 2 * H, states=RUN_2H, counts=_counts(), ideal_cycle_time_series=series,
                    buckets=hour_buckets(T0, T0 + 2 * H))
    first = analyze(T0, T0 + H, states=RUN_2H, counts=_counts(), ideal_cycle_time_series=series)
    second = analyze(T0 + H, T0 + 2 * H, states=RUN_2H, counts=_counts(), ideal_cycle_time_series=series)
    assert (first.totals + second.totals).net_run_time_s == pytest.approx(whole.totals.net_run_time_s)
    assert whole.buckets[0][1].net_run_time_s == pytest.approx(first.totals.net_run_time_s)
    assert whole.buckets[1][1].net_run_time_s == pytest.approx(second.totals.net_run_time_s)


def test_a_bad_series_is_refused():
    with pytest.raises(ValueError, match="ideal_cycle_time_series"):
        analyze(T0, T0 + H, states=RUN_2H, counts=_counts(), ideal_cycle_time_series=[(T0, -1.0)])
