"""analyze(): classification of state intervals, the micro-stop rule, unknown time, calendars, counts, buckets,
startup rejects, reasons, roll-ups, and the published worked example end to end."""
from __future__ import annotations

from datetime import datetime, time

import pytest

from oee import (
    BreakDef,
    Bucket,
    Calendar,
    Config,
    CountIncrement,
    PlannedDowntime,
    Reason,
    ReasonOverride,
    ShiftDef,
    StateInterval,
    analyze,
    assign_reason,
    calculate,
    day_buckets,
    events_from_states,
    expand,
    hour_buckets,
    overrides_from_events,
    rollup,
    rollup_analyses,
    shift_buckets,
    split_event,
)
from tests.oee.helpers import CHI, UTC, H, M, at, timeline

DAY = Calendar("UTC", (ShiftDef("Day", time(6), time(14), breaks=(
    BreakDef(time(8), 900), BreakDef(time(10), 1800, "Meal"), BreakDef(time(12), 900))),))
TWO_SHIFTS = Calendar("UTC", (ShiftDef("A", time(6), time(14)), ShiftDef("B", time(14), time(22))))
T0 = at(2024, 5, 6, 6)  # a Monday, 06:00 UTC


def worked_example():
    """Vorne's published example (see test_formulas) as machine data: an 8 h shift with 60 min of breaks, 30 min
    of failure and 17 min of changeover (47 min down), 19,271 parts at an ideal 1.0 s, 423 rejects."""
    states = timeline(T0, (60 * M, "running"), (30 * M, "faulted", 3), (300 * M, "running"),
                      (17 * M, "changeover"), (73 * M, "running"))
    counts = [CountIncrement(at(2024, 5, 6, 9), at(2024, 5, 6, 9, 1), 19_271, 18_848, "W")]
    return dict(states=states, counts=counts, calendar=DAY, ideal_cycle_times={"W": 1.0})


def test_worked_example_through_the_engine():
    result = analyze(T0, T0 + 8 * H, **worked_example())
    t = result.totals
    r = t.result()
    expected = calculate(420 * M, 373 * M, 19_271, 18_848, 1.0)
    for name in ("availability", "performance", "quality", "oee"):
        assert getattr(r, name) == pytest.approx(getattr(expected, name), rel=1e-12), name
    assert round(r.oee * 100, 2) == 74.79
    assert r.utilization == pytest.approx(420 / 480)
    assert r.teep == pytest.approx(18_848 / (480 * M))
    assert r.flags == ()
    assert [(s.key, s.seconds) for s in t.waterfall()] == [
        ("all_time", 480 * M),
        ("planned.no_production_scheduled", 0.0),
        ("planned.break", 60 * M),
        ("planned.planned_maintenance", 0.0),
        ("planned_production_time", 420 * M),
        ("availability.equipment_failure", 30 * M),
        ("availability.setup_adjustment", 17 * M),
        ("availability.idling_minor_stops", 0.0),
        ("availability.unknown", 0.0),
        ("run_time", 373 * M),
        ("performance.idling_minor_stops", 0.0),
        ("performance.reduced_speed", 373 * M - 19_271),
        ("net_run_time", 19_271.0),
        ("quality.process_defects", 423.0),
        ("quality.startup_rejects", 0.0),
        ("fully_productive_time", 18_848.0),
    ]
    assert (t.failure_count, t.stop_count, t.mtbf_s, t.mttr_s) == (1, 2, 373 * M, 30 * M)


def test_waterfall_levels_equal_level_above_minus_losses():
    steps = analyze(T0, T0 + 8 * H, **worked_example()).totals.waterfall()
    level, losses = None, 0.0
    for s in steps:
        if s.kind == "level":
            if level is not None:
                assert s.seconds == pytest.approx(level - losses)
            level, losses = s.seconds, 0.0
        else:
            losses += s.seconds


def test_as_dict_is_json_with_buckets():
    import json

    res = analyze(T0, T0 + 8 * H, buckets=hour_buckets(T0, T0 + 8 * H), **worked_example())
    d = json.loads(json.dumps(res.as_dict(), allow_nan=False))
    assert len(d["buckets"]) == 8
    assert d["buckets"][0]["label"] == "2024-05-06T06:00:00+00:00"
    assert sum(b["planned_time_s"] for b in d["buckets"]) == d["planned_time_s"] == 420 * M
    assert sum(b["good_count"] for b in d["buckets"]) == 18_848


def test_as_dict_carries_what_the_api_needs():
    d = analyze(T0, T0 + 8 * H, **worked_example()).as_dict()
    for key in ("availability", "performance", "quality", "oee", "planned_time_s", "run_time_s", "total_count",
                "good_count", "reject_count", "losses", "flags", "waterfall", "mtbf_s", "mttr_s", "start", "end"):
        assert key in d
    assert d["reject_count"] == 423
    assert d["losses"]["availability.setup_adjustment"] == 17 * M


# --- the micro-stop rule ---------------------------------------------------------------------------------------


def _one_stop(seconds, state="faulted", config=Config(), fault=None):
    states = timeline(T0, (600, "running"), (seconds, state, fault), (3600 - 600 - seconds, "running"))
    return analyze(T0, T0 + H, states=states, config=config).totals


def test_stop_exactly_at_the_threshold_is_an_availability_loss():
    """Minor stops are strictly shorter than the threshold: a 120 s stop with the default 120 s threshold is not."""
    t = _one_stop(120.0)
    assert t.equipment_failure_s == 120 and t.minor_stops_s == 0
    assert t.failure_count == 1 and t.minor_stop_count == 0
    assert t.run_time_s == 3600 - 120


def test_stop_just_below_the_threshold_is_a_performance_loss():
    t = _one_stop(119.5)
    assert t.equipment_failure_s == 0 and t.minor_stops_s == 119.5
    assert t.failure_count == 0 and t.minor_stop_count == 1
    assert t.run_time_s == 3600  # minor stops sit inside run time
    assert t.result().availability == 1.0
    assert t.losses()["performance.idling_minor_stops"] == 119.5


def test_idle_and_blocked_minor_stops():
    assert _one_stop(30, "idle").minor_stops_s == 30
    assert _one_stop(30, "blocked").minor_stops_s == 30
    long = _one_stop(300, "blocked")
    assert long.idling_minor_stops_s == 300 and long.minor_stops_s == 0 and long.stop_count == 1


def test_minor_stops_as_availability_loss_by_configuration():
    t = _one_stop(30, "idle", Config(micro_stops_as="availability"))
    assert t.minor_stops_s == 0 and t.idling_minor_stops_s == 30
    assert t.run_time_s == 3570 and t.minor_stop_count == 1


def test_custom_threshold_and_off():
    assert _one_stop(200, config=Config(micro_stop_threshold_s=300)).minor_stops_s == 200
    assert _one_stop(1, config=Config(micro_stop_threshold_s=0)).equipment_failure_s == 1


def test_changeover_and_planned_stops_are_never_minor():
    assert _one_stop(30, "changeover").setup_adjustment_s == 30
    assert _one_stop(30, "planned_stop").planned_maintenance_s == 30
    assert _one_stop(30, "offline").unknown_s == 30


def test_micro_rule_judges_the_whole_stop_not_the_part_in_a_bucket():
    """A 150 s fault across an hour edge: 75 s in each hour, each part shorter than the threshold, yet the stop
    is not a minor stop; it counts once, in the hour it started."""
    states = timeline(T0, (H - 75, "running"), (150, "faulted"), (H - 75, "running"))
    res = analyze(T0, T0 + 2 * H, states=states, buckets=hour_buckets(T0, T0 + 2 * H))
    (b1, t1), (b2, t2) = res.buckets
    assert (t1.equipment_failure_s, t2.equipment_failure_s) == (75, 75)
    assert (t1.minor_stops_s, t2.minor_stops_s) == (0, 0)
    assert (t1.failure_count, t2.failure_count) == (1, 0)
    assert res.totals.failure_count == 1


def test_contiguous_intervals_with_the_same_cause_are_one_stop():
    states = timeline(T0, (600, "running"), (60, "faulted", 7), (60, "faulted", 7), (3000 - 120 + 0, "running"))
    t = analyze(T0, T0 + 3600 - 0, states=states).totals
    assert t.equipment_failure_s == 120 and t.failure_count == 1  # 60 + 60 = 120 s: not minor
    states = timeline(T0, (600, "running"), (60, "faulted", 7), (60, "faulted", 8), (2880, "running"))
    t = analyze(T0, T0 + H, states=states).totals
    assert t.minor_stops_s == 120 and t.minor_stop_count == 2  # two causes: two minor stops


def test_ongoing_stop_is_not_minor_until_it_ends():
    states = [StateInterval(T0, T0 + 3570, "running"), StateInterval(T0 + 3570, None, "faulted")]
    t = analyze(T0, T0 + H, states=states).totals
    assert t.equipment_failure_s == 30 and t.minor_stops_s == 0


# --- calendar edges, buckets, clipping --------------------------------------------------------------------------


def test_stop_spanning_a_bucket_edge_and_a_shift_edge():
    """A fault 13:50-14:20 across the A/B shift change at 14:00 (also an hour edge): split 10 + 20 min, in the
    hour buckets and in the shift buckets alike; one failure, in the bucket where it started."""
    states = timeline(T0, (7 * H + 50 * M, "running"), (30 * M, "faulted"), (7 * H + 40 * M, "running"))
    start, end = T0, T0 + 16 * H
    by_hour = analyze(start, end, states=states, calendar=TWO_SHIFTS, buckets=hour_buckets(start, end))
    h13 = dict((b.label[11:13], t) for b, t in by_hour.buckets)
    assert h13["13"].equipment_failure_s == 10 * M and h13["14"].equipment_failure_s == 20 * M
    assert h13["13"].failure_count == 1 and h13["14"].failure_count == 0
    sched = expand(TWO_SHIFTS, start, end)
    by_shift = analyze(start, end, states=states, calendar=TWO_SHIFTS, buckets=shift_buckets(sched))
    (ba, ta), (bb, tb) = by_shift.buckets
    assert (ba.label, bb.label) == ("2024-05-06 A", "2024-05-06 B")
    assert (ta.equipment_failure_s, tb.equipment_failure_s) == (10 * M, 20 * M)
    assert (ta.planned_time_s, tb.planned_time_s) == (8 * H, 8 * H)
    assert rollup(t for _, t in by_shift.buckets) == by_shift.totals == by_hour.totals


def test_stop_running_past_the_last_shift_counts_only_in_planned_time():
    states = timeline(T0, (7 * H + 50 * M, "running"), (30 * M, "faulted"), (H, "running"))
    cal = Calendar("UTC", (ShiftDef("A", time(6), time(14)),))
    t = analyze(T0, T0 + 9 * H, states=states, calendar=cal).totals
    assert t.equipment_failure_s == 10 * M
    assert t.no_production_scheduled_s == H
    assert t.planned_time_s == 8 * H


def test_intervals_are_clipped_to_the_range():
    states = [StateInterval(T0 - 5 * H, T0 + 30 * M, "running"), StateInterval(T0 + 30 * M, T0 + 5 * H, "idle")]
    t = analyze(T0, T0 + H, states=states).totals
    assert (t.running_s, t.idling_minor_stops_s, t.all_time_s) == (30 * M, 30 * M, H)
    assert t.stop_count == 1


def test_stop_started_before_the_range_is_not_counted_again():
    states = [StateInterval(T0 - 10 * M, T0 + 10 * M, "faulted"), StateInterval(T0 + 10 * M, T0 + H, "running")]
    t = analyze(T0, T0 + H, states=states).totals
    assert t.equipment_failure_s == 10 * M and t.failure_count == 0


def test_a_stop_counts_where_it_starts_to_cost_planned_time():
    """A fault that begins in the 08:00 break and lasts until 08:45 costs planned time from 08:15: it is one
    failure, counted at 08:15, so MTTR = 30 min / 1."""
    states = timeline(T0, (2 * H + 5 * M, "running"), (40 * M, "faulted"), (5 * H + 15 * M, "running"))
    res = analyze(T0, T0 + 8 * H, states=states, calendar=DAY, buckets=hour_buckets(T0, T0 + 8 * H))
    t = res.totals
    assert (t.equipment_failure_s, t.failure_count, t.mttr_s) == (30 * M, 1, 30 * M)
    assert [x.failure_count for _, x in res.buckets] == [0, 0, 1, 0, 0, 0, 0, 0]
    # A range starting at 08:10 (inside the break, after the fault began) still sees that failure; a range
    # starting at 08:20 does not count it again.
    assert analyze(T0 + 2 * H + 10 * M, T0 + 8 * H, states=states, calendar=DAY).totals.failure_count == 1
    assert analyze(T0 + 2 * H + 20 * M, T0 + 8 * H, states=states, calendar=DAY).totals.failure_count == 0


def test_a_stop_that_never_costs_planned_time_is_not_counted():
    states = timeline(T0 + 2 * H, (10 * M, "faulted"), (H, "running"))  # 08:00-08:10, all in the break
    t = analyze(T0, T0 + 8 * H, states=states, calendar=DAY).totals
    assert t.failure_count == 0 and t.equipment_failure_s == 0 and t.break_s == H


def test_open_interval_lasts_to_the_end_of_the_range():
    states = [StateInterval(T0 - H, None, "running")]
    t = analyze(T0, T0 + H, states=states).totals
    assert t.running_s == H and t.unknown_s == 0


def test_overlapping_intervals_the_later_one_wins():
    states = [StateInterval(T0, T0 + 40 * M, "running"), StateInterval(T0 + 30 * M, T0 + H, "idle")]
    t = analyze(T0, T0 + H, states=states).totals
    assert (t.running_s, t.idling_minor_stops_s) == (30 * M, 30 * M)


def test_datetimes_are_accepted():
    dt = datetime(2024, 5, 6, 6, tzinfo=UTC)
    states = [StateInterval(dt, datetime(2024, 5, 6, 7, tzinfo=UTC), "running")]
    counts = [CountIncrement(dt, datetime(2024, 5, 6, 6, 1, tzinfo=UTC), 10, 10, None)]
    t = analyze(dt, datetime(2024, 5, 6, 7, tzinfo=UTC), states=states, counts=counts,
                default_ideal_cycle_time_s=6.0).totals
    assert t.running_s == H and t.total_count == 10 and t.result().performance == pytest.approx(60 / 3600)
    with pytest.raises(ValueError, match="naive"):
        analyze(datetime(2024, 5, 6), dt, states=[])


# --- unknown time --------------------------------------------------------------------------------------------


def test_offline_unknown_and_gaps_are_unknown_time_and_flagged():
    states = [StateInterval(T0 + 10 * M, T0 + 20 * M, "running"), StateInterval(T0 + 20 * M, T0 + 30 * M, "offline"),
              StateInterval(T0 + 40 * M, T0 + 50 * M, "unknown"), StateInterval(T0 + 50 * M, T0 + 55 * M, "running")]
    t = analyze(T0, T0 + H, states=states).totals
    # 0-10 gap, 20-30 offline, 30-40 gap, 40-50 unknown, 55-60 gap: 45 min unknown, never dropped.
    assert t.unknown_s == 45 * M and t.running_s == 15 * M
    assert t.all_time_s == H
    r = t.result()
    assert "data_gap" in r.flags
    assert r.availability == pytest.approx(0.25)  # unknown is an unplanned availability loss
    assert t.stop_count == 0  # but not a stop


def test_no_states_at_all():
    t = analyze(T0, T0 + H, states=[]).totals
    assert t.unknown_s == H and t.result().availability == 0.0 and "data_gap" in t.result().flags


def test_unknown_outside_shifts_is_not_a_loss():
    t = analyze(T0 - 6 * H, T0, states=[], calendar=DAY).totals
    assert t.unknown_s == 0 and t.no_production_scheduled_s == 6 * H
    r = t.result()
    assert r.availability is None and "no_planned_time" in r.flags and "data_gap" not in r.flags


def test_empty_range():
    r = analyze(T0, T0, states=[]).totals.result()
    assert r.oee is None and {"no_planned_time", "no_all_time"} <= set(r.flags)


# --- planned stops, reasons ------------------------------------------------------------------------------------


def test_planned_stop_is_planned_downtime():
    states = timeline(T0, (30 * M, "running"), (30 * M, "planned_stop"))
    t = analyze(T0, T0 + H, states=states).totals
    assert t.planned_maintenance_s == 30 * M and t.planned_time_s == 30 * M
    assert t.result().availability == 1.0


def test_planned_downtime_for_one_machine():
    states = timeline(T0, (H, "running"))
    pm = PlannedDowntime(T0 + 15 * M, T0 + 45 * M)
    t = analyze(T0, T0 + H, states=states, downtime=[pm]).totals
    assert t.planned_maintenance_s == 30 * M and t.running_s == 30 * M


FAULTS = {
    3: Reason("MOTOR", "equipment_failure", "Motor overload"),
    7: Reason("JAM", "idling_minor_stops", "Infeed jam"),
    8: Reason("PM", "planned_maintenance", "Lubrication cycle", planned=True),
    9: Reason("SCRAP", "process_defects", "Scrap detected"),  # not a stop category
}


def test_fault_codes_map_to_reasons():
    states = timeline(T0, (10 * M, "faulted", 7), (10 * M, "faulted", 8), (10 * M, "faulted", 3),
                      (10 * M, "faulted", 9), (10 * M, "faulted", 99), (10 * M, "running"))
    t = analyze(T0, T0 + H, states=states, fault_reasons=FAULTS).totals
    assert t.idling_minor_stops_s == 10 * M
    assert t.planned_maintenance_s == 10 * M
    assert t.equipment_failure_s == 30 * M  # code 3, code 9 (not a stop: falls back to the state), unmapped 99
    assert "reason_category_not_a_stop" in t.result().flags
    events = events_from_states("M1", states, fault_reasons=FAULTS)
    assert [(e.fault_code, e.loss_category, e.planned, e.source) for e in events] == [
        (7, "idling_minor_stops", False, "fault_code"),
        (8, "planned_maintenance", True, "fault_code"),
        (3, "equipment_failure", False, "fault_code"),
        (9, "equipment_failure", False, "state"),
        (99, "equipment_failure", False, "state"),
    ]


def test_reason_validation():
    with pytest.raises(ValueError, match="loss_category"):
        Reason("X", "coffee")
    with pytest.raises(ValueError, match="planned"):
        Reason("X", "break", planned=False)
    assert Reason("X", "break").planned is True


def test_an_operator_reason_changes_the_loss_breakdown():
    """A 20-min idle stop is waiting for material (idling) until the operator says it was a changeover."""
    states = timeline(T0, (20 * M, "running"), (20 * M, "idle"), (20 * M, "running"))
    before = analyze(T0, T0 + H, states=states).totals
    assert before.idling_minor_stops_s == 20 * M
    (event,) = events_from_states("M1", states)
    edited = assign_reason(event, Reason("CO", "setup_adjustment", "Changeover"), note="new film roll")
    assert (edited.loss_category, edited.source, edited.note) == ("setup_adjustment", "operator", "new film roll")
    after = analyze(T0, T0 + H, states=states, overrides=overrides_from_events([edited])).totals
    assert after.idling_minor_stops_s == 0 and after.setup_adjustment_s == 20 * M
    assert after.result().availability == before.result().availability  # still down, another category


def test_an_operator_can_make_a_stop_planned():
    states = timeline(T0, (20 * M, "running"), (20 * M, "faulted"), (20 * M, "running"))
    (event,) = events_from_states("M1", states)
    edited = assign_reason(event, Reason("BRK", "break", "Unscheduled team break"))
    t = analyze(T0, T0 + H, states=states, overrides=overrides_from_events([edited])).totals
    assert t.break_s == 20 * M and t.planned_time_s == 40 * M and t.result().availability == 1.0


def test_an_operator_split_makes_two_events():
    states = timeline(T0, (10 * M, "running"), (30 * M, "faulted", 3), (20 * M, "running"))
    (event,) = events_from_states("M1", states, fault_reasons=FAULTS)
    first, second = split_event(event, T0 + 20 * M)
    assert (first.start, first.end, second.start, second.end) == (T0 + 10 * M, T0 + 20 * M, T0 + 20 * M, T0 + 40 * M)
    assert second.split_from == event.start and first.loss_category == second.loss_category == "equipment_failure"
    second = assign_reason(second, Reason("CO", "setup_adjustment"))
    t = analyze(T0, T0 + H, states=states, fault_reasons=FAULTS,
                overrides=overrides_from_events([first, second])).totals
    assert t.equipment_failure_s == 10 * M and t.setup_adjustment_s == 20 * M
    assert t.failure_count == 1 and t.stop_count == 2
    with pytest.raises(ValueError, match="inside"):
        split_event(event, T0 + 10 * M)
    with pytest.raises(ValueError, match="cannot apply to a stop"):
        assign_reason(event, Reason("SPD", "reduced_speed"))


def test_overrides_are_applied_to_events_too():
    states = timeline(T0, (10 * M, "running"), (30 * M, "faulted"), (20 * M, "running"))
    ov = ReasonOverride(T0 + 20 * M, T0 + 30 * M, Reason("PM", "planned_maintenance"))
    events = events_from_states("M1", states, overrides=[ov])
    assert [(e.start - T0, e.end - T0, e.loss_category, e.source) for e in events] == [
        (10 * M, 20 * M, "equipment_failure", "state"),
        (20 * M, 30 * M, "planned_maintenance", "operator"),
        (30 * M, 40 * M, "equipment_failure", "state"),
    ]
    t = analyze(T0, T0 + H, states=states, overrides=[ov]).totals
    assert t.planned_maintenance_s == 10 * M and t.equipment_failure_s == 20 * M


def test_override_on_running_time_changes_nothing():
    states = timeline(T0, (H, "running"))
    t = analyze(T0, T0 + H, states=states, overrides=[ReasonOverride(T0, T0 + H, Reason("X", "break"))]).totals
    assert t.running_s == H


# --- counts ----------------------------------------------------------------------------------------------------


def test_increments_across_a_bucket_edge_are_attributed_by_their_time():
    """Each increment goes, whole, to the bucket holding the midpoint of its [start, end)."""
    states = timeline(T0, (2 * H, "running"))
    edge = T0 + H
    counts = [CountIncrement(edge - 40, edge + 20, 6, 6, "W"),  # midpoint edge - 10: the first hour
              CountIncrement(edge - 20, edge + 40, 6, 5, "W"),  # midpoint edge + 10: the second hour
              CountIncrement(edge, edge, 1, 1, "W")]  # an instant on the edge: the second hour ([start, end))
    res = analyze(T0, T0 + 2 * H, states=states, counts=counts, ideal_cycle_times={"W": 10.0},
                  buckets=hour_buckets(T0, T0 + 2 * H))
    (_, first), (_, second) = res.buckets
    assert (first.total_count, first.good_count) == (6, 6)
    assert (second.total_count, second.good_count) == (7, 6)
    assert res.totals.total_count == 13 and res.totals.fully_productive_time_s == 120


def test_counter_reset_is_the_collectors_job_increments_just_add():
    """The collector turns a counter reset into increments (see collectors.machine_model.counter_delta); here
    increments on either side of a reset simply add up, with none lost or doubled at the bucket edge."""
    states = timeline(T0, (2 * H, "running"))
    counts = [CountIncrement(T0 + i * M, T0 + (i + 1) * M, 50, 49, "W") for i in range(120)]
    res = analyze(T0, T0 + 2 * H, states=states, counts=counts, ideal_cycle_times={"W": 1.0},
                  buckets=hour_buckets(T0, T0 + 2 * H))
    assert [t.total_count for _, t in res.buckets] == [3000, 3000]
    assert res.totals.total_count == 6000


def test_counts_outside_planned_time_are_reported_not_counted():
    states = timeline(T0 - 2 * H, (10 * H, "running"))
    counts = [CountIncrement(T0 - H, T0 - H + 60, 60, 60, "W"),  # 05:00, before the shift
              CountIncrement(T0 + H, T0 + H + 60, 60, 60, "W")]
    t = analyze(T0 - 2 * H, T0 + 4 * H, states=states, counts=counts, calendar=DAY,
                ideal_cycle_times={"W": 1.0}).totals
    assert t.total_count == 60
    assert (t.outside_total_count, t.outside_good_count) == (60, 60)
    assert t.result().oee == pytest.approx(60 / t.planned_time_s)
    assert "production_outside_planned_time" in t.result().flags


def test_counts_in_a_break_are_outside_planned_time():
    states = timeline(T0, (8 * H, "running"))
    counts = [CountIncrement(T0 + 2 * H + 5 * M, T0 + 2 * H + 6 * M, 5, 5, "W")]  # 08:05, in the 08:00 break
    t = analyze(T0, T0 + 8 * H, states=states, counts=counts, calendar=DAY, ideal_cycle_times={"W": 1.0}).totals
    assert t.total_count == 0 and t.outside_total_count == 5


def test_products_with_their_own_ideal_cycle_times():
    states = timeline(T0, (H, "running"))
    counts = [CountIncrement(T0 + 60, T0 + 120, 1_000, 990, "fast"),
              CountIncrement(T0 + 600, T0 + 660, 100, 90, "slow")]
    t = analyze(T0, T0 + H, states=states, counts=counts, ideal_cycle_times={"fast": 1.5, "slow": 12.0}).totals
    assert t.net_run_time_s == 1_000 * 1.5 + 100 * 12.0
    assert t.fully_productive_time_s == 990 * 1.5 + 90 * 12.0
    assert t.result().oee == pytest.approx((990 * 1.5 + 90 * 12.0) / H)


def test_default_ideal_and_missing_ideal():
    states = timeline(T0, (H, "running"))
    counts = [CountIncrement(T0 + 60, T0 + 120, 100, 100, "new")]
    known = analyze(T0, T0 + H, states=states, counts=counts, default_ideal_cycle_time_s=2.0).totals
    assert known.net_run_time_s == 200
    unknown = analyze(T0, T0 + H, states=states, counts=counts, ideal_cycle_times={"old": 1.0}).totals
    r = unknown.result()
    assert r.oee is None and r.performance is None and r.quality == 1.0
    assert "no_ideal_cycle_time" in r.flags and unknown.missing_ideal_count == 100
    assert unknown.waterfall()[-1].seconds is None and unknown.reduced_speed_s is None


def test_negative_count_is_refused():
    with pytest.raises(ValueError, match="total and good"):
        analyze(T0, T0 + H, states=[], counts=[CountIncrement(T0, T0 + 1, -1, 0)])


# --- startup rejects -------------------------------------------------------------------------------------------


def test_startup_rejects_after_a_changeover():
    states = timeline(T0, (20 * M, "running"), (20 * M, "changeover"), (20 * M, "running"))
    after = T0 + 40 * M
    counts = [CountIncrement(T0 + 10 * M, T0 + 11 * M, 60, 58, "W"),  # ordinary: 2 process defects
              CountIncrement(after, after + 60, 60, 50, "W"),  # in the first 300 s after the changeover
              CountIncrement(after + 4 * M, after + 5 * M, 60, 55, "W"),  # midpoint 270 s after: still startup
              CountIncrement(after + 5 * M, after + 6 * M, 60, 59, "W")]  # 330 s after: process defect
    t = analyze(T0, T0 + H, states=states, counts=counts, ideal_cycle_times={"W": 1.0}).totals
    assert t.startup_reject_count == 15 and t.startup_rejects_s == 15
    assert t.process_defects_s == 3
    off = analyze(T0, T0 + H, states=states, counts=counts, ideal_cycle_times={"W": 1.0},
                  config=Config(startup_window_s=0)).totals
    assert off.startup_rejects_s == 0 and off.process_defects_s == 18


def test_startup_after_shift_start_and_break():
    states = timeline(T0 - H, (10 * H, "running"))
    counts = [CountIncrement(T0, T0 + 60, 60, 50, "W"),  # shift start: startup
              CountIncrement(T0 + 2 * H + 15 * M, T0 + 2 * H + 16 * M, 60, 50, "W"),  # right after the break
              CountIncrement(T0 + H, T0 + H + 60, 60, 50, "W")]  # mid-shift: process defects
    t = analyze(T0, T0 + 8 * H, states=states, counts=counts, calendar=DAY, ideal_cycle_times={"W": 1.0}).totals
    assert (t.startup_reject_count, t.process_defects_s) == (20, 10)
    only_changeover = Config(startup_after={"changeover"})
    t = analyze(T0, T0 + 8 * H, states=states, counts=counts, calendar=DAY, ideal_cycle_times={"W": 1.0},
                config=only_changeover).totals
    assert (t.startup_reject_count, t.process_defects_s) == (0, 30)


def test_startup_window_reaching_into_the_range_from_before_it():
    """The look-back: a changeover ending 2 min before the range start still makes the range's first 3 min a
    startup window, as it does when the range is part of a longer one."""
    states = timeline(T0 - H, (50 * M, "running"), (8 * M, "changeover"), (2 * H, "running"))
    counts = [CountIncrement(T0 + 60, T0 + 120, 60, 50, "W")]
    part = analyze(T0, T0 + H, states=states, counts=counts, ideal_cycle_times={"W": 1.0}).totals
    whole = analyze(T0 - H, T0 + H, states=states, counts=counts, ideal_cycle_times={"W": 1.0}).totals
    assert part.startup_reject_count == whole.startup_reject_count == 10


def test_config_validation():
    with pytest.raises(ValueError, match="micro_stops_as"):
        Config(micro_stops_as="quality")
    with pytest.raises(ValueError, match="micro_stop_threshold_s"):
        Config(micro_stop_threshold_s=-1)
    with pytest.raises(ValueError, match="startup_after"):
        Config(startup_after={"lunch"})


# --- roll-ups, DST, recomputation -----------------------------------------------------------------------------


def test_rollup_sums_and_divides_never_averages():
    """Machine A: 1 h planned, OEE 90 %. Machine B: 7 h planned, OEE 50 %. The line is not 70 % but
    (0.9 h + 3.5 h) / 8 h = 55 %."""
    a = analyze(T0, T0 + H, states=timeline(T0, (H, "running")),
                counts=[CountIncrement(T0, T0 + 60, 324, 324, "W")], ideal_cycle_times={"W": 10.0})
    b = analyze(T0, T0 + 7 * H, states=timeline(T0, (7 * H, "running")),
                counts=[CountIncrement(T0, T0 + 60, 1260, 1260, "W")], ideal_cycle_times={"W": 10.0})
    assert a.totals.result().oee == pytest.approx(0.9) and b.totals.result().oee == pytest.approx(0.5)
    line = rollup([a.totals, b.totals])
    assert line.result().oee == pytest.approx(0.55)
    assert sum([a.totals, b.totals]) == line


def test_rollup_analyses_bucket_by_bucket():
    buckets = hour_buckets(T0, T0 + 2 * H)
    runs = [analyze(T0, T0 + 2 * H, states=timeline(T0, (d, "running"), (2 * H - d, "faulted")), buckets=buckets)
            for d in (30 * M, 90 * M)]
    line = rollup_analyses(runs)
    assert [t.running_s for _, t in line.buckets] == [H + 30 * M, 30 * M]
    assert line.totals.running_s == 2 * H
    with pytest.raises(ValueError):
        rollup_analyses([runs[0], analyze(T0, T0 + H, states=[])])


def test_dst_change_day_in_chicago():
    """2024-03-10 has 23 h in Chicago: a 24/7 calendar plans 23 h that day; day buckets follow local midnight."""
    start = datetime(2024, 3, 9, tzinfo=CHI).timestamp()
    end = datetime(2024, 3, 12, tzinfo=CHI).timestamp()
    states = [StateInterval(start, end, "running")]
    fault = datetime(2024, 3, 10, 1, 30, tzinfo=CHI).timestamp()  # 01:30 CST; 02:00 does not exist that night
    states = [StateInterval(start, fault, "running"), StateInterval(fault, fault + H, "faulted"),
              StateInterval(fault + H, end, "running")]
    res = analyze(start, end, states=states, calendar=Calendar.always("America/Chicago"),
                  buckets=day_buckets(start, end, "America/Chicago"))
    assert [(b.label, t.planned_time_s) for b, t in res.buckets] == [
        ("2024-03-09", 24 * H), ("2024-03-10", 23 * H), ("2024-03-11", 24 * H)]
    assert res.buckets[1][1].equipment_failure_s == H  # 01:30 CST to 03:30 CDT is one real hour
    night = Calendar("America/Chicago", (ShiftDef("C", time(22), time(6)),))
    t = analyze(start, end, states=states, calendar=night).totals
    # Night shifts in the range: Mar 8's until 06:00 (6 h), Mar 9's across the change (7 h), Mar 10's (8 h),
    # Mar 11's from 22:00 to midnight (2 h).
    assert t.planned_time_s == 6 * H + 7 * H + 8 * H + 2 * H


def test_a_calendar_edit_recomputes_the_past():
    data = worked_example()
    before = analyze(T0, T0 + 8 * H, **data).totals
    data["calendar"] = Calendar("UTC", (ShiftDef("Day", time(6), time(14)),))  # breaks deleted
    after = analyze(T0, T0 + 8 * H, **data).totals
    assert before.planned_time_s == 420 * M and after.planned_time_s == 480 * M
    assert after.result().oee == pytest.approx(18_848 / (480 * M))


def test_a_schedule_gives_the_same_times_as_its_calendar():
    data = worked_example()
    sched = expand(DAY, T0 - H, T0 + 9 * H)
    by_calendar = analyze(T0, T0 + 8 * H, **data).totals
    data["calendar"] = sched
    assert analyze(T0, T0 + 8 * H, **data).totals == by_calendar


def test_schedule_must_cover_the_range():
    sched = expand(DAY, T0, T0 + H)
    with pytest.raises(ValueError, match="covers"):
        analyze(T0, T0 + 2 * H, states=[], calendar=sched)


def test_buckets_must_not_overlap():
    with pytest.raises(ValueError, match="overlap"):
        analyze(T0, T0 + H, states=[], buckets=[Bucket(T0, T0 + 60, "a"), Bucket(T0 + 30, T0 + 90, "b")])
