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


# --- parts at a stop's edges: where the rows put them ---------------------------------------------------------

BREAK_AT, BREAK_END = 1000.0, 1030.0


def _plc(t: float) -> tuple[str, int]:
    """A machine that makes 10 parts a second while running and stops for a break [1000, 1030): (state, count).
    (As fast as the demo's pasteuriser at a time scale of 60: every tick of the PLC shows new counts.)"""
    if t < BREAK_AT:
        return "running", int(round((t - 900) * 100)) // 10
    if t < BREAK_END:
        return "planned_stop", 1000
    return "running", 1000 + int(round((t - BREAK_END) * 100)) // 10


def _poll(ticks: list[float], polls: list[float], bucket_s: float = 0.25):
    """Feed a tracker what a collector polling at `polls` reads from a PLC that publishes its values at `ticks`
    (a late tick: values stay stale until it comes). Returns the stored state intervals and count rows."""
    tracker = MachineTracker(1, count_bucket_s=bucket_s)
    states, counts = {}, []
    codes = {"running": 1, "planned_stop": 5}
    for t in polls:
        published = max(x for x in ticks if x <= t)
        state, count = _plc(published)
        out = tracker.update(t, {"state.code": codes[state], "counter.total": count})
        for row in out.states:
            states[row[1]] = row
        counts += out.counts
    counts += tracker.flush(polls[-1] + 100).counts
    return [(s, e, st) for _m, s, e, st, _f, _p in sorted(states.values())], counts


def _placed(states, counts, end: float):
    import oee

    rows = [oee.StateInterval(s, e, st) for s, e, st in states]
    incs = [oee.CountIncrement(s, e, total, good) for _m, s, e, _p, total, good, _r in counts]
    return oee.analyze(950.0, end, states=rows, counts=incs, default_ideal_cycle_time_s=0.1,
                       downtime=[oee.PlannedDowntime(BREAK_AT, BREAK_END, "break")]).totals


@pytest.mark.parametrize("tick_offset", [0.0, 0.03, 0.18])
@pytest.mark.parametrize("late_s", [0.0, 0.6, 1.4])
def test_parts_read_with_a_stop_were_made_before_it_even_when_the_plc_publishes_late(late_s, tick_offset):
    """LINE-013 counted up to 10 parts fewer than the simulator across a break edge under load: the parts made
    before the break arrived with the stop, in a row placed in the break (production outside planned time). With
    the PLC's last values before the break first read after the break's start (ticks offset from the reads),
    even the read at which the counters last changed is in the break."""
    ticks = [950.0] + [950 + tick_offset + 0.2 * i for i in range(500)]
    # under load the tick after the break's start comes late: the PLC shows the last values until then
    ticks = [x for x in ticks if not (BREAK_AT - 0.2 < x < BREAK_AT + late_s)] + [BREAK_AT + late_s]
    polls = [950 + 0.05 * i for i in range(1400)]  # to 1020, within the break
    states, counts = _poll(sorted(ticks), polls)
    totals = _placed(states, counts, 1020.0)
    assert totals.outside_total_count == 0
    assert totals.total_count == 1000 - _plc(950.0)[1]  # every part from 950 to the break


@pytest.mark.parametrize("bucket_s", [0.25, 45.0])
@pytest.mark.parametrize("late_s", [0.0, 0.6, 1.4])
def test_parts_read_with_a_start_were_made_after_it(late_s, bucket_s):
    """After the break the first values with running (and the parts made since) come in one read: those parts
    belong to the running, not to the planned stop the rows said until then (a count row that began in the
    break, with the rows of zeros read there, was placed in it)."""
    ticks = [1020 + 0.2 * i for i in range(200)]
    ticks = [x for x in ticks if not (BREAK_END - 0.2 < x < BREAK_END + late_s)] + [BREAK_END + late_s]
    polls = [1020 + 0.05 * i for i in range(600)]  # to 1050
    states, counts = _poll(sorted(ticks), polls, bucket_s)
    totals = _placed([(950.0, 1020.0, "planned_stop")] + states, counts, 1050.0)
    made = _plc(max(x for x in ticks if x <= polls[-1]))[1] - 1000  # up to what the PLC showed last
    assert totals.outside_total_count == 0
    assert totals.total_count == made


def test_a_row_that_begins_mid_minute_ends_with_the_minute():
    """A count row begun at a start (or a product change) mid-minute ends with that minute: rows never cross a
    minute, so an hour's parts stay in the hour (a start at 10:59:30 made a row to 11:00:30, placed whole)."""
    tracker = MachineTracker(1)
    rows = []
    tracker.update(3540.0, {"state.code": 2, "counter.total": 0})
    for k in range(1, 121):  # starts at 59:30, a part a second
        t = 3569.5 + k * 0.5
        rows += tracker.update(t, {"state.code": 1, "counter.total": k // 2}).counts
    rows += tracker.flush(3700).counts
    made = [r for r in rows if r[4]]
    assert made and all(r[1] // 60 == r[2] // 60 or r[2] == (r[1] // 60 + 1) * 60 for r in made), made
    assert any(r[1] == 3570.0 for r in made)  # the first row begins at the start's read, mid-minute
    assert sum(r[4] for r in made if r[1] < 3600) == 30 and sum(r[4] for r in made) == 60


def test_reads_that_bring_nothing_do_not_stretch_a_row_with_parts():
    """A row is placed at its middle: reads after its last part (the machine stopped, a break began) must not
    move that middle past the stop."""
    tracker = MachineTracker(1)
    tracker.update(120.0, {"counter.total": 0})
    tracker.update(121.0, {"counter.total": 30})
    for t in range(122, 170):
        tracker.update(float(t), {"counter.total": 30})
    assert tracker.flush(200.0).counts == [(1, 120.0, 121.0, None, 30, 30, 0)]
