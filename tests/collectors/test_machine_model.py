"""Canonical roles to machine data: states from codes or booleans, counts through resets and rollovers."""
from __future__ import annotations

import pytest

from collectors.machine_model import MachineTracker, counter_delta


@pytest.mark.parametrize("previous, current, modulus, expected", [
    (None, 500, 2**32, 0),  # nothing is counted from the first value seen
    (100, 130, 2**32, 30),
    (999_990, 15, 1_000_000, 25),  # rolled over at a round modulus
    (2**31 - 5, -(2**31) + 4, 2**32, 9),  # a signed DINT wrapping to negative: 4 up, 1 over, 4 more
    (65_530, 6, 2**16, 12),  # an INT counter
    (4_200, 3, 1_000_000, 3),  # reset at shift change, then three made
    (4_200, 0, 1_000_000, 0),
    (4_200, 3, None, 3),  # no modulus known: a drop is a reset
    (7, 7, 2**32, 0),
])
def test_counter_delta(previous, current, modulus, expected):
    assert counter_delta(previous, current, modulus) == expected


def test_state_intervals_from_a_state_code_close_and_open():
    tracker = MachineTracker(1)
    out = tracker.update(100.0, {"state.code": 1.0, "product.code": 101.0})  # numeric tags arrive as floats
    assert out.states == [(1, 100.0, None, "running", None, "101")]
    assert tracker.update(101.0, {"state.code": 1}).states == []  # no change, nothing to write
    out = tracker.update(105.0, {"state.code": 4, "fault.code": 103})
    assert out.states == [(1, 100.0, 105.0, "running", None, "101"), (1, 105.0, None, "faulted", 103, "101")]
    out = tracker.update(110.0, {"state.code": 99})
    assert out.states[-1][3] == "unknown"  # a code nobody mapped is said to be unknown, not guessed


def test_state_from_booleans_and_a_custom_code_map():
    tracker = MachineTracker(2)
    assert tracker.update(1.0, {"state.running": True, "state.faulted": False}).states[-1][3] == "running"
    assert tracker.update(2.0, {"state.running": True, "state.faulted": True}).states[-1][3] == "faulted"
    assert tracker.update(3.0, {"state.running": False, "state.faulted": False}).states[-1][3] == "idle"
    assert tracker.update(4.0, {"state.running": False, "state.faulted": False, "state.stopped": True}
                          ).states[-1][3] == "planned_stop"
    packml = MachineTracker(3, state_code_map={"6": "running", "2": "idle", "11": "faulted"})
    assert packml.update(1.0, {"state.code": 6}).states[-1][3] == "running"
    assert packml.update(2.0, {"state.code": 11}).states[-1][3] == "faulted"


def test_counts_are_increments_per_minute_with_good_from_total_minus_reject():
    tracker = MachineTracker(1, counter_moduli={"counter.total": 1_000_000, "counter.reject": 1_000_000})
    tracker.update(60.0, {"counter.total": 999_990, "counter.reject": 40, "product.code": "A"})
    tracker.update(70.0, {"counter.total": 999_999, "counter.reject": 41})
    tracker.update(80.0, {"counter.total": 20, "counter.reject": 42})  # rolled over: 21 more
    out = tracker.update(125.0, {"counter.total": 25, "counter.reject": 42})  # next minute closes the first
    assert out.counts == [(1, 60.0, 80.0, "A", 30, 28, 2)]
    assert tracker.flush(130.0).counts == [(1, 120.0, 125.0, "A", 5, 5, 0)]
    assert tracker.totals == {"total": 35, "good": 33, "reject": 2}


def test_a_product_change_gets_its_own_count_row():
    tracker = MachineTracker(1)
    tracker.update(0.0, {"counter.total": 0, "product.code": "A"})
    tracker.update(10.0, {"counter.total": 10})
    out = tracker.update(20.0, {"counter.total": 10, "product.code": "B"})
    assert out.counts == [(1, 0.0, 10.0, "A", 10, 10, 0)]
    tracker.update(30.0, {"counter.total": 14})
    assert tracker.flush(31.0).counts == [(1, 20.0, 30.0, "B", 4, 4, 0)]  # starts at the change, not at 0


def test_offline_closes_the_state_and_forgets_counters():
    tracker = MachineTracker(1)
    tracker.update(0.0, {"state.code": 1, "counter.total": 100})
    tracker.update(5.0, {"counter.total": 110})
    out = tracker.offline(6.0)
    assert out.states == [(1, 0.0, 6.0, "running", None, None), (1, 6.0, None, "offline", None, None)]
    assert out.counts == [(1, 0.0, 5.0, None, 10, 10, 0)]
    tracker.update(20.0, {"state.code": 1, "counter.total": 3})  # reset while we were away: not counted
    assert tracker.totals["total"] == 10


def test_counted_but_nothing_made_is_one_row_of_zeros():
    tracker = MachineTracker(1)
    tracker.update(0.0, {"counter.total": 50})
    tracker.update(5.0, {"counter.total": 50})
    assert tracker.flush(6.0).counts == [(1, 0.0, 5.0, None, 0, 0, 0)]  # seen counting, nothing made
    tracker.update(10.0, {"counter.total": 50})
    assert tracker.flush(11.0).counts == []  # said once per bucket, not every flush
