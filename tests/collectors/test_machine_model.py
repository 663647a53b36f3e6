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


JAM, CLEANING, RECIPE = 42, 900, 77
FAULT_TABLE = {JAM: "fault", CLEANING: "planned_stop", RECIPE: "changeover"}


@pytest.mark.parametrize("state_code_map, values, expected, fault", [
    # state.code through the machine's own map (codes as the API stores them: text), else the default codes
    ({"1": "running", "3": "faulted", "7": "changeover"}, {"state.code": 3}, "faulted", None),
    ({"1": "running", "3": "faulted", "7": "changeover"}, {"state.code": 7.0}, "changeover", None),
    ({"1": "running", "3": "faulted"}, {"state.code": 2}, "unknown", None),  # not in its map: not the default's
    (None, {"state.code": 3}, "blocked", None),
    # a running bit and a fault code: not running with a non-zero code is faulted, with the code
    (None, {"state.running": False, "fault.code": JAM}, "faulted", JAM),
    (None, {"state.running": False, "fault.code": 0}, "idle", None),
    (None, {"state.running": True, "fault.code": JAM}, "running", None),
    (None, {"state.running": False, "fault.code": 5}, "faulted", 5),  # not in the table: a fault all the same
    # the fault table's kind decides: a planned stop or a changeover signalled as a fault code
    (None, {"state.running": False, "fault.code": CLEANING}, "planned_stop", CLEANING),
    (None, {"state.running": False, "fault.code": RECIPE}, "changeover", RECIPE),
    (None, {"state.code": 4, "fault.code": CLEANING}, "planned_stop", CLEANING),
    # a running bit and a fault bit: the bit is the authority over a latched "last fault" code
    (None, {"state.running": True, "state.faulted": True}, "faulted", None),
    (None, {"state.running": False, "state.faulted": True, "fault.code": JAM}, "faulted", JAM),
    (None, {"state.running": False, "state.faulted": False, "fault.code": JAM}, "idle", None),
    (None, {"state.running": False, "state.faulted": False, "state.stopped": True}, "planned_stop", None),
    # the demo's codes: its latched LastFaultCode does not make an idle machine faulted
    (None, {"state.code": 2, "fault.code": JAM}, "idle", None),
])
def test_state_derivation_table(state_code_map, values, expected, fault):
    tracker = MachineTracker(1, state_code_map=state_code_map, fault_kinds=FAULT_TABLE)
    out = tracker.update(10.0, values)
    assert out.states == [(1, 10.0, None, expected, fault, None)]


def test_presets_are_code_tables_of_our_states():
    from collectors.machine_model import PACKML_NAMES, STATE_PRESETS
    from db.models import MACHINE_STATES

    packml = STATE_PRESETS["packml"].codes
    assert {PACKML_NAMES[c]: packml[c] for c in (2, 4, 5, 6, 9, 11, 16, 17)} == {
        "Stopped": "idle", "Idle": "idle", "Suspended": "idle", "Execute": "running", "Aborted": "faulted",
        "Held": "faulted", "Completing": "running", "Complete": "idle"}
    assert 0 not in packml  # Undefined stays unknown
    assert STATE_PRESETS["demo"].codes == {1: "running", 2: "idle", 3: "blocked", 4: "faulted", 5: "planned_stop",
                                           6: "changeover"}
    for preset in STATE_PRESETS.values():
        assert set((preset.codes or {}).values()) <= set(MACHINE_STATES)
    tracker = MachineTracker(1, state_code_map=packml)
    assert tracker.derive_state({"state.code": 6}) == "running"
    assert tracker.derive_state({"state.code": 11}) == "faulted"


def test_a_saved_change_of_the_tables_reaches_a_running_tracker():
    tracker = MachineTracker(1)
    tracker.update(0.0, {"state.code": 3, "counter.total": 10})
    tracker.configure({"3": "faulted"}, {JAM: "planned_stop"})
    out = tracker.update(5.0, {"state.code": 3, "counter.total": 14})
    assert out.states[-1][3] == "faulted"
    assert tracker.totals["total"] == 4  # the counters were kept
