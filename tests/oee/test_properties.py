"""Properties of analyze(), with hypothesis: buckets roll up to the whole, a range split anywhere sums to the
whole, OEE = good x ideal / planned = A x P x Q, factors bounded for consistent data, and the interval engine
agrees second by second with a brute-force reference model."""
from __future__ import annotations

import math
from dataclasses import fields

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oee import (
    PRODUCTION,
    Bucket,
    Config,
    CountIncrement,
    Reason,
    ReasonOverride,
    StateInterval,
    Totals,
    analyze,
    expand,
    hour_buckets,
)
from oee.vocabulary import MACHINE_STATES, STATE_CATEGORY
from tests.oee.test_engine import DAY, T0, TWO_SHIFTS
from tests.oee.helpers import H

FAULTS = {1: Reason("JAM", "idling_minor_stops"), 2: Reason("PM", "planned_maintenance")}
REASONS = [Reason("CO", "setup_adjustment"), Reason("BRK", "break"), Reason("EF", "equipment_failure"),
           Reason("SPD", "reduced_speed")]
CALENDARS = [None, DAY, TWO_SHIFTS]
ORIGIN = int(T0 - 2 * H)


@st.composite
def machines(draw, *, open_end=True):
    """Contiguous state intervals on whole seconds from ORIGIN, with gaps; faults only on 'faulted'."""
    n = draw(st.integers(min_value=0, max_value=30))
    t = ORIGIN + draw(st.integers(min_value=0, max_value=1800))
    states = []
    for _ in range(n):
        if draw(st.integers(0, 9)) == 0:
            t += draw(st.integers(1, 900))  # a gap in the data
        d = draw(st.sampled_from([1, 30, 59, 60, 61, 119, 120, 121, 299, 300, 301, 1800, 3600]))
        state = draw(st.sampled_from(MACHINE_STATES + ("faulted", "idle", "blocked")))
        fault = draw(st.sampled_from([None, 1, 2, 3])) if state == "faulted" else None
        states.append(StateInterval(float(t), float(t + d), state, fault))
        t += d
    if open_end and states and draw(st.booleans()):
        states[-1] = states[-1]._replace(end=None)
    return states


@st.composite
def count_rows(draw):
    rows = []
    for _ in range(draw(st.integers(0, 30))):
        s = ORIGIN + draw(st.integers(0, 12 * 3600))
        d = draw(st.sampled_from([0, 1, 59, 60, 61]))
        total = draw(st.integers(0, 100))
        good = draw(st.integers(0, total))
        rows.append(CountIncrement(float(s), float(s + d), total, good, draw(st.sampled_from(["A", "B"]))))
    return rows


overrides_st = st.lists(st.builds(
    lambda s, d, r: ReasonOverride(float(ORIGIN + s), float(ORIGIN + s + d), r),
    st.integers(0, 12 * 3600), st.integers(1, 3600), st.sampled_from(REASONS)), max_size=3)

configs = st.builds(Config, micro_stop_threshold_s=st.sampled_from([0, 60, 120, 300]),
                    micro_stops_as=st.sampled_from(["performance", "availability"]),
                    startup_window_s=st.sampled_from([0, 300, 900]),
                    startup_after=st.sampled_from([frozenset({"changeover", "planned"}), frozenset({"failure"})]))



def draw_range(data, states, longest=4 * 3600):
    """A range around the machine's data (whole seconds), so that it usually holds some of it."""
    lo = int(states[0].start) - 900 if states else ORIGIN
    hi = int(states[-1].end or states[-1].start + 3600) + 900 if states else ORIGIN + 12 * 3600
    a = data.draw(st.integers(lo, max(lo, (lo + hi) // 2)), label="start")
    return float(a), float(a + data.draw(st.integers(0, longest), label="length"))


def assert_totals_equal(x: Totals, y: Totals):
    for f in fields(Totals):
        a, b = getattr(x, f.name), getattr(y, f.name)
        if isinstance(a, float) or isinstance(b, float):
            assert a == pytest.approx(b, rel=1e-9, abs=1e-6), f.name
        else:
            assert a == b, f.name


def run(start, end, states, counts, calendar, overrides, config, buckets=None):
    return analyze(start, end, states=states, counts=counts, calendar=calendar, overrides=overrides,
                   config=config, fault_reasons=FAULTS, ideal_cycle_times={"A": 1.5, "B": 7.0}, buckets=buckets)


@given(machines(), count_rows(), st.sampled_from(CALENDARS), overrides_st, configs, st.data(),
       st.lists(st.floats(0, 1), max_size=6))
def test_buckets_roll_up_to_the_whole(states, counts, calendar, overrides, config, data, cuts):
    a, b = draw_range(data, states)
    edges = sorted({a, b, *(a + c * (b - a) for c in cuts)})
    buckets = [Bucket(x, y, str(i)) for i, (x, y) in enumerate(zip(edges, edges[1:])) if y > x]
    res = run(a, b, states, counts, calendar, overrides, config, buckets)
    parts = Totals()
    for _, t in res.buckets:
        parts = parts + t
    assert_totals_equal(parts, res.totals)


@given(machines(open_end=False), count_rows(), st.sampled_from(CALENDARS), overrides_st, configs, st.data(),
       st.floats(0, 1))
def test_a_range_split_anywhere_sums_to_the_whole(states, counts, calendar, overrides, config, data, cut):
    """Two separate calls on [a, m) and [m, b) give what one call on [a, b) gives: times, counts, stops,
    failures and startup rejects (the look-back sees the windows that reach across m)."""
    a, b = draw_range(data, states)
    m = a + cut * (b - a)
    whole = run(a, b, states, counts, calendar, overrides, config).totals
    left = run(a, m, states, counts, calendar, overrides, config).totals
    right = run(m, b, states, counts, calendar, overrides, config).totals
    assert_totals_equal(left + right, whole)


@given(machines(), count_rows(), st.sampled_from(CALENDARS), overrides_st, configs, st.data())
def test_oee_is_good_times_ideal_over_planned(states, counts, calendar, overrides, config, data):
    rng = draw_range(data, states)
    t = run(*rng, states, counts, calendar, overrides, config).totals
    r = t.result()
    assert t.all_time_s == pytest.approx(rng[1] - rng[0], abs=1e-6)
    if t.planned_time_s > 0:
        assert r.oee == pytest.approx(t.fully_productive_time_s / t.planned_time_s)
        assert r.availability is not None
        if r.performance is not None and r.quality is not None:
            assert r.oee == pytest.approx(r.availability * r.performance * r.quality, rel=1e-9)
    else:
        assert r.oee is None and "no_planned_time" in r.flags
    steps = t.waterfall()
    assert steps[0].seconds == pytest.approx(rng[1] - rng[0], abs=1e-6)
    level, losses = None, 0.0
    for s in steps:
        if s.kind == "level":
            if level is not None:
                assert s.seconds == pytest.approx(level - losses, abs=1e-6)
            level, losses = s.seconds, 0.0
        else:
            losses += s.seconds


@given(machines(open_end=False), st.sampled_from([None, DAY, TWO_SHIFTS]), configs, st.data())
def test_factors_within_0_and_1_for_consistent_data(states, calendar, config, data):
    """Consistent data: parts counted only while running, never faster than ideal, good <= total, each count
    inside one running interval and one calendar segment."""
    ideal = 2.0
    a = float(ORIGIN)
    b = a + 14 * H
    sched = expand(calendar, a, b)
    counts = []
    for s in states:
        if s.state != "running":
            continue
        t = s.start
        while t + 60 <= s.end:
            if sched.kind_at(t) == PRODUCTION and sched.kind_at(t + 59.999) == PRODUCTION:
                total = data.draw(st.integers(0, 30))
                counts.append(CountIncrement(t, t + 60, total, data.draw(st.integers(0, total)), "A"))
            t += 60
    r = analyze(a, b, states=states, counts=counts, calendar=calendar, config=config,
                ideal_cycle_times={"A": ideal}).totals.result()
    for value in (r.availability, r.performance, r.quality, r.oee, r.utilization, r.teep):
        assert value is None or 0.0 <= value <= 1.0 + 1e-12
    assert not any(f.endswith("_above_100") for f in r.flags)


# --- a brute-force reference: classify every second on its own ------------------------------------------------


def reference(states, calendar, overrides, config, a, b):
    """Seconds per label over [a, b) for whole-second data: no intervals, no merging tricks. Seconds are
    painted within an hour of the range only: a stop reaching further is longer than any threshold drawn."""
    lo, hi = int(a) - 3600, int(b) + 3600
    cell: dict[int, tuple] = {}
    for s in states:
        end = s.end if s.end is not None else max(b, s.start)
        for t in range(max(int(s.start), lo), min(int(end), hi)):
            cell[t] = (s.state, s.fault_code if s.state == "faulted" else None, s.end is None)
    sched = expand(calendar, a, b)

    length: dict[int, int] = {}  # second -> length of the same-cause stretch holding it
    run_start, key = lo, None
    for t in range(lo, hi + 1):
        k = cell.get(t, ("unknown", None, False))[:2] if t < hi else None
        if k != key:
            for x in range(run_start, t):
                length[x] = t - run_start
            run_start, key = t, k

    out: dict[str, float] = {}
    for t in range(int(a), int(b)):
        kind = sched.kind_at(t + 0.5)
        if kind != PRODUCTION:
            label = kind
        else:
            state, fault, is_open = cell.get(t, ("unknown", None, False))
            ov = [o for o in overrides if o.start <= t < o.end]
            if state == "running":
                label = "run"
            elif ov and ov[-1].reason.loss_category not in ("reduced_speed",):
                label = max(ov, key=lambda o: o.start).reason.loss_category
            else:
                reason = FAULTS.get(fault)
                category = reason.loss_category if reason else STATE_CATEGORY[state]
                minor = (category in ("equipment_failure", "idling_minor_stops") and not is_open
                         and length[t] < config.micro_stop_threshold_s)
                label = "micro" if minor else category
        out[label] = out.get(label, 0) + 1
    return out


@settings(max_examples=200)
@given(machines(), st.sampled_from(CALENDARS),
       st.lists(st.sampled_from(REASONS[:3]).flatmap(lambda r: st.builds(
           lambda s, d: ReasonOverride(float(ORIGIN + s), float(ORIGIN + s + d), r),
           st.integers(0, 12 * 3600), st.integers(1, 3600))), max_size=1),
       configs, st.data())
def test_engine_agrees_with_a_second_by_second_reference(states, calendar, overrides, config, data):
    a, b = draw_range(data, states, 6 * 3600)
    t = analyze(a, b, states=states, calendar=calendar, overrides=overrides, config=config,
                fault_reasons=FAULTS).totals
    ref = reference(states, calendar, overrides, config, a, b)
    perf = config.micro_stops_as == "performance"
    expected = {
        "running_s": ref.get("run", 0),
        "minor_stops_s": ref.get("micro", 0) if perf else 0,
        "idling_minor_stops_s": ref.get("idling_minor_stops", 0) + (0 if perf else ref.get("micro", 0)),
        "equipment_failure_s": ref.get("equipment_failure", 0),
        "setup_adjustment_s": ref.get("setup_adjustment", 0),
        "unknown_s": ref.get("unknown", 0),
        "planned_maintenance_s": ref.get("planned_maintenance", 0),
        "break_s": ref.get("break", 0),
        "no_production_scheduled_s": ref.get("no_production_scheduled", 0),
    }
    actual = {k: getattr(t, k) for k in expected}
    assert actual == pytest.approx(expected, abs=1e-6)


def test_hour_buckets_of_a_day_roll_up_exactly_for_whole_seconds():
    states = [StateInterval(T0 - H, T0 + 3 * H + 17, "running"), StateInterval(T0 + 3 * H + 17, T0 + 9 * H, "idle")]
    res = analyze(T0, T0 + 8 * H, states=states, buckets=hour_buckets(T0, T0 + 8 * H))
    assert math.fsum(t.running_s for _, t in res.buckets) == res.totals.running_s == 3 * H + 17


@given(st.integers(1, 900), st.sampled_from([-1, 0, 1, None]), st.sampled_from(["faulted", "idle", "blocked"]),
       st.sampled_from(["performance", "availability"]), st.floats(0, 1), st.data())
def test_micro_stop_boundary(threshold, delta, state, micro_as, cut, data):
    """A stop is a minor stop if and only if it is strictly shorter than the threshold, however buckets cut it."""
    d = threshold + delta if delta is not None else data.draw(st.integers(1, 2000))
    if d <= 0:
        return
    states = [StateInterval(T0, T0 + 600, "running"), StateInterval(T0 + 600, T0 + 600 + d, state),
              StateInterval(T0 + 600 + d, T0 + 3 * H, "running")]
    edge = T0 + 600 + cut * d
    buckets = [Bucket(T0, edge, "a"), Bucket(edge, T0 + 3 * H, "b")]
    config = Config(micro_stop_threshold_s=threshold, micro_stops_as=micro_as)
    res = analyze(T0, T0 + 3 * H, states=states, config=config, buckets=buckets)
    t = res.totals
    minor = d < threshold
    assert t.minor_stop_count == (1 if minor else 0)
    assert t.stop_count == (0 if minor else 1)
    assert t.run_time_s == 3 * H - (0 if minor and micro_as == "performance" else d)
    assert sum(x.minor_stop_count + x.stop_count for _, x in res.buckets) == 1
