"""The pure machine model: determinism, chunking, states, counters, shifts, rollover, planned stops, writes."""

from __future__ import annotations

import ast
import random
import statistics
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from plant import PlantModel, State, default_layout, parse_layout
from plant.model import GroundTruth

from .conftest import SIM_START, small_yaml

HOUR = 3600.0


def truth_key(gt: GroundTruth):
    """Everything that happened, comparable with ==."""
    return (gt.to_dict(), gt.part_times(), gt.reject_times())


def run(layout, seed: int, until: float, steps=None) -> PlantModel:
    pm = PlantModel(layout, seed=seed, sim_start=SIM_START)
    for t in steps or [until]:
        pm.advance_to(t)
    pm.advance_to(until)
    return pm


@pytest.fixture(scope="module")
def layout():
    return parse_layout(small_yaml("S7", "MODBUS", "OPCUA", "ETHERNET_IP"), "small.yaml")


# -- determinism ---------------------------------------------------------------------------------------------------


def test_same_seed_same_history(layout):
    a = run(layout, 3, 12 * HOUR)
    b = run(layout, 3, 12 * HOUR)
    for mid in a.machines:
        assert truth_key(a.ground_truth(mid)) == truth_key(b.ground_truth(mid))


def test_history_does_not_depend_on_tick_chunking(layout):
    until = 10 * HOUR
    one = run(layout, 5, until)
    rng = random.Random(99)
    steps, t = [], 0.0
    while t < until:
        t += rng.choice([0.05, 0.2, 1.0, 7.3, 60.0, 900.0])
        steps.append(min(t, until))
    chunked = run(layout, 5, until, steps)
    per_second = run(layout, 5, until, [float(s) for s in range(1, int(until) + 1, 1)])
    for mid in one.machines:
        ref = truth_key(one.ground_truth(mid))
        assert truth_key(chunked.ground_truth(mid)) == ref
        assert truth_key(per_second.ground_truth(mid)) == ref
        assert one.machine(mid).counters == per_second.machine(mid).counters


def test_different_seed_different_history(layout):
    a = run(layout, 1, 6 * HOUR)
    b = run(layout, 2, 6 * HOUR)
    assert any(truth_key(a.ground_truth(m)) != truth_key(b.ground_truth(m)) for m in a.machines)


def test_machines_have_independent_random_streams():
    """Adding a machine to the layout does not change what the others do."""
    one = run(parse_layout(small_yaml("S7"), "a.yaml"), 4, 5 * HOUR)
    two = run(parse_layout(small_yaml("MODBUS", "S7"), "b.yaml"), 4, 5 * HOUR)
    assert truth_key(one.ground_truth("M-S7")) == truth_key(two.ground_truth("M-S7"))


def test_model_is_pure():
    """plant/model.py, calendar.py and truth.py do no I/O and read no wall clock."""
    for name in ("model.py", "calendar.py", "truth.py"):
        src = Path(__file__).parents[2].joinpath("plant", name).read_text()
        imported = set()
        for node in ast.walk(ast.parse(src)):
            if isinstance(node, ast.Import):
                imported |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                imported.add(node.module.split(".")[0])
        assert not imported & {"time", "socket", "os", "threading", "asyncio", "io", "pathlib", "subprocess"}, name
        assert "datetime.now" not in src and "utcnow" not in src and "open(" not in src, name


# -- states and ground truth ---------------------------------------------------------------------------------------


def test_state_intervals_tile_time_and_every_state_occurs():
    pm = PlantModel(default_layout(), seed=1)
    pm.advance_to(30 * HOUR)
    seen = set()
    for mid, m in pm.machines.items():
        gt = pm.ground_truth(mid)
        assert gt.states[0].start_sim == 0.0
        for a, b in zip(gt.states, gt.states[1:], strict=False):
            assert a.end_sim == b.start_sim and a.end_sim >= a.start_sim
        assert gt.states[-1].end_sim is None and gt.states[-1].state == int(m.state)
        for s in gt.states:
            seen.add(s.state)
            assert (s.fault_code != 0) == (s.state == State.FAULTED)
        assert sum(gt.state_seconds().values()) == pytest.approx(gt.sim_now)
        # counts agree three ways: per product run, per shift, in total
        assert sum(r.total for r in gt.product_runs) == gt.totals["total"]
        assert sum(s.total for s in gt.shifts) == gt.totals["total"]
        assert gt.totals["good"] + gt.totals["reject"] == gt.totals["total"]
        assert gt.counts() == {k: gt.totals[k] for k in ("total", "good", "reject")}
    assert seen == {1, 2, 3, 4, 5, 6}


def test_parts_only_while_running_and_never_faster_than_ideal():
    pm = run(parse_layout(small_yaml("S7"), "s.yaml"), 11, 8 * HOUR)
    gt = pm.ground_truth("M-S7")
    running = [(s.start_sim, s.end_sim or gt.sim_now) for s in gt.states if s.state == State.RUNNING]
    for t in gt.part_times():
        assert any(a < t <= b for a, b in running), t
    oee = gt.oee()
    assert 0.5 < oee["performance"] <= 1.0
    assert 0.3 < oee["availability"] <= 1.0
    assert 0.9 < oee["quality"] <= 1.0
    assert oee["oee"] == pytest.approx(oee["availability"] * oee["performance"] * oee["quality"])


def test_speed_loss_and_reject_rate_show_in_the_truth():
    yaml = small_yaml("S7", extra=", speed_loss: 0.10, cycle_jitter: 0.0, micro_stops: {per_hour: 0}, "
                                  "reject_rate: 0.05, startup_rejects: {parts: 0}, starved: null, blocked: null, "
                                  "faults: [], order_quantity: [100000, 100000]")
    pm = run(parse_layout(yaml, "s.yaml"), 2, 6 * HOUR)
    gt = pm.ground_truth("M-S7")
    oee = gt.oee()
    assert oee["performance"] == pytest.approx(0.90, abs=0.005)
    assert oee["quality"] == pytest.approx(0.95, abs=0.015)


def test_fault_durations_follow_their_distribution():
    yaml = small_yaml("S7", extra=", starved: null, blocked: null, faults: [{code: 7, name: Fixed, mtbf_min: 10, "
                                  "repair: {dist: fixed, value_s: 75}}, {code: 8, name: Exp, mtbf_min: 10, "
                                  "repair: {dist: exponential, mean_s: 200}}]")
    pm = run(parse_layout(yaml, "f.yaml"), 3, 5 * 24 * HOUR)
    faults = pm.ground_truth("M-S7").faults
    fixed = [f.duration_s for f in faults if f.fault_code == 7 and f.end_sim is not None]
    expo = [f.duration_s for f in faults if f.fault_code == 8 and f.end_sim is not None]
    assert len(fixed) > 50 and len(expo) > 50
    assert all(d == pytest.approx(75.0) for d in fixed)
    assert statistics.mean(expo) == pytest.approx(200, rel=0.25)
    assert {f.fault_name for f in faults} == {"Fixed", "Exp"}
    assert pm.machine("M-S7").last_fault_code in (7, 8)


def test_changeovers_switch_product_and_ideal_cycle_time():
    pm = run(parse_layout(small_yaml("S7"), "c.yaml"), 8, 16 * HOUR)
    gt = pm.ground_truth("M-S7")
    assert len(gt.product_runs) >= 4
    for a, b in zip(gt.product_runs, gt.product_runs[1:], strict=False):
        assert a.end_sim == b.start_sim
        assert a.product_code != b.product_code
        assert a.order_id != b.order_id
        assert {a.ideal_cycle_time, b.ideal_cycle_time} == {2.0, 3.0}
        changeover = next(s for s in gt.states if s.start_sim == b.start_sim)
        assert changeover.state == State.CHANGEOVER and changeover.product_code == b.product_code
    for r in gt.product_runs[1:-1]:
        assert 300 <= r.good <= 600  # the order quantity


# -- counters, shifts, rollover, planned stops --------------------------------------------------------------------


def test_counters_reset_at_each_shift_change():
    pm = run(parse_layout(small_yaml("S7"), "s.yaml"), 1, 26 * HOUR)
    m = pm.machine("M-S7")
    gt = pm.ground_truth("M-S7")
    tz = ZoneInfo("Europe/Berlin")
    starts = [gt.clock(s.start_sim).astimezone(tz) for s in gt.shifts[1:]]
    assert [(d.hour, d.minute) for d in starts[:4]] == [(6, 0), (14, 0), (22, 0), (6, 0)]
    assert [s.shift for s in gt.shifts[:5]] == ["C", "A", "B", "C", "A"]
    resets = [e for e in gt.counter_events if e.kind == "shift_reset"]
    assert [e.t_sim for e in resets] == [s.start_sim for s in gt.shifts[1:]]
    last = gt.shifts[-1]
    since = gt.counts(last.start_sim)
    assert m.counters == since == {"total": last.total, "good": last.good, "reject": last.reject}
    assert m.shift_name == last.shift


def test_counter_rollover_at_the_configured_modulus():
    yaml = small_yaml("S7", extra=", counter_modulus: 1000, counter_initial: 900, reset_counters_at_shift: false")
    pm = run(parse_layout(yaml, "r.yaml"), 1, 6 * HOUR)
    m = pm.machine("M-S7")
    gt = pm.ground_truth("M-S7")
    assert gt.totals["total"] > 1100
    assert m.counters["total"] == (900 + gt.totals["total"]) % 1000
    assert m.counters["good"] == (900 + gt.totals["good"]) % 1000
    rolls = [e for e in gt.counter_events if e.kind == "rollover" and e.counter == "total"]
    assert len(rolls) == (900 + gt.totals["total"]) // 1000
    assert gt.counts(None, rolls[0].t_sim)["total"] == 100  # 900 + 100 = 1000 -> 0


def test_default_dint_counters_do_not_reset_or_roll_in_a_day():
    pm = PlantModel(default_layout(), seed=1)
    pm.advance_to(6 * HOUR)
    gt = pm.ground_truth("LINE-014")
    assert pm.machine("LINE-014").spec.counter_modulus == 2**31
    assert not [e for e in gt.counter_events if e.kind == "rollover"]


def test_demo_plant_shows_a_rollover_within_hours():
    pm = PlantModel(default_layout(), seed=1)
    pm.advance_to(4 * HOUR)
    assert any(e.kind == "rollover" for e in pm.ground_truth("LINE-013").counter_events)
    assert any(e.kind == "rollover" for e in pm.ground_truth("LINE-015").counter_events)


def test_breaks_and_unworked_shifts_are_planned_stops():
    yaml = small_yaml("S7", extra=", shifts: [A]")
    pm = run(parse_layout(yaml, "p.yaml"), 1, 25 * HOUR)
    gt = pm.ground_truth("M-S7")
    tz = ZoneInfo("Europe/Berlin")
    planned = [(gt.clock(s.start_sim).astimezone(tz), gt.clock(s.end_sim).astimezone(tz))
               for s in gt.states if s.state == State.PLANNED_STOP and s.end_sim is not None]
    spans = [(a.strftime("%H:%M"), b.strftime("%H:%M")) for a, b in planned]
    assert spans[0] == ("05:00", "06:00")  # the run starts in shift C, not worked
    assert ("10:00", "10:30") in spans  # lunch
    # B and C: from 14:00 (or when a fault or changeover running at 14:00 ends) to 06:00
    assert any(a >= "14:00" and a < "15:00" and b == "06:00" for a, b in spans), spans
    b_start = next(s.start_sim for s in gt.shifts if s.shift == "B")
    assert gt.counts(b_start, b_start + 16 * HOUR)["total"] == 0
    # nothing is made while planned
    for a, b in ((s.start_sim, s.end_sim) for s in gt.states if s.state == State.PLANNED_STOP and s.end_sim):
        assert gt.counts(a, b)["total"] == 0


def test_a_fault_running_into_a_break_ends_in_the_planned_stop():
    yaml = small_yaml("S7", extra=", starved: null, blocked: null, faults: [{code: 5, name: Long, mtbf_min: 20, "
                                  "repair: {dist: fixed, value_s: 1500}}]")
    pm = run(parse_layout(yaml, "x.yaml"), 2, 3 * 24 * HOUR)
    gt = pm.ground_truth("M-S7")
    for a, b in zip(gt.states, gt.states[1:], strict=False):
        if a.state == State.FAULTED:
            assert b.state in (State.RUNNING, State.PLANNED_STOP)


def test_shift_changes_follow_daylight_saving_time():
    layout = parse_layout(small_yaml("S7"), "d.yaml")
    start = datetime(2025, 3, 29, 12, 0, tzinfo=ZoneInfo("Europe/Berlin"))  # DST starts 2025-03-30 02:00
    pm = PlantModel(layout, seed=1, sim_start=start)
    pm.advance_to(2 * 24 * HOUR)
    gt = pm.ground_truth("M-S7")
    local = [gt.clock(s.start_sim).astimezone(ZoneInfo("Europe/Berlin")) for s in gt.shifts[1:]]
    assert all((d.hour, d.minute) in ((6, 0), (14, 0), (22, 0)) for d in local)
    durations = [b.start_sim - a.start_sim for a, b in zip(gt.shifts[1:], gt.shifts[2:], strict=False)]
    assert 7 * HOUR in durations and 8 * HOUR in durations  # the night shift of the change is an hour short


def test_truth_retention_drops_old_parts_but_keeps_totals():
    layout = parse_layout(small_yaml("S7"), "k.yaml")
    pm = PlantModel(layout, seed=1, sim_start=SIM_START, truth_retention_s=2 * HOUR)
    pm.advance_to(10 * HOUR)
    gt = pm.ground_truth("M-S7")
    assert gt.history_start_sim >= 6 * HOUR
    assert min(gt.part_times()) > gt.history_start_sim
    assert gt.totals["total"] > len(gt.part_times())


# -- writes --------------------------------------------------------------------------------------------------------


def test_client_writes_change_the_model():
    pm = run(parse_layout(small_yaml("S7"), "w.yaml"), 1, 2 * HOUR)
    m = pm.machine("M-S7")
    assert m.preset_counter("total", 5000) and m.counters["total"] == 5000
    assert not m.preset_counter("total", 2**31)  # beyond the modulus
    m.reset_counters()
    assert m.counters == {"total": 0, "good": 0, "reject": 0}
    other = 12 if m.product.code == 11 else 11
    assert not m.request_product(999)
    busy = m.state in (State.FAULTED, State.CHANGEOVER)
    t_req = m.now
    assert m.request_product(other)
    if not busy:  # changes over at once; during a fault or a changeover it follows when that ends
        assert m.state == State.CHANGEOVER and m.product.code == other
    pm.advance_to(m.now + 1.0)
    assert m.set_order("WO-778899")
    assert m.order_id == "WO-778899" and m.order_no == 778899
    pm.advance_to(4 * HOUR)
    gt = pm.ground_truth("M-S7")
    run_ = next(r for r in gt.product_runs if r.start_sim >= t_req and r.product_code == other)
    assert run_.start_sim == t_req or busy
    assert [e.kind for e in gt.counter_events][:3] == ["shift_reset", "preset", "reset"]
    assert any(r.order_id == "WO-778899" and r.start_sim == t_req + 1.0 for r in gt.product_runs)
    with pytest.raises(ValueError):
        pm.advance_to(1.0)


def test_wall_time_mapping():
    layout = parse_layout(small_yaml("S7"), "t.yaml")
    pm = run(layout, 1, HOUR)
    wall0 = datetime(2030, 1, 1, 12, 0, tzinfo=ZoneInfo("UTC"))
    gt = pm.machine("M-S7").ground_truth(time_scale=60.0, wall_start=wall0)
    s = gt.states[1]
    assert s.start_wall == wall0 + timedelta(seconds=s.start_sim / 60.0)
    assert gt.wall(3600.0) == wall0 + timedelta(minutes=1)
    assert gt.sim(wall0 + timedelta(minutes=1)) == pytest.approx(3600.0)
    assert gt.counts(wall0, wall0 + timedelta(minutes=1)) == gt.counts(0, 3600.0)
    assert gt.clock(0.0) == SIM_START
